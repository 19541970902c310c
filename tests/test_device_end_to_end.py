"""The whole chain on a real Docker engine: an operator deploys vendor-a on the reference WFM, the
reference device agent pulls it from the local OCI registry, runs it with Docker Compose, reports it
installed, and removes it when the deployment leaves the desired state."""

from __future__ import annotations

import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from margo_conformance._internal.images import build_test_images
from margo_conformance._internal.local_registry import LocalRegistry
from margo_conformance.package.publish import FIXTURE_HOST, publish_package
from margo_conformance.pki import Pki
from margo_conformance.pki.policy import uri_sans
from margo_conformance.reference.device import DeviceAgent, DeviceConfig, host_capabilities
from margo_conformance.reference.device.runtime_compose import ComposeRuntime
from margo_conformance.reference.wfm import AdminClient, BackgroundWfm, WfmConfig

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode != 0,
    reason="no Docker daemon answers (scripts/setup starts one)",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _capabilities(device_id: str) -> dict[str, Any]:
    """This host's facts plus the label vendor-a's eligibility rules ask for (firmware generation > 2)."""
    document = host_capabilities(device_id)
    document["labels"] = {"vendor-a.example/firmware-generation": 3}
    return document


@pytest.fixture
def published(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """vendor-a on a free host port, published to a local registry; yields (description, port)."""
    port = _free_port()
    package = tmp_path / "vendor-a"
    shutil.copytree(ROOT / "fixtures" / "packages" / "vendor-a-compose", package)
    compose = package / "components" / "sensor-hub" / "compose.yaml"
    compose.write_text(compose.read_text().replace('"18080:8080"', f'"127.0.0.1:{port}:8080"'))
    build_test_images()
    with LocalRegistry() as registry:
        publish_package(package, registry.host, namespace=tmp_path.name.lower())
        description = (
            (package / "margo.yaml")
            .read_text()
            .replace(FIXTURE_HOST, f"{registry.host}/{tmp_path.name.lower()}")
        )
        yield description, port


def test_a_deployment_runs_on_the_device_and_goes_away_again(
    tmp_path: Path, published: tuple[str, int]
) -> None:
    description, port = published
    pki = Pki.init(tmp_path / "pki", trust_domain="factory.example", wfm_id="wfm-1")
    server = BackgroundWfm(WfmConfig(pki_dir=pki.directory, state_dir=tmp_path / "wfm"))
    endpoints = server.start()
    admin = AdminClient(endpoints.admin_url or "")
    runtime = ComposeRuntime(tmp_path / "runtime", timeout_s=60)
    deployment_id = ""
    try:
        svid = pki.mint_client("edge-1")
        files = svid.write(tmp_path / "client", "edge-1")
        spiffe_id = uri_sans(svid.certificate)[0]
        admin.accept_client(spiffe_id)
        agent = DeviceAgent(
            DeviceConfig(
                wfm_url=endpoints.url,
                svid=files,
                anchors=pki.bundle_pem,
                state_dir=tmp_path / "state",
                device_id="edge-1",
                capabilities=_capabilities("edge-1"),
                poll_interval_s=30.0,
                timeout_s=10.0,
            ),
            runtime=runtime,
        )
        agent.sync_once()  # capabilities first, then an empty desired state
        deployment_id, _ = admin.deploy(spiffe_id, "edge-1", description, {"siteName": "line-7"})
        agent.sync_once()
        state = admin.state()
        status = next(s for s in state["status"] if s["deploymentId"] == deployment_id)
        assert status["report"]["status"]["state"] == "installed", status
        assert deployment_id in runtime.running()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:  # noqa: S310
            assert page.status == 200
        admin.undeploy(deployment_id)
        agent.sync_once()
        assert deployment_id not in runtime.running()
    finally:
        if deployment_id:
            runtime.remove(deployment_id)
        server.stop()
