"""Every network read is under a wall-clock deadline: a registry trickling its headers, its body or its
error body one byte at a time ends with one clear error, never a hang (hostile-input report, part 2)."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator

import pytest

from margo_conformance._internal.oci import OciClient
from margo_conformance.errors import EnvironmentProblem

DIGEST = "sha256:" + "0" * 64
HEAD_200 = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
HEAD_404 = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"


def _trickle(head: bytes, *, slow_head: bool) -> Iterator[int]:
    """A server that sends ``head`` (byte by byte if ``slow_head``), then a body byte by byte, for as long
    as a client listens."""

    class Trickle(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)
            if not slow_head:
                self.request.sendall(head)
            for byte in (head if slow_head else b"") + b"x" * 100_000:
                if stopped.wait(0.02):
                    return
                self.request.sendall(bytes([byte]))

    stopped = threading.Event()
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        stopped.set()
        server.shutdown()
        server.server_close()


@pytest.fixture(
    params=[(HEAD_200, False), (HEAD_404, False), (HEAD_200, True)], ids=["body", "error-body", "headers"]
)
def trickling_registry(request: pytest.FixtureRequest) -> Iterator[int]:
    head, slow_head = request.param
    yield from _trickle(head, slow_head=slow_head)


def test_a_registry_trickling_forever_ends_with_the_transfer_timeout(trickling_registry: int) -> None:
    client = OciClient(f"127.0.0.1:{trickling_registry}", timeout=1, transfer_timeout=1)
    with client, pytest.raises(EnvironmentProblem) as caught:
        client.get_blob("acme/app", DIGEST, max_bytes=1_000_000)
    message = caught.value.diagnostics()
    assert "within 1 s (transfer timeout)" in message and "\n" not in message
