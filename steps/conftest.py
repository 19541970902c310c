"""Fixtures shared by every persona's steps: the SUT, the suite's fixtures folder, the local registry,
and the subjects of the WFM and device personas."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from margo_conformance._internal.local_registry import LocalRegistry
from margo_conformance.config import Sut
from margo_conformance.device.session import DeviceRun, start_device_run
from margo_conformance.errors import Blocked
from margo_conformance.paths import suite_root
from margo_conformance.suite.instrument import start_reference_wfm
from margo_conformance.suite.plugin import SUT_KEY
from margo_conformance.wfm.conversation import Conversation
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


@pytest.fixture
def conversation(wfm_subject: WfmSubject, fixtures_dir: Path) -> Iterator[Conversation]:
    """One WFM scenario's clients and exchanges (WFM persona steps, signing included)."""
    talk = Conversation(wfm_subject, fixtures_dir / "packages")
    yield talk
    talk.close()


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


@pytest.fixture(scope="session")
def device_run(
    request: pytest.FixtureRequest,
    sut: Sut,
    fixtures_dir: Path,
    local_registry: Callable[[], LocalRegistry],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DeviceRun]:
    """The instrument WFM, the registry and the observer that every device scenario of the run shares."""
    if sut.device is None:
        raise Blocked("the SUT file declares no 'device' subject")
    with start_device_run(
        sut.device,
        tmp_path_factory.mktemp("device"),
        registry_host=local_registry().host,
        packages=fixtures_dir / "packages",
        start_wfm=start_reference_wfm,  # DESIGN §3: the instrument WFM is the reference WFM, wired in here
        faults=tuple(request.config.getoption("--margo-device-fault")),
    ) as run:
        yield run
