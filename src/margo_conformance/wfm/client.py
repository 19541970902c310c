"""The suite's virtual WFM Client: it plays a device's client against any vendor's WFM over mTLS.

Built on the stdlib ``http.client`` and ``ssl`` so the suite sees exactly the bytes and headers that
travelled (no content decoding, no redirects, no retries behind its back). Every request yields an
``Exchange`` — network, TLS and HTTP-parse failures included — and is appended to the client's log, so
each check can show the exchange it judged.

Bounds: every request finishes within ``timeout_s`` (a watchdog shuts the socket down at the deadline),
response bodies are read up to 64 MiB and decoded up to 64 MiB.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from .. import __version__
from .._internal import bounded
from .._internal.compression import GZIP_WBITS, RAW_WBITS, ZLIB_WBITS, inflate
from ..pki import SpiffeId, SvidFiles
from ..pki.ids import SvidError
from ..pki.policy import spiffe_id_of
from ..pki.tls import client_context, peer_chain

MANIFEST_TYPE = "application/vnd.margo.manifest.v1+json"
BUNDLE_TYPE = "application/vnd.margo.bundle.v1+tar+gzip"
YAML_TYPE = "application/yaml"
PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://docs.margo.org/specification/problem-types#"

MAX_BODY_BYTES = 64 * 1024 * 1024
EXCERPT_BYTES = 2048
USER_AGENT = f"margo-conformance/{__version__} (virtual WFM client)"

# Refusal reasons that mean the WFM was never reached (an environment problem, not a finding).
CANNOT_CONNECT = "cannot connect"
TIMED_OUT = "timed out after"
TLS_FAILED = "TLS handshake failed"
CLIENT_REJECTED_SERVER = "the suite's client rejected the WFM's certificate"
CLOSED = "connection closed before any response"
RESET = "connection reset"

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S)
_PRINTABLE = re.compile(r"^[\t\n\r\x20-\x7e\u00a0-\U0010ffff]*$")


@dataclass(frozen=True)
class Exchange:
    """One request and what came back; ``status`` is None when there was no HTTP response at all."""

    method: str
    path: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: bytes
    status: int | None
    headers: tuple[tuple[str, str], ...]
    body: bytes  # exactly as received, after transfer de-chunking (Content-Encoding still applied)
    refused: str | None  # why there was no response
    tls_version: str | None
    peer_spiffe_id: SpiffeId | None
    elapsed_s: float
    anomaly: str | None = (
        None  # a response arrived but its framing was off (cut short, too long, stray bytes)
    )

    def header(self, name: str) -> str | None:
        """The first value of a response header, matched case-insensitively."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        """Every field value of a response header, in order received (comma lists not split)."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def content_codings(self) -> list[str]:
        """The Content-Encoding codings in the order applied, lowercased; identity left out."""
        codings = [c.strip().lower() for v in self.header_values("Content-Encoding") for c in v.split(",")]
        return [c for c in codings if c and c != "identity"]

    def decoded_body(self) -> bytes:
        """The body with Content-Encoding (gzip, deflate) removed, bounded to 64 MiB (DS-021 hashes these)."""
        try:
            return decode_content(self.body, self.content_codings())
        except ValueError as exc:
            raise AssertionError(f"cannot decode the response body: {exc}\n{self.transcript()}") from None

    def json(self) -> Any:
        """The decoded body parsed as JSON; AssertionError (with the transcript) if it is not JSON."""
        data = self.decoded_body()
        try:
            return bounded.load_json(data, where="the response body", limits=bounded.HTTP_BODY_LIMITS)
        except bounded.UntrustedInput as exc:
            raise AssertionError(
                f"the response body is not JSON ({exc.problem})\n{self.transcript()}"
            ) from None

    def transcript(self) -> str:
        """Request and response as a person reads them: headers (secrets redacted), body excerpts ≤ 2 KiB."""
        lines = [f"> {self.method} {self.path} HTTP/1.1"]
        lines += [f"> {name}: {_redacted(name, value)}" for name, value in self.request_headers]
        lines += _body_lines(">", self.request_body, [])
        if self.status is None:
            lines.append(f"< (no response: {self.refused})")
        else:
            lines.append(f"< HTTP/1.1 {self.status} {_phrase(self.status)}".rstrip())
            lines += [f"< {name}: {_redacted(name, value)}" for name, value in self.headers]
            lines += _body_lines("<", self.body, self.content_codings())
        if self.anomaly:
            lines.append(f"! {self.anomaly}")
        peer = str(self.peer_spiffe_id) if self.peer_spiffe_id else "unknown"
        lines.append(f"  [{self.tls_version or 'no TLS session'}; WFM {peer}; {self.elapsed_s:.3f} s]")
        return "\n".join(lines)


def decode_content(body: bytes, codings: list[str], *, limit: int = MAX_BODY_BYTES) -> bytes:
    """Undo Content-Encoding codings (applied in list order); ValueError on unknown or corrupt data."""
    data = body
    for coding in reversed(codings):
        if coding in ("gzip", "x-gzip"):
            data = inflate(data, wbits=GZIP_WBITS, limit=limit, several=True)
        elif coding == "deflate":  # RFC 9110: zlib-wrapped; some servers send raw deflate
            try:
                data = inflate(data, wbits=ZLIB_WBITS, limit=limit)
            except ValueError:
                data = inflate(data, wbits=RAW_WBITS, limit=limit)
        else:
            raise ValueError(f"unsupported Content-Encoding {coding!r} (the suite decodes gzip and deflate)")
    return data


def _redacted(name: str, value: str) -> str:
    return "<redacted>" if name.lower() in _SECRET_HEADERS else value


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _body_lines(mark: str, body: bytes, codings: list[str]) -> list[str]:
    if not body:
        return []
    note = ""
    shown = body
    if codings:
        try:
            shown = decode_content(body, codings)
            note = f"{len(body)} bytes {'+'.join(codings)}-encoded, {len(shown)} decoded"
        except ValueError as exc:
            return [mark, f"{mark} <{len(body)} bytes, {'+'.join(codings)}-encoded, undecodable: {exc}>"]
    text = _text_excerpt(_PRIVATE_KEY.sub(b"<private key redacted>", shown[: EXCERPT_BYTES * 4]))
    if text is None:
        return [mark, f"{mark} <{len(shown)} bytes{', ' + note if note else ''}>"]
    lines = [mark] + ([f"{mark} <{note}>"] if note else [])
    lines += [f"{mark} {line}" for line in text.splitlines()]
    if len(text.encode()) < len(shown):
        lines.append(f"{mark} … ({len(shown)} bytes in all)")
    return lines


def _text_excerpt(data: bytes) -> str | None:
    """At most EXCERPT_BYTES of UTF-8 text, or None when the bytes are not printable text."""
    head = data[:EXCERPT_BYTES]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3 or len(data) <= len(head):  # not just a character cut at the end
            return None
        text = head[: exc.start].decode("utf-8")
    return text if _PRINTABLE.match(text) else None


class _Watchdog:
    """Shuts the current socket down when a request's deadline passes, so no read outlives timeout_s."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self.fired:
                _shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            if self._sock is not None:
                _shut(self._sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the base-class method acts on the fd, not on the TLS object
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Connection(http.client.HTTPSConnection):
    """An HTTPS connection whose TLS handshake runs under the request's watchdog."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.tls_context = context
        self.watchdog: _Watchdog | None = None
        self.tcp_connected = False

    def connect(self) -> None:
        self.tcp_connected = False
        http.client.HTTPConnection.connect(self)
        self.tcp_connected = True
        # An IP is never sent as SNI (Python leaves it out); with host-name checking (the MIS client,
        # RFC 9525) it is still given, so that the certificate's IP SAN is matched.
        sni = None if _is_ip(self.host) and not self.tls_context.check_hostname else self.host
        tls = self.tls_context.wrap_socket(self.sock, server_hostname=sni, do_handshake_on_connect=False)
        self.sock = tls
        if self.watchdog is not None:
            self.watchdog.attach(tls)
        tls.do_handshake()


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class _Failure:
    reason: str
    stale: bool = False  # a reused connection the server had already closed: worth one fresh attempt


_STALE_ERRORS = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)


class VirtualClient:
    """A WFM Client with one keep-alive mTLS connection to ``base_url`` (which may carry a path prefix).

    ``request`` never raises for network, TLS or HTTP-parse failures: it returns an Exchange with
    ``status=None`` and ``refused`` saying why. When a reused keep-alive connection fails before any
    response byte (the server closed it while idle), the request is sent once more on a new connection,
    whatever the method: a server that drops a connection mid-request may see a PUT or POST twice.
    """

    def __init__(
        self,
        base_url: str,
        svid: SvidFiles | None,
        bundle_pem: Path,
        *,
        context: ssl.SSLContext | None = None,
        timeout_s: float = 10.0,
        log: list[Exchange] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"base URL must be https://host[:port][/prefix], got {base_url!r}")
        self.base_url = base_url
        self.svid = svid  # kept so a step can rebuild the client with another context
        self.bundle_pem = bundle_pem
        self.host = parts.hostname
        self.port = parts.port or 443
        self.prefix = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self.log: list[Exchange] = log if log is not None else []
        self.connections_opened = 0
        self._context = context if context is not None else client_context(svid, bundle_pem)
        self._conn: _Connection | None = None
        self._session: tuple[str | None, SpiffeId | None] = (None, None)

    # ---- the Management Interface operations ----

    def put_capabilities(self, device_id: str, document: Mapping[str, Any] | bytes) -> Exchange:
        """PUT /api/v1/capabilities/{deviceId}; a hierarchical id keeps its '/' (INC-102)."""
        return self.request(
            "PUT",
            f"/api/v1/capabilities/{quote(device_id, safe='/')}",
            headers={"Content-Type": "application/json"},
            body=_json_bytes(document),
        )

    def delete_capabilities(self, device_id: str) -> Exchange:
        """DELETE /api/v1/capabilities/{deviceId}."""
        return self.request("DELETE", f"/api/v1/capabilities/{quote(device_id, safe='/')}")

    def get_manifest(
        self, *, accept: str | None = MANIFEST_TYPE, if_none_match: str | None = None
    ) -> Exchange:
        """GET /api/v1/deployments; ``accept=None`` sends no Accept header (DS-004)."""
        headers = {}
        if accept is not None:
            headers["Accept"] = accept
        if if_none_match is not None:
            headers["If-None-Match"] = if_none_match
        return self.request("GET", "/api/v1/deployments", headers=headers)

    def fetch(
        self, url: str, *, if_none_match: str | None = None, accept_encoding: str | None = None
    ) -> Exchange:
        """GET a url from the manifest (bundle or deployment YAML), as given; see ``resolve``."""
        headers = {}
        if if_none_match is not None:
            headers["If-None-Match"] = if_none_match
        if accept_encoding is not None:
            headers["Accept-Encoding"] = accept_encoding
        return self._exchange("GET", self.resolve(url), headers, None)

    def post_status(self, deployment_id: str, document: Mapping[str, Any] | bytes) -> Exchange:
        """POST /api/v1/deployments/{deploymentId}/status."""
        return self.request(
            "POST",
            f"/api/v1/deployments/{quote(deployment_id, safe='')}/status",
            headers={"Content-Type": "application/json"},
            body=_json_bytes(document),
        )

    # ---- plumbing ----

    def resolve(self, url: str) -> str:
        """The request target for a manifest url: a path already under the base prefix is used as is,
        any other absolute path gets the prefix (INC-110); an absolute URL must name this WFM's origin."""
        parts = urlsplit(url)
        if parts.scheme or parts.netloc:
            if (parts.scheme, parts.hostname, parts.port or 443) != ("https", self.host, self.port):
                raise ValueError(f"{url!r} is not on the WFM's origin https://{self.host}:{self.port}")
            return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if not url.startswith("/"):
            raise ValueError(f"manifest url {url!r} is neither an absolute path nor an absolute URL")
        if self.prefix and (url == self.prefix or url.startswith(self.prefix + "/")):
            return url
        return self.prefix + url

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Exchange:
        """Send ``method`` to base prefix + ``path`` (an absolute path) and record the exchange."""
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        return self._exchange(method, self.prefix + path, headers or {}, body)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> VirtualClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _exchange(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None) -> Exchange:
        sent = self._request_headers(headers, body)
        started = time.monotonic()
        watchdog = _Watchdog(self.timeout_s)
        watchdog.start()
        try:
            outcome = self._attempt(method, target, sent, body, watchdog, started)
            if isinstance(outcome, _Failure) and outcome.stale and not watchdog.fired:
                self.close()
                outcome = self._attempt(method, target, sent, body, watchdog, started)
        finally:
            watchdog.cancel()
        if watchdog.fired:  # the socket was shut under a finished exchange: never reuse it
            self.close()
        if isinstance(outcome, _Failure):
            self.close()
            tls_version, peer = self._session
            exchange = Exchange(
                method,
                target,
                sent,
                body or b"",
                None,
                (),
                b"",
                outcome.reason,
                tls_version,
                peer,
                time.monotonic() - started,
            )
        else:
            exchange = outcome
        self.log.append(exchange)
        return exchange

    def _request_headers(self, headers: Mapping[str, str], body: bytes | None) -> tuple[tuple[str, str], ...]:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        sent = [("Host", host if self.port == 443 else f"{host}:{self.port}"), ("User-Agent", USER_AGENT)]
        names = {name.lower() for name in headers}
        sent = [(n, v) for n, v in sent if n.lower() not in names] + list(headers.items())
        if body is not None and "content-length" not in names:
            sent.append(("Content-Length", str(len(body))))
        return tuple(sent)

    def _attempt(
        self,
        method: str,
        target: str,
        headers: tuple[tuple[str, str], ...],
        body: bytes | None,
        watchdog: _Watchdog,
        started: float,
    ) -> Exchange | _Failure:
        remaining = max(self.timeout_s - (time.monotonic() - started), 0.001)
        if self._conn is None:
            self._conn = _Connection(self.host, self.port, self._context, self.timeout_s)
        conn = self._conn
        conn.watchdog = watchdog
        fresh = conn.sock is None
        if fresh:
            failure = self._connect(conn, watchdog, remaining)
            if failure is not None:
                return failure
        else:
            assert conn.sock is not None
            watchdog.attach(conn.sock)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            conn.endheaders(body)
        except OSError as exc:
            alert = _pending_alert(conn.sock) if fresh else None
            if alert is not None:
                return _Failure(f"{TLS_FAILED}: the WFM sent {alert}")
            return self._failure(exc, watchdog, fresh)
        try:
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            return self._failure(exc, watchdog, fresh)
        return self._read(method, target, headers, body, response, watchdog, started)

    def _connect(self, conn: _Connection, watchdog: _Watchdog, remaining: float) -> _Failure | None:
        conn.timeout = remaining
        self._session = (None, None)
        try:
            conn.connect()
        except ssl.SSLCertVerificationError as exc:
            return _Failure(f"{TLS_FAILED}: {CLIENT_REJECTED_SERVER} ({exc.verify_message or exc})")
        except ssl.SSLError as exc:
            if watchdog.fired:
                return _Failure(f"{TIMED_OUT} {self.timeout_s:g} s")
            if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
                return _Failure(f"{TLS_FAILED}: the WFM closed the connection during the handshake")
            return _Failure(f"{TLS_FAILED}: {_ssl_reason(exc)}")
        except (TimeoutError, OSError) as exc:
            if not conn.tcp_connected:
                return _Failure(f"{CANNOT_CONNECT} to {self.host}:{self.port}: {_os_reason(exc, self)}")
            if watchdog.fired or isinstance(exc, TimeoutError):
                return _Failure(f"{TIMED_OUT} {self.timeout_s:g} s")
            if isinstance(exc, ConnectionResetError):
                return _Failure(f"{TLS_FAILED}: {RESET} during the handshake")
            return _Failure(f"{TLS_FAILED}: {exc}")
        finally:
            conn.timeout = self.timeout_s
        assert isinstance(conn.sock, ssl.SSLSocket)
        conn.sock.settimeout(self.timeout_s)
        self.connections_opened += 1
        self._session = (conn.sock.version(), _peer_id(conn.sock))
        return None

    def _failure(self, exc: BaseException, watchdog: _Watchdog, fresh: bool) -> _Failure:
        """What a failure before the status line means."""
        if watchdog.fired or isinstance(exc, TimeoutError):
            return _Failure(f"{TIMED_OUT} {self.timeout_s:g} s")
        stale = not fresh and isinstance(exc, _STALE_ERRORS)
        if isinstance(exc, http.client.RemoteDisconnected | ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return _Failure(CLOSED, stale)
        if isinstance(exc, ConnectionResetError | BrokenPipeError):
            return _Failure(RESET, stale)
        if isinstance(exc, ssl.SSLError):
            if fresh:  # TLS 1.3: the WFM judges the client certificate after the client's Finished
                return _Failure(f"{TLS_FAILED}: the WFM sent {_ssl_reason(exc)}")
            return _Failure(f"TLS error: {_ssl_reason(exc)}")
        if isinstance(exc, http.client.HTTPException):
            return _Failure(f"invalid HTTP response: {type(exc).__name__}: {exc}"[:300])
        return _Failure(f"network error: {exc}")

    def _read(
        self,
        method: str,
        target: str,
        headers: tuple[tuple[str, str], ...],
        body: bytes | None,
        response: http.client.HTTPResponse,
        watchdog: _Watchdog,
        started: float,
    ) -> Exchange:
        status, received = response.status, tuple(response.getheaders())
        anomaly = None
        if response.length == 0 and response.fp is not None:
            data = _stray_bytes(response)  # a 204/304/HEAD answer must end at its headers (DS-006)
            if data:
                anomaly = f"{len(data)} bytes followed a response that cannot have a body"
                self.close()
            response.read()
        else:
            data, anomaly = _read_body(response)
        if watchdog.fired:  # the socket was shut under the body: whatever arrived may be cut short
            anomaly = f"{TIMED_OUT} {self.timeout_s:g} s while reading the body" + (
                f" ({anomaly})" if anomaly else ""
            )
        if anomaly is not None:
            self.close()
        tls_version, peer = self._session
        return Exchange(
            method,
            target,
            headers,
            body or b"",
            status,
            received,
            data,
            None,
            tls_version,
            peer,
            time.monotonic() - started,
            anomaly,
        )


def _read_body(response: http.client.HTTPResponse) -> tuple[bytes, str | None]:
    chunks: list[bytes] = []
    total = 0
    try:
        while True:
            piece = response.read(65536)
            if not piece:
                return b"".join(chunks), None
            chunks.append(piece)
            total += len(piece)
            if total > MAX_BODY_BYTES:
                return b"".join(chunks)[:MAX_BODY_BYTES], f"body exceeds {MAX_BODY_BYTES} bytes; cut there"
    except http.client.IncompleteRead as exc:
        chunks.append(exc.partial)
        expected = f" of {exc.expected + len(exc.partial)}" if exc.expected is not None else ""
        return b"".join(chunks), f"connection ended after {total + len(exc.partial)}{expected} body bytes"
    except (OSError, http.client.HTTPException) as exc:
        return b"".join(chunks), f"body read failed after {total} bytes: {type(exc).__name__}: {exc}"


def _stray_bytes(response: http.client.HTTPResponse) -> bytes:
    """Bytes already waiting after a response that must end at its headers (best effort, no waiting)."""
    fp = response.fp
    raw = getattr(fp, "raw", None)
    sock = getattr(raw, "_sock", None)
    if fp is None or not isinstance(sock, socket.socket):
        return b""
    previous = sock.gettimeout()
    sock.setblocking(False)
    try:
        return bytes(fp.peek(65536))
    except (OSError, ValueError):
        return b""
    finally:
        sock.settimeout(previous)


def _pending_alert(sock: socket.socket | None) -> str | None:
    """The TLS alert a WFM sent before our write failed (TLS 1.3 client-certificate refusal), if any."""
    if not isinstance(sock, ssl.SSLSocket):
        return None
    try:
        sock.recv(1)
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return None
    except ssl.SSLError as exc:
        return _ssl_reason(exc)
    except OSError:
        return None
    return None


def _ssl_reason(exc: ssl.SSLError) -> str:
    reason = exc.reason or str(exc)
    name = reason.lower().replace("_", " ")
    return f"alert {name.split('alert ', 1)[1]!r}" if "alert " in name else name


def _os_reason(exc: BaseException, client: VirtualClient) -> str:
    if isinstance(exc, TimeoutError):
        return f"{TIMED_OUT} {client.timeout_s:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host ({exc})"
    return str(exc)


def _peer_id(sock: ssl.SSLSocket) -> SpiffeId | None:
    chain = peer_chain(sock)
    if not chain:
        return None
    try:
        return spiffe_id_of(chain[0])
    except SvidError:
        return None


def _json_bytes(document: Mapping[str, Any] | bytes) -> bytes:
    if isinstance(document, bytes):
        return document
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
