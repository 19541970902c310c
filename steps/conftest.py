"""Fixtures shared by every persona's steps: the SUT, the suite's fixtures folder, the local registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from margo_conformance._internal.local_registry import LocalRegistry
from margo_conformance.config import Sut
from margo_conformance.errors import Blocked
from margo_conformance.paths import suite_root
from margo_conformance.suite.plugin import SUT_KEY
from margo_conformance.wfm.subject import WfmSubject


@pytest.fixture(scope="session")
def sut(request: pytest.FixtureRequest) -> Sut:
    return request.config.stash[SUT_KEY]


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return suite_root() / "fixtures"


@pytest.fixture(scope="session")
def wfm_subject(
    request: pytest.FixtureRequest, sut: Sut, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WfmSubject]:
    """The WFM under test for the run: the suite's reference WFM (a mutant in the self-test) or a vendor's."""
    if sut.wfm is None:
        raise Blocked("the SUT file declares no 'wfm' subject")
    subject = WfmSubject.start(
        sut.wfm, tmp_path_factory.mktemp("wfm"), faults=tuple(request.config.getoption("--margo-wfm-fault"))
    )
    yield subject
    subject.close()


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
