"""Steps of the signing profile (WFM persona): thin; fixtures and trust live in
margo_conformance.wfm.signing, the checks in margo_conformance.checks.wfm, the conversation with the WFM
in margo_conformance.wfm.conversation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from margo_conformance._internal.local_registry import LocalRegistry
from margo_conformance.checks import wfm as checks
from margo_conformance.errors import Blocked
from margo_conformance.wfm.conversation import Conversation
from margo_conformance.wfm.documents import make_capabilities
from margo_conformance.wfm.signing import PackageAttempt, WfmSigning
from margo_conformance.wfm.subject import WfmSubject

scenarios("../features/wfm/signing.feature")


@pytest.fixture(scope="session")
def wfm_signing(
    request: pytest.FixtureRequest,
    local_registry: Callable[[], LocalRegistry],
    wfm_subject: WfmSubject,
    tmp_path_factory: pytest.TempPathFactory,
) -> WfmSigning:
    return WfmSigning.for_run(
        local_registry,
        wfm_subject,
        tmp_path_factory.mktemp("wfm-signing"),
        faults_off=request.config.getoption("--margo-faults-off"),
    )


# -- the packages, the WFM's trust, the client ------------------------------------------------------


@given("the signature fixtures of the signing profile, published in an OCI registry")
def signature_fixtures(wfm_signing: WfmSigning) -> None:
    wfm_signing.publish()


@given(
    parsers.parse(
        'the WFM verifies packages under a trust policy of level "{level}" for every fixture repository, '
        'trusting the publisher "{publisher}"'
    )
)
def wfm_trusts(wfm_signing: WfmSigning, level: str, publisher: str) -> None:
    wfm_signing.trust_publisher(level, publisher)


@given("a WFM client accepted by the WFM")
def accepted_client(conversation: Conversation) -> None:
    conversation.add_client("client")


@given(parsers.parse('the client reported the capabilities of device "{device_id}"'))
def client_reported(conversation: Conversation, device_id: str) -> None:
    exchange = conversation.party("client").client.put_capabilities(device_id, make_capabilities(device_id))
    if exchange.status not in (200, 201):
        raise Blocked(f"could not register device {device_id!r} (precondition):\n{exchange.transcript()}")


# -- operator and client actions --------------------------------------------------------------------


@when(
    parsers.parse('the operator deploys the package "{fixture}" from the registry to device "{device_id}"'),
    target_fixture="package_attempt",
)
def operator_deploys_package(
    wfm_signing: WfmSigning, conversation: Conversation, fixture: str, device_id: str
) -> PackageAttempt:
    return wfm_signing.deploy(conversation, fixture, device_id)


@when("the client asks for its desired state")
def ask_for_desired_state(conversation: Conversation) -> None:
    conversation.fresh_manifest()


@when("the client fetches every deployment the manifest lists")
def fetch_every_deployment(conversation: Conversation) -> None:
    conversation.fetch_deployments()


# -- what the WFM did -------------------------------------------------------------------------------


@then("the WFM accepts the package")
def wfm_accepts(package_attempt: PackageAttempt) -> None:
    checks.ensure_package_deployed(package_attempt)


@then("the WFM refuses the package")
def wfm_refuses(package_attempt: PackageAttempt) -> None:
    checks.ensure_package_refused(package_attempt)


@then("the client's desired state lists the deployment, made from the package's description")
def deployment_listed(conversation: Conversation, package_attempt: PackageAttempt) -> None:
    deployed = checks.ensure_package_deployed(package_attempt)
    party = conversation.party("client")
    checks.ensure_package_listed(party.manifest, deployed)
    served = checks.ensure_package_served(party.deployments, deployed, party.fetches)
    checks.ensure_deployment_ids(
        served, deployment_id=deployed.deployment_id, description=deployed.description_document()
    )


@then("the client's desired state lists no new deployment")
def no_new_deployment(conversation: Conversation) -> None:
    before = conversation.party("client").manifest
    checks.ensure_no_new_deployment(before, conversation.fresh_manifest())
