"""Architecture rules (ARCHITECTURE.md): the layers and their one dependency direction, enforced.

Each rule reads every module's syntax tree (no import-time side effects) and fails with the whole list of
offending imports or hooks, each as ``path:line``, so one run shows everything to mend.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "margo_conformance"
STEPS = ROOT / "steps"
TOP = "margo_conformance"

DRIVER_MODULES = {"pytest", "pytest_bdd", "_pytest"}
DRIVER_LAYER = {"suite", "cli"}  # drive pytest, and wire the reference in as the instrument
REFERENCE = f"{TOP}.reference"
CHECK_FORBIDDEN = DRIVER_MODULES | {"docker", "requests", "aiohttp"}  # checks are pure decisions


@dataclass(frozen=True)
class Import:
    module: str  # absolute dotted name (relative imports resolved)
    line: int


@dataclass(frozen=True)
class Module:
    path: Path
    dotted: str  # margo_conformance.wfm.checks; steps.test_wfm for a step module
    tree: ast.Module

    @property
    def layer(self) -> str:
        """``steps`` for a step module, else the first package under margo_conformance ("" at the top)."""
        parts = self.dotted.split(".")
        if parts[0] == "steps":
            return "steps"
        return parts[1] if len(parts) > 2 else ""

    def where(self, line: int) -> str:
        return f"{self.path.relative_to(ROOT)}:{line}"

    def imports(self) -> Iterator[Import]:
        package = self.dotted.split(".")
        if self.path.name != "__init__.py":
            package = package[:-1]
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(alias.name, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                stem = ".".join([*base, node.module] if node.module else base)
                yield Import(stem, node.lineno)
                for alias in node.names:  # ``from .. import reference`` names a module too
                    yield Import(f"{stem}.{alias.name}", node.lineno)
            elif (  # importlib.import_module("margo_conformance.…") / __import__("…")
                isinstance(node, ast.Call)
                and ast.unparse(node.func) in {"importlib.import_module", "import_module", "__import__"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                yield Import(node.args[0].value, node.lineno)


def _load(path: Path, base: Path) -> Module:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return Module(path, ".".join(parts), ast.parse(path.read_text(encoding="utf-8")))


LIBRARY = [_load(p, SRC) for p in sorted(PACKAGE.rglob("*.py"))]
STEP_MODULES = [_load(p, ROOT) for p in sorted(STEPS.glob("*.py"))]


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _report(offences: list[str], rule: str) -> None:
    assert not offences, f"{rule}; {len(offences)} offence(s):\n  " + "\n  ".join(sorted(offences))


def _offending_imports(modules: list[Module], bad: Callable[[Module, str], bool]) -> list[str]:
    """``path:line imports name``, once per import statement (its shortest offending name)."""
    found: dict[str, str] = {}
    for module in modules:
        for imp in module.imports():
            where = module.where(imp.line)
            if bad(module, imp.module) and len(imp.module) < len(found.get(where, imp.module + "_")):
                found[where] = imp.module
    return [f"{where} imports {name}" for where, name in found.items()]


def test_library_modules_do_not_import_the_test_driver_or_steps() -> None:
    offences = _offending_imports(
        LIBRARY,
        lambda module, name: (
            _within(name, "steps")
            or (module.layer not in DRIVER_LAYER and name.split(".")[0] in DRIVER_MODULES)
        ),
    )
    _report(offences, "only suite/ and cli/ drive pytest, and nothing imports steps/")


def test_the_checker_imports_nothing_from_the_reference() -> None:
    """DESIGN §3: the checker receives the instrument WFM (instrument/, wired in by suite/), it never
    imports the reference, so a misreading the two share cannot hide."""
    checker = [m for m in LIBRARY if m.layer not in {"reference", *DRIVER_LAYER}] + STEP_MODULES
    offences = _offending_imports(checker, lambda _, name: _within(name, REFERENCE))
    _report(offences, "outside reference/, suite/ and cli/ (and in steps/) nothing imports the reference")


def _hooks(module: Module) -> Iterator[str]:
    """Fault switches: ``<…faults>.active(…)``, a ``Leniency``-like name, a verifier's ``allow_…``."""
    for node in ast.walk(module.tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "active"
            and "fault" in ast.unparse(node.func.value).lower()
        ):
            yield f"{module.where(node.lineno)} switches a fault: {ast.unparse(node.func)}(…)"
        elif "lenien" in _identifier(node).lower():
            yield f"{module.where(getattr(node, 'lineno', 0))} has a leniency hook: {_identifier(node)}"
        if isinstance(node, ast.FunctionDef) and node.name.startswith("verify"):
            for arg in [*node.args.args, *node.args.kwonlyargs]:
                if arg.arg.startswith("allow_"):
                    yield f"{module.where(node.lineno)} {node.name}() takes a hole: {arg.arg}"


def _identifier(node: ast.AST) -> str:
    """The name a node introduces or uses ("" for nodes without one)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.arg):
        return node.arg
    if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        return node.name
    return ""


def test_no_fault_switch_lives_outside_the_reference() -> None:
    """A mutant's hole is decided at the one place in the reference where it differs (DESIGN §3),
    never by a switch in checker code that a wiring bug could leave open."""
    offences = [hook for m in LIBRARY + STEP_MODULES if m.layer != "reference" for hook in _hooks(m)]
    _report(offences, "no fault switch or leniency hook outside reference/")


def test_checks_import_no_driver_or_transport() -> None:
    checks = [m for m in LIBRARY if m.layer == "checks"]
    offences = _offending_imports(checks, lambda _, name: name.split(".")[0] in CHECK_FORBIDDEN)
    _report(offences, "checks/ decides only: no pytest, docker, requests or aiohttp")


def test_the_instrument_contract_stands_alone() -> None:
    """Both sides import instrument/; it imports neither (else the cycle is back)."""
    contract = [m for m in LIBRARY if m.layer == "instrument"]
    offences = _offending_imports(
        contract, lambda _, name: _within(name, TOP) and name.split(".")[1] not in {"instrument", "errors"}
    )
    _report(offences, "instrument/ imports only itself and errors")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from ..reference.wfm import BackgroundWfm\n", True),
        ("from .. import reference\n", True),
        ("import margo_conformance.reference.device.faults\n", True),
        ("from ..instrument import AdminClient\n", False),
        ("from ..referencex import thing\n", False),
        ("importlib.import_module('margo_conformance.reference.wfm')\n", True),
    ],
)
def test_relative_imports_of_the_reference_are_seen(source: str, expected: bool) -> None:
    module = Module(PACKAGE / "device" / "x.py", f"{TOP}.device.x", ast.parse(source))
    assert any(_within(imp.module, REFERENCE) for imp in module.imports()) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("if self.faults.active('x'):\n    pass\n", 1),
        ("def verify_artifact(a, *, leniency=None):\n    pass\n", 1),
        ("class Leniency:\n    pass\n", 1),
        ("def verify_envelope(data, *, allow_forbidden=False):\n    pass\n", 1),
        ("def sign_envelope(data, *, allow_forbidden=False):\n    pass\n", 0),  # producing fixtures
        ("poll.active(True)\n", 0),
    ],
)
def test_fault_hooks_are_seen(source: str, expected: int) -> None:
    module = Module(PACKAGE / "signing" / "x.py", f"{TOP}.signing.x", ast.parse(source))
    assert len(list(_hooks(module))) == expected
