"""Exit codes that cannot lie: a crash of the suite is exit 3 and one line, never a verdict (exit 1), and
text from the subject is printed as is, never read as Rich markup."""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from margo_conformance.cli import (
    EXIT_INTERNAL,
    main,
    package_cmd,
    reference_cmd,
    requirements_cmd,
    run_cmd,
    selftest_cmd,
)
from margo_conformance.findings import Findings
from margo_conformance.package.check import PackageReport
from margo_conformance.pki import Pki
from margo_conformance.registry import Registry, make_finding
from margo_conformance.suite import selftest as kill_matrix
from margo_conformance.suite.selftest import KillRow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _boom(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("boom [/] secret-looking text")


# (command line, object whose attribute fails, attribute)
CRASHES: list[tuple[list[str], Any, str]] = [
    (["package", "check", str(FIXTURES / "packages" / "vendor-a-compose")], package_cmd, "check_package"),
    (["run", "--persona", "package"], run_cmd, "run_suite"),
    (["selftest", "--persona", "package"], kill_matrix, "selftest"),
    (["requirements"], Registry, "load"),
    (["pki", "init", "--trust-domain", "t.example", "--wfm-id", "w", "--out", "PKI"], Pki, "init"),
    (["reference", "wfm", "--pki", "PKI", "--state", "STATE"], reference_cmd, "run_wfm"),
]


def _main(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["margo-conformance", *argv])
    with pytest.raises(SystemExit) as stopped:
        main()
    return int(stopped.value.code or 0)


@pytest.mark.parametrize(
    ("argv", "owner", "attribute"), CRASHES, ids=lambda v: v[0] if isinstance(v, list) else ""
)
def test_an_unexpected_exception_is_exit_3_with_one_line_and_the_traceback_in_a_log(
    argv: list[str],
    owner: Any,
    attribute: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(owner, attribute, _boom)
    argv = [str(tmp_path / a) if a in ("PKI", "STATE") else a for a in argv]
    if "reference" in argv:
        Pki.init(tmp_path / "PKI", trust_domain="t.example", wfm_id="w", validity_days=1)
    code = _main(argv, monkeypatch)
    out, err = capsys.readouterr()
    assert code == EXIT_INTERNAL
    assert len(err.strip().splitlines()) == 1 and "internal error (RuntimeError" in err
    assert "Traceback" not in out + err and "boom" not in out + err
    logs = list(tmp_path.glob("margo-conformance-internal-error-*.log"))
    assert len(logs) == 1 and str(logs[0]) in err
    assert "RuntimeError: boom" in logs[0].read_text(encoding="utf-8")


def test_a_real_crash_of_pki_init_is_exit_3_not_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Found by hand (hostile-input report, part 2): a validity beyond the calendar overflows."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    argv = ["pki", "init", "--trust-domain", "t.example", "--wfm-id", "w", "--out", str(tmp_path / "p")]
    code = _main([*argv, "--validity-days", "999999999"], monkeypatch)
    assert code in (2, EXIT_INTERNAL) and "Traceback" not in capsys.readouterr().err


def _report(message: str, location: str) -> PackageReport:
    findings = Findings()
    findings.add(make_finding("APPD-101", location, message))
    return PackageReport(origin="pkg[/]", findings=findings)


def test_package_text_is_never_read_as_markup() -> None:
    console = Console(record=True, width=300)
    message = "'Bad_Id' does not match ^[a-z0-9-]+$"
    package_cmd.render(_report(message, "margo.yaml#$.metadata[bold]x[/bold]"), console)
    text = console.export_text()
    assert "^[a-z0-9-]+$" in text and "[bold]x[/bold]" in text and "pkg[/]" in text


def test_a_closing_tag_in_package_text_does_not_crash_the_table() -> None:
    console = Console(record=True, width=300)
    package_cmd.render(_report("[/]", "[/]"), console)
    assert "[/]" in console.export_text()


@pytest.mark.parametrize(
    "argv",
    [
        ["package", "check", "x" * 5000],
        ["pki", "init", "--trust-domain", "t.example", "--wfm-id", "w", "--out", "/proc/margo-pki"],
        ["run", "--persona", "package", "--reports-dir", "/proc/margo-x"],
    ],
    ids=["name-too-long", "pki-out-in-proc", "reports-in-proc"],
)
def test_a_path_the_system_refuses_is_a_usage_error_not_a_crash(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code = _main(argv, monkeypatch)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_kill_matrix_table_prints_names_as_they_are() -> None:
    console = Console(record=True, width=300)
    row = KillRow(
        "mutant-[/]", "APPD-[bold]1", {"a"}, {"a"}, {"^[a-z]+$": "fail"}, run="/tmp/r/x", kind="mutant"
    )
    selftest_cmd.render([row], "package [/] persona", console)
    text = console.export_text()
    assert "mutant-[/]" in text and "APPD-[bold]1" in text and "package [/] persona" in text


def test_the_requirements_table_prints_summaries_as_they_are() -> None:
    console = Console(record=True, width=400)
    first = Registry.load().select()[0]
    odd = dataclasses.replace(first, summary="ids match ^[a-z0-9-]+$ [/]", testable=False, why="[red]x")
    requirements_cmd._render([odd], console, uncovered=False)
    text = console.export_text()
    assert "^[a-z0-9-]+$ [/]" in text and "[red]x" in text
