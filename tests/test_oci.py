"""OCI transport, local registry, publishing and loading packages from a registry (P-REG / SUP-01)."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import socket
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from margo_conformance._internal.local_registry import LocalRegistry, find_registry_binary
from margo_conformance._internal.oci import (
    EMPTY_DIGEST,
    DigestMismatch,
    NotFound,
    OciClient,
    OciReference,
    compute_digest,
    is_loopback,
)
from margo_conformance.errors import EnvironmentProblem, InputError, UsageError
from margo_conformance.package.oci_source import load_from_oci
from margo_conformance.package.publish import PublishedPackage, Variant, publish_package, push_variant

HAVE_REGISTRY = shutil.which("docker-registry") is not None or os.access("/usr/bin/docker-registry", os.X_OK)
needs_registry = pytest.mark.skipif(
    not HAVE_REGISTRY, reason="docker-registry (Debian package) is not installed: run scripts/setup"
)


# -- references ------------------------------------------------------------------------------------


DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("oci://127.0.0.1:5000/acme/web:1.0.0", "127.0.0.1:5000", "acme/web", "1.0.0", None),
        ("oci://registry.invalid/a/b/c", "registry.invalid", "a/b/c", None, None),
        (f"oci://localhost/app@{DIGEST}", "localhost", "app", None, DIGEST),
        (f"oci://quay.io/org/app:1.2.3_build.1@{DIGEST}", "quay.io", "org/app", "1.2.3_build.1", DIGEST),
        ("oci://[::1]:5000/app:latest", "[::1]:5000", "app", "latest", None),
    ],
)
def test_reference_parses_and_prints_back(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = OciReference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert str(ref) == text
    assert OciReference.parse(str(ref)) == ref


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1:5000/acme/web:1.0.0",  # no scheme
        "oci://host",  # no repository
        "oci://host/Upper/case:1.0.0",  # repositories are lowercase
        "oci://host/app:1.0.0+build",  # '+' is not allowed in a tag
        "oci://host/app@sha256:abc",  # short digest
        "oci://host/app@md5:" + "a" * 32,  # unsupported algorithm
        "oci://host//app",
        "",
    ],
)
def test_malformed_reference_is_a_usage_error(text: str) -> None:
    with pytest.raises((UsageError, InputError)) as caught:
        OciReference.parse(text)
    assert "\n" not in caught.value.diagnostics()


def test_reference_helpers() -> None:
    ref = OciReference.parse("oci://registry.invalid/acme/web")
    assert str(ref.with_tag("2.0.0")) == "oci://registry.invalid/acme/web:2.0.0"
    assert str(ref.with_registry("127.0.0.1:1234").with_tag("1.0.0")) == "oci://127.0.0.1:1234/acme/web:1.0.0"
    assert ref.with_tag("1.0.0").with_digest(DIGEST).reference == DIGEST
    with pytest.raises(UsageError):
        ref.with_tag("1.0.0+x")
    with pytest.raises(UsageError):
        _ = ref.reference
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost") and is_loopback("[::1]:80")
    assert not is_loopback("registry.example:5000")


# -- a package to publish ----------------------------------------------------------------------------

COMPOSE = b"services:\n  web:\n    image: busybox:stable\n    command: [httpd, -f]\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


def compose_archive(top: str = "web") -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        directory = tarfile.TarInfo(top)
        directory.type, directory.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(directory)
        info = tarfile.TarInfo(f"{top}/compose.yaml")
        info.size, info.mode = len(COMPOSE), 0o644
        tar.addfile(info, io.BytesIO(COMPOSE))
    return gzip.compress(raw.getvalue(), mtime=0)


def helm_chart(name: str = "gauge") -> bytes:
    files = {
        f"{name}/Chart.yaml": f"apiVersion: v2\nname: {name}\nversion: 0.3.0\n".encode(),
        f"{name}/values.yaml": b"replicas: 1\n",
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def write_package(root: Path, *, extra_components: str = "", helm: bool = False) -> Path:
    (root / "resources").mkdir(parents=True)
    (root / "components").mkdir()
    (root / "resources/description.md").write_text("# Web\n\nServes a page.\n")
    (root / "resources/license.md").write_text("Apache-2.0\n")
    (root / "resources/icon.png").write_bytes(PNG)
    (root / "components/web.tar.gz").write_bytes(compose_archive())
    helm_profile = ""
    if helm:
        (root / "components/gauge.tgz").write_bytes(helm_chart())
        helm_profile = """\
  - type: helm
    id: web-helm
    components:
      - name: gauge
        properties:
          repository: oci://registry.invalid/acme/charts/gauge
          revision: 0.3.0
"""
    (root / "margo.yaml").write_text(
        f"""\
apiVersion: v1
id: acme-web
metadata:
  name: Acme Web
  version: 1.0.0
  catalog:
    application:
      descriptionFile: ./resources/description.md
      licenseFile: resources/license.md
      icon: ./resources/icon.png
      site: https://acme.example
    organization:
      - name: Acme
deploymentProfiles:
  - type: compose
    id: web-compose
    components:
      - name: web
        properties:
          repository: oci://registry.invalid/acme/web
          revision: 1.0.0
{extra_components}{helm_profile}"""
    )
    return root


@pytest.fixture
def local_registry() -> Iterator[LocalRegistry]:
    if not HAVE_REGISTRY:
        pytest.skip("docker-registry (Debian package) is not installed: run scripts/setup")
    with LocalRegistry() as registry:
        yield registry


@pytest.fixture
def package_dir(tmp_path: Path) -> Path:
    return write_package(tmp_path / "pkg")


# -- round trip ----------------------------------------------------------------------------------------


@needs_registry
def test_conformant_package_round_trips_without_findings(
    local_registry: LocalRegistry, package_dir: Path
) -> None:
    published = publish_package(package_dir, local_registry.host)
    assert published.reference == f"oci://{local_registry.host}/acme-web:1.0.0"

    package = load_from_oci(published.reference, timeout=5)

    assert [f.as_dict() for f in package.findings] == []
    assert package.origin == published.reference
    assert package.description_location == f"{published.reference}#margo.yaml"
    assert package.description_text is not None
    assert f"oci://{local_registry.host}/acme/web" in package.description_text
    assert "registry.invalid" not in package.description_text
    assert package.resources == {
        "resources/description.md": (package_dir / "resources/description.md").read_bytes(),
        "resources/license.md": (package_dir / "resources/license.md").read_bytes(),
        "resources/icon.png": PNG,
    }
    [web] = package.components
    assert (web.name, web.deployment_type) == ("web", "compose")
    assert web.location == f"oci://{local_registry.host}/acme/web:1.0.0"
    assert web.archive == (package_dir / "components/web.tar.gz").read_bytes()


@needs_registry
def test_published_manifests_have_the_margo_shape(local_registry: LocalRegistry, package_dir: Path) -> None:
    published = publish_package(package_dir, local_registry.host)
    with OciClient(local_registry.host) as client:
        body, media_type, digest = client.get_manifest("acme-web", "1.0.0")
        app = json.loads(body)
        component = json.loads(client.get_manifest("acme/web", "1.0.0")[0])
    assert media_type == "application/vnd.oci.image.manifest.v1+json"
    assert digest == published.manifest_digest == compute_digest(body)
    assert app["artifactType"] == "application/vnd.margo.app.v1+json"
    assert app["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": EMPTY_DIGEST,
        "size": 2,
        "data": "e30=",
    }
    kinds = {layer["annotations"]["org.opencontainers.image.title"]: layer for layer in app["layers"]}
    assert kinds["margo.yaml"]["mediaType"] == "application/vnd.margo.app.description.v1+yaml"
    icon = kinds["resources/icon.png"]
    assert icon["mediaType"] == "application/vnd.margo.app.icon.v1+png"
    assert icon["annotations"]["org.margo.app.resource"] == "metadata.catalog.application.icon"
    assert kinds["resources/license.md"]["mediaType"] == "application/vnd.margo.app.licenseFile.v1+markdown"
    assert component["artifactType"] == "application/vnd.org.margo.component.compose+json"
    [layer] = component["layers"]
    assert layer["mediaType"] == "application/vnd.org.margo.component.compose.tar+gzip"
    assert layer["annotations"]["org.margo.component.type"] == "compose"
    assert layer["annotations"]["org.margo.component.version"] == "1.0.0"
    assert layer["annotations"]["org.opencontainers.image.title"] == "web"


@needs_registry
def test_pull_by_digest_skips_the_tag_comparison(local_registry: LocalRegistry, package_dir: Path) -> None:
    published = publish_package(package_dir, local_registry.host, tag="latest")
    by_digest = f"oci://{local_registry.host}/acme-web@{published.manifest_digest}"
    assert list(load_from_oci(by_digest).findings) == []
    assert load_from_oci(published.reference).findings.requirements() == {"REG-005"}


@needs_registry
def test_helm_chart_is_published_with_helm_media_types(local_registry: LocalRegistry, tmp_path: Path) -> None:
    root = write_package(tmp_path / "pkg", helm=True)
    publish_package(root, local_registry.host)
    with OciClient(local_registry.host) as client:
        chart = json.loads(client.get_manifest("acme/charts/gauge", "0.3.0")[0])
        config = json.loads(client.get_blob("acme/charts/gauge", chart["config"]["digest"], max_bytes=4096))
    assert chart["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json"
    assert [layer["mediaType"] for layer in chart["layers"]] == [
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    ]
    assert (config["name"], config["version"]) == ("gauge", "0.3.0")

    package = load_from_oci(f"oci://{local_registry.host}/acme-web:1.0.0")
    assert list(package.findings) == []
    gauge = next(c for c in package.components if c.name == "gauge")
    assert gauge.deployment_type == "helm" and gauge.archive == (root / "components/gauge.tgz").read_bytes()


@needs_registry
def test_helm_component_that_is_not_a_chart_is_reported(
    local_registry: LocalRegistry, tmp_path: Path
) -> None:
    root = write_package(tmp_path / "pkg", helm=True)
    (root / "components/gauge.tgz").unlink()
    publish_package(root, local_registry.host)
    # something that is not a chart sits where the helm component points
    with OciClient(local_registry.host) as client:
        from margo_conformance.package.publish import push_compose_component

        target = OciReference.parse(f"oci://{local_registry.host}/acme/charts/gauge:0.3.0")
        push_compose_component(client, target, compose_archive(), name="gauge", revision="0.3.0")
    package = load_from_oci(f"oci://{local_registry.host}/acme-web:1.0.0")
    assert package.findings.requirements() == {"APPD-110"}
    assert next(c for c in package.components if c.name == "gauge").archive is None


# -- wrong shapes --------------------------------------------------------------------------------------

COMPOSE_LAYER = "application/vnd.org.margo.component.compose.tar+gzip"


@needs_registry
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"app_artifact_type": None}, {"REG-008"}),
        ({"app_artifact_type": "application/vnd.oci.image.config.v1+json"}, {"REG-008"}),
        (
            {
                "app_config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": EMPTY_DIGEST,
                    "size": 2,
                }
            },
            {"REG-008"},
        ),
        ({"app_manifest_media_type": None}, {"REG-007"}),
        ({"description_media_type": "application/yaml"}, {"REG-009"}),
        ({"description_layers": 2}, {"REG-009"}),
        ({"resource_annotation": False}, {"REG-009"}),
        ({"resource_media_types": {"resources/icon.png": "image/png"}}, {"REG-009"}),
        (
            {"resource_media_types": {"resources/icon.png": "application/vnd.margo.app.licenseFile.v1+png"}},
            {"REG-009"},
        ),
        ({"compose_artifact_type": None}, {"REG-011"}),
        ({"compose_artifact_type": "application/vnd.oci.image.config.v1+json"}, {"REG-011"}),
        ({"layer_media_type": "application/vnd.oci.image.layer.v1.tar+gzip"}, {"REG-011"}),
        ({"extra_layers": (("application/vnd.oci.image.layer.v1.tar", b"extra"),)}, {"REG-011"}),
        ({"extra_layers": ((COMPOSE_LAYER, compose_archive("other")),)}, {"REG-011"}),
        ({"omit_annotations": frozenset({"org.margo.component.type"})}, {"REG-012"}),
        ({"omit_annotations": frozenset({"org.margo.component.version"})}, {"REG-012"}),
        ({"compose_annotations": {"org.margo.component.type": "helm"}}, {"REG-012"}),
        ({"compose_annotations": {"org.margo.component.version": "1.0.1"}}, {"REG-012"}),
        ({"compose_annotations": {"org.margo.component.version": "v1.0.0"}}, {"REG-012"}),
        ({"compose_annotations": {"org.opencontainers.image.version": "v1.0.0"}}, {"REG-012"}),
        ({"docker_compose_publish_shape": True}, {"REG-017", "REG-011"}),
    ],
    ids=lambda value: "-".join(sorted(value)) if isinstance(value, set) else None,
)
def test_each_wrong_shape_is_reported_under_its_requirement(
    local_registry: LocalRegistry, package_dir: Path, overrides: dict[str, Any], expected: set[str]
) -> None:
    published = push_variant(package_dir, local_registry.host, **overrides)
    package = load_from_oci(published.reference, timeout=5)
    assert package.findings.requirements() == expected, [f.as_dict() for f in package.findings]
    for finding in package.findings:
        assert finding.location.startswith(f"oci://{local_registry.host}/")
        assert "\n" not in finding.message


@needs_registry
def test_variant_defaults_are_conformant(local_registry: LocalRegistry, package_dir: Path) -> None:
    published = publish_package(package_dir, local_registry.host, variant=Variant())
    assert list(load_from_oci(published.reference).findings) == []


@needs_registry
def test_tag_other_than_metadata_version_is_reg_005(local_registry: LocalRegistry, package_dir: Path) -> None:
    published = publish_package(package_dir, local_registry.host, repository="acme/web-app", tag="v1.0.0")
    package = load_from_oci(published.reference)
    assert package.findings.requirements() == {"REG-005"}


@needs_registry
def test_component_that_does_not_resolve_is_reg_010(local_registry: LocalRegistry, tmp_path: Path) -> None:
    missing = """\
      - name: api
        properties:
          repository: oci://registry.invalid/acme/api
          revision: 2.0.0
"""
    root = write_package(tmp_path / "pkg", extra_components=missing)
    published = publish_package(root, local_registry.host)
    package = load_from_oci(published.reference)
    assert package.findings.requirements() == {"REG-010"}
    api = next(c for c in package.components if c.name == "api")
    assert api.archive is None and api.location == f"oci://{local_registry.host}/acme/api:2.0.0"


@needs_registry
def test_unknown_package_manifest_is_an_input_error(local_registry: LocalRegistry) -> None:
    with pytest.raises(InputError, match="acme/none:1.0.0"):
        load_from_oci(f"oci://{local_registry.host}/acme/none:1.0.0")


# -- digest verification -------------------------------------------------------------------------------


@needs_registry
def test_registry_serves_tampered_bytes_and_the_client_refuses_them(local_registry: LocalRegistry) -> None:
    with OciClient(local_registry.host) as client:
        digest = client.push_blob("acme/blob", b"original bytes")
        assert client.get_blob("acme/blob", digest, max_bytes=100) == b"original bytes"
        local_registry.tamper_blob(digest)
        with pytest.raises(DigestMismatch) as caught:
            client.get_blob("acme/blob", digest, max_bytes=100)
        assert caught.value.expected == digest and caught.value.actual != digest
        with pytest.raises(InputError, match="limit"):
            client.get_blob("acme/blob", digest, max_bytes=4)


@needs_registry
@pytest.mark.parametrize("part", ["compose layer", "description", "resource"])
def test_tampered_blob_is_reg_016_and_never_handed_on(
    local_registry: LocalRegistry, package_dir: Path, part: str
) -> None:
    published: PublishedPackage = publish_package(package_dir, local_registry.host)
    digest = {
        "compose layer": published.component("web").layer_digest,
        "description": published.description_digest,
        "resource": published.resource_digests["resources/license.md"],
    }[part]
    local_registry.tamper_blob(digest)

    package = load_from_oci(published.reference)

    assert package.findings.requirements() == {"REG-016"}
    if part == "compose layer":
        assert package.components[0].archive is None
    elif part == "description":
        assert package.description_text is None and package.components == []
    else:
        assert "resources/license.md" not in package.resources


# -- the local registry itself -------------------------------------------------------------------------


@needs_registry
def test_local_registry_cleans_up_when_the_body_raises() -> None:
    with pytest.raises(RuntimeError), LocalRegistry() as registry:
        storage = registry.storage_dir
        host, port = registry.host.split(":")
        assert storage.is_dir()
        raise RuntimeError("boom")
    assert not storage.exists()
    with socket.socket() as probe:
        probe.settimeout(1)
        assert probe.connect_ex((host, int(port))) != 0


def test_missing_registry_binary_is_an_environment_problem() -> None:
    with pytest.raises(EnvironmentProblem, match="not found: run scripts/setup"):
        find_registry_binary("docker-registry-that-does-not-exist")
    with (
        pytest.raises(EnvironmentProblem, match="not found"),
        LocalRegistry(binary="no-such-docker-registry"),
    ):
        pass


# -- unreachable and silent registries -----------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_registry_is_an_environment_problem() -> None:
    port = _closed_port()
    with pytest.raises(EnvironmentProblem) as caught:
        load_from_oci(f"oci://127.0.0.1:{port}/acme/app:1.0.0", timeout=2)
    message = caught.value.diagnostics()
    assert f"127.0.0.1:{port}/acme/app:1.0.0" in message and "connection refused" in message
    assert "\n" not in message


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            held.append(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=2)
        for connection in held:
            connection.close()
        server.close()


def test_registry_that_never_answers_is_an_environment_problem(silent_server: int) -> None:
    with pytest.raises(EnvironmentProblem, match="no answer within 0.5 s"):
        load_from_oci(f"oci://127.0.0.1:{silent_server}/acme/app:1.0.0", timeout=0.5)
    with OciClient(f"127.0.0.1:{silent_server}", timeout=0.5) as client, pytest.raises(EnvironmentProblem):
        client.get_blob("acme/app", DIGEST, max_bytes=10)


def test_not_found_is_an_input_error() -> None:
    assert issubclass(NotFound, InputError)


# -- hand-built manifests --------------------------------------------------------------------------


@needs_registry
def test_index_or_lying_descriptor_is_reg_007(local_registry: LocalRegistry, package_dir: Path) -> None:
    published = publish_package(package_dir, local_registry.host)
    with OciClient(local_registry.host) as client:
        body, _, digest = client.get_manifest("acme-web", "1.0.0")
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": digest,
                    "size": len(body),
                }
            ],
        }
        client.push_manifest("acme-web", "as-index", index)
        lying = json.loads(body)
        lying["layers"][1]["size"] += 1  # distribution 2.8 accepts a wrong size
        client.push_manifest("acme-web", "1.0.0", lying)
    assert load_from_oci(f"oci://{local_registry.host}/acme-web:as-index").findings.requirements() == {
        "REG-007"
    }
    package = load_from_oci(published.reference)
    assert package.findings.requirements() == {"REG-007"}
    assert "descriptor size" in next(iter(package.findings)).message


@needs_registry
@pytest.mark.parametrize("layers", [1, 2])
def test_custom_component_is_one_blob(local_registry: LocalRegistry, tmp_path: Path, layers: int) -> None:
    custom = """\
  - type: custom
    id: web-custom
    components:
      - name: blob
        properties:
          repository: oci://registry.invalid/acme/blob
          revision: 1.0.0
"""
    root = write_package(tmp_path / "pkg", extra_components=custom)
    published = publish_package(root, local_registry.host)
    with OciClient(local_registry.host) as client:
        client.push_blob("acme/blob", b"{}")
        parts = [b"custom-runtime-artifact", b"second"][:layers]
        descriptors = [
            {
                "mediaType": "application/octet-stream",
                "digest": client.push_blob("acme/blob", p),
                "size": len(p),
            }
            for p in parts
        ]
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.example.runtime",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2},
            "layers": descriptors,
        }
        client.push_manifest("acme/blob", "1.0.0", manifest)
    package = load_from_oci(published.reference)
    blob = next(c for c in package.components if c.name == "blob")
    if layers == 1:
        assert list(package.findings) == [] and blob.archive == b"custom-runtime-artifact"
    else:
        assert package.findings.requirements() == {"CUST-001"} and blob.archive is None


@pytest.fixture
def failing_server() -> Iterator[str]:
    """/v2/a/manifests/* answers 500; /v2/b/… answers 401 without a challenge."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            status = 500 if self.path.startswith("/v2/a/") else 401
            body = b'{"errors":[{"code":"UNKNOWN","message":"broken"}]}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_server_errors_and_refused_access_are_environment_problems(failing_server: str) -> None:
    with pytest.raises(EnvironmentProblem, match="HTTP 500 UNKNOWN: broken") as caught:
        load_from_oci(f"oci://{failing_server}/a:1.0.0", timeout=2)
    assert f"oci://{failing_server}/a:1.0.0" in caught.value.diagnostics()
    with pytest.raises(EnvironmentProblem, match="refused access"):
        load_from_oci(f"oci://{failing_server}/b:1.0.0", timeout=2)
