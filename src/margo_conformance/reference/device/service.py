"""The foreground entry point of the reference device, for the CLI.

Intended command (the CLI wiring comes with the device persona; ``cli/`` is not touched here)::

    margo-conformance reference device --wfm URL --cert FILE --key FILE --anchors FILE --state DIR
        [--device-id ID] [--capabilities FILE] [--poll-interval S] [--fault NAME]...
        [--trust-policy FILE --trust-store DIR]

``--cert`` is the SVID chain PEM (leaf + intermediates), ``--key`` its private key, ``--anchors`` the
trust bundle PEM; ``--state`` holds the durable state (manifestVersion, ETag, held deployments);
``--capabilities`` a JSON or YAML DeviceCapabilitiesManifest (default: the host's facts);
``--fault`` switches on one entry of ``faults.FAULTS`` (a mutant, for the self-test);
``--trust-policy`` (a Notary ``trustpolicy.json``) with ``--trust-store`` (its ``x509/ca/<name>/``
folder) make the Compose runtime verify each component's signature (SUP-03); without them nothing is
verified.
The process polls until SIGTERM or SIGINT and then stops cleanly (exit 0).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ...errors import UsageError
from ...pki import SvidFiles
from ...signing.package_check import Trust
from .agent import DeviceAgent, DeviceConfig
from .runtime import InMemoryRuntime, Runtime


@dataclass(frozen=True)
class DeviceArgs:
    """The command's options, as parsed."""

    wfm: str
    cert: Path
    key: Path
    anchors: Path
    state: Path
    device_id: str | None = None
    capabilities: Path | None = None
    poll_interval: float = 30.0
    faults: Sequence[str] = field(default_factory=tuple)
    trust_policy: Path | None = None
    trust_store: Path | None = None


def build_config(args: DeviceArgs) -> DeviceConfig:
    """Check the options and turn them into a DeviceConfig (UsageError on anything unusable)."""
    for option, path in (("--cert", args.cert), ("--key", args.key), ("--anchors", args.anchors)):
        if not path.is_file():
            raise UsageError(f"{option} {path}: no such file")
    if not args.poll_interval > 0:
        raise UsageError(f"--poll-interval must be positive, got {args.poll_interval}")
    _check_trust_options(args)
    return DeviceConfig(
        wfm_url=args.wfm,
        svid=SvidFiles(args.cert, args.key),
        anchors=args.anchors,
        state_dir=args.state,
        device_id=args.device_id,
        capabilities=_capabilities(args.capabilities) if args.capabilities else None,
        poll_interval_s=args.poll_interval,
        faults=tuple(args.faults),
        trust_policy=args.trust_policy,
        trust_store=args.trust_store,
    )


def _check_trust_options(args: DeviceArgs) -> None:
    if (args.trust_policy is None) != (args.trust_store is None):
        given, missing = ("--trust-policy", "--trust-store")
        if args.trust_policy is None:
            given, missing = missing, given
        raise UsageError(
            f"{given} needs {missing}: give both (signatures verified) or neither (none verified)"
        )
    if args.trust_policy is not None and not args.trust_policy.is_file():
        raise UsageError(f"--trust-policy {args.trust_policy}: no such file")
    if args.trust_store is not None and not args.trust_store.is_dir():
        raise UsageError(f"--trust-store {args.trust_store}: no such directory")


def load_trust(args: DeviceArgs) -> Trust | None:
    """The trust policy and store the options name, checked against each other; None without them."""
    _check_trust_options(args)
    if args.trust_policy is None or args.trust_store is None:
        return None
    return Trust.load(args.trust_policy, args.trust_store)


def run_device(
    args: DeviceArgs, *, runtime: Runtime | None = None, stop_event: threading.Event | None = None
) -> int:
    """Run the agent in the foreground until SIGTERM/SIGINT (or ``stop_event``); returns the exit code.

    Without a runtime the agent uses the in-memory one: it speaks the whole protocol, but nothing
    runs on the host (the Docker Compose runtime is wired in by the device persona)."""
    config = build_config(args)
    agent = DeviceAgent(config, runtime=runtime if runtime is not None else InMemoryRuntime())
    stop = stop_event or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    agent.run(stop)
    return 0


def _capabilities(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"--capabilities {path}: cannot read ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("properties"), dict):
        raise UsageError(f"--capabilities {path}: not a DeviceCapabilitiesManifest (no properties object)")
    return document
