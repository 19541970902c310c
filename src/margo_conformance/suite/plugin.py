"""The pytest plugin that turns pytest-bdd scenarios into conformance verdicts.

- ``@req:ID`` / ``@persona:`` / ``@level:`` / ``@profile:`` tags become marks; an unknown requirement
  ID or a scenario missing a family stops collection with a clear message.
- Scenarios of other personas are deselected; scenarios of profiles the SUT does not declare are
  not-applicable. ``@checker`` scenarios judge the suite's own bundled fixtures, not the subject: they
  are the checker's proof (self-test, project tests) and run only with ``--margo-checker``.
- Each report is classified into a verdict (pass, fail, blocked, inconclusive …); the verdict travels
  as data on the item (never as a prefix of a skip reason), and results.yaml, junit.xml and the console
  summary are all rendered from one results dict at the end of the session.
- The console shows one line when a scenario starts (``START_LINE``, which the runner reads to say what a
  long wait waits for) and one with its verdict and time when it ends, instead of pytest's letters; a
  failed scenario prints what the subject did (requirement, expectation, exchange), not a traceback.
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
from .report_html import write_html
from .results import RunResults, ScenarioResult, summary_line, write_junit, write_results

SUT_KEY = pytest.StashKey[Sut]()
RESULTS_KEY = pytest.StashKey[RunResults]()
RENDERED_KEY = pytest.StashKey[dict[str, Any]]()  # results.yaml's data, once the session has finished
NOT_APPLICABLE_KEY = pytest.StashKey[str]()  # why a scenario does not apply (its profile is not declared)
PRECONDITION_ERRORS = (Blocked, EnvironmentProblem, InputError)
START_LINE = "... [{persona}] {name}"  # runner.STARTED parses it


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("margo", "Margo conformance")
    group.addoption("--margo-sut", default=None, help="SUT file (default: the built-in reference subjects)")
    group.addoption("--margo-persona", default=None, help="Run only scenarios of this persona")
    group.addoption("--margo-results", default=None, help="Write results.yaml here")
    group.addoption("--margo-junit", default=None, help="Write junit.xml here (rendered from the results)")
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
    _CONFIG[:] = [config]
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
            reason = f"profile {profile!r} is not declared by the SUT"
            item.stash[NOT_APPLICABLE_KEY] = reason
            item.add_marker(pytest.mark.skip(reason=f"not-applicable: {reason}"))
        else:
            _CONSOLE[("start", item.nodeid)] = START_LINE.format(persona=values["persona"][0], name=name)
        selected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    outcome = _classify(item, call, report) if not report.passed else None
    _record(item, outcome)
    if outcome is not None and outcome[0] is Verdict.FAIL and call.excinfo is not None:
        report.longrepr = _failure_text(item, call.excinfo.value)
    excinfo = call.excinfo
    if excinfo is not None and isinstance(excinfo.value, PRECONDITION_ERRORS):  # pytest shows it as a skip
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"blocked: {_reason(excinfo.value)}")
    return report


def _record(item: pytest.Item, outcome: tuple[Verdict, str, bool] | None) -> None:
    """Fold the phases of one scenario into a single verdict, kept on the item until teardown."""
    state = item.stash.setdefault(
        _STATE_KEY, {"verdict": Verdict.PASS, "message": "", "suite_error": False, "start": time.monotonic()}
    )
    if outcome is None:
        return
    verdict, message, suite_error = outcome
    if verdict.rank > state["verdict"].rank or state["verdict"] is Verdict.PASS:
        state.update(verdict=verdict, message=message, suite_error=suite_error)


_STATE_KEY = pytest.StashKey[dict[str, Any]]()


def _reason(error: BaseException) -> str:
    return error.diagnostics() if isinstance(error, MargoError) else str(error)


def _classify(
    item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport
) -> tuple[Verdict, str, bool]:
    """The verdict of one phase that did not pass: from what was raised, or the item's own note."""
    error = call.excinfo.value if call.excinfo else None
    if isinstance(error, PRECONDITION_ERRORS):
        return Verdict.BLOCKED, _reason(error), False
    if report.skipped:
        not_applicable = item.stash.get(NOT_APPLICABLE_KEY, None)
        if not_applicable is not None:
            return Verdict.NOT_APPLICABLE, not_applicable, False
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        return Verdict.SKIPPED, reason.removeprefix("Skipped: "), False
    if isinstance(error, AssertionError) and report.when == "call":
        return Verdict.FAIL, str(error), False  # whole: results.py shortens it and keeps it as evidence
    return (
        Verdict.INCONCLUSIVE,
        f"{type(error).__name__}: {error}" if error else report.longreprtext,
        True,
    )


def _failure_text(item: pytest.Item, error: BaseException) -> str:
    """What a vendor needs from a failed scenario: the requirements, what was expected and seen, and the
    exchange (a Violation's evidence); pytest's traceback would show only the suite's own code."""
    requirements = ", ".join(str(m.args[0]) for m in item.iter_markers("req"))
    feature, name = _scenario_names(item)
    return f"FAIL [{_one(item, 'persona')}] {name} ({feature}), requirements {requirements}\n{error}"


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str]:
    """pytest's counts, without its letters: the plugin writes a line per scenario instead."""
    if report.when in ("setup", "teardown"):
        return ("error" if report.failed else "skipped" if report.skipped else ""), "", ""
    return report.outcome, "", ""


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    """Written outside the scenario's output capture (a hook of the scenario itself would be captured)."""
    line = _CONSOLE.pop(("start", nodeid), None)
    if line is not None:
        _write_line(line)


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    line = _CONSOLE.pop(("verdict", nodeid), None)
    if line is not None:
        _write_line(line)


_CONSOLE: dict[tuple[str, str], str] = {}  # lines waiting for the terminal: ("start"|"verdict", nodeid)
_CONFIG: list[pytest.Config] = []  # the session's, for its terminal reporter (registered after ours)


def _write_line(line: str) -> None:
    for config in _CONFIG:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    state = item.stash.get(_STATE_KEY, None)
    if state is None:
        return
    feature, name = _scenario_names(item)
    result = ScenarioResult(
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
    item.config.stash[RESULTS_KEY].scenarios.append(result)
    _CONSOLE[("verdict", item.nodeid)] = verdict_line(result)


def verdict_line(result: ScenarioResult) -> str:
    """``PASS           [wfm] A client without a certificate is not served (0.4 s)``; why, if blocked."""
    line = f"{result.verdict.value.upper():<14} [{result.persona}] {result.name} ({result.duration_s:.1f} s)"
    if result.verdict in (Verdict.BLOCKED, Verdict.INCONCLUSIVE, Verdict.SKIPPED) and result.message:
        line += f"\n{'':<15}{result.message.splitlines()[0][:200]}"
    return line


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
    """Render the results once; results.yaml, junit.xml and the console summary all show this data."""
    config = session.config
    results = config.stash[RESULTS_KEY]
    data = results.as_dict(Registry.load(results.pin), suite_root())
    config.stash[RENDERED_KEY] = data
    target, junit = config.getoption("--margo-results"), config.getoption("--margo-junit")
    if target:
        write_results(data, Path(target))
        write_html(data, Path(target).with_name("report.html"))  # the person's reading, beside results.yaml
    if junit:
        write_junit(data, Path(junit))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    data = config.stash.get(RENDERED_KEY, None)
    if data is None or not data["scenarios"]:
        return
    terminalreporter.write_sep("=", "Margo conformance verdicts")
    terminalreporter.write_line(summary_line(data))
    for reason in data["summary"]["not_eligible_because"][:10]:
        terminalreporter.write_line(f"  not eligible: {reason}")
    for option, name in (("--margo-results", "results"), ("--margo-junit", "junit")):
        if config.getoption(option):
            terminalreporter.write_line(f"{name}: {config.getoption(option)}")
