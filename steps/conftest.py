"""Fixtures shared by every persona's steps: the SUT, the suite's fixtures folder, the local registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from margo_conformance._internal.local_registry import LocalRegistry
from margo_conformance.config import Sut
from margo_conformance.paths import suite_root
from margo_conformance.suite.plugin import SUT_KEY


@pytest.fixture(scope="session")
def sut(request: pytest.FixtureRequest) -> Sut:
    return request.config.stash[SUT_KEY]


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return suite_root() / "fixtures"


@pytest.fixture(scope="session")
def local_registry() -> Iterator[Callable[[], LocalRegistry]]:
    """A factory for the suite's own OCI registry: started on first use, stopped at the end of the run."""
    started: list[LocalRegistry] = []

    def get() -> LocalRegistry:
        if not started:
            registry = LocalRegistry()
            registry.start()
            started.append(registry)
        return started[0]

    yield get
    for registry in started:
        registry.stop()
