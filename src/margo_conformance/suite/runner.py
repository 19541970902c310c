"""Running the scenarios: one pytest process per run, its output kept beside the reports.

A separate process keeps runs independent (the self-test starts one per mutant) and lets a hung
subject be bounded by a timeout without taking the caller down. Its output is streamed as it comes (not a
line, let alone a test file, at a time), and a silence longer than ``QUIET_NOTE_S`` gets a note saying
which scenario is waiting and for what, so a long wait never looks like a hang.
"""

from __future__ import annotations

import codecs
import os
import re
import secrets
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .._internal.processes import tied_to_parent
from ..errors import EnvironmentProblem, InternalError, UsageError
from ..paths import suite_root
from .evidence import Signer, generated_signer, write_evidence

PYTEST_USAGE_ERRORS = {2: "interrupted", 4: "usage error", 5: "no scenario selected"}
PYTEST_INTERNAL_ERROR = 3

STOP_GRACE_S = 60.0  # for the run's own clean-up after SIGTERM
QUIET_NOTE_S = 30.0  # a silence this long is explained on the console (and in run.log)
# What a scenario of each persona waits for when it is quiet: the subject, within the SUT's own bounds.
WAITS_FOR = {
    "package": "the OCI registry (push, pull) or Docker Compose validating a component",
    "wfm": "the WFM's answer (each request is bounded by wfm.timeout_s) or a provisioner command "
    "(wfm.provisioner.timeout_s)",
    "device": "the device's next poll or status report (device.poll_interval_s, device.status_timeout_s) "
    "or the container runtime",
}
STARTED = re.compile(r"^\.\.\. \[(?P<persona>[a-z]+)\] (?P<name>.+)$", re.MULTILINE)  # plugin.START_LINE


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    reports: Path
    pytest_exit: int
    conformant: bool
    signer: str = ""

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
    signer: Signer | None = None,
) -> RunOutcome:
    root = suite_root()
    run_id = run_id or new_run_id()
    reports = ((reports_root or Path("reports")) / run_id).resolve()  # relative to the caller's cwd
    try:
        reports.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--reports-dir: cannot create {reports}: {exc.strerror or exc}") from None
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
        "--tb=short",  # a failed scenario says what the subject did (the plugin's text), not pytest's
        "-q",  # the plugin writes a line per scenario; no file names, letters or percentages
        "-o",
        "console_output_style=classic",
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
    conformant = _conformant(reports / "results.yaml")
    signer = signer or generated_signer(run_id)
    write_evidence(reports, signer)  # after every report is written: the bundle holds them all
    return RunOutcome(
        run_id=run_id, reports=reports, pytest_exit=exit_code, conformant=conformant, signer=signer.note
    )


def _run_logged(command: list[str], log: Path, *, echo: bool, timeout_s: float, cwd: Path) -> int:
    """Run, copying output as it comes to the log (and the console when echoing), within a time bound."""
    deadline = time.monotonic() + timeout_s
    with (
        log.open("w", encoding="utf-8") as sink,
        subprocess.Popen(
            tied_to_parent(command),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        ) as process,
    ):
        assert process.stdout is not None
        stream = _Stream(sink, echo=echo)
        try:
            while _pump(process.stdout.fileno(), stream):
                if time.monotonic() > deadline:
                    raise EnvironmentProblem(
                        f"the scenario run exceeded {timeout_s:.0f} s and was stopped; see {log}"
                    )
            return process.wait()
        except BaseException:  # a timeout, Ctrl-C or SIGTERM: the run stops, and cleans up after itself
            _stop(process)
            raise


class _Stream:
    """The run's output on its way to run.log and the console, and what it says is running now."""

    def __init__(self, sink: Any, *, echo: bool) -> None:
        self.sink, self.echo = sink, echo
        self.quiet_since = time.monotonic()
        self.noted = 0.0
        self.running: tuple[str, str] | None = None
        self.tail = ""
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # chunks split characters

    def write(self, text: str) -> None:
        self.sink.write(text)
        self.sink.flush()
        if self.echo:
            sys.stdout.write(text)
            sys.stdout.flush()

    def received(self, text: str) -> None:
        self.write(text)
        self.tail = (self.tail + text)[-4096:]
        started = list(STARTED.finditer(self.tail))
        if started:
            self.running = (started[-1]["persona"], started[-1]["name"])
        self.quiet_since, self.noted = time.monotonic(), 0.0

    def quiet(self) -> None:
        """A note every QUIET_NOTE_S of silence: which scenario waits, for how long, and for what."""
        silent = time.monotonic() - self.quiet_since
        if silent - self.noted < QUIET_NOTE_S:
            return
        self.noted = silent
        if self.running is None:
            self.write(f"\n    ... still working ({silent:.0f} s without output): collecting or setting up\n")
            return
        persona, name = self.running
        self.write(
            f"\n    ... [{persona}] {name}: waiting {silent:.0f} s so far for "
            f"{WAITS_FOR.get(persona, 'the subject')}\n"
        )


def _pump(fd: int, stream: _Stream, *, poll_s: float = 1.0) -> bool:
    """Forward what the child wrote within ``poll_s``; False once its output has ended."""
    ready, _, _ = select.select([fd], [], [], poll_s)
    if not ready:
        stream.quiet()
        return True
    chunk = os.read(fd, 65536)
    if not chunk:
        return False
    stream.received(stream.decoder.decode(chunk))
    return True


def _stop(process: subprocess.Popen[bytes]) -> None:
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
