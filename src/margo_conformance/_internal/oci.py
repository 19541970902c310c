"""OCI Distribution transport: references, and a small client with bounded waits and verified digests.

Built on oras-py's ``Registry`` (its session, token authentication and request helper), with what the
suite needs on top:

* every request has a timeout (a transport adapter on the oras session), and oras-py's own retry loop
  (five attempts with back-off up to ~2 minutes) is bypassed, so an unreachable registry is reported
  within ``timeout`` seconds;
* bodies are streamed with a size bound and a total deadline, and a blob's digest is verified before
  its bytes are returned (``DigestMismatch`` otherwise);
* manifests are pushed as exact bytes, so ``artifactType`` and deliberately wrong shapes survive
  (``oras.provider.Registry.push`` cannot set ``artifactType``; ``upload_manifest`` validates);
* every failure is one line naming the reference: ``EnvironmentProblem`` when the registry cannot be
  used (unreachable, timeout, 5xx, credentials), ``NotFound`` (an ``InputError``) for an unknown
  manifest or blob, ``InputError`` for any other refusal;
* registries are reached as oras reaches them (``Reach``): ``--plain-http`` and
  ``--resolve HOST:PORT:ADDRESS[:PORT]`` (a registry name served from another address, with TLS still
  verified against the name), set once for a command with ``registry_reach`` so that every client the
  command makes, also in code that does not take the options, uses them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, cast

import oras.provider  # type: ignore[import-untyped]
import requests
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
import urllib3.util.connection

from ..errors import EnvironmentProblem, InputError, MargoError, UsageError
from . import bounded
from .watchdog import Watchdog, WatchedAdapter, watched

# -- media types -------------------------------------------------------------------------------------

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_MEDIA_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)

EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_DATA = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
EMPTY_DESCRIPTOR: Mapping[str, Any] = {
    "mediaType": EMPTY_MEDIA_TYPE,
    "digest": EMPTY_DIGEST,
    "size": 2,
    "data": "e30=",
}
"""The OCI image-spec v1.1 "empty descriptor" (``{}``, with the bytes inlined as ``data``)."""

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
HELM_PROVENANCE = "application/vnd.cncf.helm.chart.provenance.v1.prov"

TITLE = "org.opencontainers.image.title"
IMAGE_VERSION = "org.opencontainers.image.version"

MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # the distribution spec's minimum a registry must accept

# -- errors ------------------------------------------------------------------------------------------


class NotFound(InputError):
    """The registry does not know the manifest or blob (HTTP 404)."""


class DigestMismatch(MargoError):
    """Content fetched under a digest does not hash to that digest."""

    def __init__(self, where: str, expected: str, actual: str) -> None:
        super().__init__(f"{where}: content digest is {actual}, expected {expected}")
        self.where = where
        self.expected = expected
        self.actual = actual


# -- references --------------------------------------------------------------------------------------

_HOST = r"(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
_DIGEST = r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+"
_REFERENCE = re.compile(
    rf"^oci://(?P<registry>{_HOST})/(?P<repository>{_REPOSITORY})"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_ENCODED_LENGTH = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True)
class OciReference:
    """``oci://registry/repository[:tag][@digest]``, parsed."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> OciReference:
        match = _REFERENCE.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise UsageError(
                f"malformed OCI reference {text!r}: expected oci://host[:port]/repository[:tag][@digest] "
                "with a lowercase repository path"
            )
        digest = match["digest"]
        if digest is not None:
            check_digest_format(digest, where=text)
        return cls(match["registry"], match["repository"], match["tag"], digest)

    @property
    def reference(self) -> str:
        """What goes into ``/v2/<repository>/manifests/<reference>``: the digest if any, else the tag."""
        if self.digest:
            return self.digest
        if self.tag:
            return self.tag
        raise UsageError(f"{self} names neither a tag nor a digest")

    def with_tag(self, tag: str) -> OciReference:
        if not re.fullmatch(_TAG, tag):
            raise UsageError(f"{tag!r} is not a valid OCI tag")
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> OciReference:
        check_digest_format(digest, where=str(self))
        return replace(self, digest=digest)

    def with_registry(self, registry: str) -> OciReference:
        if not re.fullmatch(_HOST, registry):
            raise UsageError(f"{registry!r} is not a registry host[:port]")
        return replace(self, registry=registry)

    def __str__(self) -> str:
        text = f"oci://{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def check_digest_format(digest: str, *, where: str) -> None:
    """Raise ``InputError`` unless ``digest`` is ``sha256:<64 hex>`` or ``sha512:<128 hex>``."""
    algorithm, _, encoded = digest.partition(":")
    length = _ENCODED_LENGTH.get(algorithm)
    if length is None:
        raise InputError(f"{where}: unsupported digest algorithm in {digest!r} (sha256 or sha512)")
    if len(encoded) != length or not re.fullmatch(r"[0-9a-f]+", encoded):
        raise InputError(f"{where}: malformed digest {digest!r}")


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    if algorithm not in _ENCODED_LENGTH:
        raise InputError(f"unsupported digest algorithm {algorithm!r}")
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def is_loopback(registry: str) -> bool:
    """True for localhost / 127.0.0.0/8 / ::1, with or without a port."""
    host = registry
    if host.startswith("["):
        host = host[1 : host.index("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- how registries are reached (oras --plain-http, --resolve) ---------------------------------------

_RESOLVE = re.compile(
    r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(?P<port>[0-9]{1,5}):"
    r"(?P<address>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(?P<address_port>[0-9]{1,5}))?$"
)


def _bare(host: str) -> str:
    return host.strip("[]").lower()


@dataclass(frozen=True)
class Reach:
    """How a command reaches registries.

    ``plain_http`` None keeps the default (plain HTTP for loopback names, HTTPS otherwise); True or
    False forces it for every registry. ``resolve`` maps (host, port) to the (address, port) to connect
    to instead; the request still names the host (Host header, TLS server name and certificate check).
    """

    plain_http: bool | None = None
    resolve: Mapping[tuple[str, int], tuple[str, int]] = field(default_factory=dict)

    @classmethod
    def parse(cls, *, plain_http: bool | None, resolve: list[str] | tuple[str, ...] = ()) -> Reach:
        """From the command-line spelling; ``UsageError`` naming a malformed ``--resolve`` entry."""
        table: dict[tuple[str, int], tuple[str, int]] = {}
        for entry in resolve:
            match = _RESOLVE.match(entry.strip())
            ports = [int(p) for p in (match["port"], match["address_port"] or match["port"])] if match else []
            if match is None or not all(0 < p < 65536 for p in ports):
                raise UsageError(f"--resolve {entry!r}: expected HOST:PORT:ADDRESS[:PORT]")
            table[(_bare(match["host"]), ports[0])] = (_bare(match["address"]), ports[1])
        return cls(plain_http=plain_http, resolve=table)

    def target(self, registry: str, *, plain_http: bool) -> tuple[str, int] | None:
        """Where ``registry`` (host[:port]) is served from, when ``resolve`` redirects it."""
        host, port = _split_registry(registry, 80 if plain_http else 443)
        return self.resolve.get((host, port))


_REACH: ContextVar[Reach | None] = ContextVar("margo_registry_reach", default=None)


def current_reach() -> Reach:
    return _REACH.get() or Reach()


@contextmanager
def registry_reach(reach: Reach) -> Iterator[Reach]:
    """Every ``OciClient`` made inside the block reaches registries as ``reach`` says."""
    token = _REACH.set(reach)
    try:
        yield reach
    finally:
        _REACH.reset(token)


def _split_registry(registry: str, default_port: int) -> tuple[str, int]:
    if registry.startswith("["):
        host, _, rest = registry[1:].partition("]")
        return host.lower(), int(rest[1:]) if rest.startswith(":") else default_port
    host, _, port = registry.partition(":")
    return host.lower(), int(port) if port else default_port


def _connect_resolved(conn: urllib3.connection.HTTPConnection, target: tuple[str, int]) -> socket.socket:
    """urllib3's ``_new_conn`` with the TCP connection going to ``target`` instead of the host."""
    where = f"{target[0]}:{target[1]} (for {conn.host}:{conn.port})"
    try:
        return urllib3.util.connection.create_connection(
            target, conn.timeout, source_address=conn.source_address, socket_options=conn.socket_options
        )
    except TimeoutError as exc:
        raise urllib3.exceptions.ConnectTimeoutError(conn, f"Connection to {where} timed out") from exc
    except OSError as exc:
        raise urllib3.exceptions.NewConnectionError(
            conn, f"Failed to establish a new connection to {where}: {exc}"
        ) from exc


def _resolving_pools(
    table: Mapping[tuple[str, int], tuple[str, int]],
) -> dict[str, type[urllib3.connectionpool.HTTPConnectionPool]]:
    """Connection pool classes whose connections go where ``table`` says (curl's --resolve)."""

    class Http(urllib3.connection.HTTPConnection):
        resolve: ClassVar[Mapping[tuple[str, int], tuple[str, int]]] = table

        def _new_conn(self) -> socket.socket:
            target = self.resolve.get((_bare(self.host), int(self.port or 80)))
            return super()._new_conn() if target is None else _connect_resolved(self, target)

    class Https(urllib3.connection.HTTPSConnection):
        resolve: ClassVar[Mapping[tuple[str, int], tuple[str, int]]] = table

        def _new_conn(self) -> socket.socket:
            target = self.resolve.get((_bare(self.host), int(self.port or 443)))
            return super()._new_conn() if target is None else _connect_resolved(self, target)

    class HttpPool(urllib3.connectionpool.HTTPConnectionPool):
        ConnectionCls = Http

    class HttpsPool(urllib3.connectionpool.HTTPSConnectionPool):
        ConnectionCls = Https

    return {"http": HttpPool, "https": HttpsPool}


# -- the client --------------------------------------------------------------------------------------


class _TimeoutAdapter(WatchedAdapter):
    """Gives every request of the session a (connect, read) timeout unless the caller set one, connects to
    the ``resolve`` address of a redirected registry, and lets the watchdog shut its connections."""

    def __init__(self, timeout: float, resolve: Mapping[tuple[str, int], tuple[str, int]]) -> None:
        self._resolve = resolve  # before super().__init__, which calls init_poolmanager
        super().__init__(max_retries=0)
        self._timeout = timeout

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        if self._resolve:
            self.poolmanager.pool_classes_by_scheme = {
                scheme: watched(pool) for scheme, pool in _resolving_pools(self._resolve).items()
            }

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = (self._timeout, self._timeout)
        return super().send(request, *args, **kwargs)


# oras-py wraps do_request in a retry loop (5 attempts, sleeping 3 s … 83 s); use the plain function.
_DO_REQUEST = cast(
    Callable[..., requests.Response],
    getattr(oras.provider.Registry.do_request, "__wrapped__", oras.provider.Registry.do_request),
)


def _failure_reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return f"no connection within {timeout:g} s"
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g} s"
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "host name does not resolve"),
        ("NameResolutionError", "host name does not resolve"),
        ("Failed to resolve", "host name does not resolve"),
        ("No route to host", "no route to host"),
        ("Connection reset", "connection reset by the registry"),
        ("RemoteDisconnected", "the registry closed the connection without answering"),
        ("CERTIFICATE_VERIFY_FAILED", "TLS certificate verification failed"),
        ("WRONG_VERSION_NUMBER", "TLS handshake failed (is it plain HTTP?)"),
    ):
        if needle in text:
            return reason
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:200]


MAX_ERROR_BODY_BYTES = 64 * 1024


def _registry_error(body: bytes, reason: str) -> str:
    """The OCI error code and message of a refusal, if the body has them (one line, printable)."""
    try:
        errors = bounded.load_json(body, where="error body").get("errors") or []
        parts = [
            f"{e.get('code', '?')}: {e.get('message', '')}".strip() for e in errors if isinstance(e, dict)
        ]
    except (bounded.UntrustedInput, AttributeError, TypeError):
        parts = []
    text = "; ".join(parts) or reason or ""
    return "".join(c if c.isprintable() else "?" for c in " ".join(text.split()))[:300]


class OciClient:
    """Talks the OCI Distribution API to one registry.

    ``plain_http`` None takes the command's ``Reach``; when that leaves it open too, True for loopback
    registries (127.0.0.1, localhost, ::1) and False (HTTPS with certificate verification) for every
    other host. The ``Reach``'s ``resolve`` table applies. ``timeout`` bounds each connect and each read;
    ``transfer_timeout`` bounds the whole body of one response.
    """

    def __init__(
        self,
        registry: str,
        *,
        plain_http: bool | None = None,
        timeout: float = 10.0,
        transfer_timeout: float = 300.0,
    ) -> None:
        self.registry = registry
        reach = current_reach()
        if plain_http is None:
            plain_http = is_loopback(registry) if reach.plain_http is None else reach.plain_http
        self.plain_http = plain_http
        target = reach.target(registry, plain_http=plain_http)
        self._served_from = f" (resolved to {target[0]}:{target[1]})" if target else ""
        self.timeout = timeout
        self.transfer_timeout = transfer_timeout
        self._oras = oras.provider.Registry(hostname=registry, insecure=self.plain_http, auth_backend="token")
        adapter = _TimeoutAdapter(timeout, reach.resolve)
        self._oras.session.mount("http://", adapter)
        self._oras.session.mount("https://", adapter)
        self._base = f"{'http' if self.plain_http else 'https'}://{registry}"
        self._watchdog = Watchdog()  # transfer_timeout bounds every exchange: connect, headers and body

    def close(self) -> None:
        self._oras.session.close()

    def __enter__(self) -> OciClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _where(self, repository: str, reference: str | None = None) -> str:
        text = f"oci://{self.registry}/{repository}"
        if reference:
            text += f"@{reference}" if ":" in reference else f":{reference}"
        return text

    # -- plumbing ---------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        where: str,
        *,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
        stream: bool = False,
    ) -> requests.Response:
        with self._watchdog.bound(self.transfer_timeout) as watchdog:
            try:
                response = _DO_REQUEST(
                    self._oras, url, method, data=data, headers=dict(headers or {}), stream=stream
                )
            except requests.RequestException as exc:
                self._raise_if_expired(watchdog, where)
                raise EnvironmentProblem(
                    f"{where}: registry {self.registry}{self._served_from} unreachable: "
                    f"{_failure_reason(exc, self.timeout)}"
                ) from None
            except ValueError as exc:  # oras-py: "Cannot respond to request for authentication."
                self._raise_if_expired(watchdog, where)
                raise EnvironmentProblem(f"{where}: registry {self.registry} refused access: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - oras auth helpers raise assorted types
                self._raise_if_expired(watchdog, where)
                raise EnvironmentProblem(
                    f"{where}: request to registry {self.registry} failed: {type(exc).__name__}: {exc}"
                ) from None
            if watchdog.expired:  # headers cut short by the deadline read as complete ones: they are not
                response.close()
                self._raise_if_expired(watchdog, where)
            return response

    def _raise_if_expired(self, watchdog: Watchdog, where: str) -> None:
        if watchdog.expired:
            raise EnvironmentProblem(
                f"{where}: registry {self.registry}{self._served_from} sent no complete answer within "
                f"{self.transfer_timeout:g} s (transfer timeout); aborted"
            ) from None

    def _check(self, response: requests.Response, where: str, action: str, ok: tuple[int, ...]) -> None:
        status = response.status_code
        if status in ok:
            return
        try:  # the error body is untrusted too: bounded in size and time, never fatal
            body = self._read_body(response, where, MAX_ERROR_BODY_BYTES)
        except InputError:  # too long: the status alone says enough (a deadline still ends the check)
            body = b""
        detail = _registry_error(body, response.reason or "")
        message = f"{where}: {action} failed: HTTP {status} {detail}".rstrip()
        if status == 404:
            raise NotFound(message)
        if status in (401, 403) or status >= 500 or status == 429:
            raise EnvironmentProblem(message)
        raise InputError(message)

    def _read_body(self, response: requests.Response, where: str, max_bytes: int) -> bytes:
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            response.close()
            raise InputError(f"{where}: {length} bytes exceed the limit of {max_bytes}")
        chunks: list[bytes] = []
        size = 0
        connection = getattr(response.raw, "connection", None)
        with self._watchdog.bound(self.transfer_timeout, connection) as watchdog:
            try:
                for chunk in response.iter_content(chunk_size=65536):
                    size += len(chunk)
                    if size > max_bytes:
                        raise InputError(f"{where}: more than {max_bytes} bytes; not read further")
                    chunks.append(chunk)
            except requests.RequestException as exc:
                self._raise_if_expired(watchdog, where)
                raise EnvironmentProblem(
                    f"{where}: transfer from {self.registry} failed: {_failure_reason(exc, self.timeout)}"
                ) from None
            finally:
                response.close()
            self._raise_if_expired(watchdog, where)  # a body cut short by the deadline is no body
        return b"".join(chunks)

    # -- pulling ----------------------------------------------------------------------------------

    def get_manifest(
        self, repository: str, reference: str, *, max_bytes: int = MAX_MANIFEST_BYTES
    ) -> tuple[bytes, str, str]:
        """The manifest's exact bytes, its media type (the Content-Type, else the body's
        ``mediaType``) and its digest. A digest reference is verified against the bytes; a tag's
        digest is computed (and checked against ``Docker-Content-Digest`` when the registry sends it)."""
        where = self._where(repository, reference)
        if ":" in reference:
            check_digest_format(reference, where=where)
        url = f"{self._base}/v2/{repository}/manifests/{reference}"
        response = self._request(
            "GET", url, where, headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)}, stream=True
        )
        self._check(response, where, "pulling the manifest", (200,))
        content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
        claimed = response.headers.get("Docker-Content-Digest", "").strip()
        body = self._read_body(response, where, max_bytes)
        if ":" in reference:
            digest = compute_digest(body, reference.split(":", 1)[0])
            if digest != reference:
                raise DigestMismatch(where, reference, digest)
        else:
            digest = compute_digest(body)
            if claimed.startswith("sha256:") and claimed != digest:
                raise DigestMismatch(where + " (Docker-Content-Digest)", claimed, digest)
        media_type = content_type
        if not media_type or media_type in ("application/json", "application/octet-stream"):
            try:
                parsed = bounded.load_json(body, where=where)
                media_type = (
                    str(parsed.get("mediaType") or media_type) if isinstance(parsed, dict) else media_type
                )
            except bounded.UntrustedInput:
                pass
        return body, media_type, digest

    def get_blob(self, repository: str, digest: str, *, max_bytes: int) -> bytes:
        """The blob's bytes, streamed with a size bound, returned only once they hash to ``digest``."""
        where = self._where(repository, digest)
        check_digest_format(digest, where=where)
        url = f"{self._base}/v2/{repository}/blobs/{digest}"
        response = self._request("GET", url, where, stream=True)
        self._check(response, where, "pulling the blob", (200,))
        body = self._read_body(response, where, max_bytes)
        actual = compute_digest(body, digest.split(":", 1)[0])
        if actual != digest:
            raise DigestMismatch(where, digest, actual)
        return body

    # -- pushing ----------------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        where = self._where(repository, digest)
        response = self._request("HEAD", f"{self._base}/v2/{repository}/blobs/{digest}", where)
        response.close()
        if response.status_code == 404:
            return False
        self._check(response, where, "checking the blob", (200,))
        return True

    def push_blob(self, repository: str, data: bytes) -> str:
        """Push bytes as a blob (POST then PUT, the upload every registry supports); its digest."""
        digest = compute_digest(data)
        where = self._where(repository, digest)
        if self.blob_exists(repository, digest):
            return digest
        response = self._request(
            "POST",
            f"{self._base}/v2/{repository}/blobs/uploads/",
            where,
            headers={"Content-Length": "0"},
        )
        self._check(response, where, "starting the blob upload", (202,))
        location = response.headers.get("Location", "")
        if not location:
            raise InputError(f"{where}: the registry started an upload without a Location header")
        if not location.startswith(("http://", "https://")):
            location = self._base + location
        separator = "&" if "?" in location else "?"
        response = self._request(
            "PUT",
            f"{location}{separator}digest={digest}",
            where,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
            data=data,
        )
        self._check(response, where, "uploading the blob", (201,))
        return digest

    def push_manifest(self, repository: str, tag: str, manifest: Mapping[str, Any] | bytes) -> str:
        """PUT a manifest under ``tag`` exactly as given (a dict is serialised as compact JSON); its
        digest. The Content-Type is the manifest's own ``mediaType`` (OCI image manifest if absent)."""
        body = (
            manifest if isinstance(manifest, bytes) else json.dumps(manifest, separators=(",", ":")).encode()
        )
        try:
            parsed = json.loads(body)
            media_type = parsed.get("mediaType") if isinstance(parsed, dict) else None
        except ValueError:
            media_type = None
        digest = compute_digest(body)
        where = self._where(repository, tag)
        response = self._request(
            "PUT",
            f"{self._base}/v2/{repository}/manifests/{tag}",
            where,
            headers={"Content-Type": str(media_type or OCI_MANIFEST)},
            data=body,
        )
        self._check(response, where, "pushing the manifest", (201,))
        claimed = response.headers.get("Docker-Content-Digest", "").strip()
        if claimed and claimed != digest:
            raise DigestMismatch(where + " (registry's digest of the pushed manifest)", digest, claimed)
        return digest
