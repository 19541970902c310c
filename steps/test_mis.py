"""Steps of the identity-service (MIS) persona: thin; client, checks and subject live in
margo_conformance.mis and margo_conformance.checks.mis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_bdd import given, scenarios, then, when

from margo_conformance.checks import mis as checks
from margo_conformance.config import Sut
from margo_conformance.errors import Blocked
from margo_conformance.mis.subject import MisSubject
from margo_conformance.mis.visit import Visit

scenarios(str(Path(__file__).resolve().parents[1] / "features" / "mis"))


@pytest.fixture(scope="session")
def mis_subject(
    request: pytest.FixtureRequest, sut: Sut, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MisSubject]:
    """The identity service under test: the suite's reference (a mutant in the self-test) or a vendor's."""
    if sut.mis is None:
        raise Blocked("the SUT file declares no 'mis' subject")
    subject = MisSubject.start(
        sut.mis,
        tmp_path_factory.mktemp("mis"),
        faults=tuple(request.config.getoption("--margo-wfm-fault")),
        wfm=sut.wfm,
    )
    yield subject
    subject.close()


@pytest.fixture
def visit(mis_subject: MisSubject, tmp_path: Path) -> Iterator[Visit]:
    talk = Visit(mis_subject, tmp_path)
    yield talk
    talk.close()


# -- who asks ---------------------------------------------------------------------------------------


@given("a client that trusts only the identity service's initial anchors")
def bootstrapping_client(visit: Visit) -> None:
    """The suite presents no client certificate: a bootstrapping client has no SVID yet."""


@given("a client that knows the bundle URI from the discovery document")
def client_knowing_bundle(visit: Visit) -> None:
    visit.learn_bundle_url()


@given("a client that holds the anchors of the identity service's bundle")
def client_holding_anchors(visit: Visit) -> None:
    visit.learn_anchors()


@given("the client was served the discovery document")
def served_discovery(visit: Visit) -> None:
    visit.positive_control()


# -- what it asks -----------------------------------------------------------------------------------


@when("the client asks for the discovery document")
def ask_discovery(visit: Visit) -> None:
    visit.discovery()


@when("the client asks for a path the identity service does not serve")
def ask_unknown(visit: Visit) -> None:
    visit.unknown_path()


@when("the client asks for it again with the ETag it got")
def ask_again(visit: Visit) -> None:
    visit.again_with_etag()


@when("the client asks for the trust bundle")
def ask_bundle(visit: Visit) -> None:
    visit.get(visit.bundle_url)


@when("the client asks for the trust bundle twice")
def ask_bundle_twice(visit: Visit) -> None:
    visit.get(visit.bundle_url)
    visit.get(visit.bundle_url)


@when("the client asks for it again offering only TLS 1.1")
def ask_with_tls11(visit: Visit) -> None:
    visit.offer_only_tls11()


@when("the client connects to a WFM of the trust domain trusting only those anchors")
def connect_to_wfm(visit: Visit) -> None:
    visit.validate_wfm()


# -- what must hold ---------------------------------------------------------------------------------


@then("the identity service answers 200 with an application/json DiscoveryDocument")
def discovery_document(visit: Visit) -> None:
    document = checks.ensure_json_document(visit.last, "TB-102")
    checks.ensure_schema_valid(document, "DiscoveryDocument", "TB-102")


@then("the document's trustDomain is the configured trust domain")
def configured_trust_domain(visit: Visit) -> None:
    checks.ensure_trust_domain(checks.ensure_json_document(visit.last, "TB-102"), visit.subject.trust_domain)


@then("the document's trustBundleUri is an absolute https URL")
def https_bundle_uri(visit: Visit) -> None:
    checks.ensure_absolute_https(checks.ensure_json_document(visit.last, "TB-102").get("trustBundleUri"))


@then("the identity service answers over HTTP")
def answers(visit: Visit) -> None:
    checks.ensure_answered(visit.last, "TB-102")


@then("the identity service answers 304 without a body")
def not_modified(visit: Visit) -> None:
    checks.ensure_not_modified(visit.last, checks.ensure_etag(visit.exchanges[-2]))


@then("the identity service answers 404 with an application/problem+json ProblemDetail")
def problem_404(visit: Visit) -> None:
    checks.ensure_problem_404(visit.last)


@then("the identity service answers 200 with an application/json SpiffeBundle")
def spiffe_bundle(visit: Visit) -> None:
    checks.ensure_schema_valid(checks.ensure_json_document(visit.last, "TB-104"), "SpiffeBundle", "TB-104")


@then("every x509-svid key carries one CA certificate, and there is at least one")
def ca_anchors(visit: Visit) -> None:
    checks.bundle_anchors(checks.ensure_json_document(visit.last, "TB-104"))


@then("the second bundle's spiffe_sequence is not lower than the first's")
def sequence_forwards(visit: Visit) -> None:
    first, second = (checks.ensure_json_document(e, "TB-104") for e in visit.exchanges[-2:])
    checks.ensure_sequence_not_backwards(first, second)


@then("the WFM's chain validates against them")
def wfm_validates(visit: Visit) -> None:
    checks.ensure_validates_wfm(visit.wfm_check[0], visit.subject.wfm_url)


@then("the WFM's SPIFFE ID is in the discovery document's trust domain")
def wfm_in_domain(visit: Visit) -> None:
    checks.ensure_member_of(visit.wfm_check[1], visit.subject.trust_domain, visit.subject.wfm_url)


@then("the connection uses TLS 1.3")
def tls13(visit: Visit) -> None:
    checks.ensure_tls_version(visit.last, "TLSv1.3", "TLS-003")


@then("the identity service refuses the connection")
def refused(visit: Visit) -> None:
    checks.ensure_refused(visit.last, "TLS-005", control=visit.control)
