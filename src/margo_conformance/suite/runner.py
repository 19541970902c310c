"""Running the scenarios: one pytest process per run, its output kept beside the reports.

A separate process keeps runs independent (the self-test starts one per mutant) and lets a hung
subject be bounded by a timeout without taking the caller down.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from .._internal.processes import tied_to_parent
from ..errors import EnvironmentProblem, InternalError
from ..paths import suite_root

PYTEST_USAGE_ERRORS = {2: "interrupted", 4: "usage error", 5: "no scenario selected"}
PYTEST_INTERNAL_ERROR = 3

STOP_GRACE_S = 60.0  # for the run's own clean-up after SIGTERM


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    reports: Path
    pytest_exit: int
    conformant: bool

    @property
    def results(self) -> Path:
        return self.reports / "results.yaml"


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(2)


def run_suite(
    *,
    persona: str | None,
    sut: Path | None,
    reports_root: Path | None = None,
    run_id: str | None = None,
    pytest_args: tuple[str, ...] = (),
    faults_off: bool = False,
    echo: bool = True,
    timeout_s: float = 3600.0,
) -> RunOutcome:
    root = suite_root()
    run_id = run_id or new_run_id()
    reports = (reports_root or root / "reports") / run_id
    reports.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(root / "steps"),
        "-c",
        str(root / "pyproject.toml"),
        "--rootdir",
        str(root),
        "-p",
        "margo_conformance.suite.plugin",
        "--margo-junit",
        str(reports / "junit.xml"),  # rendered from the results: blocked/inconclusive are errors
        "--cucumber-json",
        str(reports / "cucumber.json"),
        "--margo-results",
        str(reports / "results.yaml"),
        "--margo-run-id",
        run_id,
        "-p",
        "no:randomly",
    ]
    if persona:
        command += ["--margo-persona", persona]
    if sut:
        command += ["--margo-sut", str(sut.resolve())]
    if faults_off:
        command.append("--margo-faults-off")
    command += list(pytest_args)
    exit_code = _run_logged(command, reports / "run.log", echo=echo, timeout_s=timeout_s, cwd=root)
    if exit_code == PYTEST_INTERNAL_ERROR or exit_code < 0:
        what = "internal error" if exit_code == PYTEST_INTERNAL_ERROR else f"killed by signal {-exit_code}"
        raise InternalError(
            f"the scenario run crashed ({what}): {_reason(reports / 'run.log')} "
            f"(full log: {reports / 'run.log'})"
        )
    if exit_code in PYTEST_USAGE_ERRORS:
        raise EnvironmentProblem(
            f"the scenario run stopped ({PYTEST_USAGE_ERRORS[exit_code]}): {_reason(reports / 'run.log')} "
            f"(full log: {reports / 'run.log'})"
        )
    return RunOutcome(
        run_id=run_id,
        reports=reports,
        pytest_exit=exit_code,
        conformant=_conformant(reports / "results.yaml"),
    )


def _run_logged(command: list[str], log: Path, *, echo: bool, timeout_s: float, cwd: Path) -> int:
    """Run, copying output line by line to the log (and the console when echoing), within a time bound."""
    deadline = time.monotonic() + timeout_s
    with (
        log.open("w", encoding="utf-8") as sink,
        subprocess.Popen(
            tied_to_parent(command),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        ) as process,
    ):
        assert process.stdout is not None
        try:
            for line in process.stdout:
                sink.write(line)
                if echo:
                    sys.stdout.write(line)
                    sys.stdout.flush()
                if time.monotonic() > deadline:
                    raise EnvironmentProblem(
                        f"the scenario run exceeded {timeout_s:.0f} s and was stopped; see {log}"
                    )
            return process.wait()
        except BaseException:  # a timeout, Ctrl-C or SIGTERM: the run stops, and cleans up after itself
            _stop(process)
            raise


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM first, so that pytest runs its teardown (containers, devices, registries), then SIGKILL."""
    process.terminate()
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _reason(log: Path) -> str:
    """The error pytest printed ('E   …' lines), else the last line of the log."""
    lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    return errors[-1] if errors else (lines[-1] if lines else "no output")


def _conformant(results: Path) -> bool:
    try:
        return bool(yaml.safe_load(results.read_text(encoding="utf-8"))["summary"]["conformant"])
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:  # no verdict was written: not a verdict
        raise InternalError(f"the scenario run wrote no readable {results}: {type(exc).__name__}") from None
