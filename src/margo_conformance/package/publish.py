"""Publish a package directory to an OCI registry the way SUP-01 / P-REG tell vendors to.

Package directory layout (the suite's convention for fixtures and for vendors who hand us a folder):

```
<package>/
  margo.yaml                      exactly one description YAML (*.yaml / *.yml) at the root
  resources/…                     optional: the files metadata.catalog.application names
  components/<name>.tar.gz        a Compose archive for the compose component <name>
  components/<name>.tgz           a packaged Helm chart for the helm component <name>
  components/<name>/              or the component's source folder: packed here (deterministically)
                                  with one top-level directory <name>, as ``local_source`` does
```

``publish_package`` pushes, in P-REG's order (blobs first, then manifests, REG-003):

1. every component that has a local artifact, to the repository its ``repository: oci://…`` names,
   tagged with its ``revision``:
   * Compose: an OCI image manifest with ``artifactType``
     ``application/vnd.org.margo.component.compose+json``, the empty config, and exactly one layer
     ``application/vnd.org.margo.component.compose.tar+gzip`` annotated with
     ``org.margo.component.type: compose``, ``org.margo.component.version: <revision>``,
     ``org.opencontainers.image.title: <component name>`` and ``org.opencontainers.image.version``;
   * Helm: Helm's own OCI shape: config ``application/vnd.cncf.helm.config.v1+json`` (the chart's
     ``Chart.yaml`` as JSON) and one layer ``application/vnd.cncf.helm.chart.content.v1.tar+gzip``;
   * components without a local artifact, custom components, and components whose
     ``repository``/``revision`` is missing or malformed are not pushed (the package may reference
     artifacts that live elsewhere; a malformed reference is for the loader to report).
2. the application package manifest at ``<repository or the description's id>:<tag or
   metadata.version>``: ``artifactType`` ``application/vnd.margo.app.v1+json``, the empty config, one
   description layer ``application/vnd.margo.app.description.v1+yaml`` (title: the file name) and one
   layer per resource that ``metadata.catalog.application`` names (icon, descriptionFile,
   licenseFile, releaseNotes), typed ``application/vnd.margo.app.<role>.v1+<format>`` and annotated
   with ``org.margo.app.resource: metadata.catalog.application.<role>`` (the dotted path, as the P-REG
   text says) and the file's path as title. Files under ``resources/`` that the catalog does not name
   are not pushed: P-REG defines no media type for them.

Registry host: fixture descriptions name components at ``oci://registry.invalid/…`` (a host that
never resolves, RFC 2606), so that a fixture cannot reach a real registry by accident. Publishing
pushes every component to ``registry_host`` whatever host its ``repository`` names, and the
description that is pushed is the original text with every occurrence of the string
``registry.invalid`` replaced by ``registry_host`` (a plain string replace, nothing else is
re-serialised), so the published package references the registry it was pushed to. A description
that names another host keeps naming it.

Deliberately wrong shapes for negative tests come from one ``Variant`` of overrides, e.g.
``push_variant(dir, host, compose_artifact_type=None)`` or ``Variant(docker_compose_publish_shape=True)``.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .._internal.oci import (
    EMPTY_DATA,
    EMPTY_DESCRIPTOR,
    HELM_CHART,
    HELM_CONFIG,
    IMAGE_VERSION,
    OCI_MANIFEST,
    TITLE,
    OciClient,
    OciReference,
)
from ..errors import InputError, UsageError
from .local_source import component_archive
from .oci_source import (
    APP_ARTIFACT_TYPE,
    COMPONENT_TYPE_ANNOTATION,
    COMPONENT_VERSION_ANNOTATION,
    COMPOSE_ARTIFACT_TYPE,
    COMPOSE_LAYER_MEDIA_TYPE,
    DESCRIPTION_MEDIA_TYPE,
    DOCKER_COMPOSE_ARTIFACT_TYPE,
    RESOURCE_ANNOTATION,
    catalog_resources,
    iter_components,
)

FIXTURE_HOST = "registry.invalid"
DOCKER_COMPOSE_FILE = "application/vnd.docker.compose.file+yaml"
DOCKER_COMPOSE_ENVFILE = "application/vnd.docker.compose.envfile"
_FORMATS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "plain",
    ".pdf": "pdf",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".svg": "svg+xml",
    ".gif": "gif",
    ".webp": "webp",
}


@dataclass(frozen=True)
class Variant:
    """What to get deliberately wrong. The defaults publish a conformant package.

    A ``None`` artifact type leaves ``artifactType`` out of the manifest.
    """

    # the application package manifest (REG-007/008/009)
    app_artifact_type: str | None = APP_ARTIFACT_TYPE
    app_config: Mapping[str, Any] | None = None  # None: the empty descriptor
    app_manifest_media_type: str | None = OCI_MANIFEST
    description_media_type: str = DESCRIPTION_MEDIA_TYPE
    description_layers: int = 1  # 0 or 2 for REG-009
    resource_annotation: bool = True  # False: resource layers without org.margo.app.resource
    resource_media_types: Mapping[str, str] = field(default_factory=dict)  # title -> media type
    # Compose component manifests (REG-011/012/017)
    compose_artifact_type: str | None = COMPOSE_ARTIFACT_TYPE
    layer_media_type: str = COMPOSE_LAYER_MEDIA_TYPE
    omit_annotations: frozenset[str] = frozenset()  # annotation keys left off the compose layer
    compose_annotations: Mapping[str, str] = field(default_factory=dict)  # added / overriding
    extra_layers: tuple[tuple[str, bytes], ...] = ()  # (media type, bytes) appended to the compose manifest
    docker_compose_publish_shape: bool = False  # what `docker compose publish` pushes (REG-017)


CONFORMANT = Variant()


@dataclass(frozen=True)
class PublishedComponent:
    name: str
    deployment_type: str
    reference: str  # oci://host/repo:revision
    manifest_digest: str
    layer_digest: str


@dataclass(frozen=True)
class PublishedPackage:
    reference: str  # oci://host/repo:tag of the application package manifest
    manifest_digest: str
    description_digest: str
    resource_digests: dict[str, str]  # title -> layer digest
    components: tuple[PublishedComponent, ...]

    def component(self, name: str) -> PublishedComponent:
        for component in self.components:
            if component.name == name:
                return component
        raise UsageError(f"no published component {name!r}")


# -- entry points ------------------------------------------------------------------------------------


def publish_package(
    package_dir: str | Path,
    registry_host: str,
    *,
    repository: str | None = None,
    tag: str | None = None,
    variant: Variant = CONFORMANT,
    timeout: float = 10.0,
    namespace: str = "",
) -> PublishedPackage:
    """Push the package in ``package_dir`` (layout: see the module docstring) to ``registry_host``.

    ``namespace`` prefixes every repository (package and components), so that several variants of one
    package can live in one registry without seeing each other's artifacts.
    """
    root = Path(package_dir)
    description_path = find_description(root)
    target = f"{registry_host}/{namespace}" if namespace else registry_host
    text = description_path.read_text(encoding="utf-8").replace(FIXTURE_HOST, target)
    try:
        description = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{description_path}: not YAML: {exc}") from None
    if not isinstance(description, Mapping):
        raise InputError(f"{description_path}: not a YAML mapping")
    repository = repository or str(description.get("id") or "")
    try:
        version = str(description["metadata"]["version"]).strip()
    except (KeyError, TypeError):
        version = ""
    tag = tag or version
    if not repository or not tag:
        raise InputError(f"{description_path}: no id / metadata.version; pass repository= and tag=")
    app_ref = OciReference.parse(f"oci://{target}/{repository}").with_tag(tag)

    with OciClient(registry_host, timeout=timeout) as client:
        components = _publish_components(client, root, description, registry_host, variant)
        manifest, description_digest, resource_digests = _app_manifest(
            client, app_ref, root, description_path.name, text.encode("utf-8"), description, variant
        )
        digest = client.push_manifest(app_ref.repository, tag, manifest)
    return PublishedPackage(
        reference=str(app_ref),
        manifest_digest=digest,
        description_digest=description_digest,
        resource_digests=resource_digests,
        components=tuple(components),
    )


def push_variant(
    package_dir: str | Path,
    registry_host: str,
    *,
    repository: str | None = None,
    tag: str | None = None,
    **overrides: Any,
) -> PublishedPackage:
    """``publish_package`` with ``Variant(**overrides)``: ``push_variant(d, h, layer_media_type="x")``."""
    return publish_package(
        package_dir, registry_host, repository=repository, tag=tag, variant=Variant(**overrides)
    )


def find_description(root: Path) -> Path:
    """The single description YAML at the package root."""
    if not root.is_dir():
        raise InputError(f"{root}: not a package directory")
    candidates = sorted(p for p in root.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
    if len(candidates) != 1:
        names = ", ".join(p.name for p in candidates) or "none"
        raise InputError(f"{root}: expected exactly one description YAML at the root, found {names}")
    return candidates[0]


# -- components --------------------------------------------------------------------------------------


def _publish_components(
    client: OciClient, root: Path, description: Any, registry_host: str, variant: Variant
) -> list[PublishedComponent]:
    published: list[PublishedComponent] = []
    done: set[tuple[str, str]] = set()
    for component in iter_components(description):
        data = (
            component_archive(root, component.name, component.deployment_type, revision=component.revision)[1]
            if component.name
            else None
        )
        if data is None or component.repository is None or component.revision is None:
            continue  # nothing to push, or nowhere to push it: the loader reports the latter
        try:
            ref = OciReference.parse(str(component.repository)).with_registry(registry_host)
            ref = ref.with_tag(str(component.revision))
        except (UsageError, InputError):
            continue  # a malformed repository/revision (a negative fixture): the loader reports it
        if (ref.repository, str(ref.tag)) in done:
            continue
        done.add((ref.repository, str(ref.tag)))
        if component.deployment_type == "compose":
            manifest_digest, layer_digest = push_compose_component(
                client, ref, data, name=component.name, revision=str(component.revision), variant=variant
            )
        elif component.deployment_type == "helm":
            manifest_digest, layer_digest = push_helm_chart(client, ref, data)
        else:
            manifest_digest, layer_digest = push_custom_blob(client, ref, data, name=component.name)
        published.append(
            PublishedComponent(
                component.name, component.deployment_type, str(ref), manifest_digest, layer_digest
            )
        )
    return published


def push_compose_component(
    client: OciClient,
    ref: OciReference,
    archive: bytes,
    *,
    name: str,
    revision: str,
    variant: Variant = CONFORMANT,
) -> tuple[str, str]:
    """Push a Compose archive as a Margo Compose component (or ``variant``'s wrong shape);
    (manifest digest, layer digest)."""
    if variant.docker_compose_publish_shape:
        return _push_docker_compose_shape(client, ref, archive)
    repository = ref.repository
    client.push_blob(repository, EMPTY_DATA)
    annotations = {
        COMPONENT_TYPE_ANNOTATION: "compose",
        COMPONENT_VERSION_ANNOTATION: revision.replace("_", "+"),
        TITLE: name,
        IMAGE_VERSION: revision.replace("_", "+"),
    }
    annotations.update(variant.compose_annotations)
    for key in variant.omit_annotations:
        annotations.pop(key, None)
    layer = {
        "mediaType": variant.layer_media_type,
        "digest": client.push_blob(repository, archive),
        "size": len(archive),
        "annotations": annotations,
    }
    layers: list[dict[str, Any]] = [layer]
    for media_type, data in variant.extra_layers:
        layers.append(
            {"mediaType": media_type, "digest": client.push_blob(repository, data), "size": len(data)}
        )
    manifest: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    if variant.compose_artifact_type is not None:
        manifest["artifactType"] = variant.compose_artifact_type
    manifest["config"] = dict(EMPTY_DESCRIPTOR)
    manifest["layers"] = layers
    return client.push_manifest(repository, str(ref.tag), manifest), str(layer["digest"])


def _push_docker_compose_shape(client: OciClient, ref: OciReference, archive: bytes) -> tuple[str, str]:
    """What ``docker compose publish`` (OCI 1.1 mode) pushes: one raw layer per Compose/env file,
    ``artifactType: application/vnd.docker.compose.project``, plus the empty descriptor as a last layer."""
    repository = ref.repository
    client.push_blob(repository, EMPTY_DATA)
    layers: list[dict[str, Any]] = []
    for path, data in _archive_files(archive):
        base = path.rsplit("/", 1)[-1]
        media_type = DOCKER_COMPOSE_FILE if base.endswith((".yaml", ".yml")) else DOCKER_COMPOSE_ENVFILE
        layers.append(
            {
                "mediaType": media_type,
                "digest": client.push_blob(repository, data),
                "size": len(data),
                "annotations": {"com.docker.compose.version": "2.34.0", "com.docker.compose.file": base},
            }
        )
    if not layers:
        raise InputError(f"{ref}: the Compose archive holds no files")
    layers.append(dict(EMPTY_DESCRIPTOR))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": DOCKER_COMPOSE_ARTIFACT_TYPE,
        "config": dict(EMPTY_DESCRIPTOR),
        "layers": layers,
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    }
    return client.push_manifest(repository, str(ref.tag), manifest), str(layers[0]["digest"])


def _archive_files(archive: bytes) -> list[tuple[str, bytes]]:
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            files: list[tuple[str, bytes]] = []
            for member in tar.getmembers():
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is not None:
                    files.append((member.name, handle.read()))
            return files
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"not a gzip'd tar archive: {exc}") from None


def push_helm_chart(client: OciClient, ref: OciReference, chart: bytes) -> tuple[str, str]:
    """Push a packaged chart as Helm does (config = Chart.yaml as JSON); (manifest digest, layer digest)."""
    metadata = _chart_metadata(chart, where=str(ref))
    config = json.dumps(metadata, separators=(",", ":"), sort_keys=True, default=str).encode()
    repository = ref.repository
    config_digest = client.push_blob(repository, config)
    layer_digest = client.push_blob(repository, chart)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": HELM_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": HELM_CHART, "digest": layer_digest, "size": len(chart)}],
        "annotations": {
            TITLE: str(metadata.get("name", "")),
            IMAGE_VERSION: str(metadata.get("version", "")),
        },
    }
    return client.push_manifest(repository, str(ref.tag), manifest), layer_digest


def push_custom_blob(client: OciClient, ref: OciReference, blob: bytes, *, name: str) -> tuple[str, str]:
    """Push a custom artifact as the OCI-blob pattern says (CUST-001): one layer, the empty config.

    Margo leaves the blob's format to the suppliers, so the generic ``application/octet-stream`` is
    used for the layer and as ``artifactType`` (which OCI 1.1 requires with an empty config).
    """
    client.push_blob(ref.repository, EMPTY_DATA)
    layer_digest = client.push_blob(ref.repository, blob)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/octet-stream",
        "config": dict(EMPTY_DESCRIPTOR),
        "layers": [
            {
                "mediaType": "application/octet-stream",
                "digest": layer_digest,
                "size": len(blob),
                "annotations": {TITLE: name},
            }
        ],
    }
    return client.push_manifest(ref.repository, str(ref.tag), manifest), layer_digest


def _chart_metadata(chart: bytes, *, where: str) -> dict[str, Any]:
    for path, data in _archive_files(chart):
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[1] == "Chart.yaml":
            try:
                metadata = yaml.safe_load(data)
            except yaml.YAMLError as exc:
                raise InputError(f"{where}: Chart.yaml is not YAML: {exc}") from None
            if isinstance(metadata, dict):
                return metadata
    raise InputError(f"{where}: the chart archive has no <chart>/Chart.yaml mapping")


# -- the application package manifest ---------------------------------------------------------------


def _resource_media_type(role: str, path: str) -> str:
    suffix = Path(path).suffix.lower()
    fmt = _FORMATS.get(suffix) or re.sub(r"[^a-z0-9.+-]", "", suffix.lstrip(".")) or "octet-stream"
    return f"application/vnd.margo.app.{role}.v1+{fmt}"


def _app_manifest(
    client: OciClient,
    ref: OciReference,
    root: Path,
    description_name: str,
    description_bytes: bytes,
    description: Any,
    variant: Variant,
) -> tuple[dict[str, Any], str, dict[str, str]]:
    repository = ref.repository
    client.push_blob(repository, EMPTY_DATA)
    description_digest = client.push_blob(repository, description_bytes)
    layers: list[dict[str, Any]] = [
        {
            "mediaType": variant.description_media_type,
            "digest": description_digest,
            "size": len(description_bytes),
            "annotations": {TITLE: description_name},
        }
        for _ in range(variant.description_layers)
    ]
    resource_digests: dict[str, str] = {}
    root_resolved = root.resolve()
    for role, path in catalog_resources(description).items():
        file = (root / path).resolve()
        if not file.is_relative_to(root_resolved) or not file.is_file() or path in resource_digests:
            continue  # missing or outside the package: the directory checks report it
        data = file.read_bytes()
        digest = client.push_blob(repository, data)
        resource_digests[path] = digest
        annotations = {TITLE: path}
        if variant.resource_annotation:
            annotations[RESOURCE_ANNOTATION] = f"metadata.catalog.application.{role}"
        media_type = variant.resource_media_types.get(path) or _resource_media_type(role, path)
        layers.append(
            {"mediaType": media_type, "digest": digest, "size": len(data), "annotations": annotations}
        )
    manifest: dict[str, Any] = {"schemaVersion": 2}
    if variant.app_manifest_media_type is not None:
        manifest["mediaType"] = variant.app_manifest_media_type
    if variant.app_artifact_type is not None:
        manifest["artifactType"] = variant.app_artifact_type
    manifest["config"] = dict(variant.app_config if variant.app_config is not None else EMPTY_DESCRIPTOR)
    manifest["layers"] = layers
    return manifest, description_digest, resource_digests
