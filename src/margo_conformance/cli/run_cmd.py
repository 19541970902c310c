"""``margo-conformance run``: run the scenarios against the subjects of a SUT file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from ..config import Sut
from ..errors import UsageError
from ..paths import suite_root
from ..registry import PERSONAS
from ..suite.evidence import lab_signer
from ..suite.runner import run_suite

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def personas_with_scenarios() -> list[str]:
    """The personas that have at least one feature file (a persona without any would select nothing)."""
    features = suite_root() / "features"
    return [p for p in PERSONAS if any((features / p).glob("*.feature"))]


def check_run_id(run_id: str | None) -> None:
    """A run id names a folder under the reports directory: a name, never a path."""
    if run_id is not None and not RUN_ID.fullmatch(run_id):
        raise UsageError(
            f"--run-id {run_id!r}: a name of letters, digits, '.', '_' or '-' (at most 128, not starting "
            "with '.' or '-'); use --reports-dir to choose where it is written"
        )


def run(
    persona: Annotated[str | None, typer.Option(help="Only this persona: package, wfm or device")] = None,
    sut: Annotated[
        Path | None, typer.Option(help="SUT file (default: the built-in reference subjects)")
    ] = None,
    reports_dir: Annotated[
        Path | None,
        typer.Option(help="Where <run-id>/ is written (default: ./reports, in the current directory)"),
    ] = None,
    run_id: Annotated[str | None, typer.Option(help="Run id (default: UTC time + random suffix)")] = None,
    select: Annotated[
        str | None, typer.Option("-k", help="Only scenarios whose names match this pytest -k expression")
    ] = None,
    sign_key: Annotated[
        Path | None, typer.Option(help="The lab's private key (PEM, EC or Ed25519) signing evidence.tar.gz")
    ] = None,
    sign_cert: Annotated[
        Path | None, typer.Option(help="The certificate of --sign-key, written beside the signature")
    ] = None,
) -> None:
    """Run the scenarios and write report.html, results.yaml, junit.xml, cucumber.json, run.log, and the
    signed evidence: evidence.tar.gz, evidence.tar.gz.sig and evidence.cert.pem (check it with `report
    verify`). Without --sign-key/--sign-cert the bundle is signed by a key generated for the run, never
    written anywhere.

    Exit 0 when every MUST scenario passed (or did not apply), 1 otherwise, 2 on a usage or environment error.
    """
    if persona is not None and persona not in PERSONAS:
        raise UsageError(f"--persona {persona!r}: expected one of {', '.join(PERSONAS)}")
    if persona is not None and persona not in (having := personas_with_scenarios()):
        raise UsageError(
            f"--persona {persona!r} has no scenarios yet; personas with scenarios: {', '.join(having)}"
        )
    check_run_id(run_id)
    if sut is not None and not sut.is_file():
        raise UsageError(f"--sut {sut}: no such file")
    if sut is not None:
        Sut.from_file(sut)  # a malformed SUT file is one error line here, not a pytest INTERNALERROR
    if (sign_key is None) != (sign_cert is None):
        raise UsageError("--sign-key and --sign-cert go together (the key signs, the certificate names it)")
    signer = lab_signer(sign_key, sign_cert) if sign_key and sign_cert else None
    outcome = run_suite(
        persona=persona,
        sut=sut,
        reports_root=reports_dir,
        run_id=run_id,
        pytest_args=("-k", select) if select else (),
        signer=signer,
    )
    typer.echo(f"evidence: {outcome.reports / 'evidence.tar.gz'}, {outcome.signer}")
    typer.echo(f"reports: {outcome.reports}")
    raise typer.Exit(0 if outcome.conformant else 1)
