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
    """The checkout holding features/, steps/ and fixtures/ (``MARGO_SUITE_ROOT`` overrides)."""
    override = os.environ.get("MARGO_SUITE_ROOT")
    candidates = [Path(override)] if override else [Path.cwd(), *PACKAGE_DIR.parents]
    for candidate in candidates:
        if (candidate / "features").is_dir() and (candidate / "steps").is_dir():
            return candidate.resolve()
    raise EnvironmentProblem(
        "cannot find the suite's features/ and steps/ folders; run from the margo-conformance "
        "checkout or set MARGO_SUITE_ROOT to it"
    )
