"""The suite's local test images (fixtures/images/) and the Docker runtime helpers, on a real daemon.

Skipped only when no Docker daemon answers. Every container and network made here carries a label
unique to this module's run and is removed by a finalizer, on failure too; the built images are a
cache and stay.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from margo_conformance._internal import images
from margo_conformance._internal.local_registry import LocalRegistry
from margo_conformance._internal.runtime_docker import (
    COMPOSE_PROJECT_LABEL,
    SUITE_LABEL,
    containers_of,
    create_network,
    inspect_security,
    parse_probe_report,
    remove_project,
    run_probe,
    start_container,
    wait_until,
)

RUN_ID = uuid.uuid4().hex[:10]
RUN_LABEL = "org.margo.conformance.test-run"
LABELS = {RUN_LABEL: RUN_ID}

needs_busybox = pytest.mark.skipif(
    not images.busybox_available(), reason="/bin/busybox (busybox-static) missing: run scripts/setup"
)


# -- no daemon needed ---------------------------------------------------------------------------------


@needs_busybox
def test_build_context_is_deterministic_and_complete() -> None:
    first = images.build_context("probe")
    second = images.build_context("probe")
    assert first.sha256 == second.sha256 and first.tar == second.tar
    with tarfile.open(fileobj=io.BytesIO(first.tar)) as archive:
        members = {member.name: member for member in archive.getmembers()}
    assert {"Dockerfile", "busybox", "probe", "passwd", "group"} <= set(members)
    assert "README.md" not in members  # documentation is not part of the image
    assert members["probe"].mode == 0o755 and members["busybox"].mode == 0o755
    assert members["Dockerfile"].mode == 0o644
    assert all(member.uid == 0 and member.mtime == 0 for member in members.values())
    assert images.build_context("http-server").sha256 != first.sha256


def test_missing_busybox_is_an_environment_problem(tmp_path: Path) -> None:
    from margo_conformance.errors import EnvironmentProblem

    with pytest.raises(EnvironmentProblem, match="busybox-static.*scripts/setup"):
        images.build_context("probe", busybox=tmp_path / "busybox")


def test_probe_report_parser_unescapes() -> None:
    text = "\n".join(
        [
            "probe 1",
            "uid 4242",
            "gid 4242",
            "groups 4242 27",
            "docker-sock absent",
            "cap CapEff 0000000000000000",
            "mount /data ext4 ro",
            r"env SECRET=a\nb\\c=d",
            "tcp web:8080 open",
            "tcp [::1]:1 closed",
            "read /etc/passwd ok 100 abc",
            "read /secret denied",
            "read /tmp dir a b",
            r"http http://web:8080/ ok line1\nline2",
            "http http://x/ failed",
            "end",
        ]
    )
    report = parse_probe_report(text)
    assert (report.uid, report.gid, report.groups) == (4242, 4242, [4242, 27])
    assert report.docker_sock is False and report.caps == {"CapEff": "0000000000000000"}
    assert report.mounts == [("/data", "ext4", "ro")]
    assert report.env == {"SECRET": "a\nb\\c=d"}
    assert report.tcp == {"web:8080": True, "[::1]:1": False}
    assert report.read == {"/etc/passwd": "ok", "/secret": "denied", "/tmp": "dir"}
    assert report.read_detail == {"/etc/passwd": "100 abc", "/tmp": "a b"}
    assert report.http == {"http://web:8080/": "line1\nline2", "http://x/": None}
    assert report.complete
    assert not parse_probe_report("probe 1\nuid 0\n").complete


# -- on a Docker daemon -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    if not images.docker_available():
        pytest.skip("no Docker daemon answers (docker info): run scripts/setup --need-docker")
    docker_ = images.docker_client()
    try:
        yield docker_
    finally:
        # Everything this module made, by its run label: containers first, then networks.
        mine = {"label": f"{RUN_LABEL}={RUN_ID}"}
        for container in docker_.containers.list(all=True, filters=mine):
            with contextlib.suppress(Exception):
                container.remove(force=True, v=True)
        for network in docker_.networks.list(filters=mine):
            with contextlib.suppress(Exception):
                network.remove()
        docker_.close()


@pytest.fixture(scope="module")
def built(client: Any) -> dict[str, str]:
    if not images.busybox_available():
        pytest.fail("/bin/busybox (busybox-static) is missing: run scripts/setup", pytrace=False)
    return images.build_test_images(client=client)


@pytest.fixture(scope="module")
def network(client: Any) -> str:
    name = f"margo-test-{RUN_ID}"
    create_network(name, labels=LABELS, client=client)
    return name


@pytest.fixture(scope="module")
def server(client: Any, built: dict[str, str], network: str) -> Any:
    """The http-server on ``network``, published on 127.0.0.1:<random>, VENDOR set to a marker."""
    container = start_container(
        built["http-server"],
        network=network,
        name=f"margo-web-{RUN_ID}",
        env={"VENDOR": f"vendor-{RUN_ID}"},
        labels=LABELS,
        ports={"8080/tcp": ("127.0.0.1", None)},
        client=client,
    )
    assert wait_until(lambda: bool(_host_port(container)), timeout=10), "no published port"
    return container


def _host_port(container: Any) -> int | None:
    ports = inspect_security(container)["published_ports"]
    return ports[0]["host_port"] if ports else None


def _fetch(url: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode("utf-8"))
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_build_is_idempotent_and_labelled(client: Any, built: dict[str, str]) -> None:
    assert built == {"http-server": "margo-test/http-server:1.0.0", "probe": "margo-test/probe:1.0.0"}
    ids = {name: client.images.get(ref).id for name, ref in built.items()}
    started = time.monotonic()
    again = images.build_test_images(client=client)
    assert time.monotonic() - started < 2.0, "an unchanged context must not be rebuilt"
    assert {name: client.images.get(ref).id for name, ref in again.items()} == ids
    for name, ref in built.items():
        image = client.images.get(ref)
        labels = image.attrs["Config"]["Labels"]
        assert labels[images.CONTEXT_LABEL] == images.build_context(name).sha256
        assert labels[images.IMAGE_LABEL] == name
        assert SUITE_LABEL not in labels  # it would mark every container of the image as ours
        assert image.attrs["Size"] < 4_000_000  # busybox and a few small files


def test_http_server_serves_its_marker_as_uid_1000(server: Any) -> None:
    body = _fetch(f"http://127.0.0.1:{_host_port(server)}/")
    assert "margo-test http-server" in body and f"vendor=vendor-{RUN_ID}" in body
    assert _fetch(f"http://127.0.0.1:{_host_port(server)}/healthz").strip() == "ok"
    exit_code, output = server.exec_run(["id", "-u"])
    assert (exit_code, output.decode().strip()) == (0, "1000")
    assert inspect_security(server)["user"] == "1000:1000"


def test_probe_reports_what_it_reaches_and_reads(
    client: Any, built: dict[str, str], network: str, server: Any, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)  # owned by the test's user; the probe runs as 4242
    server_name = str(server.name)
    args = [
        f"{server_name}:8080",
        "127.0.0.1:1",
        f"http:http://{server_name}:8080/",
        "/etc/passwd",
        "read:/secret",
        "/nonexistent",
    ]
    started = time.monotonic()
    text = run_probe(
        built["probe"],
        network=network,
        args=args,
        env={"MARGO_SECRET": "line1\nline2 \\ end"},
        user="4242:4242",
        volumes={str(secret): {"bind": "/secret", "mode": "ro"}},
        labels=LABELS,
        client=client,
    )
    elapsed = time.monotonic() - started
    report = parse_probe_report(text)
    assert report.complete, text
    assert (report.uid, report.gid) == (4242, 4242)
    assert report.docker_sock is False
    assert report.env["MARGO_SECRET"] == "line1\nline2 \\ end"
    assert report.tcp == {f"{server_name}:8080": True, "127.0.0.1:1": False}
    assert f"vendor=vendor-{RUN_ID}" in (report.http[f"http://{server_name}:8080/"] or "")
    assert report.read == {"/etc/passwd": "ok", "/secret": "denied", "/nonexistent": "missing"}
    assert [mode for target, _, mode in report.mounts if target == "/secret"] == ["ro"]
    assert elapsed < 10, f"the probe took {elapsed:.1f} s"
    # run_probe removed its container
    leftovers = {"label": f"{RUN_LABEL}={RUN_ID}", "ancestor": built["probe"]}
    assert not client.containers.list(all=True, filters=leftovers)


def test_probe_cannot_reach_a_container_of_another_network(
    client: Any, built: dict[str, str], server: Any
) -> None:
    server.reload()
    ip = next(iter(server.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    assert ip
    other = f"margo-test-other-{RUN_ID}"
    create_network(other, labels=LABELS, client=client)
    for where in (other, None):  # another bridge network; no network at all
        report = parse_probe_report(
            run_probe(built["probe"], network=where, args=[f"{ip}:8080"], labels=LABELS, client=client)
        )
        assert report.complete and report.tcp == {f"{ip}:8080": False}, where


def test_inspect_security_of_a_limited_container(client: Any, built: dict[str, str], network: str) -> None:
    project = f"margo-proj-{RUN_ID}"
    container = start_container(
        built["http-server"],
        network=network,
        labels={**LABELS, COMPOSE_PROJECT_LABEL: project},
        nano_cpus=500_000_000,
        mem_limit="64m",
        read_only=True,
        tmpfs={"/tmp": "size=1m"},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        ports={"8080/tcp": ("127.0.0.1", None)},
        client=client,
    )
    assert wait_until(lambda: bool(_host_port(container)), timeout=10)
    security = inspect_security(container)
    assert security["privileged"] is False
    assert security["network_mode"] == network and security["networks"] == [network]
    assert security["pid_mode"] == "" and security["ipc_mode"] in ("private", "shareable")
    assert security["user"] == "1000:1000"
    assert security["read_only_rootfs"] is True
    assert security["nano_cpus"] == 500_000_000 and security["cpus"] == 0.5
    assert security["memory"] == 64 * 1024 * 1024
    assert security["cap_drop"] == ["ALL"] and security["security_opt"] == ["no-new-privileges"]
    assert security["mounts"] == []  # a tmpfs is not a mount in .Mounts
    [port] = security["published_ports"]
    assert port["container_port"] == 8080 and port["host_ip"] == "127.0.0.1" and port["host_port"]
    assert security["labels"][SUITE_LABEL] == "1"
    # The limits are in force in the kernel (cgroup v1 or v2), and the read-only root still serves.
    v2_or_v1 = "cat /sys/fs/cgroup/{} 2>/dev/null || cat /sys/fs/cgroup/{}"
    _, memory = container.exec_run(
        ["sh", "-c", v2_or_v1.format("memory.max", "memory/memory.limit_in_bytes")]
    )
    assert memory.decode().strip() == str(64 * 1024 * 1024)
    _, cpu = container.exec_run(["sh", "-c", v2_or_v1.format("cpu.max", "cpu/cpu.cfs_quota_us")])
    assert cpu.decode().split()[0] == "50000"
    assert "vendor=unset" in _fetch(f"http://127.0.0.1:{port['host_port']}/")
    # Found by its Compose project label, and removed with it.
    assert [c.id for c in containers_of(project, client=client)] == [container.id]
    removed = remove_project(project, client=client)
    assert removed.containers == [container.name] and not removed.errors
    assert containers_of(project, client=client) == []


def test_push_then_pull_back_by_digest(client: Any, built: dict[str, str]) -> None:
    with LocalRegistry() as registry:
        pushed = images.push_test_images(registry, client=client)
        assert set(pushed) == {"http-server", "probe"}
        for name, reference in pushed.items():
            repository, _, digest = reference.partition("@")
            assert repository == f"{registry.host}/margo-test/{name}" and digest.startswith("sha256:")
            # The registry serves that manifest under that digest.
            response = requests.get(
                f"{registry.url}/v2/margo-test/{name}/manifests/{digest}",
                headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
                timeout=5,
            )
            assert response.status_code == 200
            assert response.headers["Docker-Content-Digest"] == digest
            # The local registry tag was dropped after the push; pulling by digest brings the same image.
            assert not client.images.list(name=repository)
            pulled = client.images.pull(reference)
            try:
                assert pulled.id == client.images.get(built[name]).id
            finally:
                client.images.remove(reference)
        assert client.images.get(built["probe"])  # the cached images are untouched
