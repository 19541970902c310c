"""``margo-conformance selftest``: prove the scenarios against the reference subjects and their mutants."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..errors import UsageError
from ..registry import PROFILES
from ..suite import selftest as kill_matrix
from ..suite.selftest import MUTANTS, KillRow

SUPPORTED = tuple(MUTANTS)


def selftest(
    persona: Annotated[
        str | None, typer.Option(help=f"Persona to self-test: {', '.join(SUPPORTED)} (default: package)")
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(help="Only this profile's scenarios and mutants (e.g. signing), for every persona"),
    ] = None,
    reports_dir: Annotated[
        Path | None, typer.Option(help="Where the self-test's runs are written (default: ./reports)")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=8, help="Mutant runs in parallel")] = 2,
    variants: Annotated[
        str,
        typer.Option(
            help="each: one run per variant (which variant broke a scenario); together: one run with every "
            "variant switched on (faster)"
        ),
    ] = "each",
) -> None:
    """Run the kill matrix; exit 0 when every mutant is killed by exactly its expected scenarios."""
    if persona is not None and persona not in SUPPORTED:
        raise UsageError(f"--persona {persona!r}: the self-test covers {', '.join(SUPPORTED)} so far")
    if variants not in ("each", "together"):
        raise UsageError(f"--variants {variants!r}: expected each or together")
    if profile is not None and profile not in PROFILES:
        raise UsageError(f"--profile {profile!r}: expected one of {', '.join(PROFILES)}")
    personas = [persona] if persona else (list(SUPPORTED) if profile else ["package"])
    rows: list[KillRow] = []
    for name in personas:
        found = kill_matrix.selftest(
            name,
            reports_root=(reports_dir or Path("reports")).resolve(),
            workers=workers,
            progress=typer.echo,
            profile=profile,
            variants=variants,
        )
        render(found, f"{name} persona" + (f", {profile} profile" if profile else ""), Console())
        rows += found
    if not rows:
        raise UsageError(f"no scenario carries @profile:{profile}")
    raise typer.Exit(0 if all(r.ok for r in rows) else 1)


def render(rows: list[KillRow], persona: str, console: Console) -> None:
    table = Table(title=f"Kill matrix ({escape(persona)})")
    for column in ("Subject", "Kind", "Requirement", "Scenarios killed", "Result"):
        table.add_column(column, overflow="fold")
    for row in rows:
        result = (
            "[green]as expected[/]"
            if row.ok
            else Text("; ".join(f"{n}: {v}" for n, v in row.unexpected.items()), style="red")
        )
        table.add_row(
            escape(row.subject),
            escape(row.kind),
            escape(row.requirement),
            f"{len(row.failed)}/{len(row.expected)}",
            result,
        )
    console.print(table)
    bad = [r for r in rows if not r.ok]
    console.print(
        f"{len(rows) - len(bad)}/{len(rows)} rows as expected"
        + (escape(f"; kill matrix: {Path(rows[0].run).parent}/kill-matrix.yaml") if rows else "")
    )
