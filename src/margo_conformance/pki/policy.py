"""SVID validation as small composable policy objects (house style: sigstore-python).

Each policy makes one decision about a presented chain (``chain[0]`` is the peer's leaf) and raises
``SvidError`` naming the rule it enforces. ``client_policy`` and ``wfm_policy`` compose them in the order
SVID-006 gives:
  (a) read the SPIFFE ID from the leaf URI SAN; its trust domain must be the verifier's own;
  (b) chain to an anchor of the bundle, every certificate inside its validity period, no AIA fetching;
  (c) leaf constraints: cA=false; no keyCertSign/cRLSign; spiffe scheme, non-root path; one URI SAN.
then SVID-002 (allowed keys and signatures) and the WFM Identity Profile (WIP-005 / WIP-007).

Step (b)'s chain building is done by the TLS stack (OpenSSL, against the bundle) during the handshake;
``ChainsToBundle`` repeats it in Python for chains that did not come through a handshake (files, or
Python >= 3.13, which exposes the peer's whole chain).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import SignatureAlgorithmOID

from .ids import SpiffeId, SvidError, check_segment

DEFAULT_SKEW = datetime.timedelta(seconds=60)
MIN_RSA_BITS = 3072
ALLOWED_CURVES = ("secp256r1", "secp384r1")
ALLOWED_SIGNATURE_HASHES = (hashes.SHA256, hashes.SHA384)


class SvidPolicy(Protocol):
    """One decision about a presented chain; raises SvidError, returns nothing."""

    def check(self, chain: Sequence[x509.Certificate]) -> None: ...


class AllOf:
    """Every policy, in order; the first refusal wins."""

    def __init__(self, policies: Sequence[SvidPolicy]) -> None:
        if not policies:
            raise ValueError("AllOf needs at least one policy: an empty policy would accept anything")
        self.policies = tuple(policies)

    def check(self, chain: Sequence[x509.Certificate]) -> None:
        for policy in self.policies:
            policy.check(chain)


def leaf_of(chain: Sequence[x509.Certificate]) -> x509.Certificate:
    """The peer's leaf; a peer that presented nothing has no SVID (TLS-002)."""
    if not chain:
        raise SvidError("TLS-002: the peer presented no certificate")
    return chain[0]


def uri_sans(certificate: x509.Certificate) -> list[str]:
    """Every URI in the subjectAltName extension (none when there is no SAN)."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def spiffe_id_of(certificate: x509.Certificate) -> SpiffeId:
    """The SPIFFE ID in the single URI SAN (SVID-006(a)); SvidError otherwise."""
    uris = uri_sans(certificate)
    if len(uris) != 1:
        raise SvidError(f"SVID-006(c): leaf has {len(uris)} URI SANs; exactly one URI SAN is required")
    return SpiffeId.parse(uris[0])


class OneUriSan:
    """SVID-006(c): exactly one URI SAN."""

    def check(self, chain: Sequence[x509.Certificate]) -> None:
        count = len(uri_sans(leaf_of(chain)))
        if count != 1:
            raise SvidError(f"SVID-006(c): leaf has {count} URI SANs; exactly one URI SAN is required")


class SpiffeScheme:
    """SVID-006(c): the URI SAN is a ``spiffe`` URI with a non-root path."""

    def check(self, chain: Sequence[x509.Certificate]) -> None:
        spiffe_id_of(leaf_of(chain))


class TrustDomainIs:
    """SVID-006(a): the SPIFFE ID's trust domain is the verifier's own; DNS names never override it."""

    def __init__(self, trust_domain: str) -> None:
        self.trust_domain = trust_domain

    def check(self, chain: Sequence[x509.Certificate]) -> None:
        found = spiffe_id_of(leaf_of(chain)).trust_domain
        if found != self.trust_domain:
            raise SvidError(
                f"SVID-006(a): trust domain {found!r} is not the verifier's {self.trust_domain!r}"
            )


class LeafNotCa:
    """SVID-006(c): the leaf has cA=false and neither keyCertSign nor cRLSign."""

    def check(self, chain: Sequence[x509.Certificate]) -> None:
        leaf = leaf_of(chain)
        try:
            constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is not None and constraints.ca:
            raise SvidError("SVID-006(c): leaf has cA=true")
        try:
            usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            return
        if usage.key_cert_sign:
            raise SvidError("SVID-006(c): leaf has keyCertSign key usage")
        if usage.crl_sign:
            raise SvidError("SVID-006(c): leaf has cRLSign key usage")


class AllowedKey:
    """SVID-002: the leaf key is ECDSA P-256/P-384, Ed25519 or RSA >= 3072 bits."""

    def check(self, chain: Sequence[x509.Certificate]) -> None:
        key = leaf_of(chain).public_key()
        if isinstance(key, ec.EllipticCurvePublicKey):
            if key.curve.name not in ALLOWED_CURVES:
                raise SvidError(f"SVID-002: ECDSA curve {key.curve.name} is not P-256 or P-384")
        elif isinstance(key, rsa.RSAPublicKey):
            if key.key_size < MIN_RSA_BITS:
                raise SvidError(f"SVID-002: RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} required")
        elif not isinstance(key, ed25519.Ed25519PublicKey):
            raise SvidError(f"SVID-002: key type {type(key).__name__} is not allowed")


class AllowedSignature:
    """SVID-002: every certificate is signed with ES256/ES384, Ed25519, or RSA (v1.5 or PSS) over SHA-256."""

    def check(self, chain: Sequence[x509.Certificate]) -> None:
        for certificate in chain:
            algorithm = certificate.signature_hash_algorithm
            if algorithm is None:
                if certificate.signature_algorithm_oid != SignatureAlgorithmOID.ED25519:
                    raise SvidError(f"SVID-002: {_label(certificate, chain)} has an unsupported signature")
                continue
            is_rsa = isinstance(certificate.signature_algorithm_parameters, padding.PKCS1v15 | padding.PSS)
            allowed = (hashes.SHA256,) if is_rsa else ALLOWED_SIGNATURE_HASHES
            if not isinstance(algorithm, allowed):
                kind = "RSA" if is_rsa else "ECDSA"
                raise SvidError(
                    f"SVID-002: {_label(certificate, chain)} has an {kind} signature over {algorithm.name}"
                )


class Validity:
    """SVID-006(b) / TLS-008: every certificate in the chain is inside its validity period (± skew)."""

    def __init__(self, now: datetime.datetime | None = None, skew: datetime.timedelta = DEFAULT_SKEW) -> None:
        self.now = now
        self.skew = skew

    def check(self, chain: Sequence[x509.Certificate]) -> None:
        now = self.now or datetime.datetime.now(datetime.UTC)
        leaf_of(chain)
        for certificate in chain:
            if now > certificate.not_valid_after_utc + self.skew:
                raise SvidError(
                    f"SVID-006(b): {_label(certificate, chain)} expired at "
                    f"{certificate.not_valid_after_utc.isoformat()}"
                )
            if now < certificate.not_valid_before_utc - self.skew:
                raise SvidError(
                    f"SVID-006(b): {_label(certificate, chain)} is not yet valid (from "
                    f"{certificate.not_valid_before_utc.isoformat()})"
                )


class ChainsToBundle:
    """SVID-006(b): the presented chain leads to an anchor of the bundle; nothing is fetched (no AIA)."""

    def __init__(self, anchors: Sequence[x509.Certificate], now: datetime.datetime | None = None) -> None:
        if not anchors:
            raise SvidError("TB-004: no X.509 anchors; SVIDs must not be validated against an empty bundle")
        self.store = verification.Store(list(anchors))
        self.now = now

    def check(self, chain: Sequence[x509.Certificate]) -> None:
        leaf = leaf_of(chain)
        builder = (
            verification.PolicyBuilder()
            .store(self.store)
            .time(self.now or datetime.datetime.now(datetime.UTC))
            # Leaf constraints are the other policies' business; here only the path counts.
            .extension_policies(
                ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=verification.ExtensionPolicy.permit_all(),
            )
        )
        try:
            builder.build_client_verifier().verify(leaf, list(chain[1:]))
        except verification.VerificationError as exc:
            message = f"SVID-006(b): chain does not lead to an anchor of the trust bundle ({exc})"
            raise SvidError(message) from None


class ExactSpiffeId:
    """WIP-007: the peer is exactly the expected SPIFFE ID (case-sensitive, WIP-003)."""

    def __init__(self, expected: SpiffeId) -> None:
        self.expected = expected

    def check(self, chain: Sequence[x509.Certificate]) -> None:
        found = spiffe_id_of(leaf_of(chain))
        if found != self.expected:
            raise SvidError(f"WIP-007: peer is {found}, expected exactly {self.expected}")


class ClientShape:
    """WIP-005: exactly ``spiffe://<td>/margo/wfm/<wfm-id>/client/<wfm-client-id>`` with the WFM's own ids."""

    def __init__(self, trust_domain: str, wfm_id: str) -> None:
        self.trust_domain = trust_domain
        self.wfm_id = wfm_id

    def check(self, chain: Sequence[x509.Certificate]) -> None:
        found = spiffe_id_of(leaf_of(chain))
        prefix = ("margo", "wfm", self.wfm_id, "client")
        parts = found.segments
        if found.trust_domain != self.trust_domain or len(parts) != 5 or parts[:4] != prefix:
            raise SvidError(
                f"WIP-005: {found} is not a client of spiffe://{self.trust_domain}/margo/wfm/{self.wfm_id}"
            )
        try:
            check_segment(parts[4])
        except SvidError as exc:
            raise SvidError(f"WIP-005: {found}: {exc}") from None


def _common(trust_domain: str) -> list[SvidPolicy]:
    """SVID-006 (a)–(c) and SVID-002, for whatever the peer's role."""
    return [
        TrustDomainIs(trust_domain),  # (a) (reading the ID needs exactly one URI SAN: see spiffe_id_of)
        Validity(),  # (b) the chain itself is built by OpenSSL against the bundle in the handshake
        LeafNotCa(),  # (c) cA=false, no keyCertSign / cRLSign
        SpiffeScheme(),  # (c) spiffe scheme, non-root path
        OneUriSan(),  # (c) exactly one URI SAN
        AllowedKey(),  # SVID-002
        AllowedSignature(),  # SVID-002
    ]


def client_policy(trust_domain: str, wfm_id: str) -> SvidPolicy:
    """What a WFM applies to a peer after the handshake (WIP-005)."""
    return AllOf([*_common(trust_domain), ClientShape(trust_domain, wfm_id)])


def wfm_policy(trust_domain: str, wfm_id: str) -> SvidPolicy:
    """What a client applies to the WFM (WIP-007): ids from its own SVID, exact match."""
    return AllOf([*_common(trust_domain), ExactSpiffeId(SpiffeId.wfm(trust_domain, wfm_id))])


def _label(certificate: x509.Certificate, chain: Sequence[x509.Certificate]) -> str:
    return "leaf" if certificate is chain[0] else f"certificate {certificate.subject.rfc4514_string()!r}"
