"""The reference device's Docker Compose runtime on a real Docker engine and a local OCI registry."""

from __future__ import annotations

import shutil
import socket
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from margo_conformance._internal import runtime_docker
from margo_conformance._internal.archive_builder import ArchiveEntry, pack
from margo_conformance._internal.images import build_test_images, docker_client
from margo_conformance._internal.local_registry import LocalRegistry
from margo_conformance._internal.oci import OciClient, OciReference
from margo_conformance.package.publish import PublishedPackage, publish_package, push_compose_component
from margo_conformance.paths import suite_root
from margo_conformance.reference.device.runtime_compose import (
    COMPONENT_LABEL,
    DEPLOYMENT_LABEL,
    OVERRIDE_FILE,
    ComponentFailure,
    ComposeRuntime,
    component_environment,
    override_document,
    parse_duration,
    project_name,
)

VENDOR_A = suite_root() / "fixtures" / "packages" / "vendor-a-compose"
COMPONENT = "sensor-hub"
SITE_NAME = "plant-test-7f3a"  # a value only the deployment's parameters carry


# -- pure helpers (no engine needed) ----------------------------------------------------------------------


def test_parse_duration() -> None:
    assert parse_duration("5m0s") == 300
    assert parse_duration("1h30m") == 5400
    assert parse_duration("500ms") == 0.5
    assert parse_duration("45") == 45
    assert parse_duration(12) == 12
    for bad in ("", "5x", "m5", True, None, -1, "5m junk"):
        assert parse_duration(bad) is None, bad


def test_project_name_is_a_valid_compose_name_and_unique_per_id() -> None:
    name = project_name("8F2C-Deploy.ID/with stuff", "Sensor Hub")
    assert name.startswith("margo-8f2c-deploy-") and name.endswith("-sensor-hub")
    assert all(c.isdigit() or c in "abcdefghijklmnopqrstuvwxyz_-" for c in name)
    assert project_name("aaaaaaaaaaaa-1", "c") != project_name("aaaaaaaaaaaa-2", "c")


def test_parameters_become_environment_of_their_target_component_only() -> None:
    document = _deployment("oci://h/r", parameters={"siteName": ("SITE_NAME", "x", [COMPONENT])})
    document["spec"]["parameters"]["flag"] = {
        "value": True,
        "targets": [{"pointer": "F", "components": ["o"]}],
    }
    assert component_environment(document, COMPONENT) == {"SITE_NAME": "x"}
    assert component_environment(document, "o") == {"F": "true"}
    for pointer in ("DOCKER_HOST", "PATH", "COMPOSE_FILE", "not a name"):
        bad = _deployment("oci://h/r", parameters={"p": (pointer, "v", [COMPONENT])})
        with pytest.raises(ComponentFailure, match="pointer"):
            component_environment(bad, COMPONENT)


def test_override_labels_services_and_own_networks_and_volumes() -> None:
    compose = {
        "services": {"a": {}, "b": {}},
        "networks": {"back": {}, "ext": {"external": True}},
        "volumes": {"data": None},
    }
    labels = {DEPLOYMENT_LABEL: "d"}
    override = override_document(compose, labels)
    assert override["services"] == {"a": {"labels": labels}, "b": {"labels": labels}}
    assert set(override["networks"]) == {"back", "default"}
    assert override["volumes"] == {"data": {"labels": labels}}


# -- on a Docker engine -------------------------------------------------------------------------------------


def _docker_answers() -> bool:
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@pytest.fixture(scope="module")
def engine() -> Iterator[None]:
    if not _docker_answers():
        pytest.skip("`docker info` does not answer: no Docker engine here (run scripts/setup --need-docker)")
    build_test_images(names=("http-server",))
    yield


@pytest.fixture(scope="module")
def registry(engine: None) -> Iterator[LocalRegistry]:
    with LocalRegistry() as running:
        yield running


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _copy_vendor_a(tmp: Path, *, port: int, env_extra: str = "") -> Path:
    """vendor-a with its host port moved to ``port`` (18080 may be taken) and, for a distinct archive
    digest, ``env_extra`` appended to its env file."""
    target = tmp / "vendor-a"
    shutil.copytree(VENDOR_A, target)
    compose = target / "components" / COMPONENT / "compose.yaml"
    compose.write_text(compose.read_text().replace('"18080:8080"', f'"127.0.0.1:{port}:8080"'))
    if env_extra:
        env_file = target / "components" / COMPONENT / f"{COMPONENT}.env"
        env_file.write_text(env_file.read_text() + env_extra)
    return target


def _deployment(
    repository: str,
    *,
    component: str = COMPONENT,
    parameters: dict[str, tuple[str, Any, list[str]]] | None = None,
    extra_components: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "applicationId": "vendor-a-sensor-hub",
        "deploymentProfile": {
            "type": "compose",
            "components": [
                {
                    "name": component,
                    "properties": {
                        "repository": repository,
                        "revision": "1.2.0",
                        "wait": True,
                        "timeout": "30s",
                    },
                },
                *(extra_components or []),
            ],
        },
    }
    if parameters:
        spec["parameters"] = {
            name: {"value": value, "targets": [{"pointer": pointer, "components": components}]}
            for name, (pointer, value, components) in parameters.items()
        }
    return {"id": "ignored", "metadata": {"name": "vendor-a-sensor-hub", "namespace": "margo"}, "spec": spec}


class Tracker:
    """Deployment ids a test used, so that teardown removes them whatever happened."""

    def __init__(self, runtime: ComposeRuntime) -> None:
        self.runtime = runtime
        self.used: list[tuple[str, list[str]]] = []

    def new_id(self, *components: str) -> str:
        deployment_id = str(uuid.uuid4())
        self.used.append((deployment_id, list(components)))
        return deployment_id

    def cleanup(self) -> None:
        for deployment_id, components in self.used:
            try:
                self.runtime.remove(deployment_id)
            finally:
                for component in components:
                    runtime_docker.remove_project(project_name(deployment_id, component))


@pytest.fixture
def tracker(registry: LocalRegistry, tmp_path: Path) -> Iterator[Tracker]:
    tracked = Tracker(ComposeRuntime(tmp_path / "state", timeout_s=30, stop_timeout_s=1))
    try:
        yield tracked
    finally:
        tracked.cleanup()


def _containers(deployment_id: str) -> list[Any]:
    client = docker_client()
    try:
        return list(
            client.containers.list(all=True, filters={"label": f"{DEPLOYMENT_LABEL}={deployment_id}"})
        )
    finally:
        client.close()


def _repository(published: PublishedPackage, component: str = COMPONENT) -> str:
    ref = OciReference.parse(published.component(component).reference)
    return f"oci://{ref.registry}/{ref.repository}"


def test_deploy_runs_labelled_serving_container_with_parameters_then_remove(
    registry: LocalRegistry, tracker: Tracker, tmp_path: Path
) -> None:
    port = _free_port()
    published = publish_package(_copy_vendor_a(tmp_path, port=port), registry.host)
    deployment_id = tracker.new_id(COMPONENT)
    document = _deployment(
        _repository(published),
        parameters={
            "listenPort": ("LISTEN_PORT", 8080, [COMPONENT]),
            "siteName": ("SITE_NAME", SITE_NAME, [COMPONENT]),
        },
    )
    runtime = tracker.runtime

    outcomes = runtime.deploy(deployment_id, document, b"yaml")

    assert [(o.name, o.state, o.error) for o in outcomes] == [(COMPONENT, "installed", None)]
    containers = _containers(deployment_id)
    assert len(containers) == 1
    container = containers[0]
    assert container.status == "running"
    assert container.labels[COMPONENT_LABEL] == COMPONENT
    assert container.labels[runtime_docker.COMPOSE_PROJECT_LABEL] == project_name(deployment_id, COMPONENT)
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert env["SITE_NAME"] == SITE_NAME and env["LISTEN_PORT"] == "8080" and env["VENDOR"] == "vendor-a"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:  # noqa: S310
        assert response.status == 200
        assert b"margo-test http-server" in response.read()
    assert deployment_id in runtime.running()
    again = runtime.deploy(deployment_id, document, b"yaml")  # an update with the same content: no churn
    assert [o.state for o in again] == ["installed"]
    assert [c.id for c in _containers(deployment_id)] == [container.id]
    extracted = runtime.component_dir(deployment_id, COMPONENT)
    assert (extracted / "compose.yaml").is_file() and (extracted / OVERRIDE_FILE).is_file()
    for path in runtime.state_dir.rglob("*"):  # parameters live in the process env only
        assert not path.is_file() or SITE_NAME.encode() not in path.read_bytes(), path

    runtime.remove(deployment_id)

    assert _containers(deployment_id) == []
    assert not runtime.deployment_dir(deployment_id).exists()
    assert deployment_id not in runtime.running()
    runtime.remove(deployment_id)  # idempotent


def test_tampered_layer_fails_before_anything_is_extracted(
    registry: LocalRegistry, tracker: Tracker, tmp_path: Path
) -> None:
    package = _copy_vendor_a(tmp_path, port=_free_port(), env_extra="TAMPER_TEST=1\n")
    published = publish_package(package, registry.host, namespace="tamper")
    registry.tamper_blob(published.component(COMPONENT).layer_digest)
    deployment_id = tracker.new_id(COMPONENT)

    outcomes = tracker.runtime.deploy(deployment_id, _deployment(_repository(published)), b"yaml")

    assert [o.state for o in outcomes] == ["failed"]
    error = outcomes[0].error
    assert error is not None and error.code == "digest-mismatch" and error.source == COMPONENT
    assert not tracker.runtime.deployment_dir(deployment_id).exists()
    assert _containers(deployment_id) == []


def _push_archive(
    registry: LocalRegistry, repository: str, component: str, entries: list[ArchiveEntry]
) -> str:
    ref = OciReference.parse(f"oci://{registry.host}/{repository}").with_tag("1.2.0")
    with OciClient(registry.host) as client:
        push_compose_component(client, ref, pack(entries), name=component, revision="1.2.0")
    return f"oci://{registry.host}/{repository}"


def test_escaping_symlink_is_refused_and_nothing_extracted(registry: LocalRegistry, tracker: Tracker) -> None:
    compose = b"services:\n  web:\n    image: margo-test/http-server:1.0.0\n"
    repository = _push_archive(
        registry,
        "evil/links",
        "evil",
        [
            ArchiveEntry("evil", type="dir", mode=0o755),
            ArchiveEntry("evil/compose.yaml", data=compose),
            ArchiveEntry("evil/etc", type="symlink", target="../../../etc", mode=0o777),
        ],
    )
    deployment_id = tracker.new_id("evil")

    outcomes = tracker.runtime.deploy(deployment_id, _deployment(repository, component="evil"), b"yaml")

    assert [o.state for o in outcomes] == ["failed"]
    error = outcomes[0].error
    assert error is not None and error.code == "archive-refused" and "REG-015" in error.message
    assert not tracker.runtime.deployment_dir(deployment_id).exists()
    assert _containers(deployment_id) == []


def test_service_exiting_at_start_fails_with_compose_error_and_stops_later_components(
    registry: LocalRegistry, tracker: Tracker
) -> None:
    compose = (
        b"services:\n  crash:\n    image: margo-test/http-server:1.0.0\n"
        b'    entrypoint: ["/bin/sh", "-c", "echo going down >&2; exit 3"]\n'
    )
    repository = _push_archive(
        registry,
        "vendor-c/crasher",
        "crasher",
        [ArchiveEntry("crasher", type="dir", mode=0o755), ArchiveEntry("crasher/compose.yaml", data=compose)],
    )
    later = {"name": "after", "properties": {"repository": repository, "revision": "1.2.0", "wait": True}}
    deployment_id = tracker.new_id("crasher", "after")

    outcomes = tracker.runtime.deploy(
        deployment_id, _deployment(repository, component="crasher", extra_components=[later]), b"yaml"
    )

    assert [(o.name, o.state) for o in outcomes] == [("crasher", "failed"), ("after", "failed")]
    first, second = outcomes[0].error, outcomes[1].error
    assert first is not None and first.code == "install-failed" and "exited (3)" in first.message, first
    assert not first.message.startswith("Container"), first  # the error, not the progress lines
    assert second is not None and second.code == "not-attempted"
    assert not tracker.runtime.component_dir(deployment_id, "after").exists()
    tracker.runtime.remove(deployment_id)
    assert _containers(deployment_id) == []
    assert not tracker.runtime.deployment_dir(deployment_id).exists()
