"""Notary Project signing and verification (SUP-03): envelopes, certificate rules, trust policy, and the
signature fixtures against a real local registry (referrers tag schema: docker-registry 2.8 has no
Referrers API)."""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from margo_conformance._internal.local_registry import LocalRegistry
from margo_conformance._internal.oci import OCI_MANIFEST, OciClient, OciReference
from margo_conformance.errors import InputError, UsageError
from margo_conformance.package.publish import publish_package
from margo_conformance.signing.certificates import (
    MAX_CHAIN_LENGTH,
    TrustStore,
    leaf_rules,
    signing_problems,
    validate_chain,
)
from margo_conformance.signing.envelope import (
    COSE_MEDIA_TYPE,
    MAX_CERTIFICATES,
    MAX_ENVELOPE_BYTES,
    PAYLOAD_CONTENT_TYPE,
    TIMESTAMP_SIGNATURE,
    Descriptor,
    EnvelopeError,
    b64url,
    sign_envelope,
    verify_envelope,
)
from margo_conformance.signing.fixtures import (
    EXPECTED,
    MANIFEST_FIXTURES,
    Fixture,
    SignatureFixture,
    SigningPki,
    generate_fixtures,
)
from margo_conformance.signing.oci_signatures import (
    NOTARY_SIGNATURE,
    attach_envelope,
    find_signatures,
    manifest_descriptor,
    mirror_artifact,
    referrers_tag,
    sign_artifact,
    verify_artifact,
)
from margo_conformance.signing.package_check import SignatureCheck, Trust, check_signatures
from margo_conformance.signing.policy import (
    Check,
    Failure,
    Level,
    Outcome,
    SignatureVerdict,
    TrustPolicyDocument,
    parse_identity,
    policy_data,
    policy_document,
)

ROOT = Path(__file__).resolve().parents[1]
VENDOR_A = ROOT / "fixtures" / "packages" / "vendor-a-compose"
HAVE_REGISTRY = shutil.which("docker-registry") is not None or os.access("/usr/bin/docker-registry", os.X_OK)
needs_registry = pytest.mark.skipif(
    not HAVE_REGISTRY, reason="docker-registry (Debian package) is not installed: run scripts/setup"
)

PUBLISHER = SigningPki("vendor-a")
STORE = TrustStore.of(publisher=[PUBLISHER.root])
TARGET = Descriptor(OCI_MANIFEST, "sha256:" + "ab" * 32, 1234)
LEVELS = (Level.STRICT, Level.PERMISSIVE, Level.AUDIT)


def strict(**options: Any) -> TrustPolicyDocument:
    return policy_document(level=options.pop("level", Level.STRICT), scopes=["*"], **options)


# -- envelope --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("alg", "rsa_key"), [("ES256", False), ("PS256", True)])
def test_envelope_round_trip_carries_the_notary_headers(alg: str, rsa_key: bool) -> None:
    signer = PUBLISHER.leaf("round-trip-rsa" if rsa_key else "round-trip", rsa_key=rsa_key)
    data = sign_envelope(TARGET, signer.key, signer.chain, alg=alg)
    envelope = json.loads(data)
    assert set(envelope) == {"payload", "protected", "header", "signature"}
    protected = json.loads(base64.urlsafe_b64decode(envelope["protected"] + "=="))
    assert protected["alg"] == alg
    assert protected["cty"] == PAYLOAD_CONTENT_TYPE
    assert protected["io.cncf.notary.signingScheme"] == "notary.x509"
    assert protected["crit"] == ["io.cncf.notary.signingScheme"]
    assert len(envelope["header"]["x5c"]) == 3
    verified = verify_envelope(data)
    assert verified.target == TARGET
    assert verified.algorithm == alg
    assert verified.chain == signer.chain


def _resign(data: bytes, mutate_protected: Any = None, mutate_payload: Any = None, key: Any = None) -> bytes:
    """Change the envelope's protected header / payload and sign it again with ``key`` (if given)."""
    envelope = json.loads(data)
    protected = json.loads(base64.urlsafe_b64decode(envelope["protected"] + "=="))
    payload = json.loads(base64.urlsafe_b64decode(envelope["payload"] + "=="))
    if mutate_protected:
        mutate_protected(protected)
    if mutate_payload:
        mutate_payload(payload)
    envelope["protected"] = b64url(json.dumps(protected).encode())
    envelope["payload"] = b64url(json.dumps(payload).encode())
    if key is not None:
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        der = key.sign(f"{envelope['protected']}.{envelope['payload']}".encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        envelope["signature"] = b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    return json.dumps(envelope).encode()


SIGNER = PUBLISHER.leaf("unit-signer")
GOOD = sign_envelope(TARGET, SIGNER.key, SIGNER.chain)


def _crit_extra(p: dict[str, Any]) -> None:
    p["crit"].append("io.example.mustUnderstand")
    p["io.example.mustUnderstand"] = True


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"payload": "", "payload": ""}', "twice"),
        (json.dumps({"signatures": []}).encode(), "flattened"),
        (json.dumps({**json.loads(GOOD), "extra": 1}).encode(), "top-level members"),
        (json.dumps({**json.loads(GOOD), "protected": "***"}).encode(), "base64url"),
        (b"{" + b" " * MAX_ENVELOPE_BYTES + b"}", "exceeds the limit"),
        (_resign(GOOD, mutate_payload=lambda p: p["targetArtifact"].update(size=1)), "does not verify"),
        (_resign(GOOD, lambda p: p.update(cty="application/json"), key=SIGNER.key), "cty"),
        (_resign(GOOD, lambda p: p.update(crit=[]), key=SIGNER.key), "crit"),
        (_resign(GOOD, lambda p: p["crit"].append("alg"), key=SIGNER.key), "registered"),
        (_resign(GOOD, _crit_extra, key=SIGNER.key), "unknown critical"),
        (
            _resign(
                GOOD, lambda p: p.update({"io.cncf.notary.expiry": "2030-01-01T00:00:00Z"}), key=SIGNER.key
            ),
            "not marked critical",
        ),
        (_resign(GOOD, lambda p: p.update({"io.cncf.notary.signingScheme": "x"}), key=SIGNER.key), "scheme"),
        (
            _resign(GOOD, lambda p: p.update({"io.cncf.notary.signingTime": "yesterday"}), key=SIGNER.key),
            "RFC 3339",
        ),
        (_resign(GOOD, lambda p: p.update(alg="none"), key=SIGNER.key), "refused"),
        (_resign(GOOD, lambda p: p.update(alg="ES384"), key=SIGNER.key), "curve"),
        (_resign(GOOD, mutate_payload=lambda p: p.update(extra=1), key=SIGNER.key), "exactly one member"),
        (
            _resign(
                GOOD, mutate_payload=lambda p: p["targetArtifact"].update(digest="md5:x"), key=SIGNER.key
            ),
            "digest",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_malformed_or_altered_envelopes_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(EnvelopeError, match=reason):
        verify_envelope(data)


def test_rs256_is_refused_at_verification_and_needs_an_explicit_flag_to_produce() -> None:
    signer = PUBLISHER.leaf("rs-signer", rsa_key=True)
    with pytest.raises(UsageError, match="forbidden"):
        sign_envelope(TARGET, signer.key, signer.chain, alg="RS256")
    data = sign_envelope(TARGET, signer.key, signer.chain, alg="RS256", allow_forbidden=True)
    with pytest.raises(EnvelopeError, match="SUP-03 forbids RS256"):
        verify_envelope(data)


def test_rsa_below_3072_bits_is_refused() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = _leaf_for(key)
    data = sign_envelope(TARGET, key, (leaf, PUBLISHER.intermediate, PUBLISHER.root), alg="PS256")
    with pytest.raises(EnvelopeError, match="at least 3072"):
        verify_envelope(data)


def test_x5c_count_is_bounded() -> None:
    chain = (SIGNER.chain[0],) + (PUBLISHER.intermediate, PUBLISHER.root) * MAX_CERTIFICATES
    data = sign_envelope(TARGET, SIGNER.key, chain)
    with pytest.raises(EnvelopeError, match=f"at most {MAX_CERTIFICATES}"):
        verify_envelope(data)


# -- certificates ------------------------------------------------------------------------------------


NOW = PUBLISHER.now


def _leaf_for(
    key: Any, *, ekus: tuple[x509.ObjectIdentifier, ...] = (), usage_cert_sign: bool = False
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "custom leaf")]))
        .issuer_name(PUBLISHER.intermediate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, usage_cert_sign, False, False, False),
            critical=True,
        )
    )
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    return builder.sign(PUBLISHER.intermediate_key, hashes.SHA256())


def test_a_good_chain_has_no_failures() -> None:
    assert validate_chain(SIGNER.chain, [PUBLISHER.root], now=NOW, signing_time=NOW) == []


@pytest.mark.parametrize(
    "eku",
    [
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
        ExtendedKeyUsageOID.TIME_STAMPING,
    ],
    ids=lambda oid: oid._name,
)
def test_forbidden_ekus_are_refused(eku: x509.ObjectIdentifier) -> None:
    leaf = _leaf_for(ec.generate_private_key(ec.SECP256R1()), ekus=(ExtendedKeyUsageOID.CODE_SIGNING, eku))
    failures = leaf_rules(leaf)
    assert [f.check for f in failures] == [Check.AUTHENTICITY]
    assert "forbidden for code signing" in failures[0].message


def test_leaf_with_key_cert_sign_is_refused() -> None:
    leaf = _leaf_for(ec.generate_private_key(ec.SECP256R1()), usage_cert_sign=True)
    assert any("key_cert_sign" in f.message for f in leaf_rules(leaf))


def test_chain_loop_and_overlong_chain_and_missing_root_are_bounded_failures() -> None:
    leaf, intermediate, root = SIGNER.chain
    loop = validate_chain([leaf, intermediate, root, root], [root], now=NOW)
    assert len(loop) == 1 and "loop" in loop[0].message
    long = validate_chain([leaf] + [intermediate] * (MAX_CHAIN_LENGTH + 5), [root], now=NOW)
    assert len(long) == 1 and f"at most {MAX_CHAIN_LENGTH}" in long[0].message
    no_root = validate_chain([leaf, intermediate], [root], now=NOW)
    assert len(no_root) == 1 and "must end with its root" in no_root[0].message
    wrong_order = validate_chain([leaf, root, intermediate], [root], now=NOW)
    assert len(wrong_order) == 1 and "not issued by the next" in wrong_order[0].message


def test_cross_signed_ca_loop_is_refused() -> None:
    """Two CAs that issued each other: no root, so the chain is refused (no endless path walk)."""
    key_a, key_b = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    name_a = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "A")])
    name_b = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "B")])

    def ca(subject: x509.Name, key: Any, issuer: x509.Name, issuer_key: Any) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256())
        )

    a_by_b, b_by_a = ca(name_a, key_a, name_b, key_b), ca(name_b, key_b, name_a, key_a)
    failures = validate_chain([a_by_b, b_by_a], [b_by_a], now=NOW)
    assert len(failures) == 1 and failures[0].check is Check.AUTHENTICITY


def test_expired_certificate_without_timestamp_is_an_authentic_timestamp_failure() -> None:
    later = NOW + datetime.timedelta(days=400)
    failures = validate_chain(SIGNER.chain, [PUBLISHER.root], now=later, signing_time=NOW)
    assert failures and {f.check for f in failures} == {Check.AUTHENTIC_TIMESTAMP}
    assert "no RFC 3161 timestamp" in failures[0].message
    stamped = validate_chain(SIGNER.chain, [PUBLISHER.root], now=later, timestamp_present=True)
    assert "not validated" in stamped[0].message


def test_certificates_with_crl_locations_fail_the_revocation_check() -> None:
    crl = x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                [x509.UniformResourceIdentifier("http://crl.invalid/x.crl")], None, None, None
            )
        ]
    )
    signer = PUBLISHER.leaf("crl-signer", extra=(crl,))
    failures = validate_chain(signer.chain, [PUBLISHER.root], now=NOW)
    assert [f.check for f in failures] == [Check.REVOCATION]


def test_trust_store_directory_layout_and_symlinks(tmp_path: Path) -> None:
    PUBLISHER.write_trust_store(tmp_path)
    (tmp_path / "x509" / "ca" / "publisher" / "nested").mkdir()
    store = TrustStore.load(tmp_path)
    assert store.certificates(["ca:publisher"]) == (PUBLISHER.root,)
    assert store.warnings and "ignored" in store.warnings[0]
    (tmp_path / "x509" / "ca" / "linked").symlink_to(tmp_path / "x509" / "ca" / "publisher")
    with pytest.raises(UsageError, match="symlinks"):
        TrustStore.load(tmp_path)
    with pytest.raises(UsageError, match="not a trust store"):
        TrustStore.load(tmp_path / "x509")


# -- trust policy ------------------------------------------------------------------------------------


def _doc(*policies: dict[str, Any]) -> dict[str, Any]:
    return {"version": "1.0", "trustPolicies": list(policies)}


GOOD_POLICY = {
    "name": "p",
    "registryScopes": ["registry.example/acme/app"],
    "signatureVerification": {"level": "strict"},
    "trustStores": ["ca:publisher"],
    "trustedIdentities": ["*"],
}


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"version": "2.0", "trustPolicies": [GOOD_POLICY]}, "version"),
        (_doc(), "non-empty"),
        (_doc({**GOOD_POLICY, "signatureVerification": {"level": "lenient"}}), "not strict"),
        (
            _doc({**GOOD_POLICY, "registryScopes": ["*"], "signatureVerification": {"level": "skip"}}),
            "global",
        ),
        (_doc({**GOOD_POLICY, "registryScopes": ["*", "a/b"]}), "only scope"),
        (_doc({**GOOD_POLICY, "registryScopes": ["acme/*"]}), "fully qualified"),
        (_doc(GOOD_POLICY, {**GOOD_POLICY, "name": "q"}), "in both"),
        (_doc({**GOOD_POLICY, "trustStores": ["publisher"]}), "trust store"),
        (_doc({**GOOD_POLICY, "trustedIdentities": ["x509.subject: O=acme"]}), "C, ST and O"),
        (
            _doc(
                {
                    **GOOD_POLICY,
                    "signatureVerification": {"level": "strict", "override": {"integrity": "log"}},
                }
            ),
            "cannot be overridden",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_invalid_trust_policies_are_refused(document: dict[str, Any], reason: str) -> None:
    with pytest.raises(UsageError, match=reason):
        TrustPolicyDocument.parse(document)


def test_scope_selection_prefers_exact_match_over_global() -> None:
    document = TrustPolicyDocument.parse(
        _doc(
            GOOD_POLICY,
            {
                **GOOD_POLICY,
                "name": "global",
                "registryScopes": ["*"],
                "signatureVerification": {"level": "audit"},
            },
        )
    )
    assert document.select("registry.example/acme/app").name == "p"  # type: ignore[union-attr]
    assert document.select("registry.example/other").name == "global"  # type: ignore[union-attr]
    assert TrustPolicyDocument.parse(_doc(GOOD_POLICY)).select("registry.example/other") is None


@pytest.mark.parametrize(
    ("level", "check", "outcome"),
    [
        (Level.STRICT, Check.EXPIRY, Outcome.FAILED),
        (Level.PERMISSIVE, Check.EXPIRY, Outcome.VERIFIED),
        (Level.PERMISSIVE, Check.REVOCATION, Outcome.VERIFIED),
        (Level.PERMISSIVE, Check.AUTHENTICITY, Outcome.FAILED),
        (Level.AUDIT, Check.AUTHENTICITY, Outcome.VERIFIED),
        (Level.AUDIT, Check.INTEGRITY, Outcome.FAILED),
    ],
)
def test_level_table(level: Level, check: Check, outcome: Outcome) -> None:
    policy = strict(level=level).policies[0]
    result, enforced, logged = policy.decide([Failure(check, "x")])
    assert result is outcome
    assert (enforced, logged) == (
        ((Failure(check, "x"),), ()) if outcome is Outcome.FAILED else ((), (Failure(check, "x"),))
    )


def test_override_relaxes_one_check_only() -> None:
    policy = strict(overrides={"expiry": "log", "revocation": "skip"}).policies[0]
    assert policy.decide([Failure(Check.EXPIRY, "x")])[0] is Outcome.VERIFIED
    assert policy.decide([Failure(Check.REVOCATION, "x")]) == (Outcome.VERIFIED, (), ())
    assert policy.decide([Failure(Check.AUTHENTIC_TIMESTAMP, "x")])[0] is Outcome.FAILED


def test_trusted_identities_match_subject_rdns() -> None:
    assert parse_identity(r"x509.subject: C=DE, ST=Berlin, O=a\, b") == {
        "C": "DE",
        "ST": "Berlin",
        "O": "a, b",
    }
    leaf = SIGNER.chain[0]
    mine = strict(identities=["x509.subject: C=DE, ST=Berlin, O=vendor-a"]).policies[0]
    theirs = strict(identities=["x509.subject: C=DE, ST=Berlin, O=vendor-b"]).policies[0]
    assert mine.identity_allowed(leaf)
    assert not theirs.identity_allowed(leaf)


# -- against a registry ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    if not HAVE_REGISTRY:
        pytest.skip("docker-registry (Debian package) is not installed: run scripts/setup")
    with LocalRegistry() as running:
        yield running


@pytest.fixture(scope="module")
def fixtures(registry: LocalRegistry) -> dict[Fixture, SignatureFixture]:
    return generate_fixtures(registry.host, package_dir=VENDOR_A, publisher=PUBLISHER)


@pytest.fixture
def client(registry: LocalRegistry) -> Iterator[OciClient]:
    with OciClient(registry.host) as opened:
        yield opened


def _verify(
    client: OciClient, reference: str, level: Level = Level.STRICT, **options: Any
) -> SignatureVerdict:
    return verify_artifact(client, reference, strict(level=level, **options), STORE)


@needs_registry
@pytest.mark.parametrize("level", LEVELS, ids=str)
@pytest.mark.parametrize("kind", MANIFEST_FIXTURES, ids=str)
def test_each_fixture_gets_its_expected_verdict(
    fixtures: dict[Fixture, SignatureFixture], client: OciClient, kind: Fixture, level: Level
) -> None:
    verdict = _verify(client, fixtures[kind].reference, level)
    assert verdict.outcome is EXPECTED[kind][level], verdict.reason
    assert verdict.digest == fixtures[kind].digest
    if verdict.outcome is Outcome.FAILED:
        assert verdict.enforced and verdict.reason
    elif kind not in (Fixture.VALID, Fixture.VALID_PS256):
        assert verdict.logged, "a bad fixture accepted under a lenient level is still reported"
    else:
        assert not verdict.logged and verdict.signature


@needs_registry
@pytest.mark.parametrize(
    ("kind", "check", "words"),
    [
        (Fixture.UNSIGNED, Check.AUTHENTICITY, "no Notary signature"),
        (Fixture.TAMPERED, Check.AUTHENTICITY, "no Notary signature"),
        (Fixture.UNTRUSTED_CA, Check.AUTHENTICITY, "does not lead to a certificate in ca:publisher"),
        (Fixture.EXPIRED_NO_TIMESTAMP, Check.AUTHENTIC_TIMESTAMP, "no RFC 3161 timestamp"),
        (Fixture.RS256, Check.INTEGRITY, "RS256"),
        (Fixture.FORBIDDEN_EKU, Check.AUTHENTICITY, "serverAuth is forbidden"),
        (Fixture.OTHER_DIGEST, Check.INTEGRITY, "not over this artifact's manifest"),
    ],
)
def test_strict_failures_name_the_reason(
    fixtures: dict[Fixture, SignatureFixture], client: OciClient, kind: Fixture, check: Check, words: str
) -> None:
    verdict = _verify(client, fixtures[kind].reference)
    assert any(f.check is check and words in f.message for f in verdict.enforced), verdict.reason


@needs_registry
def test_verification_is_against_the_digest_the_tag_resolves_to(
    fixtures: dict[Fixture, SignatureFixture], client: OciClient
) -> None:
    tampered = fixtures[Fixture.TAMPERED]
    assert tampered.signature is not None
    signed_digest = tampered.signature.subject.digest
    assert signed_digest != tampered.digest
    by_old_digest = OciReference.parse(tampered.reference).with_digest(signed_digest)
    assert _verify(client, str(by_old_digest)).outcome is Outcome.VERIFIED
    assert _verify(client, tampered.reference).outcome is Outcome.FAILED


@needs_registry
def test_signatures_are_referrers_in_the_tag_schema_index(
    fixtures: dict[Fixture, SignatureFixture], client: OciClient
) -> None:
    valid = fixtures[Fixture.VALID]
    repository = OciReference.parse(valid.reference).repository
    listing = find_signatures(client, repository, valid.digest)
    assert listing.source == "tag-schema"
    assert [s.artifact_type for s in listing.signatures] == [NOTARY_SIGNATURE]
    index, media_type, _ = client.get_manifest(repository, referrers_tag(valid.digest))
    assert media_type == "application/vnd.oci.image.index.v1+json"
    body, _, _ = client.get_manifest(repository, listing.signatures[0].digest)
    manifest = json.loads(body)
    assert manifest["artifactType"] == NOTARY_SIGNATURE
    assert manifest["config"]["mediaType"] == NOTARY_SIGNATURE
    assert manifest["subject"]["digest"] == valid.digest
    assert [layer["mediaType"] for layer in manifest["layers"]] == ["application/jose+json"]
    assert json.loads(manifest["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"])


@needs_registry
def test_skip_level_and_missing_policy(fixtures: dict[Fixture, SignatureFixture], client: OciClient) -> None:
    unsigned = fixtures[Fixture.UNSIGNED]
    ref = OciReference.parse(unsigned.reference)
    skip = policy_document(level=Level.SKIP, scopes=[f"{ref.registry}/{ref.repository}"])
    assert verify_artifact(client, ref, skip, STORE).outcome is Outcome.SKIPPED
    other = policy_document(level=Level.STRICT, scopes=["registry.example/elsewhere"])
    no_policy = verify_artifact(client, ref, other, STORE)
    assert no_policy.outcome is Outcome.SKIPPED and "no trust policy" in no_policy.reason
    assert verify_artifact(client, ref, other, STORE, unmatched="fail").outcome is Outcome.FAILED


@needs_registry
def test_signature_expiry_and_its_override(registry: LocalRegistry, client: OciClient) -> None:
    published = publish_package(VENDOR_A, registry.host, namespace="sig-expiry")
    repository = OciReference.parse(published.reference).repository
    signer = PUBLISHER.leaf("release-signer")
    sign_artifact(
        client,
        repository,
        published.manifest_digest,
        signer.key,
        signer.chain,
        expiry=PUBLISHER.now - datetime.timedelta(minutes=1),
    )
    verdict = _verify(client, published.reference)
    assert verdict.outcome is Outcome.FAILED and verdict.enforced[0].check is Check.EXPIRY
    relaxed = verify_artifact(client, published.reference, strict(overrides={"expiry": "log"}), STORE)
    assert relaxed.outcome is Outcome.VERIFIED and relaxed.logged[0].check is Check.EXPIRY


# -- bad input through the registry ---------------------------------------------------------------------


def _attach_raw(
    client: OciClient,
    registry: LocalRegistry,
    namespace: str,
    envelope: bytes,
    *,
    declared: int | None = None,
) -> tuple[str, str]:
    """Publish vendor-a and attach a signature manifest whose layer is ``envelope`` (declared size)."""
    published = publish_package(VENDOR_A, registry.host, namespace=namespace)
    repository = OciReference.parse(published.reference).repository
    subject = manifest_descriptor(client, repository, published.manifest_digest)
    signed = attach_envelope(client, repository, subject, envelope, declared_size=declared)
    return published.reference, signed.signature_digest


@needs_registry
@pytest.mark.parametrize("level", LEVELS, ids=str)
def test_malformed_envelope_is_an_integrity_failure(
    registry: LocalRegistry, client: OciClient, level: Level
) -> None:
    reference, _ = _attach_raw(client, registry, f"sig-malformed-{level}", b'{"payload": [1, 2')
    verdict = _verify(client, reference, level)
    assert verdict.outcome is Outcome.FAILED
    assert verdict.enforced[0].check is Check.INTEGRITY and "not JSON" in verdict.reason


@needs_registry
def test_oversized_envelope_is_refused_by_its_declared_size_without_fetching(
    registry: LocalRegistry, client: OciClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = b" " * (MAX_ENVELOPE_BYTES + 1)
    reference, _ = _attach_raw(client, registry, "sig-huge", huge)
    fetched: list[str] = []
    original = OciClient.get_blob

    def spy(self: OciClient, repository: str, digest: str, *, max_bytes: int) -> bytes:
        fetched.append(digest)
        return original(self, repository, digest, max_bytes=max_bytes)

    monkeypatch.setattr(OciClient, "get_blob", spy)
    verdict = _verify(client, reference)
    assert verdict.outcome is Outcome.FAILED and "not fetched" in verdict.reason
    assert fetched == []


@needs_registry
def test_envelope_larger_than_declared_is_cut_off_at_the_cap(
    registry: LocalRegistry, client: OciClient
) -> None:
    huge = b" " * (MAX_ENVELOPE_BYTES * 2)
    reference, _ = _attach_raw(client, registry, "sig-lying", huge, declared=100)
    verdict = _verify(client, reference, Level.AUDIT)
    assert verdict.outcome is Outcome.FAILED
    assert verdict.enforced[0].check is Check.INTEGRITY and "limit" in verdict.reason


@needs_registry
def test_referrers_index_pointing_nowhere_is_reported_not_followed(
    registry: LocalRegistry, client: OciClient
) -> None:
    signer = PUBLISHER.leaf("release-signer")
    published = publish_package(VENDOR_A, registry.host, namespace="sig-dangling")
    repository = OciReference.parse(published.reference).repository
    signed = sign_artifact(client, repository, published.manifest_digest, signer.key, signer.chain)
    response = requests.delete(
        f"{registry.url}/v2/{repository}/manifests/{signed.signature_digest}", timeout=5
    )
    assert response.status_code == 202
    verdict = _verify(client, published.reference)
    assert verdict.outcome is Outcome.FAILED
    assert "no Notary signature" in verdict.reason
    assert any("listed but the registry does not have it" in note for note in verdict.notes)
    audit = _verify(client, published.reference, Level.AUDIT)
    assert audit.outcome is Outcome.VERIFIED and audit.logged


@needs_registry
def test_garbage_referrers_index_is_a_note_not_a_crash(registry: LocalRegistry, client: OciClient) -> None:
    published = publish_package(VENDOR_A, registry.host, namespace="sig-garbage-index")
    repository = OciReference.parse(published.reference).repository
    # the registry validates index shape, so squat the tag with an image manifest instead of an index
    body, _, _ = client.get_manifest(repository, published.manifest_digest)
    client.push_manifest(repository, referrers_tag(published.manifest_digest), body)
    verdict = _verify(client, published.reference)
    assert verdict.outcome is Outcome.FAILED and "no Notary signature" in verdict.reason
    assert any("no manifests array" in note for note in verdict.notes)


@needs_registry
def test_signature_with_a_looping_chain_is_refused(registry: LocalRegistry, client: OciClient) -> None:
    published = publish_package(VENDOR_A, registry.host, namespace="sig-loop")
    repository = OciReference.parse(published.reference).repository
    leaf, intermediate, root = SIGNER.chain
    looped = (leaf, intermediate, root, intermediate, root)
    sign_artifact(client, repository, published.manifest_digest, SIGNER.key, looped)
    verdict = _verify(client, published.reference)
    assert verdict.outcome is Outcome.FAILED and "loop" in verdict.reason


# -- the whole package as findings (manifest and components, SUP-03 §2) ---------------------------------

STRICT_REQUIREMENT = {
    Fixture.UNSIGNED: "SIGN-101",
    Fixture.TAMPERED: "SIGN-101",
    Fixture.COMPONENT_UNSIGNED: "SIGN-102",
    Fixture.HELM_UNSIGNED: "SIGN-103",
    Fixture.RS256: "SIGN-106",
    Fixture.OTHER_DIGEST: "SIGN-107",
    Fixture.UNTRUSTED_CA: "SIGN-108",
    Fixture.FORBIDDEN_EKU: "SIGN-109",
    Fixture.EXPIRED_NO_TIMESTAMP: "SIGN-110",
}


def _check(reference: str, level: Level = Level.STRICT) -> SignatureCheck:
    return check_signatures(reference, Trust(strict(level=level), STORE))


def _publish(registry: LocalRegistry, namespace: str) -> tuple[str, str, Descriptor]:
    """vendor-a published unsigned: (reference, repository, the package manifest's descriptor)."""
    published = publish_package(VENDOR_A, registry.host, namespace=namespace)
    repository = OciReference.parse(published.reference).repository
    with OciClient(registry.host) as client:
        return (
            published.reference,
            repository,
            manifest_descriptor(client, repository, published.manifest_digest),
        )


@needs_registry
@pytest.mark.parametrize("level", LEVELS, ids=str)
@pytest.mark.parametrize("kind", list(Fixture), ids=str)
def test_each_fixture_gets_its_expected_package_verdict(
    fixtures: dict[Fixture, SignatureFixture], kind: Fixture, level: Level
) -> None:
    report = _check(fixtures[kind].reference, level).report()
    assert report.conformant is (EXPECTED[kind][level] is Outcome.VERIFIED), report.as_dict()
    if kind in STRICT_REQUIREMENT:
        wanted = "fail" if EXPECTED[kind][level] is Outcome.FAILED else "warn"
        assert report.verdicts()[STRICT_REQUIREMENT[kind]] == wanted, report.as_dict()
    else:
        assert not report.findings and set(report.verdicts().values()) == {"pass"}


@needs_registry
@pytest.mark.parametrize("kind", list(STRICT_REQUIREMENT), ids=str)
def test_strict_findings_name_the_requirement_of_their_rule(
    fixtures: dict[Fixture, SignatureFixture], kind: Fixture
) -> None:
    check = _check(fixtures[kind].reference)
    assert {f.requirement for f in check.findings} == {STRICT_REQUIREMENT[kind]}, check.notes


@needs_registry
def test_only_examined_signatures_check_the_signature_rules(
    fixtures: dict[Fixture, SignatureFixture],
) -> None:
    signed = _check(fixtures[Fixture.VALID].reference).report().verdicts()
    assert signed == dict.fromkeys(["SIGN-101", "SIGN-102", *(f"SIGN-{n}" for n in range(106, 111))], "pass")
    unsigned = _check(fixtures[Fixture.UNSIGNED].reference).report().verdicts()
    assert unsigned["SIGN-101"] == "fail" and "SIGN-110" in unsigned  # the components' signatures were read
    skipped = check_signatures(
        fixtures[Fixture.UNSIGNED].reference,
        Trust(policy_document(level="skip", scopes=fixtures[Fixture.UNSIGNED].scopes()), STORE),
    )
    assert not skipped.examined and not skipped.checked and "level skip" in " ".join(skipped.notes)


@needs_registry
def test_a_signature_outside_the_profile_algorithms_is_sign106_unless_another_one_verifies(
    registry: LocalRegistry, client: OciClient
) -> None:
    reference, repository, subject = _publish(registry, "sig-ps384")
    rsa_signer = PUBLISHER.leaf("notation-default-rsa", rsa_key=True)
    sign_artifact(client, repository, subject.digest, rsa_signer.key, rsa_signer.chain, alg="PS384")
    only = [f for f in _check(reference).findings if f.requirement == "SIGN-106"]
    assert [f.level.value for f in only] == ["MUST"] and "PS384" in only[0].message
    sign_artifact(client, repository, subject.digest, SIGNER.key, SIGNER.chain)
    both = _check(reference)
    assert not [f for f in both.findings if f.requirement == "SIGN-106"]
    assert both.verdicts[0].verdict.algorithm == "ES256"


@needs_registry
def test_a_cose_envelope_is_not_judged_against_the_package(
    registry: LocalRegistry, client: OciClient
) -> None:
    reference, repository, subject = _publish(registry, "sig-cose")
    attach_envelope(
        client, repository, subject, bytes.fromhex("d28443a10126a0f640"), media_type=COSE_MEDIA_TYPE
    )
    check = _check(reference)
    assert not [f for f in check.findings if f.requirement == "SIGN-101"]
    assert "SIGN-101" not in check.checked and "SIGN-102" in check.checked  # the components did fail
    assert any("not judged (SIGN-101)" in note and "COSE" in note for note in check.notes)
    assert any("inconclusive" in note for note in check.notes)


@needs_registry
def test_an_expired_signer_with_an_unvalidated_timestamp_is_inconclusive_not_failed(
    registry: LocalRegistry, client: OciClient
) -> None:
    reference, repository, subject = _publish(registry, "sig-timestamped")
    old = PUBLISHER.leaf(
        "old-signer",
        not_before=PUBLISHER.now - datetime.timedelta(days=60),
        not_after=PUBLISHER.now - datetime.timedelta(days=1),
    )
    envelope = json.loads(
        sign_envelope(subject, old.key, old.chain, signing_time=PUBLISHER.now - datetime.timedelta(days=10))
    )
    envelope["header"][TIMESTAMP_SIGNATURE] = base64.b64encode(b"not checked").decode()  # unsigned header
    attach_envelope(client, repository, subject, json.dumps(envelope).encode())
    check = _check(reference)
    assert not [f for f in check.findings if f.requirement in ("SIGN-101", "SIGN-110")]
    assert "SIGN-110" not in check.checked
    assert any("RFC 3161 timestamp is not validated" in note for note in check.notes)


@needs_registry
def test_a_mirrored_copy_keeps_its_signatures_byte_for_byte(
    fixtures: dict[Fixture, SignatureFixture], client: OciClient
) -> None:
    valid = fixtures[Fixture.VALID]
    source = OciReference.parse(valid.reference)
    copy = mirror_artifact(client, source.repository, valid.digest, "plant-mirror/" + source.repository)
    assert (copy.repository, copy.digest) == ("plant-mirror/" + source.repository, valid.digest)
    originals = find_signatures(client, source.repository, valid.digest).signatures
    mirrored = find_signatures(client, copy.repository, valid.digest).signatures
    assert [s.digest for s in mirrored] == [s.digest for s in originals] and mirrored
    assert _verify(client, str(copy)).outcome is Outcome.VERIFIED


# -- trust material and signing material --------------------------------------------------------------


def test_trust_load_cross_checks_the_named_stores(tmp_path: Path) -> None:
    PUBLISHER.write_trust_store(tmp_path / "store", "publisher")
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(policy_data(level="strict", scopes=["*"], trust_store="acme")))
    with pytest.raises(UsageError, match=r"ca:acme, but .*x509/ca/acme holds no certificate"):
        Trust.load(policy, tmp_path / "store")
    with pytest.raises(UsageError, match="not a directory"):
        Trust.load(policy, tmp_path / "missing")
    policy.write_text(json.dumps(policy_data(level="strict", scopes=["*"])))
    assert Trust.load(policy, tmp_path / "store").store.stores["ca:publisher"] == (PUBLISHER.root,)


def test_trust_policy_reads_are_bounded(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UsageError, match="nested too deeply"):
        TrustPolicyDocument.load(deep)
    huge = tmp_path / "huge.json"
    with huge.open("wb") as sparse:
        sparse.truncate(4 * 1024**3)  # 4 GiB on paper, nothing on disk: read only up to the limit
    with pytest.raises(InputError, match="larger than"):
        TrustPolicyDocument.load(huge)
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(policy_data(level="strict", scopes=["registry.example/acme/*"])))
    with pytest.raises(UsageError, match="not a fully qualified"):
        TrustPolicyDocument.load(partial)


def test_signing_problems_are_what_notary_checks_at_signing_time() -> None:
    assert signing_problems(SIGNER.chain, now=PUBLISHER.now) == []
    leaf, intermediate, root = SIGNER.chain
    assert "loop" in signing_problems((leaf, intermediate, root, intermediate), now=PUBLISHER.now)[0].message
    later = PUBLISHER.now + datetime.timedelta(days=400)
    assert any("not valid now" in f.message for f in signing_problems(SIGNER.chain, now=later))
    tls = PUBLISHER.leaf("tls-server", ekus=(ExtendedKeyUsageOID.SERVER_AUTH,))
    assert any("serverAuth" in f.message for f in signing_problems(tls.chain, now=PUBLISHER.now))
