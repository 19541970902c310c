"""``margo-conformance package …``: check an application package."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..package.check import PackageReport, check_package

app = typer.Typer(help="Application packages: check them against the pin.", no_args_is_help=True)

EXIT_CONFORMANT, EXIT_NON_CONFORMANT = 0, 1


@app.command("check")
def check(
    target: Annotated[str, typer.Argument(help="Package directory, .tar.gz archive, or oci://HOST/REPO:TAG")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each registry request")] = 10.0,
) -> None:
    """Check a package: exit 0 conformant, 1 non-conformant, 2 usage or I/O error."""
    report = check_package(target, timeout=timeout)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        render(report, Console())
    raise typer.Exit(EXIT_CONFORMANT if report.conformant else EXIT_NON_CONFORMANT)


def render(report: PackageReport, console: Console) -> None:
    """A table of findings, worst first, then notes and the verdict line."""
    if report.findings:
        table = Table(title=f"Findings for {report.origin}", show_lines=False)
        for column in ("Level", "Requirement", "Location", "Finding"):
            table.add_column(column, overflow="fold")
        for finding in sorted(report.findings, key=lambda f: (not f.level.breaks_conformance, f.requirement)):
            style = "red" if finding.level.breaks_conformance else "yellow"
            table.add_row(
                f"[{style}]{finding.level.value}[/]", finding.requirement, finding.location, finding.message
            )
        console.print(table)
    for note in report.notes:
        console.print(f"[dim]note: {note}[/]")
    must = sum(1 for f in report.findings if f.level.breaks_conformance)
    weaker = len(report.findings) - must
    checked = len(report.verdicts())
    if report.conformant:
        console.print(
            f"[green]conformant[/]: {report.origin} ({checked} requirements checked, {weaker} warnings)"
        )
    else:
        console.print(
            f"[red]non-conformant[/]: {report.origin} "
            f"({must} MUST findings, {weaker} warnings, {checked} requirements checked)"
        )
