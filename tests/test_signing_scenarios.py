"""The signature checker's proof (features/package/signing-fixtures.feature, @checker) passes against
its fixtures, and every one of its scenarios can fail: refusals when the fault is switched off (the
self-test's faults-off run), the others when the expectation is wrong (the wrong publisher's root in the
trust store, a stricter level, a policy that does cover the package)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml
from test_scenarios import _scenario_text

from margo_conformance.suite.catalogue import scenarios
from margo_conformance.suite.runner import RunOutcome, run_suite

ROOT = Path(__file__).resolve().parents[1]
FEATURE = ROOT / "features" / "package" / "signing-fixtures.feature"
SIGNING = ("--margo-checker", "--margo-feature", "signing-fixtures")
WRONG = {
    'publisher "vendor-a"': 'publisher "rogue-publisher"',  # verify against the wrong trust store
    "permissive": "strict",
    "audit": "strict",
    '"skip"': '"strict"',
    "for another registry scope only": "for every fixture repository",
}


def _verdicts(outcome: RunOutcome) -> list[dict[str, str]]:
    scenarios_run: list[dict[str, str]] = yaml.safe_load(outcome.results.read_text(encoding="utf-8"))[
        "scenarios"
    ]
    return scenarios_run


def _rows(negative: bool) -> int:
    """Scenario items of the feature (one per Examples row), refusals or the others."""
    count = 0
    for scenario in scenarios(FEATURE.parent):
        if scenario.feature == FEATURE and ("negative" in scenario.tags) == negative:
            table = [line for line in _scenario_text(scenario).splitlines() if line.strip().startswith("|")]
            count += max(len(table) - 1, 1)  # a header and its rows, or a plain scenario
    return count


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("signing-reports")


def test_every_signing_scenario_passes_against_its_fixtures(reports: Path) -> None:
    outcome = run_suite(persona="package", sut=None, reports_root=reports, echo=False, pytest_args=SIGNING)
    verdicts = _verdicts(outcome)
    assert Counter(v["verdict"] for v in verdicts) == {"pass": _rows(True) + _rows(False)}, verdicts
    assert {v["profile"] for v in verdicts} == {"signing"} and outcome.conformant
    results = yaml.safe_load(outcome.results.read_text(encoding="utf-8"))
    assert all(results["requirements"][f"SIGN-{n}"]["verdict"] == "pass" for n in (101, 102, 103, 106, 111))


def test_every_refusal_fails_when_its_fault_is_switched_off(reports: Path) -> None:
    outcome = run_suite(
        persona="package",
        sut=None,
        reports_root=reports,
        echo=False,
        faults_off=True,
        pytest_args=("-m", "negative", *SIGNING),
    )
    verdicts = _verdicts(outcome)
    assert len(verdicts) == _rows(True) > 15
    assert {v["verdict"] for v in verdicts} == {"fail"}, verdicts
    assert all("expected" in v["message"] and "to be refused" in v["message"] for v in verdicts)


def test_every_other_scenario_fails_when_its_expectation_is_wrong(
    tmp_path: Path, reports: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = tmp_path / "suite"
    for folder in ("features", "steps", "fixtures"):
        shutil.copytree(ROOT / folder, suite / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", suite / "pyproject.toml")
    feature = suite / "features" / "package" / FEATURE.name
    text = feature.read_text(encoding="utf-8")
    for right, wrong in WRONG.items():
        assert right in text, right
        text = text.replace(right, wrong)
    feature.write_text(text, encoding="utf-8")
    monkeypatch.setenv("MARGO_SUITE_ROOT", str(suite))
    outcome = run_suite(
        persona="package",
        sut=None,
        reports_root=reports,
        echo=False,
        pytest_args=("-m", "not negative", *SIGNING),
    )
    verdicts = _verdicts(outcome)
    assert len(verdicts) == _rows(False) > 15
    assert {v["verdict"] for v in verdicts} == {"fail"}, [v for v in verdicts if v["verdict"] != "fail"]
