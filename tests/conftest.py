"""Fixtures shared by test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from margo_conformance._internal.local_registry import LocalRegistry
from margo_conformance.errors import EnvironmentProblem


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    """A loopback OCI registry for one test module; skipped where scripts/setup installed none."""
    try:
        with LocalRegistry() as running:
            yield running
    except EnvironmentProblem as exc:
        pytest.skip(f"no local OCI registry: {exc}")
