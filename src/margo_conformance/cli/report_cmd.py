"""``margo-conformance report``: check a run's signed evidence offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..suite.evidence import BUNDLE, SIGNATURE, verify

app = typer.Typer(help="Work with a run's report folder (reports/<run-id>/).", no_args_is_help=True)


@app.command("verify")
def verify_cmd(
    folder: Annotated[Path, typer.Argument(help="A run's report folder, reports/<run-id>/")],
) -> None:
    """Check a report folder offline: the signature of evidence.tar.gz, every file's SHA-256 against the
    signed manifest, and that junit.xml and report.html agree with results.yaml.

    Exit 0 verified, 1 verification failed (each problem names its file), 2 not a report folder.
    """
    problems = verify(folder)  # NotAReport is a UsageError: one line, exit 2
    if problems:
        for problem in problems:
            typer.echo(f"FAILED {problem}")
        typer.echo(f"{folder}: verification FAILED ({len(problems)} problem(s))")
        raise typer.Exit(1)
    typer.echo(f"{folder}: verified ({BUNDLE} matches {SIGNATURE}; every file matches the signed manifest)")
