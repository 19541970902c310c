"""Observers: how the suite sees what a device's runtime actually runs (DESIGN.md §4).

``DockerObserver`` talks to the device's Docker Engine (``DOCKER_HOST`` from the SUT file, else the
local socket). Margo does not say how a device names or labels the containers of a deployment, so a
container belongs to a deployment when one of its labels has the deploymentId as its value (the
reference device uses ``org.margo.deployment-id``), or when its Compose project name contains the
deploymentId. A device that does neither can only be checked through its status reports
(``observer: {type: none}``): the runtime checks of a scenario are then *blocked*, never passed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._internal import runtime_docker
from .._internal.images import docker_client
from ..errors import Blocked

LOG = logging.getLogger("margo_conformance.device")

PROBE_IMAGE = "margo-test/probe:1.0.0"


@dataclass(frozen=True)
class Workload:
    """One container of a deployment as the runtime shows it."""

    id: str
    name: str
    project: str
    running: bool
    started_at: str
    security: Mapping[str, Any]
    env: Mapping[str, str]  # as configured (docker inspect Config.Env)
    image_env: Mapping[str, str]  # what the image itself sets
    addresses: Mapping[str, str]  # network name -> IPv4 address


class DockerObserver:
    def __init__(self, docker_host: str | None = None) -> None:
        self.docker_host = docker_host

    @contextlib.contextmanager
    def _docker(self) -> Iterator[Any]:
        client = docker_client(base_url=self.docker_host)
        try:
            yield client
        finally:
            client.close()

    def workloads(self, deployment_id: str) -> list[Workload]:
        """Every container (running or not) that belongs to the deployment, by name."""
        with self._docker() as docker_:
            # sparse: no inspect of every container on a shared engine, where others come and go
            listed = [c for c in docker_.containers.list(all=True, sparse=True) if _belongs(c, deployment_id)]
            found = []
            for listed_container in listed:
                try:
                    found.append(_workload(docker_.containers.get(listed_container.id)))
                except runtime_docker.DOCKER_ERRORS as exc:  # removed since it was listed: not there
                    LOG.debug("container %s vanished: %s", listed_container.id, exc)
            return sorted(found, key=lambda w: w.name)

    def running(self, deployment_id: str) -> list[Workload]:
        return [w for w in self.workloads(deployment_id) if w.running]

    def probe(self, network: str, args: Sequence[str], **options: Any) -> runtime_docker.ProbeReport:
        """Run the probe image on ``network`` (a network of a workload) and parse its report."""
        with self._docker() as docker_:
            text = runtime_docker.run_probe(
                PROBE_IMAGE, network=network, args=args, client=docker_, **options
            )
        return runtime_docker.parse_probe_report(text)

    def exec(self, workload: Workload, argv: Sequence[str]) -> str:
        """Run ``argv`` inside a workload's container (the suite's test images have busybox) and
        return its output; a failure is a blocked precondition, not a verdict on the device."""
        with self._docker() as docker_:
            try:
                result = docker_.containers.get(workload.id).exec_run(list(argv), demux=False)
            except runtime_docker.DOCKER_ERRORS as exc:
                raise Blocked(f"cannot run {argv[0]} inside {workload.name}: {exc}") from None
        if result.exit_code != 0:
            raise Blocked(f"{' '.join(argv)} inside {workload.name} exited with {result.exit_code}")
        return bytes(result.output).decode("utf-8", errors="replace")

    def remove(self, deployment_ids: Sequence[str]) -> runtime_docker.Removed:
        """Remove whatever the runtime still holds for these deployments (scenario clean-up): their
        containers, then their Compose projects' networks and volumes, and any network or volume
        labelled for them (a device stopped in the middle of ``compose up`` leaves those alone)."""
        removed = runtime_docker.Removed()
        with self._docker() as docker_:
            containers = [c for c in docker_.containers.list(all=True) if _belongs_any(c, deployment_ids)]
            projects = {str(c.labels.get(runtime_docker.COMPOSE_PROJECT_LABEL)) for c in containers}
            for container in containers:
                with contextlib.suppress(*runtime_docker.DOCKER_ERRORS):
                    container.remove(force=True, v=True)
                    removed.containers.append(str(container.name))
            for project in sorted(projects - {"None"}):
                more = runtime_docker.remove_project(project, client=docker_)
                removed.networks += more.networks
                removed.volumes += more.volumes
                removed.errors += more.errors
            for collection, names in (
                (docker_.networks, removed.networks),
                (docker_.volumes, removed.volumes),
            ):
                with contextlib.suppress(*runtime_docker.DOCKER_ERRORS):
                    for item in collection.list():
                        item.reload()
                        if _belongs_any(item, deployment_ids):
                            with contextlib.suppress(*runtime_docker.DOCKER_ERRORS):
                                item.remove()
                                names.append(str(item.name))
        return removed


class NoObserver:
    """``observer: {type: none}``: the runtime cannot be seen; runtime checks are blocked."""

    def __getattr__(self, name: str) -> Any:
        raise Blocked("the SUT file gives no observer for the device's runtime (observer.type: none)")


def make_observer(config: Mapping[str, Any]) -> DockerObserver | NoObserver:
    if config.get("type", "docker") == "none":
        return NoObserver()
    return DockerObserver(config.get("docker_host"))


def _belongs_any(item: Any, deployment_ids: Sequence[str]) -> bool:
    return any(_belongs(item, deployment_id) for deployment_id in deployment_ids)


def _belongs(item: Any, deployment_id: str) -> bool:
    """A container, network or volume of the deployment (see the module docstring)."""
    attrs = item.attrs  # a network, a volume or a sparse container listing has Labels at the top
    labels: Mapping[str, str] = (
        attrs["Labels"] if "Labels" in attrs else (attrs.get("Config") or {}).get("Labels")
    ) or {}
    if deployment_id in labels.values():
        return True
    project = labels.get(runtime_docker.COMPOSE_PROJECT_LABEL, "")
    return deployment_id.lower() in project


def _workload(container: Any) -> Workload:
    security = runtime_docker.inspect_security(container)  # reloads the container
    attrs = container.attrs
    env = _env((attrs.get("Config") or {}).get("Env"))
    try:
        image_env = _env((container.image.attrs.get("Config") or {}).get("Env"))
    except runtime_docker.DOCKER_ERRORS:
        image_env = {}
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    return Workload(
        id=str(container.id),
        name=str(container.name),
        project=str((container.labels or {}).get(runtime_docker.COMPOSE_PROJECT_LABEL, "")),
        running=container.status == "running",
        started_at=str((attrs.get("State") or {}).get("StartedAt") or ""),
        security=security,
        env=env,
        image_env=image_env,
        addresses={str(name): str(net.get("IPAddress") or "") for name, net in networks.items()},
    )


def _env(items: Any) -> dict[str, str]:
    return dict(str(item).partition("=")[::2] for item in items or [])
