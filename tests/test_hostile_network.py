"""Every network read is under a wall-clock deadline: a registry trickling its headers, its body or its
error body one byte at a time ends with one clear error, never a hang (hostile-input report, part 2)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from margo_conformance._internal.oci import OciClient
from margo_conformance.errors import EnvironmentProblem

DIGEST = "sha256:" + "0" * 64
HEAD_200 = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
HEAD_404 = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"


def _trickle(head: bytes, stop: threading.Event, *, slow_head: bool) -> Iterator[int]:
    """A server that sends ``head`` (byte by byte if ``slow_head``), then a body byte by byte, for as long
    as a client listens (until ``stop``)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)

    def talk(connection: socket.socket) -> None:
        with connection:
            connection.settimeout(0.1)
            try:
                connection.recv(65536)
                if not slow_head:
                    connection.sendall(head)
                for byte in (head if slow_head else b"") + b"x" * 100_000:
                    if stop.wait(0.02):
                        return
                    connection.sendall(bytes([byte]))
            except OSError:
                return

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            threading.Thread(target=talk, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()


@pytest.fixture(
    params=[(HEAD_200, False), (HEAD_404, False), (HEAD_200, True)], ids=["body", "error-body", "headers"]
)
def trickling_registry(request: pytest.FixtureRequest) -> Iterator[int]:
    head, slow_head = request.param
    yield from _trickle(head, threading.Event(), slow_head=slow_head)


def test_a_registry_trickling_forever_ends_with_the_transfer_timeout(trickling_registry: int) -> None:
    client = OciClient(f"127.0.0.1:{trickling_registry}", timeout=1, transfer_timeout=1)
    with client, pytest.raises(EnvironmentProblem) as caught:
        client.get_blob("acme/app", DIGEST, max_bytes=1_000_000)
    message = caught.value.diagnostics()
    assert "within 1 s (transfer timeout)" in message and "\n" not in message
