"""Steps of the signing profile (device persona): thin; the signed applications, the trust material and
the checks live in margo_conformance.device.signing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from margo_conformance.checks import device as checks
from margo_conformance.device.session import SERVED_MARK, Deployment, DeviceRun
from margo_conformance.device.signing import DeviceSignatures, SigningScenario
from margo_conformance.errors import Blocked

scenarios("../features/device/signing.feature")


@pytest.fixture(scope="session")
def device_signatures(device_run: DeviceRun, tmp_path_factory: pytest.TempPathFactory) -> DeviceSignatures:
    workdir = tmp_path_factory.mktemp("device-signing")
    return DeviceSignatures(device_run.registry_host, device_run.packages, workdir)


@pytest.fixture
def device(device_run: DeviceRun, device_signatures: DeviceSignatures) -> Iterator[SigningScenario]:
    scenario = SigningScenario(device_run, device_signatures)
    yield scenario
    scenario.close()


@pytest.fixture
def deployments() -> dict[str, Deployment]:
    """The scenario's deployments: each vendor's, and "signed" for the one under test."""
    return {}


def _get(deployments: dict[str, Deployment], name: str) -> Deployment:
    if name not in deployments:
        raise Blocked(f"the scenario has no deployment {name}")
    return deployments[name]


@given(
    parsers.parse(
        'a device connected to the instrument WFM with a trust policy of level "{level}" '
        "for the suite's registry"
    )
)
def connected_with_policy(device: SigningScenario, level: str) -> None:
    device.connect_with_policy(level)


@given(parsers.parse("{vendor}'s validly signed application installed on the device"))
def installed(device: SigningScenario, deployments: dict[str, Deployment], vendor: str) -> None:
    deployment = deployments[vendor] = device.deploy_signed(vendor, "valid")
    device.await_report(deployment, "installed")
    device.remember_workloads(deployment)


@when(parsers.parse('the operator deploys vendor-a\'s application signed as "{fixture}"'))
def deploys_signed(device: SigningScenario, deployments: dict[str, Deployment], fixture: str) -> None:
    deployments["signed"] = device.deploy_signed("vendor-a", fixture)


@then('the device reports the deployment "installed"')
def reports_installed(device: SigningScenario, deployments: dict[str, Deployment]) -> None:
    checks.ensure_state(device.await_outcome(_get(deployments, "signed")), "installed", "SIGN-114")


@then('the device reports the deployment "failed"')
def reports_refused(device: SigningScenario, deployments: dict[str, Deployment]) -> None:
    """In any words: SUP-03 sets none (errata INC-141); the next step checks that nothing of it runs."""
    checks.ensure_state(device.await_outcome(_get(deployments, "signed")), "failed", "SIGN-114")


@then("the deployment runs on the device and serves on its published port")
def runs_and_serves(device: SigningScenario, deployments: dict[str, Deployment]) -> None:
    deployment = _get(deployments, "signed")
    port = deployment.app.host_port
    if port is None:
        raise Blocked("the signed application publishes no port")
    checks.ensure_serves(device.workloads(deployment), lambda: device.fetch_page(port), SERVED_MARK)


@then("nothing of the deployment runs on the device")
def nothing_runs(device: SigningScenario, deployments: dict[str, Deployment]) -> None:
    checks.ensure_not_running(device.workloads(_get(deployments, "signed")), "SIGN-114")


@then(parsers.parse("{vendor}'s application is untouched"))
def untouched(device: SigningScenario, deployments: dict[str, Deployment], vendor: str) -> None:
    deployment = _get(deployments, vendor)
    checks.ensure_untouched(deployment.snapshot, device.workload_states(deployment))
