"""Load an application package from an OCI registry (``oci://host/repo:tag``), as a WFM would (P-REG).

The loader pulls the application package manifest, the Application Description and the resource
layers, then every component artifact the description's deployment profiles reference
(``repository`` + ``revision``), and records what it sees about the OCI shape as findings:

* REG-007: the package manifest is an OCI image manifest (v1.1: ``schemaVersion`` 2, ``mediaType``
  ``application/vnd.oci.image.manifest.v1+json``, well-formed descriptors) that points to every part
  (each resource the description's ``metadata.catalog.application`` names has a layer);
* REG-008: ``artifactType`` ``application/vnd.margo.app.v1+json`` and the empty config descriptor;
* REG-009: exactly one description layer; every other layer is a Margo resource layer
  (``application/vnd.margo.app.(icon|descriptionFile|licenseFile|releaseNotes).v1+<fmt>``) marked with
  ``org.margo.app.resource``;
* REG-005 (read with INC-019): the tag equals ``metadata.version``, or a tag equal to it names the same
  manifest (so ``latest`` beside ``1.2.0`` is fine);
* REG-010: each Compose component's ``repository``/``revision`` resolves to a manifest whose layer the
  registry holds;
* REG-011 / REG-012 / REG-017: the Compose component manifest's shape and layer annotations, and the
  ``docker compose publish`` shape that Margo forbids;
* REG-016: every blob's digest (and size) is verified *before* anything else sees its bytes; on a
  mismatch the bytes are dropped (``archive`` stays None) and a finding is recorded.

Helm charts and custom artifacts have no P-REG requirement of their own. ComponentProperties
(``repository`` + ``revision``, OCI-only) apply to every profile type, so an unresolvable or
mis-shaped artifact is reported under the requirement of its profile type (``RESOLVE_REQ`` /
``SHAPE_REQ``): a Helm chart must be a chart in Helm's OCI shape (config
``application/vnd.cncf.helm.config.v1+json``, one layer
``application/vnd.cncf.helm.chart.content.v1.tar+gzip``; APPD-110), a custom artifact one OCI blob
(one layer; CUST-001).

A target can also be a lone component artifact (a Compose archive or a Helm chart in the registry),
told apart from a package by its manifest (``artifact_kind``) or forced with ``kind``; it is judged as
a component is inside a package.

Network trouble on the target itself raises ``EnvironmentProblem`` (one line naming the reference); an
unknown target manifest raises ``InputError``. Once the target's manifest is in hand, a part that cannot
be fetched (registry unreachable, refused, timed out; a 404 from a ``--resolve`` mirror) is recorded in
``unreachable`` and the rest is still checked. Every wait is bounded by ``timeout``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._internal import bounded
from .._internal.oci import (
    EMPTY_DESCRIPTOR,
    HELM_CHART,
    HELM_CONFIG,
    HELM_PROVENANCE,
    IMAGE_VERSION,
    OCI_INDEX,
    OCI_MANIFEST,
    TITLE,
    DigestMismatch,
    NotFound,
    OciClient,
    OciReference,
    check_digest_format,
    current_reach,
)
from ..errors import EnvironmentProblem, InputError, MargoError, UsageError
from ..findings import Findings
from ..registry import make_finding
from .description import DESCRIPTION_LIMITS
from .model import ComponentArtifact, LoadedPackage

# -- Margo media types and annotations (P-REG, SUP-01) ------------------------------------------------

APP_ARTIFACT_TYPE = "application/vnd.margo.app.v1+json"
DESCRIPTION_MEDIA_TYPE = "application/vnd.margo.app.description.v1+yaml"
RESOURCE_ROLES = ("icon", "descriptionFile", "licenseFile", "releaseNotes")
RESOURCE_MEDIA_TYPE = re.compile(
    r"^application/vnd\.margo\.app\.(?P<role>icon|descriptionFile|licenseFile|releaseNotes)\.v1\+(?P<fmt>[A-Za-z0-9.+-]+)$"
)
RESOURCE_ANNOTATION = "org.margo.app.resource"

COMPOSE_ARTIFACT_TYPE = "application/vnd.org.margo.component.compose+json"
COMPOSE_LAYER_MEDIA_TYPE = "application/vnd.org.margo.component.compose.tar+gzip"
COMPONENT_TYPE_ANNOTATION = "org.margo.component.type"
COMPONENT_VERSION_ANNOTATION = "org.margo.component.version"

DOCKER_COMPOSE_ARTIFACT_TYPE = "application/vnd.docker.compose.project"
DOCKER_COMPOSE_CONFIG = "application/vnd.docker.compose.config.empty.v1+json"
DOCKER_COMPOSE_MEDIA_PREFIX = "application/vnd.docker.compose."

RESOLVE_REQ = {"compose": "REG-010", "helm": "APPD-110", "custom": "CUST-001"}
"""Per profile type: the requirement broken when repository + revision do not resolve."""
SHAPE_REQ = {"compose": "REG-011", "helm": "APPD-110", "custom": "CUST-001"}
"""Per profile type: the requirement broken when the artifact's manifest has the wrong shape."""

DEFAULT_MAX_BLOB_BYTES = 64 * 1024 * 1024


def load_from_oci(
    reference: str,
    *,
    timeout: float = 10.0,
    max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES,
    plain_http: bool | None = None,
    kind: str | None = None,
) -> LoadedPackage:
    """Pull the package or component artifact at ``reference`` (``oci://host[:port]/repo:tag`` or
    ``…@sha256:…``).

    ``kind`` "package" or "component" forces how the target is read; None tells them apart by the
    manifest. ``plain_http`` None means: as the command's ``Reach`` says (by default plain HTTP for
    loopback registries, HTTPS for every other host).
    """
    ref = OciReference.parse(reference)
    if ref.tag is None and ref.digest is None:
        raise UsageError(f"{reference}: name a tag or a digest (oci://host/repo:tag)")
    loader = _Loader(ref, timeout=timeout, max_blob_bytes=max_blob_bytes, plain_http=plain_http)
    try:
        return loader.run(kind)
    finally:
        loader.close()


def artifact_kind(manifest: Mapping[str, Any]) -> str | None:
    """What an OCI manifest holds, by its artifactType and media types: "package", "helm" or
    "compose" (Margo's shape or the forbidden ``docker compose publish`` one); None when unknown."""
    config = manifest.get("config")
    config_type = config.get("mediaType") if isinstance(config, Mapping) else None
    raw = manifest.get("layers")
    layer_types = (
        {str(layer.get("mediaType")) for layer in raw if isinstance(layer, Mapping)}
        if isinstance(raw, list)
        else set()
    )
    artifact_type = manifest.get("artifactType")
    if artifact_type == APP_ARTIFACT_TYPE or DESCRIPTION_MEDIA_TYPE in layer_types:
        return "package"
    if config_type == HELM_CONFIG or HELM_CHART in layer_types:
        return "helm"
    if (
        artifact_type in (COMPOSE_ARTIFACT_TYPE, DOCKER_COMPOSE_ARTIFACT_TYPE)
        or config_type == DOCKER_COMPOSE_CONFIG
        or COMPOSE_LAYER_MEDIA_TYPE in layer_types
        or any(kind.startswith(DOCKER_COMPOSE_MEDIA_PREFIX) for kind in layer_types)
    ):
        return "compose"
    return None


# -- helpers -----------------------------------------------------------------------------------------


def _normalise_semver(value: str) -> str:
    """Margo writes SemVer build metadata with ``_`` in OCI tags; compare with ``+`` restored."""
    return value.replace("_", "+")


def _resource_path(value: Any) -> str | None:
    """A catalog entry as a package-relative path (``./resources/x.md`` → ``resources/x.md``), or None
    for URLs and non-strings."""
    if not isinstance(value, str) or not value.strip() or "://" in value:
        return None
    path = value.strip()
    while path.startswith("./"):
        path = path[2:]
    return path


def catalog_resources(description: Any) -> dict[str, str]:
    """role → package-relative path, for the resource files ``metadata.catalog.application`` names."""
    try:
        application = description["metadata"]["catalog"]["application"]
    except (KeyError, TypeError):
        return {}
    if not isinstance(application, Mapping):
        return {}
    found: dict[str, str] = {}
    for role in RESOURCE_ROLES:
        path = _resource_path(application.get(role))
        if path:
            found[role] = path
    return found


@dataclass
class _ComponentRef:
    name: str
    deployment_type: str
    repository: Any
    revision: Any
    where: str


def iter_components(description: Any) -> Iterator[_ComponentRef]:
    """Every component of every deployment profile, tolerating any malformed shape (schema checks
    report those)."""
    profiles = description.get("deploymentProfiles") if isinstance(description, Mapping) else None
    if not isinstance(profiles, list):
        return
    for p_index, profile in enumerate(profiles):
        if not isinstance(profile, Mapping) or not isinstance(profile.get("components"), list):
            continue
        for c_index, component in enumerate(profile["components"]):
            if not isinstance(component, Mapping):
                continue
            properties = component.get("properties")
            properties = properties if isinstance(properties, Mapping) else {}
            yield _ComponentRef(
                name=str(component.get("name", "")),
                deployment_type=str(profile.get("type", "")),
                repository=properties.get("repository"),
                revision=properties.get("revision"),
                where=f"deploymentProfiles[{p_index}].components[{c_index}]",
            )


def _descriptor_problem(descriptor: Any) -> str | None:
    """Why ``descriptor`` is not a well-formed OCI descriptor, or None."""
    if not isinstance(descriptor, Mapping):
        return "is not an object"
    if not isinstance(descriptor.get("mediaType"), str) or not descriptor["mediaType"]:
        return "has no mediaType"
    digest = descriptor.get("digest")
    if not isinstance(digest, str):
        return "has no digest"
    try:
        check_digest_format(digest, where="descriptor")
    except InputError:
        return f"has a malformed or unsupported digest {digest!r}"
    size = descriptor.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return "has no valid size"
    annotations = descriptor.get("annotations")
    if annotations is not None and (
        not isinstance(annotations, Mapping) or not all(isinstance(v, str) for v in annotations.values())
    ):
        return "has annotations that are not a string map"
    return None


def _annotations(descriptor: Mapping[str, Any]) -> Mapping[str, str]:
    annotations = descriptor.get("annotations")
    return annotations if isinstance(annotations, Mapping) else {}


# -- the loader --------------------------------------------------------------------------------------


@dataclass
class _Loader:
    ref: OciReference
    timeout: float
    max_blob_bytes: int
    plain_http: bool | None
    findings: Findings = field(default_factory=Findings)
    unreachable: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _clients: dict[str, OciClient] = field(default_factory=dict)

    def client(self, registry: str) -> OciClient:
        if registry not in self._clients:
            self._clients[registry] = OciClient(registry, plain_http=self.plain_http, timeout=self.timeout)
        return self._clients[registry]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def add(self, requirement: str, location: str, message: str) -> None:
        self.findings.add(make_finding(requirement, location, message))

    def fetch_blob(
        self, ref: OciReference, descriptor: Mapping[str, Any], location: str, *, size_req: str
    ) -> bytes | None:
        """The blob's bytes once digest (REG-016) and size (``size_req``) are verified; None and a
        finding otherwise."""
        digest = str(descriptor["digest"])
        try:
            data = self.client(ref.registry).get_blob(ref.repository, digest, max_bytes=self.max_blob_bytes)
        except EnvironmentProblem as exc:
            self.unreachable[str(OciReference(ref.registry, ref.repository, digest=digest))] = str(exc)
            return None
        except DigestMismatch as exc:
            self.add(
                "REG-016", location, f"blob digest verification failed: {exc.actual} served for {digest}"
            )
            return None
        except NotFound:
            self.add(size_req, location, f"the registry has no blob {digest} that the manifest points to")
            return None
        if len(data) != descriptor["size"]:
            self.add(
                size_req,
                location,
                f"descriptor size {descriptor['size']} but blob {digest} has {len(data)} bytes",
            )
            return None
        return data

    # -- the package manifest ---------------------------------------------------------------------

    def run(self, kind: str | None = None) -> LoadedPackage:
        ref = self.ref
        body, media_type, digest = self.client(ref.registry).get_manifest(ref.repository, ref.reference)
        package = LoadedPackage(
            origin=str(ref),
            description_location=f"{ref}#margo.yaml",
            description_text=None,
            findings=self.findings,
            kind="oci-package",
            unreachable=self.unreachable,
            notes=self.notes,
        )
        manifest = self._parse_manifest(body, media_type, str(ref))
        if manifest is None:
            return package
        found = artifact_kind(manifest)
        if kind == "component" or (kind is None and found in ("compose", "helm")):
            return self._lone_component(package, "helm" if found == "helm" else "compose", body, media_type)
        layers = self._check_app_manifest(manifest, str(ref))
        description = self._load_description(package, layers)
        self._load_resources(package, layers, description)
        if description is not None:
            self._check_tag(description, package.description_location, digest)
            for component in iter_components(description):
                package.components.append(self._load_component(component))
        return package

    def _lone_component(
        self, package: LoadedPackage, kind: str, body: bytes, media_type: str
    ) -> LoadedPackage:
        """The target is one component artifact: judged as a component of that type inside a package."""
        name = self.ref.repository.rsplit("/", 1)[-1]
        artifact = ComponentArtifact(name=name, deployment_type=kind, location=str(self.ref))
        self._judge_component(artifact, self.ref, self.ref.tag, body, media_type)
        package.kind = "oci-component"
        package.components.append(artifact)
        return package

    def _parse_manifest(self, body: bytes, media_type: str, location: str) -> dict[str, Any] | None:
        try:
            manifest = bounded.load_json(body, where=location)
        except bounded.UntrustedInput:  # also not UTF-8, too deep, NaN
            manifest = None
        if not isinstance(manifest, dict):
            self.add("REG-007", location, "the package manifest is not a JSON object")
            return None
        if media_type == OCI_INDEX or manifest.get("mediaType") == OCI_INDEX or "manifests" in manifest:
            self.add(
                "REG-007", location, "the reference resolves to an image index, not an OCI image manifest"
            )
            return None
        return manifest

    def _check_app_manifest(self, manifest: Mapping[str, Any], location: str) -> list[Mapping[str, Any]]:
        """REG-007/008/009 on the manifest itself; the well-formed layer descriptors."""
        if manifest.get("schemaVersion") != 2:
            self.add("REG-007", location, f"schemaVersion is {manifest.get('schemaVersion')!r}, not 2")
        if manifest.get("mediaType") != OCI_MANIFEST:
            self.add("REG-007", location, f"mediaType is {manifest.get('mediaType')!r}, not {OCI_MANIFEST}")
        if manifest.get("artifactType") != APP_ARTIFACT_TYPE:
            self.add(
                "REG-008",
                location,
                f"artifactType is {manifest.get('artifactType')!r}, not {APP_ARTIFACT_TYPE}",
            )
        config = manifest.get("config")
        if not isinstance(config, Mapping) or any(config.get(k) != v for k, v in EMPTY_DESCRIPTOR.items()):
            self.add("REG-008", location + "#config", f"config is not the empty descriptor: {config!r}")
        raw_layers = manifest.get("layers")
        if not isinstance(raw_layers, list) or not raw_layers:
            self.add("REG-007", location, "the manifest has no layers")
            return []
        layers: list[Mapping[str, Any]] = []
        for index, layer in enumerate(raw_layers):
            problem = _descriptor_problem(layer)
            if problem:
                self.add("REG-007", f"{location}#layers[{index}]", f"layer descriptor {problem}")
                continue
            layers.append(layer)
            if layer["mediaType"] != DESCRIPTION_MEDIA_TYPE:
                self._check_resource_layer(layer, f"{location}#layers[{index}]")
        descriptions = [layer for layer in layers if layer["mediaType"] == DESCRIPTION_MEDIA_TYPE]
        if len(descriptions) != 1:
            self.add(
                "REG-009",
                location,
                f"{len(descriptions)} layers have media type {DESCRIPTION_MEDIA_TYPE}; exactly one must",
            )
        return layers

    def _check_resource_layer(self, layer: Mapping[str, Any], where: str) -> None:
        if not RESOURCE_MEDIA_TYPE.match(layer["mediaType"]):
            self.add(
                "REG-009",
                where,
                f"media type {layer['mediaType']!r} is neither the description's nor a Margo resource "
                "type (application/vnd.margo.app.<icon|descriptionFile|licenseFile|releaseNotes>.v1+<fmt>)",
            )
        elif RESOURCE_ANNOTATION not in _annotations(layer):
            self.add("REG-009", where, f"resource layer lacks the {RESOURCE_ANNOTATION} annotation")

    # -- description and resources ----------------------------------------------------------------

    def _load_description(self, package: LoadedPackage, layers: list[Mapping[str, Any]]) -> Any:
        layer = next((item for item in layers if item["mediaType"] == DESCRIPTION_MEDIA_TYPE), None)
        if layer is None:
            return None
        title = _annotations(layer).get(TITLE) or "margo.yaml"
        package.description_location = f"{self.ref}#{title}"
        data = self.fetch_blob(self.ref, layer, package.description_location, size_req="REG-007")
        if data is None:
            return None
        package.description_text = data.decode("utf-8", errors="replace")
        try:
            return bounded.load_yaml(package.description_text, where="description", limits=DESCRIPTION_LIMITS)
        except bounded.UntrustedInput:
            return None  # the description checks report it

    def _load_resources(
        self, package: LoadedPackage, layers: list[Mapping[str, Any]], description: Any
    ) -> None:
        """Every layer but the description is a package file: fetched (verified) into ``resources``
        under its title, whatever its media type (REG-009 has already judged that)."""
        by_title: dict[str, Mapping[str, Any]] = {}
        for layer in layers:
            if layer["mediaType"] == DESCRIPTION_MEDIA_TYPE:
                continue
            title = _annotations(layer).get(TITLE) or str(layer["digest"])
            by_title[title] = layer
            where = f"{self.ref}#{title}"
            data = self.fetch_blob(self.ref, layer, where, size_req="REG-007")
            if data is not None:
                package.resources[title] = data
        for role, path in catalog_resources(description).items():
            titled = by_title.get(path)
            if titled is None:
                self.add(
                    "REG-007",
                    f"{self.ref}#{path}",
                    f"metadata.catalog.application.{role} names {path!r} but no layer is titled so",
                )
                continue
            match = RESOURCE_MEDIA_TYPE.match(titled["mediaType"])
            if match is not None and match["role"] != role:
                self.add(
                    "REG-009",
                    f"{self.ref}#{path}",
                    f"{path!r} is the {role} but its layer has media type {titled['mediaType']!r}",
                )

    def _check_tag(self, description: Any, location: str, digest: str) -> None:
        """REG-005 as INC-019 reads it: the tag is the version, or a tag equal to the version names
        this same manifest (other tags, such as latest, are tolerated)."""
        if self.ref.tag is None:
            return  # pulled by digest: there is no tag to compare
        try:
            version = description["metadata"]["version"]
        except (KeyError, TypeError):
            return  # the schema checks report a missing version
        version_text = str(version).strip()
        if _normalise_semver(self.ref.tag) == _normalise_semver(version_text):
            return
        version_tag = version_text.replace("+", "_")
        try:
            version_ref = self.ref.with_tag(version_tag)
        except UsageError:
            self.add("REG-005", location, f"metadata.version {version_text!r} cannot be an OCI tag")
            return
        try:
            _, _, version_digest = self.client(self.ref.registry).get_manifest(
                self.ref.repository, version_tag
            )
        except NotFound:
            version_digest = None
        except (EnvironmentProblem, DigestMismatch) as exc:
            self.unreachable[str(version_ref)] = str(exc)
            return
        if version_digest == digest:
            self.notes.append(
                f"REG-005: tag {self.ref.tag!r} is not metadata.version, but tag {version_tag!r} names the "
                "same manifest (INC-019: additional tags are tolerated)"
            )
        else:
            names = "names another manifest" if version_digest else "does not exist"
            self.add(
                "REG-005",
                location,
                f"tag {self.ref.tag!r} differs from metadata.version {version_text!r}, and the tag "
                f"{version_tag!r} {names}",
            )

    # -- components -------------------------------------------------------------------------------

    def _load_component(self, component: _ComponentRef) -> ComponentArtifact:
        artifact = ComponentArtifact(
            name=component.name,
            deployment_type=component.deployment_type,
            location=str(component.repository or f"{self.ref}#{component.where}"),
        )
        if component.deployment_type not in RESOLVE_REQ:
            return artifact  # the schema checks report an unknown profile type
        req = RESOLVE_REQ[component.deployment_type]
        where = f"{self.ref}#{component.where}"
        if component.repository is None or component.revision is None:
            self.add(req, where, f"component {component.name!r} lacks properties.repository or .revision")
            return artifact
        try:
            base = OciReference.parse(str(component.repository))
            if base.tag or base.digest:
                raise UsageError("the repository names a tag or digest; the revision must carry it")
            ref = base.with_tag(str(component.revision))
        except MargoError as exc:
            self.add(
                req,
                where,
                f"component {component.name!r}: repository {component.repository!r} with revision "
                f"{component.revision!r} is not an oci:// repository plus a valid OCI tag ({exc})",
            )
            return artifact
        artifact.location = str(ref)
        client = self.client(ref.registry)
        try:
            body, media_type, _ = client.get_manifest(ref.repository, ref.reference)
        except EnvironmentProblem as exc:
            self.unreachable[str(ref)] = str(exc)
            artifact.unreachable = True
            return artifact
        except NotFound as exc:
            if current_reach().target(ref.registry, plain_http=client.plain_http):
                # a --resolve mirror may simply not carry it: not the publisher's registry's answer
                self.unreachable[str(ref)] = f"{exc} (at the --resolve address)"
                artifact.unreachable = True
                return artifact
            self.add(
                req, str(ref), f"component {component.name!r}: {ref} does not resolve (manifest unknown)"
            )
            return artifact
        except DigestMismatch as exc:
            self.add("REG-016", str(ref), f"component manifest digest verification failed: {exc}")
            return artifact
        self._judge_component(artifact, ref, str(component.revision), body, media_type)
        return artifact

    def _judge_component(
        self,
        artifact: ComponentArtifact,
        ref: OciReference,
        revision: str | None,
        body: bytes,
        media_type: str,
    ) -> None:
        """The component manifest's shape, then its archive (verified) into ``artifact.archive``."""
        shape_req = SHAPE_REQ[artifact.deployment_type]
        manifest = self._parse_component_manifest(body, media_type, ref, shape_req)
        if manifest is None:
            return
        if artifact.deployment_type == "compose":
            layer = self._check_compose_manifest(manifest, ref, revision)
        elif artifact.deployment_type == "helm":
            layer = self._check_helm_manifest(manifest, ref)
        else:
            layer = self._check_custom_manifest(manifest, ref)
        if layer is not None:
            before = len(self.unreachable)
            artifact.archive = self.fetch_blob(ref, layer, f"{ref}#layer", size_req=shape_req)
            artifact.unreachable = len(self.unreachable) > before

    def _parse_component_manifest(
        self, body: bytes, media_type: str, ref: OciReference, shape_req: str
    ) -> dict[str, Any] | None:
        try:
            manifest = bounded.load_json(body, where=str(ref))
        except bounded.UntrustedInput:  # also not UTF-8, too deep, NaN
            manifest = None
        if not isinstance(manifest, dict) or media_type == OCI_INDEX or "manifests" in manifest:
            self.add(
                shape_req,
                str(ref),
                f"not an OCI image manifest (media type {media_type!r})",
            )
            return None
        return manifest

    def _valid_layers(self, manifest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        layers = manifest.get("layers")
        if not isinstance(layers, list):
            return []
        return [layer for layer in layers if _descriptor_problem(layer) is None]

    def _check_custom_manifest(
        self, manifest: Mapping[str, Any], ref: OciReference
    ) -> Mapping[str, Any] | None:
        """A custom artifact is one OCI blob: the manifest's single layer."""
        layers = self._valid_layers(manifest)
        raw = manifest.get("layers")
        count = len(raw) if isinstance(raw, list) else 0
        if count != 1 or len(layers) != 1:
            self.add(
                SHAPE_REQ["custom"],
                str(ref),
                f"a custom artifact is one OCI blob; the manifest has {count} layer(s)",
            )
            return None
        return layers[0]

    def _check_compose_manifest(
        self, manifest: Mapping[str, Any], ref: OciReference, revision: str | None
    ) -> Mapping[str, Any] | None:
        """REG-017, REG-011, REG-012; the layer to fetch (the compose-typed one, else a sole layer)."""
        location = str(ref)
        raw = manifest.get("layers")
        raw_layers: list[Any] = raw if isinstance(raw, list) else []
        raw_config = manifest.get("config")
        config: Mapping[str, Any] = raw_config if isinstance(raw_config, Mapping) else {}
        docker_types = [
            str(layer.get("mediaType"))
            for layer in raw_layers
            if isinstance(layer, Mapping)
            and str(layer.get("mediaType", "")).startswith(DOCKER_COMPOSE_MEDIA_PREFIX)
        ]
        if (
            manifest.get("artifactType") == DOCKER_COMPOSE_ARTIFACT_TYPE
            or config.get("mediaType") == DOCKER_COMPOSE_CONFIG
            or docker_types
        ):
            self.add(
                "REG-017",
                location,
                "published in the `docker compose publish` shape (artifactType "
                f"{manifest.get('artifactType')!r}, layers {docker_types or '…'}), which Margo forbids",
            )
        if manifest.get("schemaVersion") != 2 or manifest.get("mediaType") != OCI_MANIFEST:
            self.add(
                "REG-011",
                location,
                f"not an OCI image manifest (schemaVersion {manifest.get('schemaVersion')!r}, "
                f"mediaType {manifest.get('mediaType')!r})",
            )
        if manifest.get("artifactType") != COMPOSE_ARTIFACT_TYPE:
            self.add(
                "REG-011",
                location,
                f"artifactType is {manifest.get('artifactType')!r}, not {COMPOSE_ARTIFACT_TYPE}",
            )
        for index, layer in enumerate(raw_layers):
            problem = _descriptor_problem(layer)
            if problem:
                self.add("REG-011", f"{location}#layers[{index}]", f"layer descriptor {problem}")
        layers = self._valid_layers(manifest)
        compose_layers = [layer for layer in layers if layer["mediaType"] == COMPOSE_LAYER_MEDIA_TYPE]
        if len(raw_layers) != 1 or len(compose_layers) != 1:
            kinds = [layer.get("mediaType") for layer in raw_layers if isinstance(layer, Mapping)]
            self.add(
                "REG-011",
                location,
                f"{len(raw_layers)} layer(s) {kinds}; exactly one layer of media type "
                f"{COMPOSE_LAYER_MEDIA_TYPE} is required",
            )
        if len(compose_layers) == 1:
            layer = compose_layers[0]
        elif len(layers) == 1:
            layer = layers[0]
        else:
            return None
        self._check_compose_annotations(layer, location, revision)
        return layer

    def _check_compose_annotations(
        self, layer: Mapping[str, Any], location: str, revision: str | None
    ) -> None:
        """REG-012; ``revision`` None (a lone component pulled by digest) has no tag to compare."""
        annotations = _annotations(layer)
        where = f"{location}#layer"
        kind = annotations.get(COMPONENT_TYPE_ANNOTATION)
        if kind != "compose":
            self.add("REG-012", where, f"{COMPONENT_TYPE_ANNOTATION} is {kind!r}, not 'compose'")
        version = annotations.get(COMPONENT_VERSION_ANNOTATION)
        if version is None:
            self.add("REG-012", where, f"the {COMPONENT_VERSION_ANNOTATION} annotation is missing")
        elif revision is not None and _normalise_semver(version) != _normalise_semver(revision):
            self.add(
                "REG-012",
                where,
                f"{COMPONENT_VERSION_ANNOTATION} is {version!r} but the tag and revision are {revision!r}",
            )
        image_version = annotations.get(IMAGE_VERSION)
        if image_version is not None and version is not None and image_version != version:
            self.add(
                "REG-012",
                where,
                f"{IMAGE_VERSION} is {image_version!r} but {COMPONENT_VERSION_ANNOTATION} is {version!r}",
            )

    def _check_helm_manifest(
        self, manifest: Mapping[str, Any], ref: OciReference
    ) -> Mapping[str, Any] | None:
        location = str(ref)
        config = manifest.get("config")
        config_type = config.get("mediaType") if isinstance(config, Mapping) else None
        if config_type != HELM_CONFIG:
            self.add(
                SHAPE_REQ["helm"],
                location,
                f"not a Helm chart artifact: config media type {config_type!r}, not {HELM_CONFIG}",
            )
        layers = self._valid_layers(manifest)
        charts = [layer for layer in layers if layer["mediaType"] == HELM_CHART]
        others = [
            layer["mediaType"] for layer in layers if layer["mediaType"] not in (HELM_CHART, HELM_PROVENANCE)
        ]
        if len(charts) != 1 or others:
            self.add(
                SHAPE_REQ["helm"],
                location,
                f"a Helm chart artifact has exactly one {HELM_CHART} layer (and optionally provenance); "
                f"found {len(charts)} chart layer(s) and {others or 'no'} other layer(s)",
            )
        return charts[0] if len(charts) == 1 else None
