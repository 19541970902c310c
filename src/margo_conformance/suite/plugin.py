"""The pytest plugin that turns pytest-bdd scenarios into conformance verdicts.

- ``@req:ID`` / ``@persona:`` / ``@level:`` / ``@profile:`` tags become marks; an unknown requirement
  ID or a scenario missing a family stops collection with a clear message.
- Scenarios of other personas are deselected; scenarios of profiles the SUT does not declare are
  not-applicable. ``@checker`` scenarios judge the suite's own bundled fixtures, not the subject: they
  are the checker's proof (self-test, project tests) and run only with ``--margo-checker``.
- Each report is classified into a verdict (pass, fail, blocked, inconclusive …) and results.yaml
  is written at the end of the session.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from pytest_bdd.scenario import scenario_wrapper_template_registry  # maps a test function to its scenario

from .._internal.processes import interrupt_on_sigterm
from ..config import Sut, load_sut
from ..errors import Blocked, EnvironmentProblem, InputError, MargoError
from ..paths import suite_root
from ..registry import Registry
from ..verdicts import Verdict
from .catalogue import CHECKER_TAG, TAG_FAMILIES
from .results import RunResults, ScenarioResult

SUT_KEY = pytest.StashKey[Sut]()
RESULTS_KEY = pytest.StashKey[RunResults]()
PRECONDITION_ERRORS = (Blocked, EnvironmentProblem, InputError)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("margo", "Margo conformance")
    group.addoption("--margo-sut", default=None, help="SUT file (default: the built-in reference subjects)")
    group.addoption("--margo-persona", default=None, help="Run only scenarios of this persona")
    group.addoption("--margo-results", default=None, help="Write results.yaml here")
    group.addoption("--margo-run-id", default="local", help="Run id recorded in results.yaml")
    group.addoption(
        "--margo-faults-off",
        action="store_true",
        help="Self-test: bundled faulty fixtures resolve to their origin",
    )
    group.addoption(
        "--margo-checker",
        action="store_true",
        help="Self-test: also run the @checker scenarios (the checker judging the suite's own fixtures)",
    )
    group.addoption(
        "--margo-mutant",
        default=None,
        help="Self-test: the package under test is this bundled fault's mutant",
    )
    group.addoption(
        "--margo-feature",
        action="append",
        default=[],
        help="Only scenarios of this feature file (stem); repeatable",
    )
    group.addoption(
        "--margo-scenario",
        action="append",
        default=[],
        help="Only the scenario with this exact name; repeatable",
    )
    group.addoption(
        "--margo-wfm-fault",
        action="append",
        default=[],
        help="Self-test: start the reference WFM with this fault switched on; repeatable",
    )
    group.addoption(
        "--margo-device-fault",
        action="append",
        default=[],
        help="Self-test: start the reference device with this fault switched on; repeatable",
    )


def pytest_configure(config: pytest.Config) -> None:
    interrupt_on_sigterm()  # SIGTERM (from the runner, CI) still runs every scenario's clean-up
    sut_path = config.getoption("--margo-sut")
    sut = load_sut(Path(sut_path) if sut_path else None)
    config.stash[SUT_KEY] = sut
    config.stash[RESULTS_KEY] = RunResults(
        run_id=config.getoption("--margo-run-id"),
        pin=sut.pin,
        sut=sut.redacted(),
        declared_profiles=sut.declares,
    )


@pytest.hookimpl(tryfirst=True)  # before pytest-bdd's own, which would make a plain mark of every tag
def pytest_bdd_apply_tag(tag: str, function: Any) -> bool | None:
    family, _, value = tag.partition(":")
    if family not in TAG_FAMILIES or not value:
        return None  # pytest-bdd's default: a plain mark (e.g. @negative)
    if family == "req" and value not in Registry.load():
        raise pytest.UsageError(f"scenario tag @req:{value} names a requirement that is not in the registry")
    getattr(pytest.mark, family)(value)(function)
    return True


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    persona = config.getoption("--margo-persona")
    features = set(config.getoption("--margo-feature"))
    names = set(config.getoption("--margo-scenario"))
    checker = config.getoption("--margo-checker")
    sut = config.stash[SUT_KEY]
    selected, deselected = [], []
    for item in items:
        values = {family: [m.args[0] for m in item.iter_markers(family)] for family in TAG_FAMILIES}
        missing = [family for family in TAG_FAMILIES if not values[family]]
        if missing:
            raise pytest.UsageError(
                f"{item.nodeid}: scenario lacks tag(s) {', '.join('@' + m + ':' for m in missing)}"
            )
        feature, name = _scenario_names(item)
        if (
            (persona and persona not in values["persona"])
            or (features and Path(feature).stem not in features)
            or (names and name not in names)
            or (not checker and item.get_closest_marker(CHECKER_TAG) is not None)
        ):
            deselected.append(item)
            continue
        profile = values["profile"][0]
        if profile not in sut.declares:
            item.add_marker(
                pytest.mark.skip(reason=f"not-applicable: profile {profile!r} is not declared by the SUT")
            )
        selected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    excinfo = call.excinfo
    if excinfo is not None and isinstance(excinfo.value, PRECONDITION_ERRORS):
        reason = excinfo.value.diagnostics() if isinstance(excinfo.value, MargoError) else str(excinfo.value)
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"blocked: {reason}")
    _record(item, call, report)
    return report


def _record(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    """Fold the phases of one scenario into a single verdict, kept on the item until teardown."""
    state = item.stash.setdefault(
        _STATE_KEY, {"verdict": Verdict.PASS, "message": "", "suite_error": False, "start": time.monotonic()}
    )
    if report.passed:
        return
    verdict, message, suite_error = _classify(call, report)
    if verdict.rank > state["verdict"].rank or state["verdict"] is Verdict.PASS:
        state.update(verdict=verdict, message=message, suite_error=suite_error)


_STATE_KEY = pytest.StashKey[dict[str, Any]]()


def _classify(call: pytest.CallInfo[None], report: pytest.TestReport) -> tuple[Verdict, str, bool]:
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        for verdict in (Verdict.NOT_APPLICABLE, Verdict.BLOCKED):
            if reason.startswith(verdict.value + ":"):
                return verdict, reason.split(":", 1)[1].strip(), False
        return Verdict.SKIPPED, reason, False
    error = call.excinfo.value if call.excinfo else None
    if isinstance(error, AssertionError) and report.when == "call":
        return Verdict.FAIL, _first_lines(str(error)), False
    return (
        Verdict.INCONCLUSIVE,
        _first_lines(f"{type(error).__name__}: {error}" if error else report.longreprtext),
        True,
    )


def _first_lines(text: str, count: int = 12) -> str:
    lines = text.strip().splitlines()
    return "\n".join(lines[:count]) + ("\n…" if len(lines) > count else "")


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    state = item.stash.get(_STATE_KEY, None)
    if state is None:
        return
    feature, name = _scenario_names(item)
    item.config.stash[RESULTS_KEY].scenarios.append(
        ScenarioResult(
            nodeid=item.nodeid,
            feature=feature,
            name=_display_name(item, name),
            verdict=state["verdict"],
            requirements=tuple(m.args[0] for m in item.iter_markers("req")),
            persona=_one(item, "persona"),
            level=_one(item, "level"),
            profile=_one(item, "profile"),
            duration_s=time.monotonic() - state["start"],
            message=state["message"],
            suite_error=state["suite_error"],
        )
    )


def _scenario_names(item: pytest.Item) -> tuple[str, str]:
    """Feature file and scenario name, known even for scenarios that never ran (not-applicable)."""
    function = getattr(item, "obj", None)
    template = scenario_wrapper_template_registry.get(function) if callable(function) else None
    if template is None:
        return str(item.path), item.name
    return template.feature.rel_filename, template.name


def _one(item: pytest.Item, family: str) -> str:
    return next((str(m.args[0]) for m in item.iter_markers(family)), "")


def _display_name(item: pytest.Item, name: str) -> str:
    """The scenario name, plus the example row for outlines (pytest's parameter id)."""
    callspec = getattr(item, "callspec", None)
    return f"{name} [{callspec.id}]" if callspec is not None else name


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = session.config.getoption("--margo-results")
    if target:
        results = session.config.stash[RESULTS_KEY]
        results.write(Path(target), Registry.load(results.pin), suite_root())


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    results = config.stash[RESULTS_KEY]
    if not results.scenarios:
        return
    counts = ", ".join(f"{n} {v}" for v, n in results.counts().items() if n)
    terminalreporter.write_sep("=", "Margo conformance verdicts")
    terminalreporter.write_line(
        f"{counts}; {'conformant' if results.conformant else 'NOT conformant'} (MUST scenarios)"
    )
    target = config.getoption("--margo-results")
    if target:
        terminalreporter.write_line(f"results: {target}")
