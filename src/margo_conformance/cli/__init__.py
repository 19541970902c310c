"""The ``margo-conformance`` command line. Only the CLI and the config loader read the environment."""

from __future__ import annotations

import sys

import typer

from .._internal.processes import interrupt_on_sigterm
from ..errors import MargoError
from . import package_cmd, pki_cmd, reference_cmd, requirements_cmd, run_cmd, selftest_cmd

app = typer.Typer(
    name="margo-conformance",
    help="Conformance test suite for Margo 1.0.0-rc.3 (packages, WFMs, devices).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(package_cmd.app, name="package")
app.add_typer(pki_cmd.app, name="pki")
app.add_typer(reference_cmd.app, name="reference")
app.command("requirements")(requirements_cmd.requirements)
app.command("run")(run_cmd.run)
app.command("selftest")(selftest_cmd.selftest)

EXIT_USAGE_OR_IO = 2


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        from .. import DEFAULT_PIN

        typer.echo(f"margo-conformance {version('margo-conformance')} (pin {DEFAULT_PIN})")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="Print the suite's version and pin, then exit",
    ),
) -> None:
    """Conformance test suite for Margo 1.0.0-rc.3 (packages, WFMs, devices)."""


def main() -> None:
    """Entry point: environment and input problems become one clear line and exit code 2."""
    interrupt_on_sigterm()  # a terminated run cleans up like an interrupted one
    try:
        app()
    except MargoError as exc:
        typer.echo(f"margo-conformance: error: {exc.diagnostics()}", err=True)
        sys.exit(EXIT_USAGE_OR_IO)
    except KeyboardInterrupt:
        typer.echo("margo-conformance: interrupted", err=True)
        sys.exit(130)
