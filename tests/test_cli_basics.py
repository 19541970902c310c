"""The command line a person expects: --version, run ids that are names, personas that select something."""

from __future__ import annotations

import subprocess
import sys

import pytest

from margo_conformance import DEFAULT_PIN
from margo_conformance.cli.run_cmd import personas_with_scenarios


def margo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "margo_conformance.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_version_names_the_pin() -> None:
    done = margo("--version")
    assert done.returncode == 0 and DEFAULT_PIN in done.stdout


@pytest.mark.parametrize("run_id", ["../elsewhere", "/tmp/x", "a/b", ".hidden", "-flag", ""])
def test_a_run_id_is_a_name_not_a_path(run_id: str) -> None:
    done = margo("run", "--persona", "wfm", "--run-id", run_id)
    assert done.returncode == 2 and "--run-id" in done.stderr and "Traceback" not in done.stderr


def test_a_persona_without_scenarios_is_refused_naming_those_with_some() -> None:
    having = personas_with_scenarios()
    assert {"package", "wfm", "device"} <= set(having)
    done = margo("run", "--persona", "interop")
    assert done.returncode == 2
    assert "no scenarios" in done.stderr and all(p in done.stderr for p in having)


def test_help_text_is_reflowed_for_the_terminal() -> None:
    """A docstring wrapped for the source prints as whole paragraphs, not ragged half-lines."""
    from margo_conformance.cli import reflow

    text = "First line of a\nparagraph.\n\nTable:\n  a   one\n  b   two\nAfter the table\ncontinues."
    assert (
        reflow(text)
        == "First line of a paragraph.\n\nTable:\n  a   one\n  b   two\nAfter the table continues."
    )
