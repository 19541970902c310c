"""``margo-conformance pki …``: the suite as operator of the trust domain under test (DESIGN §2).

Prints paths and SPIFFE IDs only; key material never reaches the terminal.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from ..pki import Flaw, Pki, SvidError

app = typer.Typer(
    help="The trust domain under test: CA, WFM SVID, trust bundle, client SVIDs.", no_args_is_help=True
)


@app.command("init")
def init(
    trust_domain: Annotated[str, typer.Option("--trust-domain", help="Trust domain, e.g. factory.example")],
    wfm_id: Annotated[str, typer.Option("--wfm-id", help="The WFM's wfm-id (WIP-002)")],
    out: Annotated[Path, typer.Option("--out", help="Empty (or new) directory for the PKI")],
    validity_days: Annotated[int, typer.Option("--validity-days", help="Days the WFM SVID is valid")] = 30,
) -> None:
    """Create a root CA, an intermediate, the WFM's SVID and the trust bundle."""
    pki = Pki.init(out, trust_domain=trust_domain, wfm_id=wfm_id, validity_days=validity_days)
    directory = pki.directory
    typer.echo(f"trust domain  {pki.trust_domain}")
    typer.echo(f"WFM SPIFFE ID {pki.wfm_spiffe_id}")
    typer.echo(f"PKI           {directory}")
    typer.echo(f"to the WFM:   {directory / 'wfm.crt'} {directory / 'wfm.key'} {pki.bundle_pem}")
    typer.echo(f"to devices:   {pki.bundle_pem} (+ a client SVID: margo-conformance pki client)")
    typer.echo(f"bundle API:   {pki.bundle_json}")
    typer.echo(f"keep secret:  {directory}/*.key (mode 0600)")


@app.command("client")
def client(
    pki_dir: Annotated[Path, typer.Option("--pki", help="Directory made by `pki init`")],
    client_id: Annotated[str, typer.Option("--client-id", help="The wfm-client-id (WIP-002)")],
    out: Annotated[Path, typer.Option("--out", help="Directory for <client-id>.crt/.key and bundle.pem")],
    flaw: Annotated[
        str | None, typer.Option("--flaw", help=f"Mint a deliberately bad SVID: {', '.join(Flaw)}")
    ] = None,
    validity_days: Annotated[int, typer.Option("--validity-days", help="Days the SVID is valid")] = 30,
) -> None:
    """Mint a WFM-client SVID for a vendor's device."""
    pki = Pki.load(pki_dir)
    if out.resolve() == pki.directory.resolve():
        raise UsageError("--out must not be the PKI directory (a client SVID could overwrite its files)")
    try:
        svid = pki.mint_client(client_id, flaw=_flaw(flaw), validity_days=validity_days)
    except SvidError as exc:
        raise UsageError(f"--client-id: {exc}") from None
    files = svid.write(out, client_id)
    anchors = out / "bundle.pem"
    shutil.copyfile(pki.bundle_pem, anchors)
    typer.echo(f"client SPIFFE ID {svid.spiffe_id}" + (f"  (flaw: {flaw})" if flaw else ""))
    typer.echo(f"certificate      {files.certificate}")
    typer.echo(f"key              {files.key} (mode 0600)")
    typer.echo(f"trust anchors    {anchors}")
    typer.echo(f"expects the WFM  {pki.wfm_spiffe_id}")


def _flaw(name: str | None) -> Flaw | None:
    if name is None:
        return None
    try:
        return Flaw(name)
    except ValueError:
        raise UsageError(f"unknown flaw {name!r}; choose one of: {', '.join(Flaw)}") from None
