"""The self-test, as CI runs it: each package, WFM and device mutant fails exactly its kill list."""

from __future__ import annotations

from pathlib import Path

import yaml

from margo_conformance.suite.selftest import selftest


def test_every_package_mutant_is_killed_by_exactly_the_expected_scenarios(tmp_path: Path) -> None:
    lines: list[str] = []
    rows = selftest("package", reports_root=tmp_path, progress=lines.append)
    problems = {row.subject: row.unexpected for row in rows if not row.ok}
    assert not problems, f"kill matrix mismatches: {problems}"
    assert rows[0].subject == "reference" and rows[1].subject == "faults switched off"
    assert len(rows[1].expected) > 40, "the faults-off run must see every refusal scenario"
    matrix = yaml.safe_load(next(tmp_path.glob("*/kill-matrix.yaml")).read_text(encoding="utf-8"))
    assert all(row["ok"] for row in matrix["rows"])
    assert any("[1/" in line for line in lines), "progress is shown while mutants run"


def test_every_wfm_mutant_is_killed_by_exactly_the_expected_scenarios(tmp_path: Path) -> None:
    # Variants together (one run with all six on), for CI time; `selftest --persona wfm` runs each.
    rows = selftest("wfm", reports_root=tmp_path, progress=lambda line: None, variants="together")
    problems = {row.subject: row.unexpected for row in rows if not row.ok}
    assert not problems, f"kill matrix mismatches: {problems}"
    assert len(rows) > 50, "every reference-WFM fault is a mutant"


def test_every_device_mutant_is_killed_by_exactly_the_expected_scenarios(tmp_path: Path) -> None:
    """On a real Docker engine: the reference device passes every device scenario, and each device
    fault (protocol, TLS, runtime isolation, signing) fails exactly its kill list; the device variants,
    switched on together (one run instead of one each, for CI time), pass every scenario."""
    rows = selftest("device", reports_root=tmp_path, progress=lambda line: None, variants="together")
    problems = {row.subject: (row.expected - row.failed, row.unexpected) for row in rows if not row.ok}
    assert not problems, f"kill matrix mismatches: {problems}"
    assert len(rows) > 30, "every reference-device fault is a mutant"


def test_the_signing_profile_selects_the_signing_mutants_of_each_persona() -> None:
    """`selftest --profile signing` runs exactly the signing faults (CI runs them inside the WFM and device
    kill matrices above; for packages, the sign-* faults against the vendor-facing signing.feature)."""
    from margo_conformance.reference.device.faults import FAULTS as DEVICE_FAULTS
    from margo_conformance.reference.wfm.faults import FAULTS as WFM_FAULTS
    from margo_conformance.suite.selftest import mutants_for, profile_features

    assert set(profile_features("signing")) == {"package", "wfm", "device"}
    for persona, catalogue in (("wfm", WFM_FAULTS), ("device", DEVICE_FAULTS)):
        signing = {
            name for name, fault in catalogue.items() if fault.area == "signing" and fault.kind == "mutant"
        }
        variants = {
            name for name, fault in catalogue.items() if fault.kind == "variant" and fault.area != "mis"
        }  # run on every profile
        assert signing and {m.name for m in mutants_for(persona, "signing")} == signing | variants
    package = {m.name for m in mutants_for("package", "signing")}
    assert package and all(name.startswith("sign-") for name in package)


def test_every_mis_mutant_is_killed_by_exactly_the_expected_scenarios(tmp_path: Path) -> None:
    """The reference identity service (HTTP only, no Docker): each MIS fault fails exactly its kill list;
    the MIS variants, switched on together, pass every MIS scenario."""
    rows = selftest("mis", reports_root=tmp_path, progress=lambda line: None, variants="together")
    problems = {row.subject: (row.expected - row.failed, row.unexpected) for row in rows if not row.ok}
    assert not problems, f"kill matrix mismatches: {problems}"
    assert {row.kind for row in rows} == {"reference", "mutant", "variant"}
    assert len(rows) > 15, "every reference-MIS fault is a mutant"
