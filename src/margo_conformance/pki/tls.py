"""ssl contexts for MIAF mTLS (TLS-003..005, SVID-001) and the peer's chain after a handshake.

Peers are identified by SPIFFE IDs, not DNS names, so hostname checking is off; the SPIFFE-ID checks
(``policy``) run on ``peer_chain`` once the handshake is done. OpenSSL builds the chain against the bundle
during the handshake (SVID-006(b)).
"""

from __future__ import annotations

import ssl
import warnings
from pathlib import Path

from cryptography import x509

from ..errors import UsageError
from .issuance import SvidFiles

# RFC 9325 §4.2: for TLS 1.2, only ECDHE key exchange with AEAD ciphers. TLS 1.3 suites are unaffected.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def server_context(
    svid_files: SvidFiles,
    bundle_pem: Path,
    *,
    require_client_cert: bool = True,
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3,
    maximum: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    """A server presenting leaf + intermediates; TLS 1.3 only unless ``minimum`` allows the 1.2 fallback."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _versions(context, minimum, maximum)
    _own_svid(context, svid_files)
    _anchors(context, bundle_pem)
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE
    # TLS-010: no resumption that could outlive the authenticating SVID.
    context.num_tickets = 0
    context.options |= ssl.OP_NO_TICKET | ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    return context


def client_context(
    svid_files: SvidFiles | None,
    bundle_pem: Path,
    *,
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    """A client that verifies the server against the bundle and presents its SVID chain when given one."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _versions(context, minimum, maximum)
    context.check_hostname = False  # SPIFFE IDs, not DNS names, identify peers (SVID-006(a))
    context.verify_mode = ssl.CERT_REQUIRED
    _anchors(context, bundle_pem)
    if svid_files is not None:
        _own_svid(context, svid_files)
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    return context


def legacy_tls11_client_context(svid_files: SvidFiles | None, bundle_pem: Path) -> ssl.SSLContext:
    """Offers only TLS 1.1 (forbidden by TLS-005), to prove that a peer refuses it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    _anchors(context, bundle_pem)
    if svid_files is not None:
        _own_svid(context, svid_files)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses TLS 1.1 above security level 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context


def peer_chain(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> tuple[x509.Certificate, ...]:
    """The peer's certificates, leaf first; ``()`` when it presented none.

    Python 3.11/3.12 expose only the peer's leaf, so the result is ``(leaf,)`` there; from 3.13 on it is
    the chain as the peer presented it.
    """
    unverified = getattr(ssl_object, "get_unverified_chain", None)
    if unverified is not None:
        ders = [_der(item) for item in (unverified() or [])]
        return tuple(x509.load_der_x509_certificate(der) for der in ders)
    leaf = ssl_object.getpeercert(binary_form=True)
    return (x509.load_der_x509_certificate(leaf),) if leaf else ()


def _der(item: object) -> bytes:
    """3.13 returns ``_ssl.Certificate`` objects (``public_bytes``); tolerate raw DER as well."""
    if isinstance(item, bytes):
        return item
    der: bytes = item.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
    return der


def _own_svid(context: ssl.SSLContext, svid_files: SvidFiles) -> None:
    """SVID-001: present the whole chain file (leaf + intermediates) with its key."""
    try:
        context.load_cert_chain(svid_files.certificate, svid_files.key)
    except (OSError, ssl.SSLError) as exc:
        message = f"{svid_files.certificate}, {svid_files.key}: cannot load the SVID ({exc})"
        raise UsageError(message) from None


def _anchors(context: ssl.SSLContext, bundle_pem: Path) -> None:
    """Trust exactly the bundle's anchors, with OpenSSL's verify flags pinned (not X509_STRICT, not
    PARTIAL_CHAIN), so what the handshake rejects does not drift between Python versions; the leaf
    constraints are the SVID policies' job."""
    try:
        context.load_verify_locations(cafile=bundle_pem)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"{bundle_pem}: cannot load trust anchors ({exc})") from None
    context.verify_flags = ssl.VERIFY_X509_TRUSTED_FIRST


def _versions(context: ssl.SSLContext, minimum: ssl.TLSVersion, maximum: ssl.TLSVersion | None) -> None:
    """TLS-003..005: nothing below TLS 1.2 here; 1.2 gets RFC 9325 ciphers only."""
    if minimum < ssl.TLSVersion.TLSv1_2:
        raise ValueError("TLS-005: SSLv3, TLS 1.0 and 1.1 are never offered; see legacy_tls11_client_context")
    context.minimum_version = minimum
    context.maximum_version = maximum or ssl.TLSVersion.MAXIMUM_SUPPORTED
    context.set_ciphers(TLS12_CIPHERS)
