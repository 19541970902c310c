"""Notary Project JWS signature envelopes over an OCI descriptor (signing scheme ``notary.x509``).

What this module implements (Notary Project ``signature-envelope-jws.md`` and
``signature-specification.md``, SUP-03's crypto profile on top):

* the envelope is *flattened* JWS JSON serialization with exactly the members ``payload``,
  ``protected``, ``header`` and ``signature`` (no other top-level member is allowed);
* the payload is ``{"targetArtifact": <OCI descriptor>}`` (media type
  ``application/vnd.cncf.notary.payload.v1+json``, which is the ``cty`` protected header);
* the protected header carries ``alg``, ``cty``, ``crit``, ``io.cncf.notary.signingScheme``
  (``notary.x509``), ``io.cncf.notary.signingTime`` and optionally ``io.cncf.notary.expiry``;
  ``crit`` lists the signing scheme (and the expiry when present), never a registered header, and an
  unknown critical header fails verification;
* the unprotected ``header`` carries ``x5c``: the chain, leaf first, each certificate standard-base64
  DER; ``io.cncf.notary.timestampSignature`` (RFC 3161) and ``io.cncf.notary.signingAgent`` are
  recognised but the timestamp is NOT validated here (see ``VerifiedEnvelope.timestamp_present``);
* the signing input is ``ASCII(b64url(protected) '.' b64url(payload))``; ECDSA signatures are the
  raw ``r || s`` form of RFC 7518 §3.4, RSA-PSS uses MGF1 with the same hash and a salt as long as
  the hash (RFC 7518 §3.5).

Algorithms: ES256/ES384/ES512 on P-256/P-384/P-521 and PS256/PS384/PS512 on RSA keys of at least
3072 bits (SUP-03: "PS256 (RSA-PSS ≥ 3072)"; Notary's key-size-to-algorithm table is not enforced,
errata INC-121). SUP-03 signers use ``PROFILE_ALGORITHMS`` (ES256, PS256); the others verify, and the
signing report says when a package has no signature in the profile. ``alg`` must match the signing
certificate's key (algorithm-substitution guard). ``RS256`` (and every other ``alg``) is refused at
verification with a reason naming SUP-03; it can be *produced* only with ``allow_forbidden=True``,
for negative fixtures.

Every parse is bounded: the envelope size (``MAX_ENVELOPE_BYTES``), the number of certificates in
``x5c`` (``MAX_CERTIFICATES``) and the size of each. Every failure is an ``EnvelopeError`` with one
line of reason; nothing here raises anything else on hostile input.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

from ..errors import MargoError, UsageError
from .policy import Rule

JWS_MEDIA_TYPE = "application/jose+json"
COSE_MEDIA_TYPE = "application/cose"
PAYLOAD_CONTENT_TYPE = "application/vnd.cncf.notary.payload.v1+json"

SIGNING_SCHEME = "io.cncf.notary.signingScheme"
SIGNING_TIME = "io.cncf.notary.signingTime"
AUTHENTIC_SIGNING_TIME = "io.cncf.notary.authenticSigningTime"
EXPIRY = "io.cncf.notary.expiry"
TIMESTAMP_SIGNATURE = "io.cncf.notary.timestampSignature"
SIGNING_AGENT = "io.cncf.notary.signingAgent"
SCHEME_X509 = "notary.x509"
SCHEME_SIGNING_AUTHORITY = "notary.x509.signingAuthority"

AGENT = "margo-conformance"

MAX_ENVELOPE_BYTES = 512 * 1024
MAX_CERTIFICATES = 10
MAX_CERTIFICATE_BYTES = 16 * 1024
MAX_HEADER_BYTES = 16 * 1024
MAX_PAYLOAD_BYTES = 64 * 1024

_TOP_LEVEL = {"payload", "protected", "header", "signature"}
_REGISTERED = {"alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit"}
_UNDERSTOOD_CRITICAL = {SIGNING_SCHEME, EXPIRY}
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_DIGEST = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")


@dataclass(frozen=True)
class _Algorithm:
    name: str
    family: str  # "ec" | "pss" | "pkcs1"
    hash: type[hashes.HashAlgorithm]
    curve: type[ec.EllipticCurve] | None = None


_ALGORITHMS = {
    "ES256": _Algorithm("ES256", "ec", hashes.SHA256, ec.SECP256R1),
    "ES384": _Algorithm("ES384", "ec", hashes.SHA384, ec.SECP384R1),
    "ES512": _Algorithm("ES512", "ec", hashes.SHA512, ec.SECP521R1),
    "PS256": _Algorithm("PS256", "pss", hashes.SHA256),
    "PS384": _Algorithm("PS384", "pss", hashes.SHA384),
    "PS512": _Algorithm("PS512", "pss", hashes.SHA512),
    "RS256": _Algorithm("RS256", "pkcs1", hashes.SHA256),  # producible for fixtures, never accepted
}
ACCEPTED_ALGORITHMS = ("ES256", "ES384", "ES512", "PS256", "PS384", "PS512")
FORBIDDEN_ALGORITHMS = ("RS256",)
MIN_RSA_BITS = 3072  # SUP-03's crypto profile (Notary alone allows 2048)
PROFILE_ALGORITHMS = ("ES256", "PS256")  # SUP-03 §3: a signer uses at least one of these
_ALG = Rule.ALGORITHM

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class EnvelopeError(MargoError):
    """The envelope is malformed, refused, or its signature does not verify.

    ``rule`` says which SUP-03 obligation it breaks: an algorithm outside the crypto profile, or
    (by default) no well-formed, verifying signature.
    """

    def __init__(self, message: str, *, rule: Rule = Rule.SIGNED) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class Descriptor:
    """An OCI descriptor: what a Notary payload's ``targetArtifact`` names."""

    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: Mapping[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            data["artifactType"] = self.artifact_type
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        return data

    @classmethod
    def from_dict(cls, data: Any, *, where: str) -> Descriptor:
        if not isinstance(data, Mapping):
            raise EnvelopeError(f"{where}: not a JSON object")
        media_type, digest, size = data.get("mediaType"), data.get("digest"), data.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise EnvelopeError(f"{where}: mediaType missing or not a string")
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise EnvelopeError(f"{where}: digest missing or malformed ({str(digest)[:80]!r})")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise EnvelopeError(f"{where}: size missing or not a non-negative integer")
        artifact_type = data.get("artifactType")
        annotations = data.get("annotations")
        if annotations is not None and not (
            isinstance(annotations, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in annotations.items())
        ):
            raise EnvelopeError(f"{where}: annotations is not a string-to-string map")
        return cls(
            media_type,
            digest,
            size,
            artifact_type if isinstance(artifact_type, str) else None,
            dict(annotations) if annotations else None,
        )


@dataclass(frozen=True)
class VerifiedEnvelope:
    """An envelope whose signature verified with the leaf of its own ``x5c``.

    Nothing here says the chain is trusted: that is ``certificates.validate_chain``'s business.
    """

    target: Descriptor
    algorithm: str
    signing_scheme: str
    signing_time: datetime.datetime
    expiry: datetime.datetime | None
    chain: tuple[x509.Certificate, ...]
    timestamp_present: bool
    signing_agent: str | None


# -- encoding helpers -----------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: Any, *, what: str, limit: int) -> bytes:
    if not isinstance(text, str):
        raise EnvelopeError(f"{what} is not a string")
    if len(text) > limit * 4 // 3 + 4:
        raise EnvelopeError(f"{what} exceeds {limit} bytes")
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise EnvelopeError(f"{what} is not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"{what} is not unpadded base64url") from None


def rfc3339(moment: datetime.datetime) -> str:
    """Whole seconds, UTC, ``Z`` (Notary: fractional seconds SHOULD NOT be used)."""
    if moment.tzinfo is None:
        raise UsageError("timestamps must be timezone-aware")
    return moment.astimezone(datetime.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any, *, what: str) -> datetime.datetime:
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise EnvelopeError(f"{what} is not an RFC 3339 date-time: {str(value)[:60]!r}")
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(datetime.UTC)
    except ValueError:
        raise EnvelopeError(f"{what} is not an RFC 3339 date-time: {value[:60]!r}") from None


def _json_object(data: bytes, *, what: str) -> dict[str, Any]:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise EnvelopeError(f"{what} has the member {key!r} twice")
            result[key] = value
        return result

    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, EnvelopeError):
            raise
        raise EnvelopeError(f"{what} is not JSON: {str(exc)[:120]}") from None
    if not isinstance(value, dict):
        raise EnvelopeError(f"{what} is not a JSON object")
    return value


# -- algorithms -----------------------------------------------------------------------------------------


def algorithm_for_key(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey | SigningKey) -> str:
    """The ``alg`` SUP-03 wants for a key: ES256/384/512 by curve, PS256 for RSA ≥ 3072."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        for name, algorithm in _ALGORITHMS.items():
            if algorithm.curve is not None and isinstance(key.curve, algorithm.curve):
                return name
        raise UsageError(f"unsupported curve {key.curve.name}")
    return "PS256"


def _check_key_matches(algorithm: _Algorithm, key: Any) -> None:
    """The ``alg`` must fit the signing certificate's key (Notary's algorithm-substitution guard)."""
    if algorithm.family == "ec":
        assert algorithm.curve is not None
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise EnvelopeError(
                f"alg {algorithm.name} needs an EC key; the signing certificate has another", rule=_ALG
            )
        if not isinstance(key.curve, algorithm.curve):
            raise EnvelopeError(
                f"alg {algorithm.name} does not match the signing certificate's curve {key.curve.name}",
                rule=_ALG,
            )
        return
    if not isinstance(key, rsa.RSAPublicKey):
        raise EnvelopeError(
            f"alg {algorithm.name} needs an RSA key; the signing certificate has another", rule=_ALG
        )
    if key.key_size < MIN_RSA_BITS:
        raise EnvelopeError(
            f"RSA signing key of {key.key_size} bits: SUP-03 requires at least {MIN_RSA_BITS} for PS256",
            rule=_ALG,
        )


def _sign_raw(algorithm: _Algorithm, key: SigningKey, data: bytes) -> bytes:
    if algorithm.family == "ec":
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise UsageError(f"{algorithm.name} needs an EC private key")
        der = key.sign(data, ec.ECDSA(algorithm.hash()))
        r, s = decode_dss_signature(der)
        width = (key.curve.key_size + 7) // 8
        return r.to_bytes(width, "big") + s.to_bytes(width, "big")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UsageError(f"{algorithm.name} needs an RSA private key")
    if algorithm.family == "pss":
        pss = padding.PSS(mgf=padding.MGF1(algorithm.hash()), salt_length=algorithm.hash().digest_size)
        return key.sign(data, pss, algorithm.hash())
    return key.sign(data, padding.PKCS1v15(), algorithm.hash())


def _verify_raw(algorithm: _Algorithm, key: Any, signature: bytes, data: bytes) -> None:
    try:
        if algorithm.family == "ec":
            width = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * width:
                raise EnvelopeError(f"{algorithm.name} signature is {len(signature)} bytes, not {2 * width}")
            r = int.from_bytes(signature[:width], "big")
            s = int.from_bytes(signature[width:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(algorithm.hash()))
        else:  # PSS: RS256 (PKCS#1 v1.5) is refused before a signature is checked
            pss = padding.PSS(mgf=padding.MGF1(algorithm.hash()), salt_length=algorithm.hash().digest_size)
            key.verify(signature, data, pss, algorithm.hash())
    except InvalidSignature:
        raise EnvelopeError(
            "the signature does not verify with the signing certificate's key (payload or signed "
            "attributes altered, or signed by another key)"
        ) from None
    except ValueError as exc:
        raise EnvelopeError(f"the signature cannot be checked: {exc}") from None


# -- signing --------------------------------------------------------------------------------------------


def sign_envelope(
    target: Descriptor,
    key: SigningKey,
    chain: Sequence[x509.Certificate],
    *,
    alg: str | None = None,
    signing_time: datetime.datetime | None = None,
    expiry: datetime.datetime | None = None,
    extra_protected: Mapping[str, Any] | None = None,
    extra_critical: Sequence[str] = (),
    allow_forbidden: bool = False,
) -> bytes:
    """A Notary JWS envelope (UTF-8 JSON bytes) signing ``target`` with ``key``.

    ``chain`` is leaf first and should end with the root (Notary: the chain is complete).
    ``extra_protected`` / ``extra_critical`` and ``allow_forbidden`` (RS256) exist for negative
    fixtures only.
    """
    if not chain:
        raise UsageError("a signing certificate chain is required (leaf first)")
    if chain[0].public_key() != key.public_key():
        raise UsageError("the key does not belong to the first certificate of the chain")
    name = alg or algorithm_for_key(key)
    algorithm = _ALGORITHMS.get(name)
    if algorithm is None:
        raise UsageError(f"unknown alg {name!r}; one of {', '.join(ACCEPTED_ALGORITHMS)}")
    if name in FORBIDDEN_ALGORITHMS and not allow_forbidden:
        raise UsageError(f"{name} is forbidden by SUP-03; pass allow_forbidden=True for a negative fixture")
    now = signing_time or datetime.datetime.now(datetime.UTC)
    protected: dict[str, Any] = {
        "alg": name,
        "cty": PAYLOAD_CONTENT_TYPE,
        SIGNING_SCHEME: SCHEME_X509,
        SIGNING_TIME: rfc3339(now),
    }
    critical = [SIGNING_SCHEME]
    if expiry is not None:
        protected[EXPIRY] = rfc3339(expiry)
        critical.append(EXPIRY)
    critical.extend(extra_critical)
    protected["crit"] = critical
    protected.update(extra_protected or {})
    protected_b64 = b64url(json.dumps(protected, separators=(",", ":")).encode())
    payload_b64 = b64url(
        json.dumps({"targetArtifact": target.as_dict()}, separators=(",", ":"), sort_keys=True).encode()
    )
    signature = _sign_raw(algorithm, key, f"{protected_b64}.{payload_b64}".encode("ascii"))
    envelope = {
        "payload": payload_b64,
        "protected": protected_b64,
        "header": {
            "x5c": [base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii") for cert in chain],
            SIGNING_AGENT: AGENT,
        },
        "signature": b64url(signature),
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


# -- verification ---------------------------------------------------------------------------------------


def verify_envelope(data: bytes) -> VerifiedEnvelope:
    """Parse (bounded) and verify the envelope's signature with its own leaf certificate.

    Checks, in order: size; JSON shape; protected header (alg accepted, cty, signing scheme,
    signing time, crit complete and understood); x5c (count, size, DER); alg fits the leaf's key;
    signature; payload shape. Raises ``EnvelopeError`` with the first problem; RS256 is always
    refused (a reference device that accepts it decides so around the verdict, never here).
    """
    if len(data) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError(f"envelope of {len(data)} bytes exceeds the limit of {MAX_ENVELOPE_BYTES}")
    envelope = _json_object(data, what="the envelope")
    if "signatures" in envelope:
        raise EnvelopeError("general JWS JSON serialization: Notary allows only the flattened form")
    extra = sorted(set(envelope) - _TOP_LEVEL)
    missing = sorted(_TOP_LEVEL - set(envelope))
    if missing:
        raise EnvelopeError(f"the envelope lacks {', '.join(missing)}")
    if extra:
        raise EnvelopeError(f"the envelope has top-level members Notary does not allow: {', '.join(extra)}")

    protected_raw = _unb64url(envelope["protected"], what="protected", limit=MAX_HEADER_BYTES)
    protected = _json_object(protected_raw, what="the protected header")
    alg = protected.get("alg")
    if not isinstance(alg, str):
        raise EnvelopeError("the protected header has no alg")
    if alg in FORBIDDEN_ALGORITHMS:
        raise EnvelopeError(f"alg {alg} is refused: SUP-03 forbids RS256 (use ES256 or PS256)", rule=_ALG)
    if alg not in ACCEPTED_ALGORITHMS and alg not in FORBIDDEN_ALGORITHMS:
        raise EnvelopeError(
            f"alg {alg[:40]!r} is refused: accepted are {', '.join(ACCEPTED_ALGORITHMS)}", rule=_ALG
        )
    algorithm = _ALGORITHMS[alg]
    if protected.get("cty") != PAYLOAD_CONTENT_TYPE:
        raise EnvelopeError(f"cty is {str(protected.get('cty'))[:80]!r}, not {PAYLOAD_CONTENT_TYPE}")
    scheme = protected.get(SIGNING_SCHEME)
    if scheme == SCHEME_SIGNING_AUTHORITY:
        raise EnvelopeError(f"signing scheme {SCHEME_SIGNING_AUTHORITY} is not supported by this verifier")
    if scheme != SCHEME_X509:
        raise EnvelopeError(f"signing scheme is {str(scheme)[:60]!r}, not {SCHEME_X509}")
    _check_critical(protected)
    signing_time = _parse_time(protected.get(SIGNING_TIME), what=SIGNING_TIME)
    expiry = _parse_time(protected[EXPIRY], what=EXPIRY) if EXPIRY in protected else None

    header = envelope["header"]
    if not isinstance(header, dict):
        raise EnvelopeError("the unprotected header is not a JSON object")
    chain = _parse_x5c(header.get("x5c"))
    agent = header.get(SIGNING_AGENT)

    _check_key_matches(algorithm, chain[0].public_key())
    payload_b64 = envelope["payload"]
    payload_raw = _unb64url(payload_b64, what="payload", limit=MAX_PAYLOAD_BYTES)
    signature = _unb64url(envelope["signature"], what="signature", limit=4096)
    signing_input = f"{envelope['protected']}.{payload_b64}".encode("ascii")
    _verify_raw(algorithm, chain[0].public_key(), signature, signing_input)

    payload = _json_object(payload_raw, what="the payload")
    if set(payload) != {"targetArtifact"}:
        raise EnvelopeError("the payload must hold exactly one member, targetArtifact")
    target = Descriptor.from_dict(payload["targetArtifact"], where="payload targetArtifact")
    return VerifiedEnvelope(
        target=target,
        algorithm=alg,
        signing_scheme=SCHEME_X509,
        signing_time=signing_time,
        expiry=expiry,
        chain=chain,
        timestamp_present=TIMESTAMP_SIGNATURE in header or "io.cncf.notary.timestamp" in header,
        signing_agent=agent if isinstance(agent, str) else None,
    )


def _check_critical(protected: Mapping[str, Any]) -> None:
    crit = protected.get("crit")
    if not isinstance(crit, list) or not crit or not all(isinstance(c, str) for c in crit):
        raise EnvelopeError("crit is missing or not a non-empty array of strings")
    if len(set(crit)) != len(crit):
        raise EnvelopeError("crit lists a header twice")
    registered = sorted(set(crit) & _REGISTERED)
    if registered:
        raise EnvelopeError(f"crit lists registered headers ({', '.join(registered)}), which it must not")
    if SIGNING_SCHEME not in crit:
        raise EnvelopeError(f"crit does not list {SIGNING_SCHEME}")
    unknown = [c for c in crit if c not in _UNDERSTOOD_CRITICAL]
    if unknown:
        raise EnvelopeError(f"unknown critical header(s) {', '.join(c[:60] for c in unknown[:3])}")
    absent = [c for c in crit if c not in protected]
    if absent:
        raise EnvelopeError(f"crit lists {', '.join(absent)} but the header lacks it")
    if EXPIRY in protected and EXPIRY not in crit:
        raise EnvelopeError(f"{EXPIRY} is present but not marked critical")


def _parse_x5c(value: Any) -> tuple[x509.Certificate, ...]:
    if not isinstance(value, list) or not value:
        raise EnvelopeError("x5c is missing or empty: the envelope carries no signing certificate")
    if len(value) > MAX_CERTIFICATES:
        raise EnvelopeError(f"x5c holds {len(value)} certificates; at most {MAX_CERTIFICATES} are read")
    chain: list[x509.Certificate] = []
    for index, text in enumerate(value):
        if not isinstance(text, str) or len(text) > MAX_CERTIFICATE_BYTES * 4 // 3 + 4:
            raise EnvelopeError(f"x5c[{index}] is not a string of at most {MAX_CERTIFICATE_BYTES} bytes")
        try:
            der = base64.b64decode(text, validate=True)
            chain.append(x509.load_der_x509_certificate(der))
        except (binascii.Error, ValueError) as exc:
            raise EnvelopeError(f"x5c[{index}] is not a base64 DER certificate: {str(exc)[:100]}") from None
    return tuple(chain)


def chain_thumbprints(chain: Sequence[x509.Certificate]) -> list[str]:
    """SHA-256 fingerprints (hex) for the ``io.cncf.notary.x509chain.thumbprint#S256`` annotation."""
    return [cert.fingerprint(hashes.SHA256()).hex() for cert in chain]
