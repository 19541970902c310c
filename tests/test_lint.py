"""The code style the project holds itself to: ruff and mypy --strict on the library and the steps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "src", "steps", "tests", "benchmarks", "fixtures"],
        ["ruff", "format", "--check", "src", "steps"],
        ["mypy", "src", "steps"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_the_tree_is_clean(command: list[str]) -> None:
    tool = BIN / command[0]
    if not tool.exists():
        pytest.skip(f"{command[0]} is not installed (pip install -e '.[dev]')")
    result = subprocess.run([str(tool), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
