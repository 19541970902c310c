"""Issue 15 (hostile-input report §4): the suite run against servers that misbehave in the transport.

A server that resets every connection, speaks garbage after the TLS handshake, or accepts and never
answers serves nothing, so it must pass nothing: every refusal scenario needs a served positive control
first, and without it is blocked. The provisioner is a trivial command that succeeds, so that only the
server misbehaves. Each run is bounded by the short SUT timeouts.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from margo_conformance.errors import Blocked
from margo_conformance.pki import Pki
from margo_conformance.pki.tls import server_context
from margo_conformance.suite.runner import run_suite
from margo_conformance.wfm.client import Exchange
from margo_conformance.wfm.conversation import Conversation, served

TIMEOUT_S = 0.3  # the SUT's request timeout: what bounds the server that never answers
RUN_BOUND_S = 60.0


class MisbehavingServer:
    """A loopback TCP server whose every connection gets ``behaviour``: "reset" (RST at once),
    "garbage" (a TLS handshake with the WFM's own certificate, then bytes that are no HTTP) or "silent"
    (accepted, never answered, closed only when the server stops)."""

    def __init__(self, behaviour: str, tls: ssl.SSLContext) -> None:
        self.behaviour = behaviour
        self.tls = tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> MisbehavingServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(5)
        for held in self.held:
            held.close()
        self.listener.close()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._misbehave, args=(connection,), daemon=True).start()

    def _misbehave(self, connection: socket.socket) -> None:
        if self.behaviour == "silent":
            self.held.append(connection)
            return
        if self.behaviour == "reset":
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()
            return
        connection.settimeout(5)
        with contextlib.suppress(OSError), self.tls.wrap_socket(connection, server_side=True) as tls:
            tls.recv(4096)
            tls.sendall(b"\x00\xffgarbage, not HTTP\r\n\r\n" * 4)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.init(tmp_path_factory.mktemp("pki") / "pki", trust_domain="factory.example", wfm_id="wfm-1")


@pytest.fixture
def server(request: pytest.FixtureRequest, pki: Pki) -> Iterator[MisbehavingServer]:
    # The server presents the real WFM certificate, so the handshake (where there is one) succeeds.
    context = server_context(pki.wfm_svid_files, pki.bundle_pem, require_client_cert=False)
    with MisbehavingServer(str(request.param), context) as running:
        yield running


def sut_file(folder: Path, pki: Pki, url: str) -> Path:
    """A WFM (and identity service) at ``url`` whose provisioner succeeds at everything it is asked."""
    deployment_id = "echo 3f1d2c4e-8a4b-4c8e-9d7a-0e5b6c7d8e9f"
    provisioner = {
        "type": "command",
        "timeout_s": 5,
        **{op: "true" for op in ("accept_client", "retire_client", "update", "undeploy", "overload")},
        "restart": "true",
        "deploy": deployment_id,
    }
    wfm = {
        "url": url,
        "wfm_id": pki.wfm_id,
        "trust_domain": pki.trust_domain,
        "pki": str(pki.directory),
        "timeout_s": TIMEOUT_S,
        "provisioner": provisioner,
    }
    mis = {
        "url": url,
        "trust_domain": pki.trust_domain,
        "anchors": str(pki.bundle_pem),
        "wfm_url": url,
        "timeout_s": TIMEOUT_S,
    }
    path = folder / "sut.yaml"
    path.write_text(yaml.safe_dump({"declares": ["core"], "wfm": wfm, "mis": mis}), encoding="utf-8")
    return path


def verdicts_of(persona: str, sut: Path, reports: Path) -> tuple[dict[str, str], dict[str, Any], bool]:
    started = time.monotonic()
    outcome = run_suite(persona=persona, sut=sut, reports_root=reports, echo=False, timeout_s=RUN_BOUND_S)
    assert time.monotonic() - started < RUN_BOUND_S
    results = yaml.safe_load(outcome.results.read_text(encoding="utf-8"))
    verdicts = {str(s["scenario"]): str(s["verdict"]) for s in results["scenarios"]}
    return verdicts, results["summary"], outcome.conformant


@pytest.mark.slow
@pytest.mark.parametrize("server", ["reset", "garbage", "silent"], indirect=True)
@pytest.mark.parametrize("persona", ["wfm", "mis"])
def test_a_server_that_serves_nothing_passes_nothing(
    persona: str, server: MisbehavingServer, pki: Pki, tmp_path: Path
) -> None:
    verdicts, summary, conformant = verdicts_of(persona, sut_file(tmp_path, pki, server.url), tmp_path)
    assert verdicts, "the persona ran no scenario"
    passed = sorted(name for name, verdict in verdicts.items() if verdict == "pass")
    assert passed == [], f"{server.behaviour}: scenarios passed against a server that serves nothing"
    assert not conformant and not summary["conformant"]
    assert summary["eligible_for_certification"] is False


def test_a_precondition_not_served_blocks_and_the_first_served_one_is_the_control() -> None:
    conversation = Conversation(subject=cast(Any, None), packages=Path("."))
    reset = Exchange(
        "GET", "/api/v1/deployments", (), b"", None, (), b"", "connection reset", None, None, 0.1
    )
    with pytest.raises(Blocked, match="(?s)the positive control failed:\n.*connection reset"):
        conversation.establish(reset, "the positive control failed")
    assert conversation.control is None
    ok = Exchange("PUT", "/api/v1/capabilities/edge-1", (), b"", 201, (), b"", None, "TLSv1.3", None, 0.1)
    assert conversation.establish(ok, "unused") is ok and conversation.control is ok
    conversation.establish(Exchange("GET", "/x", (), b"", 200, (), b"", None, "TLSv1.3", None, 0.1), "unused")
    assert conversation.control is ok  # the first served exchange stays the control
    assert not served(reset) and served(ok)
