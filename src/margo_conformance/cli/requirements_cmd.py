"""``margo-conformance requirements``: list the registry, filtered, or what no scenario covers."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .. import DEFAULT_PIN
from ..errors import UsageError
from ..findings import Level
from ..paths import suite_root
from ..registry import PERSONAS, PROFILES, Registry, Requirement
from ..suite.catalogue import covered_pairs


def requirements(
    persona: Annotated[str | None, typer.Option(help=f"One of {', '.join(PERSONAS)}")] = None,
    level: Annotated[str | None, typer.Option(help="MUST, SHOULD or MAY")] = None,
    profile: Annotated[str | None, typer.Option(help=f"One of {', '.join(PROFILES)}")] = None,
    uncovered: Annotated[
        bool, typer.Option("--uncovered", help="Only testable MUST requirements no scenario tags")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    pin: Annotated[str, typer.Option(help="Specification pin")] = DEFAULT_PIN,
) -> None:
    """List the requirements of the pin (exit 1 with --uncovered when any are uncovered)."""
    if persona is not None and persona not in PERSONAS:
        raise UsageError(f"--persona {persona!r}: expected one of {', '.join(PERSONAS)}")
    if profile is not None and profile not in PROFILES:
        raise UsageError(f"--profile {profile!r}: expected one of {', '.join(PROFILES)}")
    try:
        wanted_level = Level(level.upper()) if level else None
    except ValueError:
        raise UsageError(f"--level {level!r}: expected MUST, SHOULD or MAY") from None
    registry = Registry.load(pin)
    if uncovered:
        if wanted_level not in (None, Level.MUST):
            raise UsageError("--uncovered lists MUST requirements; drop --level or use --level MUST")
        selected = registry.uncovered(
            covered_pairs(suite_root() / "features"), persona=persona, profile=profile
        )
    else:
        selected = registry.select(persona=persona, level=wanted_level, profile=profile)
    if as_json:
        typer.echo(json.dumps([_as_dict(r) for r in selected], indent=2))
    else:
        _render(selected, Console(width=None if sys.stdout.isatty() else 160), uncovered)
    if uncovered and any(not r.deferred for r in selected):
        raise typer.Exit(1)  # an uncovered MUST with no recorded reason is a gap


def _as_dict(r: Requirement) -> dict[str, object]:
    return {
        "id": r.id,
        "persona": list(r.personas),
        "level": r.level.value,
        "profile": r.profile,
        "summary": r.summary,
        "source": r.source.cite(),
        "testable": r.testable,
        "why": r.why or None,
        "deferred": r.deferred or None,
    }


def _render(selected: list[Requirement], console: Console, uncovered: bool) -> None:
    if not selected:
        console.print("no uncovered requirements" if uncovered else "no requirements match")
        return
    explained = sum(1 for r in selected if r.deferred)
    title = f"Uncovered MUST requirements ({explained} of {len(selected)} with a recorded reason)"
    table = Table(title=title if uncovered else f"{len(selected)} requirements")
    for column in ("ID", "Level", "Persona", "Profile", "Summary", "Source"):
        table.add_column(column, overflow="fold")
    for r in selected:
        summary = (
            escape(r.summary)
            if r.testable
            else f"{escape(r.summary)} [dim](not testable: {escape(r.why)})[/]"
        )
        if r.deferred:
            summary += f" [yellow](no scenario yet: {escape(r.deferred)})[/]"
        table.add_row(
            escape(r.id),
            r.level.value,
            ",".join(r.personas),
            escape(r.profile),
            summary,
            escape(r.source.cite()),
        )
    console.print(table)
