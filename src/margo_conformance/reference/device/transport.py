"""The device's connection to its WFM: mutual TLS with the device's SVID, and WIP-007 on every handshake.

The client derives the WFM it may talk to from its OWN SVID: ``spiffe://<own td>/margo/wfm/<own
wfm-id>``; the configured URL only routes. Right after each handshake (before a single request byte is
sent) the WFM's chain is judged by ``wfm_policy`` (trust domain, validity, leaf constraints, allowed
keys, exact SPIFFE ID); a WFM that fails gets the connection closed and ``WfmIdentityError``. OpenSSL has
already chained the WFM's certificate to the trust anchors (TLS-008). TLS 1.3 is preferred, 1.2 is the
lowest version offered (TLS-003..005).

Response bodies are bounded (``MAX_BODY_BYTES`` raw and decoded); Content-Encoding (gzip, deflate) is
removed, so digests are computed over the decoded bytes (DS-021).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from ... import __version__
from ...errors import UsageError
from ...pki import SpiffeId, SvidError, SvidFiles
from ...pki.issuance import Svid
from ...pki.policy import (
    AllOf,
    AllowedKey,
    AllowedSignature,
    ExactSpiffeId,
    LeafNotCa,
    OneUriSan,
    SpiffeScheme,
    SvidPolicy,
    TrustDomainIs,
    Validity,
    spiffe_id_of,
)
from ...pki.tls import client_context, peer_chain
from ...wfm.client import decode_content

MANIFEST_TYPE = "application/vnd.margo.manifest.v1+json"
MAX_BODY_BYTES = 64 * 1024 * 1024
USER_AGENT = f"margo-conformance/{__version__} (reference device)"


class TransportError(Exception):
    """No HTTP answer: network, TLS or framing failure (retryable with the device's own backoff)."""


class WfmIdentityError(TransportError):
    """WIP-007: the peer is not this client's WFM; the connection was closed before any request."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes  # Content-Encoding removed

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Identity:
    """Who this client is, and whom it accepts as its WFM (both from its own SVID)."""

    client: SpiffeId
    wfm: SpiffeId

    @classmethod
    def from_svid(cls, files: SvidFiles) -> Identity:
        client = Svid.load(files).spiffe_id
        if not client.is_client or client.wfm_id is None:
            raise UsageError(
                f"{files.certificate}: {client} is not a WFM client SPIFFE ID "
                "(spiffe://<td>/margo/wfm/<wfm-id>/client/<client-id>, WIP-001)"
            )
        return cls(client, SpiffeId.wfm(client.trust_domain, client.wfm_id))


class _CheckedConnection(http.client.HTTPSConnection):
    """An HTTPS connection that judges the WFM's SVID right after the handshake."""

    def __init__(
        self, host: str, port: int, *, context: ssl.SSLContext, timeout: float, policy: SvidPolicy
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.tls_context = context
        self.policy = policy
        self.peer: SpiffeId | None = None
        self.tls_version: str | None = None
        self.hang_up_below_tls12 = False  # fault negotiates-tls11-then-hangs-up (TLS-005 broken)

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        sni = None if _is_ip(self.host) else self.host
        tls = self.tls_context.wrap_socket(self.sock, server_hostname=sni)
        chain = peer_chain(tls)
        try:
            self.peer = spiffe_id_of(chain[0]) if chain else None
        except SvidError:
            self.peer = None
        try:
            self.policy.check(chain)
        except SvidError as exc:
            tls.close()
            self.sock = None
            raise WfmIdentityError(f"the WFM at {self.host}:{self.port} is refused: {exc}") from None
        if self.hang_up_below_tls12 and tls.version() in ("TLSv1", "TLSv1.1"):
            tls.close()
            self.sock = None
            raise WfmIdentityError(f"the WFM at {self.host}:{self.port} negotiated {tls.version()}: hung up")
        self.tls_version = tls.version()
        self.sock = tls


class WfmTransport:
    """Requests to one WFM over one keep-alive mTLS connection (re-opened, and re-checked, as needed)."""

    def __init__(
        self,
        base_url: str,
        svid: SvidFiles,
        anchors: Path,
        *,
        timeout_s: float = 10.0,
        exact_wfm_id: bool = True,
        verify_chain: bool = True,
        allow_tls11: bool = False,
        tls11_then_hang_up: bool = False,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
            raise UsageError(f"--wfm must be https://host[:port][/prefix], got {base_url!r}")
        self.host, self.port = parts.hostname, parts.port or 443
        self.prefix = parts.path.rstrip("/")
        self.identity = Identity.from_svid(svid)
        self.timeout_s = timeout_s
        # TLS-003/004/005: 1.3 preferred (the maximum), 1.2 the floor, RFC 9325 ciphers for 1.2.
        self.context = client_context(svid, anchors, minimum=ssl.TLSVersion.TLSv1_2)
        self.tls11_then_hang_up = tls11_then_hang_up  # TLS-005 broken: negotiated, then refused
        if allow_tls11 or tls11_then_hang_up:  # TLS-005 broken; OpenSSL 3 needs security level 0 for it
            self.context.minimum_version = ssl.TLSVersion.TLSv1_1
            self.context.set_ciphers("DEFAULT:@SECLEVEL=0")
        if not verify_chain:  # fault accepts-untrusted-chain (TLS-008 broken): any chain, only the ID is read
            self.context.verify_mode = ssl.CERT_NONE
        self.policy = wfm_peer_policy(self.identity, exact_wfm_id=exact_wfm_id)
        self._conn: _CheckedConnection | None = None

    @property
    def device_default(self) -> str:
        """The client id, a sensible default deviceId for a device that fronts only itself."""
        return self.identity.client.client_id or "device"

    @property
    def peer(self) -> SpiffeId | None:
        return self._conn.peer if self._conn is not None else None

    @property
    def tls_version(self) -> str | None:
        return self._conn.tls_version if self._conn is not None else None

    def resolve(self, url: str) -> str:
        """A manifest url as a request target on this WFM (absolute paths get the base prefix once)."""
        parts = urlsplit(url)
        if parts.scheme or parts.netloc:
            if (parts.scheme, parts.hostname, parts.port or 443) != ("https", self.host, self.port):
                raise ValueError(f"{url!r} is not on the WFM's origin")
            return parts.path or "/"
        if not url.startswith("/"):
            raise ValueError(f"manifest url {url!r} is not an absolute path")
        if self.prefix and (url == self.prefix or url.startswith(self.prefix + "/")):
            return url
        return self.prefix + url

    def request(
        self, method: str, target: str, *, headers: Mapping[str, str] | None = None, body: bytes | None = None
    ) -> Response:
        """One exchange; TransportError (or WfmIdentityError) when no HTTP answer came back."""
        sent = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip", **(headers or {})}
        for attempt in (1, 2):
            fresh = self._conn is None or self._conn.sock is None
            conn = self._connection()
            try:
                conn.request(method, target, body=body, headers=sent)
                response = conn.getresponse()
                raw = response.read(MAX_BODY_BYTES + 1)
            except WfmIdentityError:
                self.close()
                raise
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                stale = not fresh and isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError)
                if stale and attempt == 1:
                    continue  # a keep-alive connection the WFM had closed while idle
                raise TransportError(f"{method} {target}: {type(exc).__name__}: {exc}") from None
            if len(raw) > MAX_BODY_BYTES:
                self.close()
                raise TransportError(f"{method} {target}: body larger than {MAX_BODY_BYTES} bytes")
            if response.will_close:
                self.close()
            codings = [
                c.strip().lower()
                for c in (response.getheader("Content-Encoding") or "").split(",")
                if c.strip() and c.strip().lower() != "identity"
            ]
            try:
                data = decode_content(raw, codings, limit=MAX_BODY_BYTES)
            except ValueError as exc:
                raise TransportError(f"{method} {target}: cannot decode the body: {exc}") from None
            return Response(response.status, tuple(response.getheaders()), data)
        raise AssertionError("unreachable")

    def send_json(self, method: str, path: str, document: Mapping[str, Any]) -> Response:
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return self.request(
            method,
            self.prefix + path,
            headers={"Content-Type": "application/json"},
            body=body,
        )

    def capabilities_path(self, device_id: str) -> str:
        return f"/api/v1/capabilities/{quote(device_id, safe='/')}"

    def status_path(self, deployment_id: str) -> str:
        return f"/api/v1/deployments/{quote(deployment_id, safe='')}/status"

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> _CheckedConnection:
        if self._conn is None:
            self._conn = _CheckedConnection(
                self.host, self.port, context=self.context, timeout=self.timeout_s, policy=self.policy
            )
            self._conn.hang_up_below_tls12 = self.tls11_then_hang_up
        return self._conn


def wfm_peer_policy(identity: Identity, *, exact_wfm_id: bool = True) -> SvidPolicy:
    """SVID-006 (a)-(c), SVID-002 and, unless a fault drops it, WIP-007's exact WFM SPIFFE ID."""
    policies: list[SvidPolicy] = [
        TrustDomainIs(identity.wfm.trust_domain),
        Validity(),
        LeafNotCa(),
        SpiffeScheme(),
        OneUriSan(),
        AllowedKey(),
        AllowedSignature(),
    ]
    if exact_wfm_id:
        policies.append(ExactSpiffeId(identity.wfm))
    return AllOf(policies)


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True
