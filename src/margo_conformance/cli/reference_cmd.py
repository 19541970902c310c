"""``margo-conformance reference …``: run the reference implementations (DESIGN.md §3)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
    )
    run_wfm(config, ready_file=ready_file, announce=typer.echo)
