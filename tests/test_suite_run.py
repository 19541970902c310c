"""End to end: `run` against the reference subjects writes every report, and verdicts follow the SUT."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from margo_conformance.errors import EnvironmentProblem
from margo_conformance.suite.results import RunResults, ScenarioResult, junit_tree
from margo_conformance.suite.runner import RunOutcome, run_suite
from margo_conformance.verdicts import Verdict

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_PACKAGES = ["../packages/vendor-a-compose", "../packages/vendor-b-compose", "../packages/helm-app"]


def _results(outcome: RunOutcome) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(outcome.results.read_text(encoding="utf-8"))


def _sut(tmp_path: Path, **fields: object) -> Path:
    """A SUT file beside the reference one, so relative package paths resolve the same way."""
    path = ROOT / "fixtures" / "sut" / f"test-{tmp_path.name}.yaml"
    path.write_text(yaml.safe_dump({"pin": "margo-1.0.0-rc.3", **fields}), encoding="utf-8")
    return path


@pytest.fixture
def sut_file(tmp_path: Path):  # type: ignore[no-untyped-def]
    made: list[Path] = []

    def make(**fields: object) -> Path:
        made.append(_sut(tmp_path, **fields))
        return made[-1]

    yield make
    for path in made:
        path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> RunOutcome:
    return run_suite(persona="package", sut=None, reports_root=tmp_path_factory.mktemp("reports"), echo=False)


def test_the_reference_run_is_conformant_and_writes_every_report(reference_run: RunOutcome) -> None:
    assert reference_run.conformant
    for name in ("junit.xml", "cucumber.json", "results.yaml", "run.log"):
        assert (reference_run.reports / name).is_file(), name
    results = _results(reference_run)
    assert results["pin"] == "margo-1.0.0-rc.3"
    assert len(results["suite"]["sha256"]) == 64
    counts = results["summary"]["counts"]
    assert counts["pass"] == len(results["scenarios"]) and counts["fail"] == 0
    assert results["summary"]["eligible_for_certification"] is True
    assert results["requirements"]["REG-015"]["verdict"] == "pass"
    assert {"core", "compose", "helm", "custom"} <= set(results["profiles"])
    # a vendor's run judges only the vendor's subject: the checker's proof (@checker) is not in it
    features = {Path(s["feature"]).name for s in results["scenarios"]}
    assert "signing.feature" in features and not features & {"refusals.feature", "signing-fixtures.feature"}


def test_junit_and_cucumber_cover_the_same_scenarios_as_results(reference_run: RunOutcome) -> None:
    scenarios = len(_results(reference_run)["scenarios"])
    junit = ET.parse(reference_run.reports / "junit.xml").getroot()
    assert len(junit.findall(".//testcase")) == scenarios
    cucumber = json.loads((reference_run.reports / "cucumber.json").read_text(encoding="utf-8"))
    assert sum(len(feature["elements"]) for feature in cucumber) == scenarios


def test_profiles_the_sut_does_not_declare_are_not_applicable(sut_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sut = sut_file(declares=["core"], package={"targets": REFERENCE_PACKAGES})
    outcome = run_suite(
        persona="package", sut=sut, reports_root=tmp_path, echo=False, pytest_args=("-m", "not negative")
    )
    results = _results(outcome)
    verdicts = {s["profile"]: set() for s in results["scenarios"]}
    for s in results["scenarios"]:
        verdicts[s["profile"]].add(s["verdict"])
    assert verdicts["compose"] == {"not-applicable"} and verdicts["helm"] == {"not-applicable"}
    assert results["profiles"]["compose"]["declared"] is False
    # The OCI scenarios need publishing, which this SUT does not allow: blocked, not passed.
    blocked = {s["scenario"] for s in results["scenarios"] if s["verdict"] == "blocked"}
    assert "The package tag equals the description's version" in blocked
    assert outcome.conformant is False


def test_without_a_package_subject_the_subject_scenarios_are_blocked(sut_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    launcher = {"type": "command", "start": "vendor-agent --token {env:AGENT_TOKEN}"}  # README: secrets
    sut = sut_file(declares=["core"], device={"launcher": launcher})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AGENT_TOKEN", "s3cret-value")
        outcome = run_suite(
            persona="package", sut=sut, reports_root=tmp_path, echo=False, pytest_args=("-m", "not negative")
        )
    results = _results(outcome)
    applicable = [s for s in results["scenarios"] if s["verdict"] != "not-applicable"]
    assert applicable and all(s["verdict"] == "blocked" for s in applicable)
    assert all("declares no 'package' subject" in s["message"] for s in applicable)
    assert "s3cret-value" not in outcome.results.read_text(encoding="utf-8"), "a secret reached the report"
    assert "s3cret-value" not in (outcome.reports / "run.log").read_text(encoding="utf-8")


def test_a_scenario_tag_naming_an_unknown_requirement_stops_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = tmp_path / "suite"
    for folder in ("features", "steps", "fixtures"):
        shutil.copytree(ROOT / folder, suite / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", suite / "pyproject.toml")
    feature = suite / "features" / "package" / "application-description.feature"
    feature.write_text(
        feature.read_text(encoding="utf-8").replace("@req:APPD-106", "@req:APPD-999"), encoding="utf-8"
    )
    monkeypatch.setenv("MARGO_SUITE_ROOT", str(suite))
    with pytest.raises(EnvironmentProblem, match="APPD-999"):
        run_suite(persona="package", sut=None, reports_root=tmp_path / "reports", echo=False)


# -- verdicts read the same everywhere ------------------------------------------------------------------

VERDICT_FEATURE = """\
@persona:package
Feature: One verdict of each kind

  @req:APPD-106 @level:must @profile:core
  Scenario: The subject does what is asked
    Given a step that passes

  @req:APPD-106 @level:must @profile:core
  Scenario: The subject does not do what is asked
    Given a step that finds a violation

  @req:APPD-106 @level:must @profile:core
  Scenario: A precondition cannot be established
    Given a step whose precondition is missing

  @req:APPD-106 @level:must @profile:core
  Scenario: The suite cannot decide
    Given a step that breaks

  @req:APPD-106 @level:must @profile:helm
  Scenario: A profile the subject does not declare
    Given a step that passes
"""

VERDICT_STEPS = """\
from pytest_bdd import given, scenarios

from margo_conformance.errors import Blocked

scenarios("../features/package/verdicts.feature")


@given("a step that passes")
def _passes() -> None:
    pass


@given("a step that finds a violation")
def _fails() -> None:
    raise AssertionError("APPD-106: the subject did not do it")


@given("a step whose precondition is missing")
def _blocked() -> None:
    raise Blocked("no registry answers")


@given("a step that breaks")
def _breaks() -> None:
    raise RuntimeError("the suite broke")
"""

JUNIT_COUNTS = {
    "failures": ("fail",),
    "errors": ("blocked", "inconclusive"),
    "skipped": ("not-applicable", "skipped"),
}


@pytest.fixture(scope="module")
def verdict_run(tmp_path_factory: pytest.TempPathFactory) -> RunOutcome:
    """A throw-away suite with one scenario of each verdict, run as a vendor runs it."""
    suite = tmp_path_factory.mktemp("suite")
    (suite / "features" / "package").mkdir(parents=True)
    (suite / "features" / "package" / "verdicts.feature").write_text(VERDICT_FEATURE, encoding="utf-8")
    (suite / "steps").mkdir()
    (suite / "steps" / "test_verdicts.py").write_text(VERDICT_STEPS, encoding="utf-8")
    shutil.copy(ROOT / "pyproject.toml", suite / "pyproject.toml")
    sut = suite / "sut.yaml"
    target = str(ROOT / "fixtures" / "packages" / "vendor-a-compose")
    sut.write_text(
        yaml.safe_dump({"pin": "margo-1.0.0-rc.3", "declares": ["core"], "package": {"targets": [target]}})
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MARGO_SUITE_ROOT", str(suite))
        return run_suite(persona="package", sut=sut, reports_root=suite / "reports", echo=False)


def _junit_counts(path: Path) -> dict[str, int]:
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    return {key: int(suite.get(key, "-1")) for key in ("tests", *JUNIT_COUNTS)}


def test_console_results_and_junit_agree_on_every_count(verdict_run: RunOutcome) -> None:
    results = _results(verdict_run)
    counts = results["summary"]["counts"]
    assert {k: v for k, v in counts.items() if v} == {
        "pass": 1,
        "fail": 1,
        "blocked": 1,
        "inconclusive": 1,
        "not-applicable": 1,
    }
    junit = _junit_counts(verdict_run.reports / "junit.xml")
    assert junit == {
        "tests": len(results["scenarios"]),
        **{key: sum(counts[v] for v in verdicts) for key, verdicts in JUNIT_COUNTS.items()},
    }
    log = (verdict_run.reports / "run.log").read_text(encoding="utf-8")
    line = next(text for text in log.splitlines() if "for certification" in text)
    console = {verdict: int(n) for n, verdict in re.findall(r"(\d+) ([a-z-]+)", line.split(";")[0])}
    assert console == {k: v for k, v in counts.items() if v}
    assert "NOT conformant" in line and "NOT eligible for certification" in line


def test_blocked_and_inconclusive_are_junit_errors_with_their_reason(verdict_run: RunOutcome) -> None:
    cases = {c.get("name"): c for c in ET.parse(verdict_run.reports / "junit.xml").getroot().iter("testcase")}
    blocked = cases["A precondition cannot be established"].find("error")
    assert blocked is not None and blocked.get("type") == "blocked"
    assert "no registry answers" in (blocked.get("message") or "")
    broken = cases["The suite cannot decide"].find("error")
    assert (
        broken is not None
        and broken.get("type") == "inconclusive"
        and "the suite broke" in (broken.text or "")
    )
    failed = cases["The subject does not do what is asked"].find("failure")
    assert failed is not None and "APPD-106" in (failed.text or "")
    skipped = cases["A profile the subject does not declare"].find("skipped")
    assert skipped is not None and skipped.get("type") == "not-applicable"
    passed = cases["The subject does what is asked"]
    assert [child.tag for child in passed] == ["properties"]


def test_a_blocked_must_scenario_makes_the_run_not_eligible(verdict_run: RunOutcome) -> None:
    summary = _results(verdict_run)["summary"]
    assert summary["eligible_for_certification"] is False
    because = "\n".join(summary["not_eligible_because"])
    assert "A precondition cannot be established: blocked" in because
    assert "The suite cannot decide: inconclusive" in because
    assert "A profile the subject does not declare" not in because  # not declared: not applicable


def _scenario(verdict: Verdict, *, level: str = "must", profile: str = "core") -> ScenarioResult:
    return ScenarioResult(
        f"id-{verdict}",
        "features/x.feature",
        f"{verdict} {level} {profile}",
        verdict,
        ("APPD-106",),
        "package",
        level,
        profile,
        0.5,
    )


@pytest.mark.parametrize(
    ("verdicts", "eligible"),
    [
        ([Verdict.PASS], True),
        ([Verdict.PASS, Verdict.FAIL], True),  # a failure is a decision: not conformant, but certifiable
        ([Verdict.PASS, Verdict.BLOCKED], False),
        ([Verdict.PASS, Verdict.INCONCLUSIVE], False),
        ([Verdict.PASS, Verdict.SKIPPED], False),
        ([Verdict.NOT_APPLICABLE], False),  # nothing decided
        ([], False),
    ],
)
def test_eligibility_needs_every_must_scenario_of_a_declared_profile_decided(
    verdicts: list[Verdict], eligible: bool
) -> None:
    results = RunResults("r", "margo-1.0.0-rc.3", {}, ("core",), scenarios=[_scenario(v) for v in verdicts])
    assert (not results.not_eligible()) is eligible


def test_a_should_or_undeclared_scenario_that_is_blocked_does_not_spoil_eligibility() -> None:
    scenarios = [
        _scenario(Verdict.PASS),
        _scenario(Verdict.BLOCKED, level="should"),
        _scenario(Verdict.BLOCKED, profile="helm"),
    ]
    assert RunResults("r", "margo-1.0.0-rc.3", {}, ("core",), scenarios=scenarios).not_eligible() == []


def test_junit_is_rendered_from_the_results_data() -> None:
    results = RunResults("r", "margo-1.0.0-rc.3", {}, ("core",), scenarios=[_scenario(v) for v in Verdict])
    data = {"started": "2026-01-01T00:00:00+00:00", "scenarios": [s.as_dict() for s in results.scenarios]}
    root = junit_tree(data).getroot()
    assert root.attrib == {"tests": "6", "failures": "1", "errors": "2", "skipped": "2"}
    properties = {
        p.get("name"): p.get("value") for p in root.iter("property") if p.get("name") != "requirement"
    }
    assert set(properties) == {"verdict", "level", "profile", "persona"}
