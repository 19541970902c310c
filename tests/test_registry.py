"""The requirement registry of the pin: complete against the spec digests, and strict about its format."""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from margo_conformance import DEFAULT_PIN
from margo_conformance.findings import Level
from margo_conformance.paths import pin_dir
from margo_conformance.registry import PERSONAS, PROFILES, Registry, _parse_entry

# In CI the repository is cloned with shared/ beside it (…/main and …/shared).
SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"
DIGEST = "docs/margo-spec-digest.md"
PROTOCOL = "docs/margo-rc3-protocol.md"

_TABLE_ID = re.compile(r"^\| ([A-Z][A-Z0-9-]*-[0-9]+) \|", re.MULTILINE)
_R_ID = re.compile(r"^\| (R-[0-9]{2}) \|", re.MULTILINE)


def _shared_text(relative: str) -> str:
    path = SHARED_DIR / relative
    if not SHARED_DIR.is_dir():
        pytest.fail(
            f"the shared folder {SHARED_DIR} is missing: clone the shared documents beside this repository "
            f"(it must hold {DIGEST} and {PROTOCOL})",
            pytrace=False,
        )
    if not path.is_file():
        pytest.fail(f"{path} is missing from the shared folder", pytrace=False)
    return path.read_text(encoding="utf-8")


@cache
def _digest_ids() -> frozenset[str]:
    """IDs of the digest's requirement tables (the INC-nnn rows are spec defects, not requirements)."""
    return frozenset(i for i in _TABLE_ID.findall(_shared_text(DIGEST)) if not i.startswith("INC-"))


@cache
def _digest_errata() -> frozenset[str]:
    return frozenset(i for i in _TABLE_ID.findall(_shared_text(DIGEST)) if i.startswith("INC-"))


@cache
def _project_errata() -> frozenset[str]:
    """The project's own errata (INC-101 on), linked to requirements by their ``touches`` lists."""
    data = yaml.safe_load((pin_dir(DEFAULT_PIN) / "errata.yaml").read_text(encoding="utf-8"))
    return frozenset(str(e["id"]) for e in data["errata"])


def test_an_erratum_that_touches_a_requirement_is_listed_with_it() -> None:
    registry = Registry.load()
    assert "INC-126" in registry.get("DS-009").errata  # the "long max-age" reading decides DS-009 verdicts


@cache
def _protocol_ids() -> frozenset[str]:
    """R-nn of the protocol digest's requirement list (§10 only)."""
    text = _shared_text(PROTOCOL)
    start = text.index("\n## 10.")
    end = text.index("\n## ", start + 1)
    return frozenset(_R_ID.findall(text[start:end]))


@cache
def _raw() -> dict[str, Any]:
    data = yaml.safe_load((pin_dir(DEFAULT_PIN) / "requirements.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_registry_loads() -> None:
    registry = Registry.load()
    assert registry.pin == DEFAULT_PIN
    assert len(registry.requirements) >= 200
    assert _raw()["pin"] == DEFAULT_PIN


def test_digest_parsing_finds_the_requirement_tables() -> None:
    # Guards the parser itself: a silent regex miss would make the completeness test vacuous.
    assert len(_digest_ids()) >= 200
    assert {"API-GEN-001", "DS-011", "CAP-008", "REG-015", "ELIG-012", "OBS-016"} <= _digest_ids()
    assert {"INC-001", "INC-024"} <= _digest_errata()
    assert {f"R-{n:02d}" for n in range(1, 49)} == _protocol_ids()


def test_every_digest_requirement_is_registered() -> None:
    missing = sorted(_digest_ids() - set(Registry.load().requirements))
    assert not missing, f"digest requirements without a registry entry: {missing}"


def test_spec_defects_are_not_registry_entries() -> None:
    assert not [rid for rid in Registry.load().requirements if rid.startswith("INC-")]


def test_additions_beyond_the_digest_are_numbered_from_101() -> None:
    extra = sorted(set(Registry.load().requirements) - _digest_ids())
    assert extra, "expected the suite's own additions (APPD-101 …)"
    for rid in extra:
        assert int(rid.rsplit("-", 1)[1]) >= 101, f"{rid}: own additions are numbered from 101"


def test_every_protocol_requirement_is_mapped() -> None:
    mapped = {pid for r in Registry.load().requirements.values() for pid in r.protocol_ids}
    missing = sorted(_protocol_ids() - mapped)
    assert not missing, f"protocol requirements no registry entry covers: {missing}"


def test_protocol_and_errata_references_exist() -> None:
    for r in Registry.load().requirements.values():
        unknown_r = set(r.protocol_ids) - _protocol_ids()
        assert not unknown_r, f"{r.id}: unknown protocol ids {sorted(unknown_r)}"
        unknown_inc = set(r.errata) - _digest_errata() - _project_errata()
        assert not unknown_inc, f"{r.id}: unknown errata {sorted(unknown_inc)}"


def test_sources_are_complete_and_all_used() -> None:
    sources = _raw()["sources"]
    for key, source in sources.items():
        assert {"repository", "path", "commit"} <= set(source), key
        commit = str(source["commit"])
        assert re.fullmatch(r"[0-9a-f]{40}", commit) or (commit == "not-recorded" and source.get("note")), (
            f"source {key}: commit must be a full SHA-1, or not-recorded with a note"
        )
    used = {r.source.key for r in Registry.load().requirements.values()}
    assert used == set(sources), f"declared but unused sources: {sorted(set(sources) - used)}"


def test_untestable_entries_say_why() -> None:
    for r in Registry.load().requirements.values():
        assert r.testable or len(r.why) >= 10, r.id


@pytest.mark.parametrize(
    "rid",
    [f"APPD-{n}" for n in range(101, 111)] + ["PKG-101"],
)
def test_package_rules_other_code_relies_on(rid: str) -> None:
    r = Registry.load().get(rid)
    assert r.personas[0] == "package"
    assert r.level is Level.MUST
    assert r.profile == ("helm" if rid == "APPD-110" else "core")


@pytest.mark.parametrize(
    "rid",
    [
        *(f"PKG-{n:03d}" for n in (1, 2, 3)),
        *(f"REG-{n:03d}" for n in (5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17)),
        *("EXT-003", "EXT-004", "APPD-004", "APPD-009"),
        *(f"ELIG-{n:03d}" for n in range(11, 16)),
    ],
)
def test_package_checked_requirements_include_the_package_persona(rid: str) -> None:
    assert "package" in Registry.load().get(rid).personas


@pytest.mark.parametrize(
    ("rid", "profile"),
    [
        *[(f"REG-{n:03d}", "compose") for n in range(10, 19)],
        ("DEV-007", "compose"),
        *[(rid, "helm") for rid in ("DEV-005", "DEV-006", "APPD-004", "APPD-110")],
        *[(f"CAP-{n:03d}", "gateway") for n in range(7, 12)],
        *[(rid, "gateway") for rid in ("STAT-006", "STAT-007", "ADEP-004")],
        *[(rid, "custom") for rid in ("CAP-012", "APPD-006", "CUST-001", "CUST-002")],
    ],
)
def test_profile_assignments(rid: str, profile: str) -> None:
    assert Registry.load().get(rid).profile == profile


def test_observability_entries_use_their_profile() -> None:
    for r in Registry.load().requirements.values():
        if r.id.startswith("OBS-"):
            assert r.profile == "observability", r.id


def test_selection_and_uncovered() -> None:
    registry = Registry.load()
    must_wfm = registry.select(persona="wfm", level=Level.MUST)
    assert must_wfm and all("wfm" in r.personas and r.level is Level.MUST for r in must_wfm)
    uncovered = registry.uncovered({("DS-011", "wfm")}, persona="wfm")
    assert "DS-011" not in {r.id for r in uncovered}
    assert all(r.testable for r in uncovered)
    assert all(p in PERSONAS for r in registry.requirements.values() for p in r.personas)
    assert all(r.profile in PROFILES for r in registry.requirements.values())


# --- the loader refuses malformed entries -------------------------------------------------------

_SOURCES = {"P-DS": {"repository": "margo/specification", "path": "x.html", "commit": "0" * 40}}
_GOOD = {
    "id": "DS-999",
    "persona": ["wfm"],
    "level": "MUST",
    "profile": "core",
    "summary": "A well-formed entry used as the base of the negative cases.",
    "source": {"key": "P-DS", "section": "manifestVersion"},
}

_DROP = object()


def _with(**changes: Any) -> dict[str, Any]:
    entry = copy.deepcopy(_GOOD)
    for key, value in changes.items():
        if value is _DROP:
            entry.pop(key)
        else:
            entry[key] = value
    return entry


def test_a_well_formed_entry_parses() -> None:
    r = _parse_entry(_with(testable=False, why="informative scope statement"), _SOURCES)
    assert r.id == "DS-999" and r.level is Level.MUST and not r.testable
    assert r.source.cite().startswith("margo/specification@000000000000:x.html")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        pytest.param("not a mapping", "not a mapping", id="not-a-mapping"),
        pytest.param(_with(note="x"), "unknown field", id="unknown-field"),
        pytest.param(_with(id="ds-011"), "does not match", id="lowercase-id"),
        pytest.param(_with(id="DS-11"), "does not match", id="short-number"),
        pytest.param(_with(id=_DROP), "does not match", id="missing-id"),
        pytest.param(_with(level="MUST NOT"), "level", id="bad-level"),
        pytest.param(_with(level="must"), "level", id="lowercase-level"),
        pytest.param(_with(persona=["operator"]), "persona", id="bad-persona"),
        pytest.param(_with(persona=[]), "persona", id="empty-persona"),
        pytest.param(_with(profile="kubernetes"), "profile", id="bad-profile"),
        pytest.param(_with(summary="short"), "summary", id="short-summary"),
        pytest.param(_with(testable=False), "why", id="untestable-without-why"),
        pytest.param(_with(source={"key": "P-XX", "section": "s"}), "source key", id="unknown-source-key"),
        pytest.param(_with(source={"key": "P-DS"}), "source must be", id="source-without-section"),
    ],
)
def test_malformed_entries_are_refused(entry: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _parse_entry(entry, _SOURCES)


def test_a_source_without_commit_is_refused() -> None:
    sources = {"P-DS": {"repository": "margo/specification", "path": "x.html"}}
    with pytest.raises(ValueError, match="source key"):
        _parse_entry(_with(), sources)
