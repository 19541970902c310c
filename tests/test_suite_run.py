"""End to end: `run` against the reference subjects writes every report, and verdicts follow the SUT."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from margo_conformance.errors import EnvironmentProblem
from margo_conformance.suite.runner import RunOutcome, run_suite

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
