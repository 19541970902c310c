"""A wall-clock deadline over a whole HTTP exchange (connect, headers, body), for untrusted servers.

A socket timeout bounds each *read*, not the exchange: a registry that sends one byte a second never
trips it, and ``iter_content`` blocks until a whole chunk arrives. The watchdog records the connections
an exchange uses (through the connection pools of ``WatchedAdapter``) and, once the deadline passes,
shuts their sockets down, so every blocked read returns at once; ``expired`` then tells the caller why.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_CURRENT = threading.local()
REARM_S = 0.25  # a connection still connecting when the deadline passed is shut once it has a socket


class Watchdog:
    """Shuts down the sockets of the exchange in progress once its deadline has passed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: list[Any] = []
        self._timer: threading.Timer | None = None
        self.expired = False

    @contextmanager
    def bound(self, seconds: float, *connections: Any) -> Iterator[Watchdog]:
        """Within the block, the connections used (and those given) are shut ``seconds`` from now."""
        previous = getattr(_CURRENT, "watchdog", None)
        with self._lock:
            self.expired = False
            self._connections = [c for c in connections if c is not None]
        _CURRENT.watchdog = self
        self._arm(max(seconds, 0.0))
        try:
            yield self
        finally:
            _CURRENT.watchdog = previous
            with self._lock:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = None
                self._connections = []

    def watch(self, connection: Any) -> None:
        with self._lock:
            self._connections.append(connection)

    def _arm(self, seconds: float) -> None:
        timer = threading.Timer(seconds, self._expire)
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _expire(self) -> None:
        with self._lock:
            if self._timer is None:  # the block ended meanwhile
                return
            self.expired = True
            for connection in self._connections:
                sock = getattr(connection, "sock", None)
                if isinstance(sock, socket.socket):
                    with suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
            self._arm(REARM_S)


def watched(pool: type[HTTPConnectionPool]) -> type[HTTPConnectionPool]:
    class Watched(pool):  # type: ignore[valid-type,misc]
        def _get_conn(self, timeout: float | None = None) -> Any:
            connection = super()._get_conn(timeout)
            watchdog = getattr(_CURRENT, "watchdog", None)
            if watchdog is not None:
                watchdog.watch(connection)
            return connection

    Watched.__name__ = f"Watched{pool.__name__}"
    return Watched


class WatchedAdapter(HTTPAdapter):
    """An adapter whose connections a ``Watchdog`` in force on this thread can shut down."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": watched(HTTPConnectionPool),
            "https": watched(HTTPSConnectionPool),
        }
