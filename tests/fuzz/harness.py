"""Running one hostile case: in-process (the project's tests) or in a forked child with time and memory
limits (``scripts/fuzz``); failing inputs are kept as regression fixtures under ``regressions/``.

A case is fine when the command ends with exit 0, 1 or 2 and no traceback: a verdict, or one line saying
what is wrong with the input. Exit 3 (the suite's own failure, caught), any other exit, a signal, running
past the time limit or needing more than the memory limit is a failure of the suite.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import resource
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from fuzz.generators import Case

REGRESSIONS = Path(__file__).resolve().parent / "regressions"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    what: str  # exit N | signal N | timeout | error signature
    seconds: float = 0.0
    peak_rss_mib: float = 0.0
    stderr: str = ""


def argv(case: Case, path: Path) -> list[str]:
    if case.kind == "sut":
        return ["sut", str(path)]
    return ["package", "check", str(path), *(["--json"] if case.as_json else [])]


def without_compose_binary() -> None:
    """``docker compose config`` costs ~0.2 s a case and is not the suite's parser: leave it out."""
    from margo_conformance.package import compose_archive

    compose_archive.__dict__["compose_binary"] = lambda: None


def judge_answer(raw: bytes) -> None:
    """Every WFM check that reads an answer, on one raw HTTP answer: each must end in a pass, a fail
    (AssertionError) or blocked (``MargoError``), never another exception."""
    from margo_conformance.checks import wfm as checks
    from margo_conformance.errors import MargoError
    from margo_conformance.wfm.client import Exchange

    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status_text = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else ""
    headers = tuple((n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines[1:]))
    exchange = Exchange(
        method="GET",
        path="/api/v1/clients/x/deployments",
        request_headers=(),
        request_body=b"",
        status=int(status_text) if status_text.isdigit() else None,
        headers=headers,
        body=body,
        refused=None if status_text.isdigit() else "no response",
        tls_version="TLSv1.3",
        peer_spiffe_id=None,
        elapsed_s=0.0,
    )
    digest = "sha256:" + "0" * 64
    judged = [
        lambda: checks.ensure_status(exchange, 200),
        lambda: checks.ensure_answered(exchange),
        lambda: checks.ensure_retry_semantics(exchange, checks.ensure_problem_shape(exchange)),
        lambda: checks.ensure_problem_lists_errors(exchange),
        lambda: checks.ensure_problem_media_type(exchange),
        lambda: checks.ensure_manifest(exchange),
        lambda: checks.ensure_strong_digest_etag(exchange),
        lambda: checks.ensure_private_not_immutable(exchange),
        lambda: checks.ensure_not_modified(exchange),
        lambda: checks.ensure_digest_resource(exchange, digest, "application/yaml"),
        lambda: checks.ensure_vary_when_encoded(exchange),
        exchange.transcript,
    ]
    for check in judged:
        with contextlib.suppress(AssertionError, MargoError):
            check()


def run_in_process(case: Case, folder: Path) -> Outcome:
    """The case through the library the CLI calls, rendering both outputs; any exception but a
    ``MargoError`` is a failure."""
    from rich.console import Console

    from margo_conformance.cli.package_cmd import render
    from margo_conformance.config import Sut
    from margo_conformance.errors import MargoError
    from margo_conformance.package.check import check_package

    path = case.write(folder)
    try:
        if case.kind == "sut":
            Sut.from_file(path, environ={})
            return Outcome(True, "exit 0")
        if case.kind == "http":
            judge_answer(path.read_bytes())
            return Outcome(True, "exit 0")
        report = check_package(str(path))
        json.dumps(report.as_dict())
        render(report, Console(file=io.StringIO(), width=200))
        return Outcome(True, "exit 0" if report.conformant else "exit 1")
    except MargoError:
        return Outcome(True, "exit 2")
    except Exception as exc:  # noqa: BLE001 - the point: anything else is a finding of the fuzzer
        frame = exc.__traceback__
        while frame is not None and frame.tb_next is not None:
            frame = frame.tb_next
        where = f"{Path(frame.tb_frame.f_code.co_filename).name}:{frame.tb_lineno}" if frame else "?"
        return Outcome(False, f"{type(exc).__name__} at {where}", stderr=str(exc)[:500])


def _child(case: Case, path: Path, memory_bytes: int, compose: bool) -> None:
    """In the forked child: limits, then the real CLI entry point (or the SUT loader the CLI uses)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    os.setpgid(0, 0)
    if not compose:
        without_compose_binary()
    if case.kind == "http":
        judge_answer(path.read_bytes())
        os._exit(0)
    if case.kind == "sut":
        from margo_conformance.config import Sut
        from margo_conformance.errors import MargoError

        try:
            Sut.from_file(path, environ={})
        except MargoError as exc:
            print(f"margo-conformance: error: {exc.diagnostics()[:300]}", file=sys.stderr)
            os._exit(2)
        os._exit(0)
    from margo_conformance.cli import main

    sys.argv = ["margo-conformance", *argv(case, path)]
    try:
        main()
    except SystemExit as stop:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(stop.code if isinstance(stop.code, int) else 1)
    os._exit(0)


def warm_up() -> None:
    """Import the CLI and load the pin's schemas and registry once, so each forked child starts warm."""
    from margo_conformance import cli  # noqa: F401 - imported for its side effect
    from margo_conformance.registry import Registry
    from margo_conformance.schemas import SchemaSet

    SchemaSet.load()
    Registry.load()


def run_in_child(
    case: Case, folder: Path, *, seconds: float, memory_mib: int, compose: bool = False
) -> Outcome:
    """The case in a forked child (own process group, RLIMIT_AS, killed after ``seconds``)."""
    path = case.write(folder)
    out, err = folder / "stdout", folder / "stderr"
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            with open(out, "wb") as out_file, open(err, "wb") as err_file:
                os.dup2(out_file.fileno(), 1)
                os.dup2(err_file.fileno(), 2)
            os.environ["TMPDIR"] = str(folder)
            tempfile.tempdir = str(folder)
            _child(case, path, memory_mib * 1024 * 1024, compose)
        except BaseException:  # noqa: BLE001 - an exception main() let through: show it, exit 70
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(70)
    status, usage = 0, None
    timed_out = False
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - started > seconds:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            break
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    peak = usage.ru_maxrss / 1024 if usage else 0.0
    stderr = err.read_text(encoding="utf-8", errors="replace") if err.exists() else ""
    if timed_out:
        return Outcome(False, "timeout", elapsed, peak, stderr[-2000:])
    if os.WIFSIGNALED(status):
        return Outcome(False, f"signal {os.WTERMSIG(status)}", elapsed, peak, stderr[-2000:])
    code = os.WEXITSTATUS(status)
    ok = code in (0, 1, 2) and "Traceback" not in stderr and "MemoryError" not in stderr
    return Outcome(ok, f"exit {code}", elapsed, peak, stderr[-2000:])


def keep(case: Case, outcome: Outcome) -> Path:
    """Save a failing input as a regression fixture (replayed by tests/test_hostile_fuzz.py)."""
    digest = hashlib.sha256(
        json.dumps(sorted((k, v.hex()) for k, v in case.files.items())).encode()
    ).hexdigest()
    folder = REGRESSIONS / f"{case.kind}-{digest[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in case.files.items():
        path = folder / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    meta = {"kind": case.kind, "target": case.target, "as_json": case.as_json, "found": asdict(outcome)}
    (folder / "case.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return folder


def load_regression(folder: Path) -> Case:
    meta = json.loads((folder / "case.json").read_text(encoding="utf-8"))
    files = {
        p.relative_to(folder / "files").as_posix(): p.read_bytes()
        for p in sorted((folder / "files").rglob("*"))
        if p.is_file()
    }
    return Case(meta["kind"], files, target=meta["target"], as_json=meta["as_json"])
