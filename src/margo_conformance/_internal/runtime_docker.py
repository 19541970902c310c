"""Small Docker helpers the device persona needs: find a deployment's containers, read their security
settings, run the probe image, and remove what a project or the suite left behind.

Every call is bounded (the SDK client's per-request timeout plus explicit waits) and everything this
module creates carries the label ``org.margo.conformance=1``, so ``remove_suite_objects()`` can find
and remove it after a crash. Functions take an optional SDK ``client``; without one they open (and
close) their own for ``DOCKER_HOST`` or the local socket.

Networks: ``network=None`` means *no network at all* (``none``); pass ``"bridge"`` for Docker's
default bridge. Prefer a user-defined network (``create_network``): the default ``docker0`` bridge
can be missing on a host whose daemon outlived its interfaces, and Compose never uses it anyway.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import docker.errors  # type: ignore[import-untyped]
import requests

from ..errors import EnvironmentProblem
from .images import docker_client

SUITE_LABEL = "org.margo.conformance"
SUITE_LABELS: dict[str, str] = {SUITE_LABEL: "1"}
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"

RUN_TIMEOUT = 20.0  # seconds a probe may run
STOP_TIMEOUT = 2  # seconds between SIGTERM and SIGKILL when removing

DOCKER_ERRORS = (docker.errors.DockerException, requests.RequestException)
_DOCKER_ERRORS = DOCKER_ERRORS


@contextlib.contextmanager
def _client(client: Any) -> Iterator[Any]:
    if client is not None:
        yield client
        return
    own = docker_client()
    try:
        yield own
    finally:
        own.close()


def _labels(extra: Mapping[str, str] | None) -> dict[str, str]:
    return {**(extra or {}), **SUITE_LABELS}


# -- finding and inspecting ---------------------------------------------------------------------------


def containers_of(project: str, *, client: Any = None) -> list[Any]:
    """The containers (running or not) of one Compose project, by ``com.docker.compose.project``,
    sorted by name."""
    with _client(client) as docker_:
        try:
            found = docker_.containers.list(all=True, filters={"label": f"{COMPOSE_PROJECT_LABEL}={project}"})
        except _DOCKER_ERRORS as exc:
            raise EnvironmentProblem(f"listing the containers of project {project!r} failed: {exc}") from exc
    return sorted(found, key=lambda container: str(container.name))


def _published_ports(attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    if not ports:  # a stopped container has no NetworkSettings.Ports: fall back to the request
        ports = (attrs.get("HostConfig") or {}).get("PortBindings") or {}
    published: list[dict[str, Any]] = []
    for key, bindings in sorted(ports.items()):
        port, _, protocol = str(key).partition("/")
        for binding in bindings or []:
            host_port = str(binding.get("HostPort") or "")
            published.append(
                {
                    "container_port": int(port),
                    "protocol": protocol or "tcp",
                    "host_ip": str(binding.get("HostIp") or ""),
                    "host_port": int(host_port) if host_port.isdigit() else None,
                }
            )
    return published


def inspect_security(container: Any) -> dict[str, Any]:
    """The security-relevant settings of a container (a JSON-able dict; reloads the container):

    ``privileged``, ``network_mode``, ``networks``, ``pid_mode``, ``ipc_mode``, ``user`` ('' = the
    image's default, usually root), ``read_only_rootfs``, ``cap_add``, ``cap_drop``, ``security_opt``,
    ``cpu_quota``, ``cpu_period``, ``nano_cpus``, ``cpus`` (effective limit or None), ``memory``
    (bytes, 0 = none), ``memory_swap``, ``pids_limit``, ``mounts`` (type/source/destination/rw/name),
    ``published_ports`` (container_port/protocol/host_ip/host_port), ``labels``.
    """
    try:
        container.reload()
    except _DOCKER_ERRORS as exc:
        raise EnvironmentProblem(f"inspecting container {container.id[:12]} failed: {exc}") from exc
    attrs: Mapping[str, Any] = container.attrs
    host: Mapping[str, Any] = attrs.get("HostConfig") or {}
    config: Mapping[str, Any] = attrs.get("Config") or {}
    nano_cpus = int(host.get("NanoCpus") or 0)
    cpu_quota = int(host.get("CpuQuota") or 0)
    cpu_period = int(host.get("CpuPeriod") or 0)
    cpus: float | None = None
    if nano_cpus > 0:
        cpus = nano_cpus / 1e9
    elif cpu_quota > 0:
        cpus = cpu_quota / (cpu_period or 100_000)
    mounts = [
        {
            "type": str(mount.get("Type") or ""),
            "source": str(mount.get("Source") or ""),
            "destination": str(mount.get("Destination") or ""),
            "rw": bool(mount.get("RW")),
            "name": str(mount.get("Name") or ""),
        }
        for mount in attrs.get("Mounts") or []
    ]
    return {
        "name": str(attrs.get("Name") or "").lstrip("/"),
        "privileged": bool(host.get("Privileged")),
        "network_mode": str(host.get("NetworkMode") or ""),
        "networks": sorted(((attrs.get("NetworkSettings") or {}).get("Networks") or {}).keys()),
        "pid_mode": str(host.get("PidMode") or ""),
        "ipc_mode": str(host.get("IpcMode") or ""),
        "user": str(config.get("User") or ""),
        "read_only_rootfs": bool(host.get("ReadonlyRootfs")),
        "cap_add": list(host.get("CapAdd") or []),
        "cap_drop": list(host.get("CapDrop") or []),
        "security_opt": list(host.get("SecurityOpt") or []),
        "cpu_quota": cpu_quota,
        "cpu_period": cpu_period,
        "nano_cpus": nano_cpus,
        "cpus": cpus,
        "memory": int(host.get("Memory") or 0),
        "memory_swap": int(host.get("MemorySwap") or 0),
        "pids_limit": int(host.get("PidsLimit") or 0),
        "mounts": sorted(mounts, key=lambda mount: mount["destination"]),
        "published_ports": _published_ports(attrs),
        "labels": dict(config.get("Labels") or {}),
    }


# -- creating ---------------------------------------------------------------------------------------------


def create_network(name: str, *, labels: Mapping[str, str] | None = None, client: Any = None) -> Any:
    """A user-defined bridge network labelled as the suite's."""
    with _client(client) as docker_:
        try:
            return docker_.networks.create(
                name, driver="bridge", labels=_labels(labels), check_duplicate=True
            )
        except _DOCKER_ERRORS as exc:
            raise EnvironmentProblem(f"creating network {name!r} failed: {exc}") from exc


def ensure_network(name: str, *, client: Any = None) -> None:
    """A suite-labelled bridge network ``name``, created unless it exists."""
    with _client(client) as docker_:
        try:
            if docker_.networks.list(names=[name]):
                return
        except _DOCKER_ERRORS as exc:
            raise EnvironmentProblem(f"listing networks failed: {exc}") from exc
        create_network(name, client=docker_)


def remove_network_if_unused(name: str, *, client: Any = None) -> None:
    """Remove the network ``name`` unless a container still uses it (best effort, never raises)."""
    with _client(client) as docker_, contextlib.suppress(*_DOCKER_ERRORS):
        for network in docker_.networks.list(names=[name]):
            network.reload()
            if not network.attrs.get("Containers"):
                network.remove()


def start_container(
    image: str,
    *,
    network: str | None,
    command: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    client: Any = None,
    **options: Any,
) -> Any:
    """Start a detached container labelled as the suite's; ``options`` go to the SDK's
    ``containers.run`` (``ports``, ``user``, ``nano_cpus``, ``mem_limit``, ``read_only`` …)."""
    with _client(client) as docker_:
        where = {"network": network} if network is not None else {"network_mode": "none"}
        try:
            return docker_.containers.run(
                image,
                command=list(command) if command is not None else None,
                detach=True,
                environment=dict(env or {}),
                labels=_labels(labels),
                **where,
                **options,
            )
        except _DOCKER_ERRORS as exc:
            raise EnvironmentProblem(f"starting a container of {image} failed: {exc}") from exc


def run_probe(
    image: str,
    *,
    network: str | None,
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    timeout: float = RUN_TIMEOUT,
    client: Any = None,
    **options: Any,
) -> str:
    """Run ``image`` with ``args`` to completion and return its stdout; the container is removed in
    every case. Raises ``EnvironmentProblem`` when it does not finish within ``timeout`` seconds or
    exits non-zero (with its stderr)."""
    with _client(client) as docker_:
        container = start_container(
            image, network=network, command=list(args), env=env, client=docker_, **options
        )
        try:
            try:
                result = container.wait(timeout=timeout)
            except requests.RequestException as exc:
                raise EnvironmentProblem(
                    f"{image} did not finish within {timeout:g} s; its output so far: "
                    f"{_logs(container, stdout=True)[-500:]!r}"
                ) from exc
            status = int(result.get("StatusCode", -1))
            stdout = _logs(container, stdout=True)
            if status != 0:
                stderr = _logs(container, stdout=False)
                raise EnvironmentProblem(f"{image} exited with status {status}: {stderr[-500:]!r}")
            return stdout
        except docker.errors.DockerException as exc:
            raise EnvironmentProblem(f"running {image} failed: {exc}") from exc
        finally:
            with contextlib.suppress(*_DOCKER_ERRORS):
                container.remove(force=True)


def _logs(container: Any, *, stdout: bool) -> str:
    try:
        data = container.logs(stdout=stdout, stderr=not stdout)
    except _DOCKER_ERRORS:
        return ""
    return bytes(data).decode("utf-8", errors="replace")


# -- removing ---------------------------------------------------------------------------------------------


@dataclass
class Removed:
    """What a cleanup removed (names), and what it could not (``errors``)."""

    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _remove_by_label(docker_: Any, label: str, removed: Removed) -> None:
    filters = {"label": label}
    try:
        containers = docker_.containers.list(all=True, filters=filters)
    except _DOCKER_ERRORS as exc:
        removed.errors.append(f"listing containers ({label}): {exc}")
        containers = []
    for container in containers:
        try:
            container.remove(force=True, v=True)
            removed.containers.append(str(container.name))
        except docker.errors.NotFound:
            pass
        except _DOCKER_ERRORS as exc:
            removed.errors.append(f"container {container.name}: {exc}")
    for kind, collection in (("network", docker_.networks), ("volume", docker_.volumes)):
        try:
            items = collection.list(filters=filters)
        except _DOCKER_ERRORS as exc:
            removed.errors.append(f"listing {kind}s ({label}): {exc}")
            continue
        for item in items:
            try:
                item.remove(force=True) if kind == "volume" else item.remove()
                (removed.volumes if kind == "volume" else removed.networks).append(str(item.name))
            except docker.errors.NotFound:
                pass
            except _DOCKER_ERRORS as exc:
                removed.errors.append(f"{kind} {item.name}: {exc}")


def remove_project(project: str, *, client: Any = None) -> Removed:
    """Remove a Compose project's containers (with their anonymous volumes), networks and volumes,
    found by ``com.docker.compose.project`` — without Compose, so it works when the project's files
    are gone. Never raises for a single object; see ``Removed.errors``."""
    removed = Removed()
    with _client(client) as docker_:
        _remove_by_label(docker_, f"{COMPOSE_PROJECT_LABEL}={project}", removed)
    return removed


def remove_suite_objects(*, client: Any = None) -> Removed:
    """Remove every container, network and volume labelled ``org.margo.conformance=1`` (images are
    kept: they are a cache and carry no such label)."""
    removed = Removed()
    with _client(client) as docker_:
        _remove_by_label(docker_, f"{SUITE_LABEL}=1", removed)
    return removed


# -- probe report -------------------------------------------------------------------------------------------


def _unescape(value: str) -> str:
    out: list[str] = []
    chars = iter(value)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        following = next(chars, "")
        out.append({"n": "\n", "r": "\r", "\\": "\\"}.get(following, "\\" + following))
    return "".join(out)


@dataclass
class ProbeReport:
    """``margo-test/probe`` output, parsed (format: fixtures/images/probe/README.md)."""

    uid: int | None = None
    gid: int | None = None
    groups: list[int] = field(default_factory=list)
    hostname: str = ""
    docker_sock: bool | None = None
    caps: dict[str, str] = field(default_factory=dict)
    mounts: list[tuple[str, str, str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    tcp: dict[str, bool] = field(default_factory=dict)
    read: dict[str, str] = field(default_factory=dict)  # path -> ok|dir|missing|denied
    read_detail: dict[str, str] = field(default_factory=dict)  # "SIZE SHA256" or the listing
    http: dict[str, str | None] = field(default_factory=dict)  # url -> body start, None if failed
    errors: list[str] = field(default_factory=list)
    complete: bool = False  # the final "end" line was seen


def parse_probe_report(text: str) -> ProbeReport:
    report = ProbeReport()
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        if key == "uid" and rest.isdigit():
            report.uid = int(rest)
        elif key == "gid" and rest.isdigit():
            report.gid = int(rest)
        elif key == "groups":
            report.groups = [int(part) for part in rest.split() if part.isdigit()]
        elif key == "hostname":
            report.hostname = rest
        elif key == "docker-sock":
            report.docker_sock = rest == "present"
        elif key == "cap":
            name, _, value = rest.partition(" ")
            report.caps[name] = value
        elif key == "mount":
            target, _, more = rest.partition(" ")
            fstype, _, mode = more.partition(" ")
            report.mounts.append((target, fstype, mode))
        elif key == "env":
            name, _, value = rest.partition("=")
            report.env[name] = _unescape(value)
        elif key == "tcp":
            target, _, state = rest.rpartition(" ")
            report.tcp[target] = state == "open"
        elif key == "read":
            path, state, detail = _split_read(rest)
            report.read[path] = state
            if detail:
                report.read_detail[path] = _unescape(detail)
        elif key == "http":
            url, _, more = rest.partition(" ")
            state, _, body = more.partition(" ")
            report.http[url] = _unescape(body) if state == "ok" else None
        elif key == "error":
            report.errors.append(rest)
        elif key == "end":
            report.complete = True
    return report


def _split_read(rest: str) -> tuple[str, str, str]:
    # "PATH STATE [DETAIL]": the first word after the path that is a state ends the path (so a
    # path with " ok " inside it is misread; the suite's paths have no spaces).
    words = rest.split(" ")
    for index in range(1, len(words)):
        if words[index] in _READ_STATES:
            return " ".join(words[:index]), words[index], " ".join(words[index + 1 :])
    return rest, "unknown", ""


_READ_STATES = frozenset({"ok", "dir", "missing", "denied"})


def wait_until(predicate: Callable[[], object], *, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate()`` until it is truthy or ``timeout`` seconds pass; whether it became true."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
