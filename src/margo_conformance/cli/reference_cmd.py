"""``margo-conformance reference …``: run the reference implementations (DESIGN.md §3)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from ..reference.device.faults import FAULTS as DEVICE_FAULTS
from ..reference.device.faults import FaultSet as DeviceFaultSet
from ..reference.device.runtime_compose import ComposeRuntime
from ..reference.device.service import DeviceArgs, load_trust, run_device
from ..reference.wfm import FAULTS, WfmConfig, parse_address, run_wfm
from ..reference.wfm.faults import FaultSet

app = typer.Typer(help="Reference implementations of the Margo roles.", no_args_is_help=True)


@app.command("wfm")
def wfm(
    pki: Annotated[Path, typer.Option("--pki", help="PKI directory from `margo-conformance pki init`")],
    state: Annotated[Path, typer.Option("--state", help="State directory (SQLite; kept across restarts)")],
    listen: Annotated[str, typer.Option(help="Management Interface (mTLS) HOST:PORT")] = "127.0.0.1:0",
    mis_listen: Annotated[str, typer.Option(help="MIS trust endpoints (TLS) HOST:PORT")] = "127.0.0.1:0",
    admin_listen: Annotated[str, typer.Option(help="Admin interface (plain HTTP, loopback) HOST:PORT")] = (
        "127.0.0.1:0"
    ),
    tls12: Annotated[bool, typer.Option("--tls12", help="Allow TLS 1.2 as a fallback (TLS-004)")] = False,
    fault: Annotated[
        list[str] | None,
        typer.Option("--fault", help=f"Switch on a fault (repeatable); one of: {', '.join(sorted(FAULTS))}"),
    ] = None,
    ready_file: Annotated[
        Path | None, typer.Option("--ready-file", help="Write the listening URLs here as JSON once ready")
    ] = None,
    trust_policy: Annotated[
        Path | None,
        typer.Option(
            "--trust-policy",
            help="Notary trustpolicy.json: packages deployed from a registry are verified under it "
            "(SUP-03; without it nothing is verified); needs --trust-store",
        ),
    ] = None,
    trust_store: Annotated[
        Path | None,
        typer.Option(
            "--trust-store", help="Notary trust store directory (x509/ca/<name>/*.pem) of the policy"
        ),
    ] = None,
) -> None:
    """Run the reference WFM in the foreground until SIGTERM/SIGINT; prints its URLs as one JSON line."""
    faults = tuple(fault or ())
    FaultSet(faults)  # an unknown name is a usage error listing the known ones
    config = WfmConfig(
        pki_dir=pki,
        state_dir=state,
        listen=parse_address(listen, option="--listen"),
        mis_listen=parse_address(mis_listen, option="--mis-listen"),
        admin_listen=parse_address(admin_listen, option="--admin-listen"),
        tls12=tls12,
        faults=faults,
        trust_policy=trust_policy,
        trust_store=trust_store,
    )
    run_wfm(config, ready_file=ready_file, announce=typer.echo)


@app.command("device")
def device(
    wfm: Annotated[str, typer.Option("--wfm", help="The WFM's Management Interface URL (routing only)")],
    cert: Annotated[Path, typer.Option("--cert", help="The client's SVID chain PEM (leaf + intermediates)")],
    key: Annotated[Path, typer.Option("--key", help="The client's private key PEM")],
    anchors: Annotated[Path, typer.Option("--anchors", help="The trust bundle PEM (anchors only)")],
    state: Annotated[Path, typer.Option("--state", help="Durable state directory (rollback protection)")],
    device_id: Annotated[
        str | None, typer.Option(help="The deviceId to report (default: the hostname)")
    ] = None,
    capabilities: Annotated[
        Path | None, typer.Option(help="A DeviceCapabilitiesManifest (JSON/YAML); default: this host's facts")
    ] = None,
    poll_interval: Annotated[float, typer.Option(help="Seconds between desired-state polls")] = 30.0,
    runtime: Annotated[
        str,
        typer.Option(help="compose: run workloads with Docker Compose v2; memory: hold them in memory only"),
    ] = "compose",
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault", help=f"Switch on a fault (repeatable); one of: {', '.join(sorted(DEVICE_FAULTS))}"
        ),
    ] = None,
    trust_policy: Annotated[
        Path | None,
        typer.Option(
            "--trust-policy",
            help="Notary trust policy (trustpolicy.json): verify each component's signature under it "
            "(SUP-03); needs --trust-store",
        ),
    ] = None,
    trust_store: Annotated[
        Path | None,
        typer.Option("--trust-store", help="Notary trust store directory (x509/ca/<name>/*.pem)"),
    ] = None,
) -> None:
    """Run the reference device agent in the foreground until SIGTERM/SIGINT."""
    if runtime not in ("compose", "memory"):
        raise UsageError(f"--runtime {runtime!r}: expected compose or memory")
    faults = tuple(fault or ())
    DeviceFaultSet(faults)  # an unknown name is a usage error listing the known ones
    args = DeviceArgs(
        wfm=wfm,
        cert=cert,
        key=key,
        anchors=anchors,
        state=state,
        device_id=device_id,
        capabilities=capabilities,
        poll_interval=poll_interval,
        faults=faults,
        trust_policy=trust_policy,
        trust_store=trust_store,
    )
    trust = load_trust(args)
    if trust is not None and runtime != "compose":
        raise UsageError("--trust-policy: signatures are verified by the compose runtime (--runtime compose)")
    workloads = (
        ComposeRuntime(state / "runtime", faults=DeviceFaultSet(faults), trust=trust)
        if runtime == "compose"
        else None
    )
    raise typer.Exit(run_device(args, runtime=workloads))
