"""Launchers: how the suite starts (and stops) a device's WFM client against its instrument WFM.

* ``reference`` — the suite's own reference device agent (``margo-conformance reference device``) as a
  child process, with the device faults of a self-test mutant switched on;
* ``command`` — a vendor's agent, from the ``start`` (and optional ``stop``) command templates of the
  SUT file;
* ``manual`` — the operator starts the device; the suite prints what to run and waits for it.

Every launcher gets the same facts (``LaunchFacts``), which the command templates name as
``{wfm_url} {client_cert} {client_key} {trust_anchors} {state_dir} {device_id} {poll_interval_s}``,
and, for the signing profile's scenarios only, ``{trust_policy}`` (a Notary ``trustpolicy.json``) and
``{trust_store}`` (its trust store folder). A template word whose optional placeholder has no value in
a scenario is left out, so write such an option as one word: ``--trust-policy={trust_policy}``.
Processes run in their own session, so that stopping one stops everything it started; output goes to
``device.log`` in the scenario's folder (it holds no key material: keys are passed as file paths).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import string
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .._internal.processes import tied_to_parent
from ..errors import Blocked, UsageError

STOP_GRACE_S = 10.0  # SIGTERM, then SIGKILL
STOP_COMMAND_TIMEOUT_S = 30.0
LOG_TAIL = 1500
OPTIONAL_PLACEHOLDERS = ("trust_policy", "trust_store")


@dataclass(frozen=True)
class LaunchFacts:
    """Everything a device needs to talk to the instrument WFM (no secrets: paths only)."""

    wfm_url: str
    client_cert: Path
    client_key: Path
    trust_anchors: Path
    state_dir: Path
    device_id: str
    poll_interval_s: float
    capabilities: Path | None = None  # the reference device reports this document
    trust_policy: Path | None = None  # signing profile: the Notary trust policy the device verifies with
    trust_store: Path | None = None  # and its trust store (both or neither)

    def template_values(self) -> dict[str, str]:
        """Every placeholder's value; an optional one without a value is ''."""
        return {
            "wfm_url": self.wfm_url,
            "client_cert": str(self.client_cert),
            "client_key": str(self.client_key),
            "trust_anchors": str(self.trust_anchors),
            "state_dir": str(self.state_dir),
            "device_id": self.device_id,
            "poll_interval_s": f"{self.poll_interval_s:g}",
            "trust_policy": str(self.trust_policy or ""),
            "trust_store": str(self.trust_store or ""),
        }


class DeviceDied(AssertionError):
    """The device's process ended while the suite waited for it to do something."""


class Launcher(Protocol):
    def start(self, facts: LaunchFacts) -> None: ...
    def stop(self) -> None: ...
    def check_alive(self) -> None: ...
    def log_tail(self) -> str: ...


class ProcessLauncher:
    """A device agent that runs as a child process of the suite (reference and command launchers)."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None
        self._facts: LaunchFacts | None = None

    def argv(self, facts: LaunchFacts) -> Sequence[str]:
        raise NotImplementedError

    def start(self, facts: LaunchFacts) -> None:
        argv = list(self.argv(facts))
        if not argv or shutil.which(argv[0]) is None:
            raise Blocked(f"the device could not be started: no program {argv[0] if argv else ''!r}")
        facts.state_dir.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            try:
                self._process = subprocess.Popen(  # noqa: S603 - the operator's own command
                    tied_to_parent(argv),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as exc:
                raise Blocked(f"the device could not be started ({argv[0]}): {exc.strerror or exc}") from None
        self._facts = facts

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=STOP_GRACE_S)

    def check_alive(self) -> None:
        process = self._process
        if process is not None and process.poll() is not None:
            raise DeviceDied(
                f"the device's process exited with status {process.returncode}; "
                f"the end of its log ({self.log}):\n{self.log_tail()}"
            )

    def log_tail(self) -> str:
        try:
            data = self.log.read_bytes()[-LOG_TAIL:]
        except OSError:
            return "(no log)"
        return data.decode("utf-8", errors="replace")


class ReferenceLauncher(ProcessLauncher):
    """The suite's reference device with the Docker Compose runtime; ``faults`` make it a mutant."""

    def __init__(self, log: Path, *, faults: Sequence[str] = ()) -> None:
        super().__init__(log)
        self.faults = tuple(faults)

    def argv(self, facts: LaunchFacts) -> Sequence[str]:
        argv = [
            *(sys.executable, "-m", "margo_conformance.cli", "reference", "device"),
            *("--wfm", facts.wfm_url, "--cert", str(facts.client_cert), "--key", str(facts.client_key)),
            *("--anchors", str(facts.trust_anchors), "--state", str(facts.state_dir)),
            *("--device-id", facts.device_id, "--poll-interval", f"{facts.poll_interval_s:g}"),
            *("--runtime", "compose"),
        ]
        if facts.capabilities is not None:
            argv += ["--capabilities", str(facts.capabilities)]
        if facts.trust_policy is not None and facts.trust_store is not None:
            argv += ["--trust-policy", str(facts.trust_policy), "--trust-store", str(facts.trust_store)]
        for fault in self.faults:
            argv += ["--fault", fault]
        return argv


class CommandLauncher(ProcessLauncher):
    """A vendor's agent: ``start`` runs in the foreground of its own session until stopped; ``stop``
    (optional) is run first when the suite stops the device, then the session is signalled."""

    def __init__(self, log: Path, *, start: str, stop: str | None = None) -> None:
        super().__init__(log)
        self.start_template, self.stop_template = start, stop

    def argv(self, facts: LaunchFacts) -> Sequence[str]:
        return _render(self.start_template, facts, "device.launcher.start")

    def stop(self) -> None:
        if self.stop_template and self._facts is not None and self._process is not None:
            argv = _render(self.stop_template, self._facts, "device.launcher.stop")
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):  # the session is signalled below
                subprocess.run(  # noqa: S603 - the operator's own command
                    argv, capture_output=True, timeout=STOP_COMMAND_TIMEOUT_S, check=False
                )
        super().stop()


class ManualLauncher:
    """The operator starts and stops the device; the suite says what to run and records it."""

    def __init__(self, log: Path, *, say: Any = print) -> None:
        self.log, self.say = log, say

    def start(self, facts: LaunchFacts) -> None:
        lines = [
            "Start the device's WFM client now with these settings (files stay valid for this scenario):",
            *(f"  {key}: {value}" for key, value in facts.template_values().items() if value),
        ]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.say("\n".join(lines))

    def stop(self) -> None:
        self.say("Stop the device's WFM client now (this scenario is over).")

    def check_alive(self) -> None:
        return None

    def log_tail(self) -> str:
        return "(manual launcher: the device's log is the operator's)"


def make_launcher(config: Mapping[str, Any], log: Path, *, faults: Sequence[str] = ()) -> Launcher:
    kind = config.get("type", "reference")
    if kind == "reference":
        return ReferenceLauncher(log, faults=faults)
    if faults:
        raise UsageError("device faults (a self-test mutant) need the reference launcher")
    if kind == "command":
        return CommandLauncher(log, start=str(config["start"]), stop=config.get("stop"))
    if kind == "manual":
        return ManualLauncher(log)
    raise UsageError(f"device.launcher.type {kind!r}: expected reference, command or manual")


class _Environment:
    """``{env:NAME}`` in a template: the suite's environment variable NAME, read at launch time, so
    a secret the agent needs never has to be written into the SUT file (which reports embed)."""

    def __format__(self, name: str) -> str:
        if name not in os.environ:
            raise KeyError(f"env:{name} (the environment variable {name} is not set)")
        return os.environ[name]


def _render(template: str, facts: LaunchFacts, where: str) -> list[str]:
    """Split the template like a shell would, then fill each word (values never re-split); a word
    naming an optional placeholder without a value is left out."""
    values = facts.template_values()
    try:
        words = shlex.split(template)
        return [
            word.format(**values, env=_Environment()) for word in words if not _unset_optional(word, values)
        ]
    except (ValueError, KeyError, IndexError) as exc:
        known = ", ".join("{" + k + "}" for k in [*facts.template_values(), "env:NAME"])
        raise UsageError(
            f"{where}: cannot use the template {template!r} ({exc}); placeholders: {known}"
        ) from None


def _unset_optional(word: str, values: Mapping[str, str]) -> bool:
    named = {field for _, field, _, _ in string.Formatter().parse(word) if field}
    return any(name in OPTIONAL_PLACEHOLDERS and not values.get(name) for name in named)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
