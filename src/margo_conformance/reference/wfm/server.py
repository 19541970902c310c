"""The reference WFM process: three listeners around one ``Wfm``.

  * Management Interface — mTLS, client certificate required, TLS 1.3 only (1.2 as a fallback only with
    ``tls12``), presenting the WFM's chain (leaf + intermediate, SVID-001);
  * MIS trust endpoints — server-only TLS, discovery document and SPIFFE bundle;
  * admin — plain HTTP, loopback only: provisioning and control, never the southbound API.

``WfmServer`` runs inside an existing event loop; ``run_wfm`` is the foreground entry point (stops
cleanly on SIGTERM/SIGINT); ``BackgroundWfm`` runs one in a thread of its own (tests, in-process use).
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import ipaddress
import json
import os
import signal
import socket
import ssl
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from ..._internal.oci import is_loopback
from ...errors import EnvironmentProblem, UsageError
from ...pki import Flaw, Pki, SpiffeId, SvidFiles
from ...pki.tls import TLS12_CIPHERS, server_context
from ...signing.package_check import Trust
from .admin import Admin
from .core import HANDSHAKE_FAILED, NO_REQUEST, REJECTED, REQUESTS, Connection, Transcript, Wfm
from .faults import FaultSet
from .instrument import ActiveServed
from .mis import TrustEndpoints
from .southbound import Southbound
from .store import Store

MIB = 1024 * 1024
SHUTDOWN_GRACE = 2.0
Address = tuple[str, int]


def parse_address(text: str, *, option: str = "address") -> Address:
    """``host:port`` or ``[v6]:port``."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"{option} {text!r}: expected HOST:PORT (e.g. 127.0.0.1:0)")
    return host, int(port)


@dataclass(frozen=True)
class WfmConfig:
    """Everything a reference WFM needs; built once (CLI or test) and never changed."""

    pki_dir: Path
    state_dir: Path
    listen: Address = ("127.0.0.1", 0)
    mis_listen: Address | None = ("127.0.0.1", 0)
    admin_listen: Address | None = ("127.0.0.1", 0)
    tls12: bool = False
    faults: tuple[str, ...] = ()
    read_timeout: float = 10.0
    max_body: int = MIB
    request_log_size: int = 10_000
    trust_policy: Path | None = None  # a Notary trustpolicy.json: packages are verified under it (SUP-03)
    trust_store: Path | None = None  # its trust store (x509/ca/<name>/…); both or neither

    def __post_init__(self) -> None:
        if (self.trust_policy is None) != (self.trust_store is None):
            raise UsageError("--trust-policy and --trust-store go together: give both or neither")

    def load_trust(self) -> Trust | None:
        """The trust material, checked against itself; None without a policy (nothing is verified)."""
        if self.trust_policy is None or self.trust_store is None:
            return None
        return Trust.load(self.trust_policy, self.trust_store)


@dataclass(frozen=True)
class Endpoints:
    """Where a started WFM listens (the --ready-file document)."""

    url: str
    mis_url: str | None
    admin_url: str | None
    pid: int = field(default_factory=os.getpid)

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "mis_url": self.mis_url, "admin_url": self.admin_url, "pid": self.pid}


NO_CHECK_TIME = 0x200000  # OpenSSL X509_V_FLAG_NO_CHECK_TIME
LEGACY_CIPHERS = "DEFAULT:@SECLEVEL=0"  # OpenSSL 3 negotiates TLS 1.1 at security level 0 only
Gate = Callable[[asyncio.BaseTransport, Connection], bool]


class ManagementTls:
    """The Management Interface's one SSLContext, with the TLS faults (and the listener-scoped served
    faults of the instrument WFM) applied to it in place, so a switch at run time holds for every
    handshake from then on."""

    def __init__(
        self,
        pki: Pki,
        tls_dir: Path,
        faults: FaultSet,
        *,
        tls12: bool,
        served: ActiveServed | None = None,
    ) -> None:
        self.pki, self.tls_dir, self.faults, self.tls12 = pki, tls_dir, faults, tls12
        self.served = served if served is not None else ActiveServed()
        self._rogue: ssl.SSLContext | None = None
        self.context = server_context(pki.wfm_svid_files, pki.bundle_pem, minimum=self._minimum())
        self.apply()

    def _minimum(self) -> ssl.TLSVersion:
        return ssl.TLSVersion.TLSv1_2 if self.tls12 else ssl.TLSVersion.TLSv1_3  # TLS-003/004

    def apply(self) -> None:
        files = self._svid_files()
        self.context.load_cert_chain(files.certificate, files.key)
        self._rogue = None  # rebuilt with the SVID now presented, if accepts-unknown-issuer needs it
        minimum, maximum = self._minimum(), ssl.TLSVersion.MAXIMUM_SUPPORTED
        ciphers = TLS12_CIPHERS
        if self.faults.active("tls13-refused"):
            minimum, maximum = min(minimum, ssl.TLSVersion.TLSv1_2), ssl.TLSVersion.TLSv1_2
        if self.faults.active("tls11-accepted"):
            minimum, ciphers = ssl.TLSVersion.TLSv1_1, LEGACY_CIPHERS
        if self.served.on_listener("tls11-only"):  # TLS-005 probe
            minimum = maximum = ssl.TLSVersion.TLSv1_1
            ciphers = LEGACY_CIPHERS
        self.context.set_ciphers(ciphers)
        # API-SEC-002 broken: ask for a certificate but do not require one.
        self.context.verify_mode = (
            ssl.CERT_OPTIONAL if self.faults.active("accepts-anonymous") else ssl.CERT_REQUIRED
        )
        # TLS-008 broken: OpenSSL's X509_V_FLAG_NO_CHECK_TIME, which Python's ssl has no name for.
        no_check_time = ssl.VerifyFlags(NO_CHECK_TIME)
        if self.faults.active("accepts-expired"):
            self.context.verify_flags |= no_check_time
        else:
            self.context.verify_flags &= ~no_check_time
        # TLS-008 broken: a rogue anchor. An SSLContext cannot forget a CA, so the rogue store lives in a
        # second context that the handshake switches to (the callback runs for every ClientHello,
        # with or without SNI); switching the fault off simply stops the switch.
        self.context.sni_callback = (
            self._trust_rogue_ca if self.faults.active("accepts-unknown-issuer") else None
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.context.minimum_version = minimum
            self.context.maximum_version = maximum

    def _trust_rogue_ca(
        self, ssl_object: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext
    ) -> None:
        if self._rogue is None:
            files = self._svid_files()
            self._rogue = server_context(files, self.pki.bundle_pem, minimum=self._minimum())
            self._rogue.load_verify_locations(cafile=self.pki.foreign().bundle_pem)
        ssl_object.context = self._rogue

    def _svid_files(self) -> SvidFiles:
        # WIP-004 broken, or the WIP-007 probe of the instrument WFM: the same certificate.
        wrong_id = self.faults.active("wfm-wrong-spiffe-id") or self.served.on_listener("wrong-wfm-spiffe-id")
        omit = self.faults.active("omits-intermediate")
        untrusted = self.served.on_listener("untrusted-chain")  # TLS-008 probe: the PKI's rogue CA
        if not (wrong_id or omit or untrusted):
            return self.pki.wfm_svid_files
        flaw = Flaw.UNKNOWN_ISSUER if untrusted else Flaw.WITHOUT_INTERMEDIATE if omit else None
        svid = self.pki.mint_wfm(
            wfm_id=f"{self.pki.wfm_id}-other" if wrong_id else None,
            flaw=flaw,  # SVID-001 broken with omits-intermediate
        )
        return svid.write(self.tls_dir, "wfm-faulty")


class WfmServer:
    """One reference WFM inside the running event loop: ``await start()`` ... ``await stop()``."""

    def __init__(self, config: WfmConfig) -> None:
        self.config = config
        self.endpoints: Endpoints | None = None
        self.wfm: Wfm | None = None
        self._runners: list[web.AppRunner] = []
        self._store: Store | None = None

    async def start(self) -> Endpoints:
        config = self.config
        if config.admin_listen is not None and not is_loopback(config.admin_listen[0]):
            raise UsageError(f"the admin interface listens on loopback only, not {config.admin_listen[0]!r}")
        faults = FaultSet(config.faults)
        pki = Pki.load(config.pki_dir)
        package_trust = config.load_trust()
        self._store = Store(config.state_dir)
        try:
            self.wfm = wfm = Wfm(
                pki, self._store, faults, log_size=config.request_log_size, trust=package_trust
            )
            tls_dir = config.state_dir / "tls"
            management = ManagementTls(pki, tls_dir, faults, tls12=config.tls12, served=wfm.served)
            southbound = Southbound(wfm, read_timeout=config.read_timeout, max_body=config.max_body)
            url = await self._serve(
                southbound.app(),
                config.listen,
                management.context,
                "https",
                gate=(southbound.admit_connection, wfm.requests),
            )
            mis_url = admin_url = None
            if config.mis_listen is not None:
                trust = TrustEndpoints(pki.trust_domain, pki.bundle_json, faults=faults, pki=pki)
                context = self._mis_context(pki, tls_dir, config.mis_listen[0], faults)
                mis_url = await self._serve(trust.app(), config.mis_listen, context, "https")
                trust.base_url = mis_url
            if config.admin_listen is not None:
                admin = Admin(wfm, on_faults_changed=lambda: _tls_changed(management, wfm))
                admin_url = await self._serve(admin.app(), config.admin_listen, None, "http")
        except BaseException:
            await self.stop()
            raise
        self.endpoints = Endpoints(url=url, mis_url=mis_url, admin_url=admin_url)
        return self.endpoints

    def _mis_context(self, pki: Pki, tls_dir: Path, host: str, faults: FaultSet) -> ssl.SSLContext:
        """A server certificate for PKI-anchored bootstrap (TLS-006): the WFM's SPIFFE ID plus DNS/IP
        names of the listener, from the same intermediate; no client certificate is asked for (the MIS
        TLS faults are fixed at start)."""
        ips = [host] if _is_ip(host) else []
        names = ["localhost"] + ([] if _is_ip(host) or host == "localhost" else [host])
        svid = pki.mint_server(SpiffeId.wfm(pki.trust_domain, pki.wfm_id), dns_names=names, ip_addresses=ips)
        files = svid.write(tls_dir, "mis")
        fallback = self.config.tls12 or faults.active("mis-tls12-fallback")
        minimum = ssl.TLSVersion.TLSv1_2 if fallback else ssl.TLSVersion.TLSv1_3
        maximum = ssl.TLSVersion.TLSv1_2 if faults.active("mis-tls13-refused") else None
        required = faults.active("mis-client-cert-required")
        context = server_context(
            files,
            pki.bundle_pem,
            require_client_cert=required,
            minimum=min(minimum, maximum or minimum),
            maximum=maximum,
        )
        if faults.active("mis-tls11-accepted"):
            context.set_ciphers(LEGACY_CIPHERS)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                context.minimum_version = ssl.TLSVersion.TLSv1_1
        return context

    async def _serve(
        self,
        app: web.Application,
        address: Address,
        context: ssl.SSLContext | None,
        scheme: str,
        gate: tuple[Gate, Transcript] | None = None,
    ) -> str:
        host, port = address
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise EnvironmentProblem(f"cannot listen on {host}:{port}: {exc}") from None
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE)
        self._runners.append(runner)
        await runner.setup()
        site = (
            _RecognisingSite(runner, sock, ssl_context=context, gate=gate[0], transcript=gate[1])
            if gate is not None and context is not None
            else web.SockSite(runner, sock, ssl_context=context)
        )
        await site.start()
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        if host in ("0.0.0.0", "::"):
            shown = socket.gethostname()
        return f"{scheme}://{shown}:{bound}"

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in reversed(runners):
            await runner.cleanup()
        if self._store is not None:
            self._store.close()
            self._store = None

    async def __aenter__(self) -> WfmServer:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.stop()


def run_wfm(
    config: WfmConfig, *, ready_file: Path | None = None, announce: Callable[[str], None] | None = None
) -> None:
    """Serve in the foreground until SIGTERM or SIGINT, then stop cleanly."""
    asyncio.run(_serve_until_signalled(config, ready_file, announce or _print))


async def _serve_until_signalled(
    config: WfmConfig, ready_file: Path | None, announce: Callable[[str], None]
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with WfmServer(config) as server:
        assert server.endpoints is not None
        document = json.dumps(server.endpoints.as_dict(), sort_keys=True)
        if ready_file is not None:
            _write_atomically(ready_file, document + "\n")
        announce(document)
        await stop.wait()


def _print(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - the ready line is the CLI's output contract
    sys.stdout.flush()


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _RecognisingSite(web.SockSite):
    """A TLS SockSite whose connections pass ``gate`` right after the TLS handshake, before any HTTP is
    parsed: WIP-005 "reject the connection" even for a peer that sends no well-formed request.

    Every accepted TCP connection also becomes a transcript record when it ends, with how it went
    (``Connection``). For that the site builds the TLS layer itself, exactly as
    ``loop.create_server(ssl=...)`` does inside (one ``SSLProtocol`` around the application protocol),
    but with a handshake waiter of its own: a failed handshake never reaches the application protocol,
    only that waiter."""

    def __init__(
        self,
        runner: web.AppRunner,
        sock: socket.socket,
        *,
        ssl_context: ssl.SSLContext,
        gate: Gate,
        transcript: Transcript,
    ) -> None:
        super().__init__(runner, sock, ssl_context=ssl_context)
        self._gate, self._transcript, self._tls = gate, transcript, ssl_context

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: self._accepted(loop), sock=self._sock, backlog=self._backlog
        )

    def _accepted(self, loop: asyncio.AbstractEventLoop) -> asyncio.BaseProtocol:
        """At TCP accept, before the handshake: the connection's record-to-be and its TLS layer."""
        server = self._runner.server
        assert server is not None
        gated = _Gated(server(), self._gate, self._transcript)
        waiter: asyncio.Future[None] = loop.create_future()
        waiter.add_done_callback(gated.handshake_done)
        return _TlsLayer(loop, gated, self._tls, waiter)


class _TlsLayer(asyncio.sslproto.SSLProtocol):
    """asyncio's own server-side TLS layer, which also opens the connection's record at TCP accept
    (the only moment the peer address is known for a handshake that then fails)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        gated: _Gated,
        context: ssl.SSLContext,
        waiter: asyncio.Future[None],
    ) -> None:
        super().__init__(loop, gated, context, waiter, server_side=True)
        self._gated = gated

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._gated.accepted(transport.get_extra_info("peername"))
        super().connection_made(transport)


class _Gated(asyncio.Protocol):
    """Delegates to aiohttp's RequestHandler once the gate admitted the connection; else aborts it.
    Keeps the connection's record: handshake outcome, client, requests, bytes received."""

    def __init__(self, inner: asyncio.Protocol, gate: Gate, transcript: Transcript) -> None:
        self.inner = inner
        self.gate = gate
        self.transcript = transcript
        self.connection: Connection | None = None
        self.transport: asyncio.BaseTransport | None = None
        self.admitted = False

    def accepted(self, peer: Any) -> None:
        self.connection = self.transcript.opened(_peer(peer))

    def handshake_done(self, waiter: asyncio.Future[None]) -> None:
        """The TLS handshake ended; a failure is recorded here (the connection never gets further)."""
        if self.transport is not None:
            return
        failure = None if waiter.cancelled() else waiter.exception()
        self.transcript.closed(self._connection(), HANDSHAKE_FAILED, _reason(failure))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        connection = self._connection()
        ssl_object = transport.get_extra_info("ssl_object")
        connection.tls_version = ssl_object.version() if ssl_object is not None else None
        if not self.gate(transport, connection):
            self.transcript.closed(connection, REJECTED)
            transport.abort()  # type: ignore[attr-defined]  # a reset: not one byte of HTTP
            return
        self.admitted = True
        self.transcript.attach(transport, connection)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.admitted:
            self._connection().received_bytes += len(data)
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.admitted:
            self.inner.connection_lost(exc)
        connection = self._connection()
        outcome = REQUESTS if connection.requests else NO_REQUEST
        self.transcript.closed(connection, outcome, transport=self.transport)

    def pause_writing(self) -> None:
        if self.admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.inner.resume_writing()

    def _connection(self) -> Connection:
        if self.connection is None:  # only if the TLS layer did not say "accepted"
            self.connection = self.transcript.opened("unknown")
        return self.connection


def _tls_changed(management: ManagementTls, wfm: Wfm) -> None:
    """New TLS settings for every handshake from now on, and no connection that predates them."""
    management.apply()
    wfm.requests.drop_live()


def _peer(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return "unknown"


def _reason(failure: BaseException | None) -> str:
    """Why a handshake failed, in one line (OpenSSL's reason when there is one)."""
    text = str(failure or "")
    if failure is None or (isinstance(failure, ConnectionError) and not text):
        return "the peer closed the connection in the handshake"
    return f"{type(failure).__name__}: {text}" if text else type(failure).__name__


class BackgroundWfm:
    """A reference WFM on its own thread and event loop (``with BackgroundWfm(config) as endpoints:``)."""

    def __init__(self, config: WfmConfig, *, start_timeout: float = 20.0) -> None:
        self.config = config
        self.start_timeout = start_timeout
        self.server: WfmServer | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def wfm(self) -> Wfm:
        assert self.server is not None and self.server.wfm is not None, "not started"
        return self.server.wfm

    def start(self) -> Endpoints:
        self._thread = threading.Thread(target=self._run, name="reference-wfm", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.start_timeout):
            raise EnvironmentProblem("the reference WFM did not start in time")
        if self._error is not None:
            self._thread.join()
            raise self._error
        assert self.server is not None and self.server.endpoints is not None
        return self.server.endpoints

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise EnvironmentProblem("the reference WFM did not stop in time")
        self._thread = None

    def call(self, function: Callable[[], Any]) -> Any:
        """Run ``function`` on the server's loop thread and return its result (tests, inspection)."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(_call(function), self._loop)
        return future.result(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start()
            self._error = self._error or exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.server = WfmServer(self.config)
        try:
            await self.server.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.server.stop()

    def __enter__(self) -> Endpoints:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


async def _call(function: Callable[[], Any]) -> Any:
    return function()
