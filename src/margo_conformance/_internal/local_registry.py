"""A throw-away OCI registry on 127.0.0.1: Debian's ``docker-registry`` (CNCF distribution 2.8).

``LocalRegistry`` starts ``docker-registry serve`` with filesystem storage in a fresh temporary
directory on a free loopback port, waits (bounded) until ``GET /v2/`` answers, and on exit stops the
process (terminate, then kill) and removes the directory, also when the body raised::

    with LocalRegistry() as registry:
        publish_package(package_dir, registry.host)
        registry.tamper_blob(digest)  # prove that a consumer verifies digests

Nothing here is pulled from the internet; the binary comes from the project's setup.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import requests

from ..errors import EnvironmentProblem, UsageError
from .processes import tied_to_parent

DEFAULT_BINARY = "docker-registry"
_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  headers:
    X-Content-Type-Options: [nosniff]
"""


def find_registry_binary(binary: str | None = None) -> str:
    """The path of the ``docker-registry`` executable (``MARGO_DOCKER_REGISTRY`` is not read here:
    only the config loader reads the environment; pass ``binary`` instead)."""
    name = binary or DEFAULT_BINARY
    found = shutil.which(name)
    if found is None:
        for candidate in ("/usr/bin/docker-registry", "/usr/local/bin/docker-registry"):
            if binary is None and os.access(candidate, os.X_OK):
                return candidate
        raise EnvironmentProblem(
            f"{name} not found: run scripts/setup (it installs Debian's docker-registry package) "
            "or put the binary on PATH"
        )
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for listeners and published ports)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalRegistry:
    """A CNCF distribution registry on 127.0.0.1:<free port> for the life of a ``with`` block."""

    def __init__(self, *, binary: str | None = None, startup_timeout: float = 10.0) -> None:
        self._binary_name = binary
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None
        self._port: int | None = None

    # -- properties ---------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: the registry part of an ``oci://`` reference."""
        if self._port is None:
            raise UsageError("LocalRegistry is not running; use it as a context manager")
        return f"127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def storage_dir(self) -> Path:
        """The registry's filesystem storage root (``…/docker/registry/v2/…`` lives below it)."""
        if self._tmp is None:
            raise UsageError("LocalRegistry is not running; use it as a context manager")
        return self._tmp / "storage"

    # -- lifecycle ----------------------------------------------------------------------------------

    def __enter__(self) -> LocalRegistry:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        binary = find_registry_binary(self._binary_name)
        self._tmp = Path(tempfile.mkdtemp(prefix="margo-registry-"))
        try:
            # A port picked by bind(0) can be taken before the registry binds it: retry a few times.
            last = ""
            for _ in range(3):
                self._port = free_port()
                last = self._launch(binary)
                if not last:
                    return
                self._reap()
            raise EnvironmentProblem(f"docker-registry did not start on 127.0.0.1: {last}")
        except BaseException:
            self.stop()
            raise

    def _launch(self, binary: str) -> str:
        """Start the process and wait for ``/v2/``; '' on success, else what went wrong."""
        assert self._tmp is not None and self._port is not None
        config = self._tmp / "config.yml"
        config.write_text(_CONFIG.format(storage=self.storage_dir, port=self._port), encoding="utf-8")
        self.storage_dir.mkdir(exist_ok=True)
        log_path = self._tmp / "registry.log"
        with log_path.open("ab") as log:
            self._process = subprocess.Popen(
                tied_to_parent([binary, "serve", str(config)]),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return f"exited with status {self._process.returncode}: {self._log_tail(log_path)}"
            try:
                response = requests.get(f"{self.url}/v2/", timeout=1.0)
                if response.status_code == 200:
                    return ""
            except requests.RequestException:
                pass
            time.sleep(0.05)  # poll interval while awaiting readiness, bounded by the deadline above
        return f"/v2/ did not answer within {self._startup_timeout:g} s; log: {self._log_tail(log_path)}"

    @staticmethod
    def _log_tail(path: Path) -> str:
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-3:]) or "(empty log)"

    def _reap(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)

    def stop(self) -> None:
        """Stop the registry and remove its storage; safe to call twice."""
        try:
            self._reap()
        finally:
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
            self._port = None

    # -- test helpers -------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        """Where the filesystem driver keeps a blob's bytes."""
        algorithm, _, encoded = digest.partition(":")
        if not algorithm or len(encoded) < 2:
            raise UsageError(f"not a digest: {digest!r}")
        return self.storage_dir / "docker/registry/v2/blobs" / algorithm / encoded[:2] / encoded / "data"

    def tamper_blob(self, digest: str, data: bytes | None = None) -> None:
        """Rewrite a stored blob's bytes behind the registry's back, so that what it serves under
        ``digest`` no longer has that digest. Without ``data`` every byte is inverted, which keeps the
        size (distribution serves the size it stats from the file)."""
        path = self.blob_path(digest)
        try:
            original = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"no stored blob {digest} in {self.storage_dir}: {exc}") from exc
        path.write_bytes(bytes(b ^ 0xFF for b in original) if data is None else data)
