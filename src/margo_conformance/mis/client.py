"""A client of the Trust Bundle API as a bootstrapping device is one: no client certificate, the server
authenticated by PKI-anchored validation (the configured anchors plus the URL's host name, TLS-006).

Built on the WFM persona's ``VirtualClient`` transport, so every request yields an ``Exchange`` (network
and TLS failures included) that the checks can show.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..errors import Blocked
from ..pki import SpiffeId, client_context, legacy_tls11_client_context
from ..pki.ids import SvidError
from ..pki.policy import spiffe_id_of
from ..wfm.client import Exchange, VirtualClient

UNKNOWN_PATH = "/.well-known/margo-conformance-no-such-resource"


def bootstrap_context(anchors: Path, *, tls11_only: bool = False) -> ssl.SSLContext:
    """Server-only TLS against ``anchors``, with the host name checked (RFC 9525), no client certificate."""
    context = legacy_tls11_client_context(None, anchors) if tls11_only else client_context(None, anchors)
    context.check_hostname = True
    return context


class MisClient:
    """GETs on the identity service's URLs, one keep-alive connection per origin, all in one log."""

    def __init__(self, anchors: Path, *, timeout_s: float = 10.0, tls11_only: bool = False) -> None:
        self.anchors, self.timeout_s = anchors, timeout_s
        self._context = bootstrap_context(anchors, tls11_only=tls11_only)
        self._clients: dict[str, VirtualClient] = {}
        self.log: list[Exchange] = []

    def get(self, url: str, *, if_none_match: str | None = None) -> Exchange:
        """GET an absolute https URL (an http:// one is never fetched: the checks refuse it first)."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        client = self._clients.get(origin)
        if client is None:
            client = VirtualClient(
                origin, None, self.anchors, context=self._context, timeout_s=self.timeout_s, log=self.log
            )
            self._clients[origin] = client
        return client.fetch(url, if_none_match=if_none_match)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def __enter__(self) -> MisClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def unknown_url(discovery_url: str) -> str:
    """A URL on the identity service's origin that names no resource."""
    parts = urlsplit(discovery_url)
    return f"{parts.scheme}://{parts.netloc}{UNKNOWN_PATH}"


def write_anchors(anchors: tuple[x509.Certificate, ...], path: Path) -> Path:
    path.write_bytes(b"".join(a.public_bytes(serialization.Encoding.PEM) for a in anchors))
    return path


def validate_server(url: str, anchors_pem: Path, *, timeout_s: float) -> tuple[str | None, SpiffeId | None]:
    """Handshake with the server at ``url`` trusting only ``anchors_pem`` (its SPIFFE ID, not a DNS name,
    identifies it): ``(None, its SPIFFE ID or None)`` when its chain validates, else ``(why not, None)``;
    Blocked when the server cannot be reached at all.

    No client certificate is presented: the client side of a TLS 1.3 handshake completes (having
    verified the server) before the server judges the client, so a WFM that demands mTLS can still be
    validated here."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    context = client_context(None, anchors_pem)
    try:
        raw = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:
        raise Blocked(f"the WFM at {url} could not be reached: {exc}") from None
    try:
        with context.wrap_socket(raw, server_hostname=None) as tls:
            leaf = tls.getpeercert(binary_form=True)
    except ssl.SSLCertVerificationError as exc:
        return f"its chain does not validate against the bundle's anchors ({exc.verify_message})", None
    except OSError as exc:
        return f"the TLS handshake failed: {exc}", None
    finally:
        raw.close()
    if not leaf:
        return "it presented no certificate", None
    try:
        return None, spiffe_id_of(x509.load_der_x509_certificate(leaf))
    except SvidError:
        return None, None
