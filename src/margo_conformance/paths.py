"""Where the suite's own files live: pins inside the package, features/steps/fixtures in the suite root."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import EnvironmentProblem

PACKAGE_DIR = Path(__file__).resolve().parent
PINS_DIR = PACKAGE_DIR / "pins"


def pin_dir(pin: str) -> Path:
    """The folder holding one pin's registry, schemas and errata."""
    path = PINS_DIR / pin
    if not path.is_dir():
        known = ", ".join(sorted(p.name for p in PINS_DIR.iterdir() if p.is_dir()))
        raise EnvironmentProblem(f"unknown pin {pin!r}; known pins: {known}")
    return path


def suite_root() -> Path:
    """The checkout holding the suite's features/, steps/, fixtures/ and pyproject.toml
    (``MARGO_SUITE_ROOT`` overrides).

    Found from where this package is installed, never from the current directory: a vendor's own BDD
    project (with its own features/ and steps/) is where people start the suite from."""
    override = os.environ.get("MARGO_SUITE_ROOT")
    candidates = [Path(override)] if override else list(PACKAGE_DIR.parents)
    for candidate in candidates:
        if (
            all((candidate / name).is_dir() for name in ("features", "steps"))
            and (candidate / "pyproject.toml").is_file()
        ):
            return candidate.resolve()
    where = f"MARGO_SUITE_ROOT={override}" if override else f"any folder above {PACKAGE_DIR}"
    raise EnvironmentProblem(
        f"cannot find the suite's features/, steps/ and pyproject.toml in {where}; install the suite from "
        "its checkout (pip install -e) or set MARGO_SUITE_ROOT to the checkout"
    )
