"""The scenario catalogue is consistent with the registry, the fault catalogue and the step library.

These run without pytest-bdd executing anything: they read features/ and fixtures/ as data.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from margo_conformance.findings import Level
from margo_conformance.package.mutants import load_faults
from margo_conformance.registry import PERSONAS, PROFILES, Registry
from margo_conformance.suite.catalogue import TAG_FAMILIES, ScenarioInfo, covered_pairs, scenarios

ROOT = Path(__file__).resolve().parents[1]
FEATURES = ROOT / "features"
CATALOGUE = scenarios(FEATURES)
FAULTS = load_faults(ROOT / "fixtures" / "packages" / "faults.yaml")
STEP_REQUIREMENT = re.compile(r"requirement ([A-Z][A-Z0-9-]*-\d{3})")


def _by_name() -> dict[str, ScenarioInfo]:
    return {s.name: s for s in CATALOGUE}


def test_there_are_scenarios_for_every_feature_file() -> None:
    assert {s.feature for s in CATALOGUE} == set(FEATURES.rglob("*.feature"))


def test_scenario_names_are_unique() -> None:
    names = [s.name for s in CATALOGUE]
    assert len(names) == len(set(names)), "kill lists and reports address scenarios by name"


@pytest.mark.parametrize("scenario", CATALOGUE, ids=lambda s: s.name)
def test_every_scenario_carries_one_tag_of_each_family(scenario: ScenarioInfo) -> None:
    for family in TAG_FAMILIES:
        values = scenario.values(family)
        assert values, f"{scenario.where}: no @{family}: tag"
        if family != "req":
            assert len(values) == 1, f"{scenario.where}: more than one @{family}: tag"
    assert scenario.values("persona")[0] in PERSONAS
    assert scenario.values("profile")[0] in PROFILES
    assert scenario.values("level")[0] in ("must", "should", "may")


@pytest.mark.parametrize("scenario", CATALOGUE, ids=lambda s: s.name)
def test_every_requirement_tag_exists_in_the_registry(scenario: ScenarioInfo) -> None:
    registry = Registry.load()
    for rid in scenario.values("req"):
        assert rid in registry, f"{scenario.where}: @req:{rid} is not in the registry"
        assert scenario.values("persona")[0] in registry.get(rid).personas, (
            f"{scenario.where}: {rid} is not a requirement on this persona"
        )


@pytest.mark.parametrize("scenario", CATALOGUE, ids=lambda s: s.name)
def test_the_requirement_a_step_asserts_is_one_the_scenario_is_tagged_with(scenario: ScenarioInfo) -> None:
    for rid in STEP_REQUIREMENT.findall(_scenario_text(scenario)):
        assert rid in scenario.values("req"), (
            f"{scenario.where}: a step asserts {rid}, the tags say {scenario.values('req')}"
        )


def test_level_tags_agree_with_the_registry() -> None:
    """A must-level scenario may only assert MUST requirements; a should-level one tests a recommendation."""
    registry = Registry.load()
    for scenario in CATALOGUE:
        if scenario.values("level") == ["must"]:
            for rid in scenario.values("req"):
                assert registry.get(rid).level is Level.MUST, f"{scenario.where}: {rid} is not a MUST"


def test_no_package_must_requirement_is_uncovered() -> None:
    """A vendor's run covers every package MUST, but a rule of the verifier (SIGN-111) that only the
    checker's proof (@checker) shows on the suite's fixtures, with its reason recorded."""
    uncovered = Registry.load().uncovered(covered_pairs(FEATURES), persona="package")
    proof = {rid for s in CATALOGUE if s.checker for rid in s.values("req")}
    assert [r.id for r in uncovered if not (r.deferred and r.id in proof)] == []


def test_checker_proof_covers_no_subject() -> None:
    """Scenarios judging the suite's own fixtures (refusals, signature fixtures) count for no vendor."""
    proof = [s for s in CATALOGUE if s.checker]
    assert {s.feature.name for s in proof} == {"refusals.feature", "signing-fixtures.feature"}
    assert all("negative" in s.tags for s in proof if s.feature.name == "refusals.feature")
    only_proof = {rid for s in proof for rid in s.values("req")} - {
        rid for s in CATALOGUE if not s.checker for rid in s.values("req")
    }
    assert only_proof and not any(rid in only_proof for rid, _ in covered_pairs(FEATURES))


@pytest.mark.parametrize("fault", FAULTS.values(), ids=lambda f: f.name)
def test_each_fault_kills_existing_scenarios_about_its_requirement(fault) -> None:  # type: ignore[no-untyped-def]
    by_name = _by_name()
    for name in fault.kills:
        assert name in by_name, f"fault {fault.name}: kill list names unknown scenario {name!r}"
        assert "negative" not in by_name[name].tags, f"fault {fault.name}: kills a refusal scenario"
    assert any(fault.requirement in by_name[n].values("req") for n in fault.kills), (
        f"fault {fault.name}: none of its kills is tagged @req:{fault.requirement}"
    )


@pytest.mark.parametrize("fault", FAULTS.values(), ids=lambda f: f.name)
def test_each_fault_has_a_refusal_scenario_tagged_with_its_requirement(fault) -> None:  # type: ignore[no-untyped-def]
    refusals = [s for s in CATALOGUE if "negative" in s.tags and _names_fault(s, fault.name)]
    assert len(refusals) == 1, f"fault {fault.name}: expected one refusal scenario, found {len(refusals)}"
    assert refusals[0].values("req") == [fault.requirement]


def _names_fault(scenario: ScenarioInfo, fault: str) -> bool:
    """The scenario uses the fault in a step or in an Examples row."""
    text = _scenario_text(scenario)
    return f'"{fault}"' in text or re.search(rf"\|\s*{re.escape(fault)}\s*\|", text) is not None


def _scenario_text(scenario: ScenarioInfo) -> str:
    """The lines after the Scenario line, up to the next tag line (the next scenario)."""
    lines = scenario.feature.read_text(encoding="utf-8").splitlines()
    body = []
    for line in lines[scenario.line :]:
        if line.strip().startswith("@"):
            break
        body.append(line)
    return "\n".join(body)


WFM_CATALOGUE = yaml.safe_load((ROOT / "fixtures" / "wfm" / "faults.yaml").read_text(encoding="utf-8"))[
    "faults"
]
WFM_FAULTS = [f for f in WFM_CATALOGUE if f.get("kind", "mutant") == "mutant"]
WFM_VARIANTS = [f for f in WFM_CATALOGUE if f.get("kind") == "variant"]


def _wfm_scenario(display_name: str) -> ScenarioInfo:
    """A WFM scenario by the name results carry (outline examples add ' [<example>]')."""
    name = display_name.split(" [")[0]
    matches = [s for s in CATALOGUE if s.name == name and "persona:wfm" in s.tags]
    assert len(matches) == 1, f"no single WFM scenario named {name!r}"
    return matches[0]


@pytest.mark.parametrize("fault", WFM_FAULTS, ids=lambda f: f["name"])
def test_each_wfm_fault_kills_scenarios_about_its_requirement(fault: dict) -> None:  # type: ignore[type-arg]
    killed = [_wfm_scenario(name) for name in fault["kills"]]
    assert any(fault["requirement"] in s.values("req") for s in killed), (
        f"wfm fault {fault['name']}: none of its kills is tagged @req:{fault['requirement']}"
    )
    assert {s.feature.stem for s in killed} <= set(fault["features"]), (
        "a kill lies outside the features it runs"
    )


def test_the_wfm_fault_catalogue_matches_the_reference_wfm() -> None:
    from margo_conformance.reference.wfm.faults import FAULTS

    assert [f["name"] for f in WFM_CATALOGUE] == [name for name, f in FAULTS.items() if f.area != "mis"]
    assert all(FAULTS[f["name"]].requirement == f["requirement"] for f in WFM_CATALOGUE)
    assert all(FAULTS[f["name"]].kind == f.get("kind", "mutant") for f in WFM_CATALOGUE)


@pytest.mark.parametrize("variant", WFM_VARIANTS, ids=lambda f: f["name"])
def test_each_wfm_variant_cites_what_allows_it_and_kills_nothing(variant: dict) -> None:  # type: ignore[type-arg]
    assert variant["allowed_by"] and not {"kills", "features", "scenarios"} & set(variant)


MIS_FAULTS = yaml.safe_load((ROOT / "fixtures" / "mis" / "faults.yaml").read_text(encoding="utf-8"))["faults"]


def test_the_mis_fault_catalogue_matches_the_reference_identity_service() -> None:
    """The MIS faults live in the reference WFM's catalogue (area mis); fixtures/mis lists each once."""
    from margo_conformance.reference.wfm.faults import FAULTS

    assert [f["name"] for f in MIS_FAULTS] == [name for name, f in FAULTS.items() if f.area == "mis"]
    for entry in MIS_FAULTS:
        fault = FAULTS[entry["name"]]
        assert (fault.requirement, fault.kind) == (entry["requirement"], entry.get("kind", "mutant"))


@pytest.mark.parametrize(
    "fault", [f for f in MIS_FAULTS if f.get("kind") != "variant"], ids=lambda f: f["name"]
)
def test_each_mis_fault_kills_scenarios_about_its_requirement(fault: dict) -> None:  # type: ignore[type-arg]
    by_name = {s.name: s for s in CATALOGUE if "persona:mis" in s.tags}
    killed = [by_name[name] for name in fault["kills"]]
    assert any(fault["requirement"] in s.values("req") for s in killed), (
        f"mis fault {fault['name']}: none of its kills is tagged @req:{fault['requirement']}"
    )
    assert {s.feature.stem for s in killed} <= set(fault["features"]), (
        "a kill lies outside the features it runs"
    )


@pytest.mark.parametrize("persona", ["package", "wfm", "mis"])
def test_every_uncovered_must_requirement_has_a_recorded_reason(persona: str) -> None:
    uncovered = Registry.load().uncovered(covered_pairs(FEATURES), persona=persona)
    assert [r.id for r in uncovered if not r.deferred] == []
