"""The suite's own container images, built locally ``FROM scratch`` with Debian's static busybox.

Nothing is pulled: each image in ``fixtures/images/<name>/`` is a Dockerfile plus a few small files,
and the build context this module sends to the Docker daemon adds ``/bin/busybox`` (Debian package
``busybox-static``) beside them. The context is an in-memory tar with fixed owners, modes and times,
so its sha256 names its content exactly; the image carries it as the label
``org.margo.conformance.context-sha256`` and a later build with the same content is skipped::

    tags = build_test_images()                 # {"http-server": "margo-test/http-server:1.0.0", …}
    with LocalRegistry() as registry:
        refs = push_test_images(registry)      # {"http-server": "127.0.0.1:PORT/margo-test/…@sha256:…"}

Images do *not* carry ``org.margo.conformance=1``: image labels are inherited by every container made
from them, and that label marks containers the suite itself made (see ``runtime_docker``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import ipaddress
import os
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped]
import docker.errors  # type: ignore[import-untyped]
import requests

from ..errors import EnvironmentProblem, UsageError
from ..paths import suite_root
from .local_registry import LocalRegistry

IMAGE_NAMES = ("http-server", "probe")
REPOSITORY_PREFIX = "margo-test"
DEFAULT_TAG = "1.0.0"
BUSYBOX = Path("/bin/busybox")
CONTEXT_LABEL = "org.margo.conformance.context-sha256"
IMAGE_LABEL = "org.margo.conformance.image"

API_TIMEOUT = 30.0  # seconds for one Docker API request (socket read timeout)
BUILD_TIMEOUT = 180.0  # seconds for one whole image build
PUSH_TIMEOUT = 120.0  # seconds for one whole push

_SETUP_HINT = "run scripts/setup (it installs docker.io and busybox-static and starts dockerd)"


# -- Docker client ------------------------------------------------------------------------------------


def docker_client(*, timeout: float = API_TIMEOUT, base_url: str | None = None) -> Any:
    """A Docker SDK client for ``base_url``, else ``DOCKER_HOST`` (default: the local socket), that has
    answered a ping.

    Raises ``EnvironmentProblem`` naming what to do when the daemon is not there."""
    try:
        client = (
            docker.DockerClient(base_url=base_url, timeout=timeout)
            if base_url
            else docker.from_env(timeout=timeout)
        )
    except docker.errors.DockerException as exc:
        raise EnvironmentProblem(f"the Docker daemon does not answer ({exc}); {_SETUP_HINT}") from exc
    try:
        client.ping()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        client.close()
        raise EnvironmentProblem(f"the Docker daemon does not answer ({exc}); {_SETUP_HINT}") from exc
    return client


def docker_available() -> bool:
    """Whether a Docker daemon answers a ping within a few seconds (``DOCKER_HOST`` or the socket)."""
    try:
        client = docker_client(timeout=5.0)
    except EnvironmentProblem:
        return False
    client.close()
    return True


# -- build contexts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildContext:
    """One image's build context: an uncompressed tar with deterministic metadata, and its sha256."""

    name: str
    tar: bytes
    sha256: str


def images_dir() -> Path:
    """``fixtures/images`` of the suite checkout."""
    return suite_root() / "fixtures" / "images"


def _busybox(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EnvironmentProblem(
            f"{path} cannot be read ({exc.strerror or exc}): the test images need Debian's static "
            f"busybox (package busybox-static); {_SETUP_HINT}"
        ) from exc
    if data[:4] != b"\x7fELF":
        raise EnvironmentProblem(f"{path} is not an ELF executable; {_SETUP_HINT}")
    return data


def _context_files(source: Path) -> Iterator[tuple[str, bytes, int]]:
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if path.is_symlink() or not path.is_file():
            continue
        if relative == "busybox" or relative.endswith("README.md"):
            continue
        data = path.read_bytes()
        executable = os.access(path, os.X_OK) or data.startswith(b"#!")
        yield relative, data, 0o755 if executable else 0o644


def build_context(name: str, *, source_root: Path | None = None, busybox: Path = BUSYBOX) -> BuildContext:
    """The build context of ``fixtures/images/<name>/`` plus ``busybox`` (owners 0:0, mtime 0)."""
    source = (source_root or images_dir()) / name
    if not (source / "Dockerfile").is_file():
        raise UsageError(f"no image {name!r}: {source}/Dockerfile does not exist")
    entries = [*_context_files(source), ("busybox", _busybox(busybox), 0o755)]
    entries.sort(key=lambda entry: entry[0])
    buffer = io.BytesIO()
    directories: set[str] = set()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for relative, data, mode in entries:
            parts = relative.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                directory = "/".join(parts[:depth])
                if directory not in directories:
                    directories.add(directory)
                    archive.addfile(_tar_info(directory, tarfile.DIRTYPE, 0o755, 0))
            archive.addfile(_tar_info(relative, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))
    tar = buffer.getvalue()
    return BuildContext(name=name, tar=tar, sha256=hashlib.sha256(tar).hexdigest())


def _tar_info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


# -- build ----------------------------------------------------------------------------------------------


def image_tag(name: str, tag: str = DEFAULT_TAG) -> str:
    return f"{REPOSITORY_PREFIX}/{name}:{tag}"


def _existing_context(client: Any, reference: str) -> str | None:
    try:
        image = client.images.get(reference)
    except docker.errors.ImageNotFound:
        return None
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    value = labels.get(CONTEXT_LABEL)
    return value if isinstance(value, str) else None


def _build(client: Any, context: BuildContext, reference: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    log: list[str] = []
    try:
        stream = client.api.build(
            fileobj=io.BytesIO(context.tar),
            custom_context=True,
            tag=reference,
            labels={CONTEXT_LABEL: context.sha256, IMAGE_LABEL: context.name},
            pull=False,
            rm=True,
            forcerm=True,
            nocache=False,
            network_mode="none",  # RUN steps need no network (and docker0 may be absent)
            decode=True,
            timeout=timeout,
        )
        for chunk in stream:
            if "stream" in chunk:
                log.append(str(chunk["stream"]).rstrip())
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                tail = " | ".join(line for line in log[-5:] if line)
                raise EnvironmentProblem(f"building {reference} failed: {detail} (last output: {tail})")
            if time.monotonic() > deadline:
                raise EnvironmentProblem(f"building {reference} took longer than {timeout:g} s")
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise EnvironmentProblem(f"building {reference} failed: {exc}") from exc
    if _existing_context(client, reference) != context.sha256:
        raise EnvironmentProblem(f"building {reference} finished but the image is not there")


def build_test_images(
    *,
    tag: str = DEFAULT_TAG,
    names: tuple[str, ...] = IMAGE_NAMES,
    source_root: Path | None = None,
    busybox: Path = BUSYBOX,
    timeout: float = BUILD_TIMEOUT,
    client: Any = None,
) -> dict[str, str]:
    """Build ``margo-test/<name>:<tag>`` for each image; {name: reference}. An image whose
    context label matches its current context is kept as is (a rebuild happens only on change)."""
    own = client is None
    client = docker_client() if own else client
    try:
        built: dict[str, str] = {}
        for name in names:
            context = build_context(name, source_root=source_root, busybox=busybox)
            reference = image_tag(name, tag)
            if _existing_context(client, reference) != context.sha256:
                _build(client, context, reference, timeout)
            built[name] = reference
        return built
    finally:
        if own:
            client.close()


# -- push ------------------------------------------------------------------------------------------------


def _push(client: Any, repository: str, tag: str, timeout: float) -> str:
    """Push ``repository:tag``; the manifest digest the registry answered."""
    deadline = time.monotonic() + timeout
    digest = ""
    try:
        for chunk in client.api.push(repository, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise EnvironmentProblem(f"pushing {repository}:{tag} failed: {detail}")
            aux = chunk.get("aux") or {}
            if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
                digest = aux["Digest"]
            if time.monotonic() > deadline:
                raise EnvironmentProblem(f"pushing {repository}:{tag} took longer than {timeout:g} s")
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise EnvironmentProblem(f"pushing {repository}:{tag} failed: {exc}") from exc
    if not digest.startswith("sha256:"):
        raise EnvironmentProblem(f"pushing {repository}:{tag}: the daemon reported no manifest digest")
    return digest


def _check_insecure_allowed(client: Any, host: str) -> None:
    """Fail clearly when the daemon would insist on HTTPS for ``host`` (a plain-HTTP registry)."""
    try:
        config = client.info().get("RegistryConfig") or {}
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise EnvironmentProblem(f"the Docker daemon does not answer ({exc}); {_SETUP_HINT}") from exc
    index = (config.get("IndexConfigs") or {}).get(host) or {}
    if index.get("Secure") is False:
        return
    address = host.rpartition(":")[0].strip("[]")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        ip = None
    for cidr in config.get("InsecureRegistryCIDRs") or []:
        with contextlib.suppress(ValueError):
            if ip is not None and ip in ipaddress.ip_network(cidr, strict=False):
                return
    raise EnvironmentProblem(
        f"the Docker daemon would push to {host} over HTTPS only: add it (or 127.0.0.0/8) to "
        '"insecure-registries" in the daemon\'s daemon.json, or pass --insecure-registry to dockerd'
    )


def push_test_images(
    registry: LocalRegistry,
    *,
    tag: str = DEFAULT_TAG,
    names: tuple[str, ...] = IMAGE_NAMES,
    timeout: float = PUSH_TIMEOUT,
    keep_tags: bool = False,
    client: Any = None,
) -> dict[str, str]:
    """Build (if needed) and push each image as ``<registry.host>/margo-test/<name>:<tag>``;
    {name: ``<registry.host>/margo-test/<name>@sha256:…``} (the pushed manifest's digest).

    The daemon pushes over plain HTTP only to registries it counts as insecure; Docker counts
    127.0.0.0/8 as insecure by default, which is where ``LocalRegistry`` listens (checked first). The
    daemon must run on the registry's host: a remote ``DOCKER_HOST`` would push to its own loopback.
    The registry tags
    are removed from the local store after the push unless ``keep_tags``."""
    own = client is None
    client = docker_client() if own else client
    try:
        _check_insecure_allowed(client, registry.host)
        local = build_test_images(tag=tag, names=names, client=client)
        pushed: dict[str, str] = {}
        for name in names:
            repository = f"{registry.host}/{REPOSITORY_PREFIX}/{name}"
            try:
                client.images.get(local[name]).tag(repository, tag=tag)
            except docker.errors.DockerException as exc:
                raise EnvironmentProblem(
                    f"tagging {local[name]} as {repository}:{tag} failed: {exc}"
                ) from exc
            try:
                digest = _push(client, repository, tag, timeout)
            finally:
                if not keep_tags:
                    # Only the tag goes: margo-test/<name>:<tag> still names the image.
                    with contextlib.suppress(docker.errors.DockerException):
                        client.images.remove(f"{repository}:{tag}", noprune=True)
            pushed[name] = f"{repository}@{digest}"
        return pushed
    finally:
        if own:
            client.close()


def busybox_available(path: Path = BUSYBOX) -> bool:
    """Whether the static busybox the images need is installed."""
    return path.is_file() and os.access(path, os.R_OK | os.X_OK)
