"""SPIFFE trust bundles (JWK Sets) as the Trust Bundle API serves them (TBAPI; TB-001, TB-004, TB-007).

The operator's ``bundle.json`` is built here, and a received bundle is reduced to its X.509 anchors here,
so the MIS endpoint, the reference device and the suite's checks read bundles the same way.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .ids import SvidError

X509_SVID_USE = "x509-svid"
DEFAULT_REFRESH_HINT = 3600  # seconds; SPIFFE bundle format §4.1.2
_CURVES = {"secp256r1": ("P-256", 32), "secp384r1": ("P-384", 48)}


def spiffe_bundle(
    anchors: Sequence[x509.Certificate], *, sequence: int = 1, refresh_hint: int = DEFAULT_REFRESH_HINT
) -> dict[str, Any]:
    """A SPIFFE bundle holding ``anchors`` only; intermediates never go in a bundle (TB-007)."""
    if not anchors:
        raise ValueError("a bundle needs at least one X.509 anchor (TB-004)")
    return {
        "spiffe_sequence": sequence,
        "spiffe_refresh_hint": refresh_hint,
        "keys": [jwk_of(anchor) for anchor in anchors],
    }


def jwk_of(certificate: x509.Certificate) -> dict[str, Any]:
    """The ``x509-svid`` JWK of one anchor: its public key parameters plus the DER certificate in x5c."""
    jwk = _public_jwk(certificate.public_key())
    jwk["use"] = X509_SVID_USE
    jwk["x5c"] = [base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")]
    return jwk


def x509_anchors(document: Mapping[str, Any]) -> tuple[x509.Certificate, ...]:
    """The X.509 anchors of a received bundle; unknown fields and other keys are ignored (TB-001, TB-007)."""
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise SvidError("TB-004: bundle has no 'keys' array")
    anchors: list[x509.Certificate] = []
    for index, key in enumerate(keys):
        if not isinstance(key, Mapping) or key.get("use") != X509_SVID_USE:
            continue  # TB-007: jwt-svid and any other key material is ignored
        chain = key.get("x5c")
        if not isinstance(chain, list) or len(chain) != 1 or not isinstance(chain[0], str):
            raise SvidError(f"TB-004: x509-svid key {index} must carry exactly one certificate in x5c")
        try:
            anchors.append(x509.load_der_x509_certificate(base64.b64decode(chain[0], validate=True)))
        except ValueError as exc:
            message = f"TB-004: x509-svid key {index} has an unreadable x5c certificate: {exc}"
            raise SvidError(message) from None
    if not anchors:
        raise SvidError("TB-004: bundle has no X.509 anchors; SVIDs must not be validated against it")
    return tuple(anchors)


def _public_jwk(key: Any) -> dict[str, Any]:
    """RFC 7517/7518/8037 public parameters for the key types SVID-002 allows."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        crv, size = _CURVES.get(key.curve.name, (None, 0))
        if crv is None:
            raise ValueError(f"curve {key.curve.name} is not allowed for SVIDs (SVID-002)")
        numbers = key.public_numbers()
        return {"kty": "EC", "crv": crv, "x": _b64url_int(numbers.x, size), "y": _b64url_int(numbers.y, size)}
    if isinstance(key, rsa.RSAPublicKey):
        numbers_rsa = key.public_numbers()
        return {"kty": "RSA", "n": _b64url_int(numbers_rsa.n), "e": _b64url_int(numbers_rsa.e)}
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}
    raise ValueError(f"key type {type(key).__name__} is not allowed for SVIDs (SVID-002)")


def _b64url_int(value: int, size: int = 0) -> str:
    length = max(size, (value.bit_length() + 7) // 8)
    return _b64url(value.to_bytes(length, "big"))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
