"""Steps of the signature checker's proof (package persona, @checker): thin; fixtures, verification and
expectations live in margo_conformance.signing. The vendor-facing signing scenarios are in test_package.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from margo_conformance._internal.local_registry import LocalRegistry
from margo_conformance.signing import expectations
from margo_conformance.signing.package_check import SignatureCheck
from margo_conformance.signing.subjects import SignatureSubjects

scenarios("../features/package/signing-fixtures.feature")


@pytest.fixture(scope="session")
def signature_subjects(
    request: pytest.FixtureRequest,
    local_registry: Callable[[], LocalRegistry],
    tmp_path_factory: pytest.TempPathFactory,
) -> SignatureSubjects:
    return SignatureSubjects(
        local_registry,
        tmp_path_factory.mktemp("signing"),
        faults_off=request.config.getoption("--margo-faults-off"),
    )


@given("the signature fixtures of the signing profile, published in an OCI registry")
def signature_fixtures(signature_subjects: SignatureSubjects) -> None:
    signature_subjects.fixtures()


@given(
    parsers.parse('a trust store holding the root certificate of the publisher "{publisher}"'),
    target_fixture="trust_store",
)
def trust_store(signature_subjects: SignatureSubjects, publisher: str) -> Path:
    return signature_subjects.trust_store(publisher)


@given(
    parsers.parse('a trust policy of level "{level}" for every fixture repository'),
    target_fixture="trust_policy",
)
def trust_policy(signature_subjects: SignatureSubjects, level: str) -> Path:
    return signature_subjects.trust_policy(level)


@given(
    parsers.parse('a trust policy of level "{level}" for another registry scope only'),
    target_fixture="trust_policy",
)
def trust_policy_elsewhere(signature_subjects: SignatureSubjects, level: str) -> Path:
    return signature_subjects.trust_policy(level, covering_fixtures=False)


@when(
    parsers.parse('the package "{fixture}" is verified with the trust policy'),
    target_fixture="signature_check",
)
def verify(
    signature_subjects: SignatureSubjects, fixture: str, trust_policy: Path, trust_store: Path
) -> SignatureCheck:
    return signature_subjects.verify(fixture, trust_policy, trust_store)


@when(
    parsers.parse(
        'the package "{fixture}" is mirrored by digest with its signatures to another repository and '
        "verified there"
    ),
    target_fixture="signature_check",
)
def verify_mirror(
    signature_subjects: SignatureSubjects, fixture: str, trust_policy: Path, trust_store: Path
) -> SignatureCheck:
    return signature_subjects.verify(fixture, trust_policy, trust_store, mirrored=True)


@then("every signature of the package verifies and nothing is reported")
def accepted(signature_check: SignatureCheck) -> None:
    expectations.ensure_accepted(signature_check)


@then(
    parsers.parse(
        'the package is refused, breaking requirement {requirement} in the Notary "{validation}" validation'
    )
)
def refused(signature_check: SignatureCheck, requirement: str, validation: str) -> None:
    expectations.ensure_refused(signature_check, requirement, validation)


@then(parsers.parse("the package is accepted, with a logged finding of requirement {requirement}"))
def logged(signature_check: SignatureCheck, requirement: str) -> None:
    expectations.ensure_logged(signature_check, requirement)


@then("no signature is examined and the package is not refused")
def not_examined(signature_check: SignatureCheck) -> None:
    expectations.ensure_not_examined(signature_check)
