"""Nothing the suite starts outlives it: children tied to their parent, and a terminated run that
still stops its device and removes its containers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from margo_conformance._internal.images import docker_available
from margo_conformance._internal.processes import tied_to_parent
from margo_conformance._internal.runtime_docker import SUITE_LABEL, wait_until

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).parent / "margo-conformance"


SUITE_PROCESSES = "margo_conformance.cli reference device|docker-registry serve|suite.plugin"


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as ended)."""
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def _suite_processes() -> set[str]:
    found = subprocess.run(["pgrep", "-f", SUITE_PROCESSES], capture_output=True, text=True, check=False)
    return set(found.stdout.split())


def test_a_tied_child_ends_with_its_parent() -> None:
    child = tied_to_parent([sys.executable, "-c", "import time; time.sleep(120)"])
    script = (
        f"import subprocess, time; p = subprocess.Popen({child!r}); print(p.pid, flush=True); time.sleep(120)"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    # setpriv sets the death signal and then execs: once the child runs Python, it is set (a parent
    # that dies within the microseconds before that leaves its child untied; so does prctl itself)
    assert wait_until(lambda: Path(f"/proc/{pid}/comm").read_text().strip() != "setpriv", timeout=20)
    parent.kill()  # SIGKILL: no clean-up code runs in the parent
    parent.wait()
    assert wait_until(lambda: not _alive(pid), timeout=20), "the child outlived its parent"


@pytest.mark.skipif(not docker_available(), reason="no Docker daemon answers (scripts/setup starts one)")
def test_a_terminated_device_run_stops_its_device_and_removes_its_containers(tmp_path: Path) -> None:
    """Only this run's containers and processes count (other tests, e.g. the device kill matrix that
    scripts/test runs beside, make their own): the run's temporary folder is under ``tmp_path``, so its
    device state, Compose files and process command lines name it."""
    mine = str(tmp_path)

    def labelled() -> set[str]:
        found = subprocess.run(
            [
                "docker",
                "ps",
                "-a",
                "--filter",
                f"label={SUITE_LABEL}=1",
                "--format",
                '{{.ID}} {{.Label "com.docker.compose.project.config_files"}}',
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return {line.split()[0] for line in found.stdout.splitlines() if mine in line}

    def processes() -> set[str]:
        return {pid for pid in _suite_processes() if mine in _cmdline(pid)}

    (tmp_path / "tmp").mkdir()
    run = subprocess.Popen(
        [str(CLI), "run", "--persona", "device", "--reports-dir", str(tmp_path), "-k", "new_deployment"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env=os.environ | {"TMPDIR": str(tmp_path / "tmp")},
    )
    try:
        assert wait_until(labelled, timeout=120), "no workload ever started"
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=120)
    assert run.returncode != 0
    assert not labelled(), "the terminated run left containers behind"
    gone = wait_until(lambda: not processes(), timeout=30)
    assert gone, f"processes of the run are still alive: {processes()}"


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
