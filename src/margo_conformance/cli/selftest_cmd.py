"""``margo-conformance selftest``: prove the scenarios against the reference subjects and their mutants."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..errors import UsageError
from ..paths import suite_root
from ..suite import selftest as kill_matrix
from ..suite.selftest import MUTANTS, KillRow

SUPPORTED = tuple(MUTANTS)


def selftest(
    persona: Annotated[str, typer.Option(help=f"Persona to self-test: {', '.join(SUPPORTED)}")] = "package",
    reports_dir: Annotated[
        Path | None, typer.Option(help="Where the self-test's runs are written (default: ./reports)")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=8, help="Mutant runs in parallel")] = 2,
) -> None:
    """Run the kill matrix; exit 0 when every mutant is killed by exactly its expected scenarios."""
    if persona not in SUPPORTED:
        raise UsageError(f"--persona {persona!r}: the self-test covers {', '.join(SUPPORTED)} so far")
    rows = kill_matrix.selftest(
        persona, reports_root=reports_dir or suite_root() / "reports", workers=workers, progress=typer.echo
    )
    render(rows, persona, Console())
    raise typer.Exit(0 if all(r.ok for r in rows) else 1)


def render(rows: list[KillRow], persona: str, console: Console) -> None:
    table = Table(title=f"Kill matrix ({persona} persona)")
    for column in ("Subject", "Requirement", "Scenarios killed", "Result"):
        table.add_column(column, overflow="fold")
    for row in rows:
        result = (
            "[green]as expected[/]"
            if row.ok
            else "[red]" + "; ".join(f"{n}: {v}" for n, v in row.unexpected.items()) + "[/]"
        )
        table.add_row(row.subject, row.requirement, f"{len(row.failed)}/{len(row.expected)}", result)
    console.print(table)
    bad = [r for r in rows if not r.ok]
    console.print(
        f"{len(rows) - len(bad)}/{len(rows)} rows as expected"
        + (f"; kill matrix: {Path(rows[0].run).parent}/kill-matrix.yaml" if rows else "")
    )
