"""The self-test, as CI runs it: every package mutant is killed by exactly its expected scenarios."""

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
    rows = selftest("wfm", reports_root=tmp_path, progress=lambda line: None)
    problems = {row.subject: row.unexpected for row in rows if not row.ok}
    assert not problems, f"kill matrix mismatches: {problems}"
    assert len(rows) > 50, "every reference-WFM fault is a mutant"
