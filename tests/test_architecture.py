"""Architecture rules (house style): checks never depend on the test driver; nobody imports steps/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "margo_conformance"
DRIVER_MODULES = {"pytest", "pytest_bdd", "_pytest"}
DRIVER_ALLOWED = {"suite", "cli"}  # the plugin and the runner drive pytest; nothing else may


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_modules_do_not_import_the_test_driver_or_steps(module: Path) -> None:
    imported = _imports(module)
    assert "steps" not in imported, f"{module} imports steps/"
    if module.relative_to(PACKAGE).parts[0] not in DRIVER_ALLOWED:
        assert not imported & DRIVER_MODULES, f"{module} imports {imported & DRIVER_MODULES}"
