"""The ``margo-conformance`` command line. Only the CLI and the config loader read the environment."""

from __future__ import annotations

import inspect
import sys
import tempfile
import traceback
from pathlib import Path

import typer

from .._internal.processes import interrupt_on_sigterm
from ..errors import InternalError, MargoError
from . import package_cmd, pki_cmd, reference_cmd, report_cmd, requirements_cmd, run_cmd, selftest_cmd

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
app.add_typer(report_cmd.app, name="report")
app.command("requirements")(requirements_cmd.requirements)
app.command("run")(run_cmd.run)
app.command("selftest")(selftest_cmd.selftest)

# Exit codes: 0 conformant, 1 non-conformant, 2 usage or input error, 3 internal error (a bug of the suite,
# never a verdict about the subject).
EXIT_USAGE_OR_IO = 2


def reflow(text: str | None) -> str | None:
    """A docstring as help text: the lines of a paragraph joined (the terminal wraps them at its own
    width, so a docstring wrapped for the source never prints as ragged half-lines); blank lines and
    indented lines (tables, examples) are kept."""
    if not text:
        return text
    out: list[str] = []
    for line in inspect.cleandoc(text).splitlines():
        joins = out and out[-1] and line and not line[0].isspace() and not out[-1][0].isspace()
        if joins:
            out[-1] += " " + line
        else:
            out.append(line)
    return "\n".join(out)


def _reflow_all(group: typer.Typer) -> None:
    for command in group.registered_commands:
        if command.callback is not None:
            command.callback.__doc__ = reflow(command.callback.__doc__)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _reflow_all(sub.typer_instance)


_reflow_all(app)
EXIT_INTERNAL = 3


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
    """Entry point: environment and input problems become one clear line and exit code 2; a failure of
    the suite itself one line and exit code 3, its traceback in a log file."""
    interrupt_on_sigterm()  # a terminated run cleans up like an interrupted one
    try:
        app()
    except InternalError as exc:
        typer.echo(f"margo-conformance: internal error: {exc.diagnostics()}", err=True)
        sys.exit(EXIT_INTERNAL)
    except MargoError as exc:
        typer.echo(f"margo-conformance: error: {exc.diagnostics()}", err=True)
        sys.exit(EXIT_USAGE_OR_IO)
    except OSError as exc:  # a path the user gave: too long, not a folder, not writable (/proc/x)
        if exc.filename is None:
            _internal_error(exc)
        typer.echo(f"margo-conformance: error: {str(exc.filename)[:200]}: {exc.strerror}", err=True)
        sys.exit(EXIT_USAGE_OR_IO)
    except KeyboardInterrupt:
        typer.echo("margo-conformance: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a crash must not read as a verdict
        _internal_error(exc)


def _internal_error(exc: BaseException) -> None:
    """One line naming what failed and where the traceback is; exit 3 (the console never shows it)."""
    log = write_traceback(exc)
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" in {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    typer.echo(
        f"margo-conformance: internal error ({type(exc).__name__}{where}); "
        f"this is a bug of the suite, not a verdict; traceback in {log}",
        err=True,
    )
    sys.exit(EXIT_INTERNAL)


def write_traceback(exc: BaseException) -> Path:
    """The traceback in a private file of its own (it may quote the input, so not on the console)."""
    handle, name = tempfile.mkstemp(prefix="margo-conformance-internal-error-", suffix=".log")
    with open(handle, "w", encoding="utf-8", errors="backslashreplace") as log:
        traceback.print_exception(exc, file=log)
    return Path(name)
