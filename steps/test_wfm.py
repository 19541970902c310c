"""Steps of the WFM persona: thin; client, checks and conversation live in margo_conformance.wfm."""

from __future__ import annotations

from pathlib import Path

from pytest_bdd import given, parsers, scenarios, then, when

from margo_conformance.checks import wfm as checks
from margo_conformance.errors import Blocked
from margo_conformance.pki import Flaw
from margo_conformance.wfm.client import BUNDLE_TYPE, Exchange
from margo_conformance.wfm.conversation import Conversation, Deployed
from margo_conformance.wfm.documents import (
    MALFORMED_JSON,
    make_capabilities,
    make_capabilities_with_envelope,
    make_status,
)

FEATURES = Path(__file__).resolve().parents[1] / "features" / "wfm"
# signing.feature is bound beside its own steps, in test_wfm_signing.py
scenarios(*(str(f) for f in sorted(FEATURES.glob("*.feature")) if f.name != "signing.feature"))


# -- who talks --------------------------------------------------------------------------------------


@given("a WFM client accepted by the WFM")
def accepted_client(conversation: Conversation) -> None:
    conversation.add_client("client")


@given("the WFM serves an accepted client its desired state")
def positive_control(conversation: Conversation) -> None:
    conversation.serve_control()


@given("another WFM client accepted by the WFM")
def another_accepted_client(conversation: Conversation) -> None:
    conversation.add_client("other client")


@given("a WFM client without a certificate")
def client_without_certificate(conversation: Conversation) -> None:
    conversation.add_anonymous_client()


@given(parsers.parse('an impersonator of the client whose SVID has the flaw "{flaw}"'))
def impersonator_with_flawed_svid(conversation: Conversation, flaw: str) -> None:
    conversation.add_client("impersonator", flaw=Flaw(flaw), impersonating="client")


@given("a WFM client with a valid SVID that the WFM has not accepted")
def unaccepted_client(conversation: Conversation) -> None:
    conversation.add_client("client", accepted=False)


@given("a second WFM client with a valid SVID that the WFM has not accepted")
def second_unaccepted_client(conversation: Conversation) -> None:
    conversation.add_client("second client", accepted=False)


@given("the operator retired the client")
def retired_client(conversation: Conversation) -> None:
    conversation.retire("client")


@given("a WFM client accepted by the WFM that trusts only the bundle's anchors")
def client_with_anchors_only(conversation: Conversation) -> None:
    conversation.add_client("client")  # the suite's clients never hold intermediates: only bundle.pem


@given("the client offers only TLS 1.1")
def client_offering_tls11(conversation: Conversation) -> None:
    conversation.offer_only_tls11()


# -- operator actions -------------------------------------------------------------------------------


@given(parsers.parse('the client reported the capabilities of device "{device_id}"'))
def client_reported(conversation: Conversation, device_id: str) -> None:
    _report_capabilities(conversation, "client", device_id, expect_success=True)


@given(parsers.parse('the other client reported the capabilities of device "{device_id}"'))
def other_client_reported(conversation: Conversation, device_id: str) -> None:
    _report_capabilities(conversation, "other client", device_id, expect_success=True)


def _report_capabilities(
    conversation: Conversation, role: str, device_id: str, *, expect_success: bool
) -> Exchange:
    exchange = conversation.party(role).client.put_capabilities(device_id, make_capabilities(device_id))
    if expect_success:
        conversation.establish(exchange, f"could not register device {device_id!r} (precondition)")
    return exchange


@given(parsers.parse('the operator deployed "{package}" to device "{device_id}"'))
@when(parsers.parse('the operator deploys "{package}" to device "{device_id}"'))
def operator_deploys(conversation: Conversation, package: str, device_id: str) -> None:
    conversation.deploy(package, device_id)


@when(parsers.parse('the operator updates that deployment with the parameter "{name}" set to {value:d}'))
def operator_updates(conversation: Conversation, name: str, value: int) -> None:
    conversation.update_last({name: value})


@when("the operator removes that deployment")
def operator_removes(conversation: Conversation) -> None:
    conversation.undeploy_last()


@given(parsers.parse('the operator deployed "{package}" to device "{device_id}" of the other client'))
def operator_deploys_for_other(conversation: Conversation, package: str, device_id: str) -> None:
    conversation.deploy(package, device_id, role="other client")


@given(
    parsers.parse(
        'the operator deployed "{package}" to device "{device_id}" '
        'with the parameter "{name}" set to {value:d}'
    )
)
def operator_deploys_with_parameter(
    conversation: Conversation, package: str, device_id: str, name: str, value: int
) -> None:
    conversation.deploy(package, device_id, parameters={name: value})


@given(parsers.parse("the WFM is overloaded and answers {status:d} with Retry-After {seconds:d}"))
def overloaded(conversation: Conversation, status: int, seconds: int) -> None:
    conversation.subject.provisioner.overload(status=status, retry_after=seconds)


@when("the WFM restarts")
def wfm_restarts(conversation: Conversation) -> None:
    conversation.subject.restart()


# -- client requests --------------------------------------------------------------------------------


@when("the client asks for its desired state")
def ask_for_desired_state(conversation: Conversation) -> None:
    conversation.ask_for_desired_state()


@when("the other client asks for its desired state")
def other_asks_for_desired_state(conversation: Conversation) -> None:
    conversation.ask_for_desired_state("other client")


@when("the impersonator asks for its desired state")
def impersonator_asks_for_desired_state(conversation: Conversation) -> None:
    conversation.ask_for_desired_state("impersonator")


@when("the second client asks for its desired state")
def second_asks_for_desired_state(conversation: Conversation) -> None:
    conversation.ask_for_desired_state("second client")


@when("the client asks for its desired state without an Accept header")
def ask_without_accept(conversation: Conversation) -> None:
    conversation.ask_for_desired_state(accept=None)


@when(parsers.parse('the client asks for its desired state accepting only "{media_type}"'))
def ask_accepting_only(conversation: Conversation, media_type: str) -> None:
    conversation.ask_for_desired_state(accept=media_type)


@when("the client asks again with that ETag in If-None-Match")
def ask_with_etag(conversation: Conversation) -> None:
    conversation.ask_for_desired_state(if_none_match=checks.ensure_etag(conversation.last))


@when(parsers.parse('the client reports the capabilities of device "{device_id}"'))
def report_capabilities(conversation: Conversation, device_id: str) -> None:
    _report_capabilities(conversation, "client", device_id, expect_success=False)


@when(parsers.parse('the client reports the capabilities of device "{device_id}" again'))
def report_capabilities_again(conversation: Conversation, device_id: str) -> None:
    _report_capabilities(conversation, "client", device_id, expect_success=False)


@when(parsers.parse('the other client reports the capabilities of device "{device_id}"'))
def other_reports_capabilities(conversation: Conversation, device_id: str) -> None:
    _report_capabilities(conversation, "other client", device_id, expect_success=False)


@when(parsers.parse('the client reports a body that is not JSON for device "{device_id}"'))
def report_malformed_capabilities(conversation: Conversation, device_id: str) -> None:
    conversation.party("client").client.put_capabilities(device_id, MALFORMED_JSON)


@when(parsers.parse('the client reports capabilities in the rc.1 envelope for device "{device_id}"'))
def report_enveloped_capabilities(conversation: Conversation, device_id: str) -> None:
    conversation.party("client").client.put_capabilities(
        device_id, make_capabilities_with_envelope(device_id)
    )


@when(parsers.parse('the client unregisters device "{device_id}"'))
def unregister(conversation: Conversation, device_id: str) -> None:
    conversation.party("client").client.delete_capabilities(device_id)


@when("the client fetches every deployment the manifest lists")
def fetch_every_deployment(conversation: Conversation) -> None:
    conversation.fetch_deployments()


@when("the client fetches the bundle")
def fetch_bundle(conversation: Conversation) -> None:
    bundle = conversation.party("client").manifest.get("bundle")
    if not bundle:
        raise Blocked("the manifest has no bundle to fetch")
    conversation.party("client").client.fetch(str(bundle["url"]))


@then("the manifest offers a bundle beside its deployments")
def bundle_offered(conversation: Conversation) -> None:
    checks.ensure_bundle_null_iff_empty(conversation.party("client").manifest, expect_empty=False)


@when("the client fetches the first deployment with another digest")
def fetch_with_other_digest(conversation: Conversation) -> None:
    first = conversation.first_deployment()
    conversation.party("client").client.fetch(
        f"/api/v1/deployments/{first['deploymentId']}/sha256:{'0' * 64}"
    )


@when("the client fetches a bundle with an unknown digest")
def fetch_unknown_bundle(conversation: Conversation) -> None:
    conversation.party("client").client.fetch(f"/api/v1/bundles/sha256:{'1' * 64}")


@when("the client fetches the other client's first deployment")
def fetch_others_deployment(conversation: Conversation) -> None:
    conversation.party("client").client.fetch(str(conversation.first_deployment("other client")["url"]))


@when("the client fetches the other client's bundle")
def fetch_others_bundle(conversation: Conversation) -> None:
    bundle = conversation.party("other client").manifest.get("bundle")
    if not bundle:
        raise Blocked("the other client's manifest has no bundle")
    conversation.party("client").client.fetch(str(bundle["url"]))


@when(parsers.parse('the client reports the status "{state}" of its first deployment'))
def report_status(conversation: Conversation, state: str) -> None:
    _report_status(conversation, "client", "client", state)


@given(parsers.parse('the WFM accepted the status "{state}" of the client\'s first deployment'))
def status_control(conversation: Conversation, state: str) -> None:
    conversation.establish(
        _report_status(conversation, "client", "client", state), "the positive control failed"
    )


@when(parsers.parse('the other client reports the status "{state}" of its first deployment'))
def other_reports_status(conversation: Conversation, state: str) -> None:
    _report_status(conversation, "other client", "other client", state)


@when(parsers.parse('the client reports the status "{state}" of the other client\'s first deployment'))
def report_others_status(conversation: Conversation, state: str) -> None:
    _report_status(conversation, "client", "other client", state)


def _report_status(conversation: Conversation, reporter: str, owner: str, state: str) -> Exchange:
    """``reporter`` posts a status for ``owner``'s first deployment, adopting ``owner``'s manifest."""
    first, version = (
        conversation.first_deployment(owner),
        conversation.party(owner).manifest["manifestVersion"],
    )
    document = make_status(
        first["deploymentId"],
        adopted_manifest_version=version,
        state=state,
        components=_components(conversation),
    )
    return conversation.party(reporter).client.post_status(first["deploymentId"], document)


@when("the client reports a status body that is not JSON for its first deployment")
def report_malformed_status(conversation: Conversation) -> None:
    conversation.party("client").client.post_status(
        conversation.first_deployment()["deploymentId"], MALFORMED_JSON
    )


@when("the client reports a status whose deploymentId differs from the path")
def report_mismatched_status(conversation: Conversation) -> None:
    first, version = conversation.first_deployment(), conversation.party("client").manifest["manifestVersion"]
    document = make_status(
        first["deploymentId"], adopted_manifest_version=version, components=_components(conversation)
    )
    document["deploymentId"] = "00000000-0000-4000-8000-000000000000"
    conversation.party("client").client.post_status(first["deploymentId"], document)


def _components(conversation: Conversation) -> list[str]:
    description = conversation.deployed[0].description_document() if conversation.deployed else {}
    profile = (description.get("deploymentProfiles") or [{}])[0]
    return [str(c["name"]) for c in profile.get("components") or []] or ["app"]


# -- what the WFM answered --------------------------------------------------------------------------


@then("the WFM refuses the status report")
def refuses_report(conversation: Conversation) -> None:
    checks.ensure_report_refused(conversation.last)


@then("the client's manifest lists none of the other client's deployments")
def lists_none_of_others(conversation: Conversation) -> None:
    others = [str(d["deploymentId"]) for d in conversation.party("other client").manifest["deployments"]]
    checks.ensure_lists_none_of(conversation.party("client").manifest, others)


@then("the WFM refuses the connection")
def wfm_refuses(conversation: Conversation) -> None:
    checks.ensure_refused(conversation.last, control=conversation.control)


@then("the WFM does not serve the client")
@then("the WFM does not serve the second client")
@then("the WFM does not serve the impersonator")
def wfm_does_not_serve(conversation: Conversation) -> None:
    checks.ensure_not_served(conversation.last, control=conversation.control)


@then(parsers.re(r'a refusal over HTTP is 403 with the problem "(?P<problem>[^"]+)"'))
def refusal_form(conversation: Conversation, problem: str) -> None:
    checks.ensure_http_refusal_form(conversation.last, problem, control=conversation.control)


@then(parsers.parse('a refusal over HTTP is 403 with the problem "{problem}" or "{other}"'))
def refusal_form_either(conversation: Conversation, problem: str, other: str) -> None:
    checks.ensure_http_refusal_form(conversation.last, problem, other, control=conversation.control)


@then(
    parsers.parse(
        'the WFM answers {status:d} with the problem "{problem}" '
        'or {other_status:d} with the problem "{other}"'
    )
)
def wfm_answers_either(
    conversation: Conversation, status: int, problem: str, other_status: int, other: str
) -> None:
    checks.ensure_refusal_among(conversation.last, (status, problem), (other_status, other))


@then(parsers.parse("the WFM answers {status:d}"))
def wfm_answers(conversation: Conversation, status: int) -> None:
    checks.ensure_status(conversation.last, status)


@then(
    parsers.re(r'the WFM answers (?P<status>\d+) with the problem "(?P<problem>[^"]+)"'),
    converters={"status": int},
)
def wfm_answers_problem(conversation: Conversation, status: int, problem: str) -> None:
    checks.ensure_problem(conversation.last, status, problem)


@then("the problem lists the errors it found")
def problem_lists_errors(conversation: Conversation) -> None:
    checks.ensure_problem_lists_errors(conversation.last)


@then("the WFM presented exactly its own WFM SPIFFE ID")
def wfm_identity(conversation: Conversation) -> None:
    checks.ensure_wfm_identity(conversation.last, conversation.subject.wfm_spiffe_id)


@then("the connection was established")
def connection_established(conversation: Conversation) -> None:
    checks.ensure_answered(conversation.last)


@then("the connection uses TLS 1.3")
def uses_tls13(conversation: Conversation) -> None:
    checks.ensure_tls_version(conversation.last, "TLSv1.3")


@then("the WFM answers with a State Manifest")
def answers_manifest(conversation: Conversation) -> None:
    checks.ensure_manifest(conversation.last)


@then("the ETag is the strong, quoted digest of the exact body")
def etag_is_digest(conversation: Conversation) -> None:
    checks.ensure_strong_digest_etag(conversation.last)


@then("the WFM answers 304 without a body")
def not_modified(conversation: Conversation) -> None:
    checks.ensure_not_modified(conversation.last)


@then("the manifest is cached privately and never as immutable")
def manifest_private(conversation: Conversation) -> None:
    checks.ensure_private_not_immutable(conversation.last)


@then(parsers.parse("the manifest version is {version:d}"))
def manifest_version_is(conversation: Conversation, version: int) -> None:
    checks.ensure_manifest_version(conversation.party("client").manifest, version)


@then("the bundle is null and there are no deployments")
def bundle_null(conversation: Conversation) -> None:
    checks.ensure_bundle_null_iff_empty(conversation.party("client").manifest, expect_empty=True)


@then("the manifest version did not decrease")
def version_not_decreased(conversation: Conversation) -> None:
    before, after = _last_two_versions(conversation)
    checks.ensure_manifest_version_advanced(before, after, changed=False)


@then("the manifest version increased")
def version_increased(conversation: Conversation) -> None:
    before, after = _last_two_versions(conversation)
    checks.ensure_manifest_version_advanced(before, after, changed=True)


def _last_two_versions(conversation: Conversation) -> tuple[int, int]:
    return checks.ensure_two_versions(conversation.party("client").manifests, conversation.last)


@then("every url in the manifest names the digest beside it")
def urls_name_digests(conversation: Conversation) -> None:
    checks.ensure_manifest_urls(conversation.party("client").manifest)


@then("each deployment is served byte-exact with its digest as ETag and immutable private caching")
def deployments_exact(conversation: Conversation) -> None:
    party = conversation.party("client")
    references = party.manifest.get("deployments") or []
    if not references:
        raise Blocked("the manifest lists no deployment")
    for reference, exchange in zip(references, party.fetches, strict=True):
        checks.ensure_digest_resource(exchange, str(reference["digest"]), "application/yaml")


@then("the bundle is served byte-exact with its digest as ETag and immutable private caching")
def bundle_exact(conversation: Conversation) -> None:
    manifest = conversation.party("client").manifest
    checks.ensure_digest_resource(conversation.last, str(manifest["bundle"]["digest"]), BUNDLE_TYPE)


@then("the bundle holds exactly the deployments the manifest lists")
def bundle_holds_exactly(conversation: Conversation) -> None:
    party = conversation.party("client")
    bundle = conversation.last.decoded_body()
    conversation.fetch_deployments()
    checks.ensure_bundle_holds_exactly(bundle, party.deployments)


@then("each deployment is a valid rc.3 ApplicationDeployment")
def valid_deployments(conversation: Conversation) -> None:
    for deployment_id, document in _served_deployments(conversation):
        checks.ensure_valid_application_deployment(document, deployment_id=deployment_id)


@then("the deployment's id is its deploymentId and its applicationId is the application's id")
def ids(conversation: Conversation) -> None:
    for deployed, document in _provisioned(conversation):
        checks.ensure_deployment_ids(
            document, deployment_id=deployed.deployment_id, description=deployed.description_document()
        )


@then("the deployment carries the description's device constraints unmodified")
def constraints(conversation: Conversation) -> None:
    for deployed, document in _provisioned(conversation):
        checks.ensure_constraints_copied(document, description=deployed.description_document())


@then("the deployment carries the description's profile and component extensions exactly")
def extensions(conversation: Conversation) -> None:
    for deployed, document in _provisioned(conversation):
        checks.ensure_device_extensions_copied(document, description=deployed.description_document())


@then("the deployment carries none of the description's root extensions")
def no_root_extensions(conversation: Conversation) -> None:
    for deployed, document in _provisioned(conversation):
        checks.ensure_root_extensions_not_forwarded(document, description=deployed.description_document())


@then("the deployment's components are the description's, in order")
def components(conversation: Conversation) -> None:
    for deployed, document in _provisioned(conversation):
        checks.ensure_components_copied(document, description=deployed.description_document())


@then(parsers.parse('the parameter "{name}" has the value {value:d} with the description\'s targets'))
def parameter(conversation: Conversation, name: str, value: int) -> None:
    for deployed, document in _provisioned(conversation):
        checks.ensure_parameter(document, name=name, value=value, description=deployed.description_document())


def _served_deployments(conversation: Conversation) -> list[tuple[str, bytes]]:
    served = list(conversation.party("client").deployments.items())
    if not served:
        raise Blocked("no deployment was served to check")
    return served


def _provisioned(conversation: Conversation) -> list[tuple[Deployed, bytes]]:
    served = conversation.party("client").deployments
    checks.ensure_deployments_listed([d.deployment_id for d in conversation.deployed], list(served))
    return [(d, served[d.deployment_id]) for d in conversation.deployed]


@then("the error is a problem document of a registered type that says not to retry")
def registered_problem(conversation: Conversation) -> None:
    checks.ensure_registered_problem(conversation.last)


@then(parsers.parse("the WFM answers {status:d} with a Retry-After header and exponential backoff advice"))
def retry_advice(conversation: Conversation, status: int) -> None:
    checks.ensure_status(conversation.last, status)
    checks.ensure_problem_shape(conversation.last)
