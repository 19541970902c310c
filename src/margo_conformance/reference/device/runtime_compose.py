"""The Docker Compose v2 runtime of the reference device agent: one Compose project per component of a
deployment, pulled from the OCI registry as a SUP-01 Compose artifact.

For each component, in list order (ADEP-008):

1. resolve ``repository`` (``oci://host/repo``) and ``revision`` (the OCI tag; ``+`` is not allowed in
   a tag, so a revision's ``_`` stands for ``+`` when it is compared with the layer's
   ``org.margo.component.version``);
2. pull the manifest; with a Notary trust policy (``trust``), verify its signatures by the digest of
   the bytes pulled, never the tag, under the policy of the repository's scope (SUP-03 §4, SIGN-114):
   an enforced failure refuses the component (code ``signature-refused``, the message names the
   failed check), a logged one goes to the device's log, no policy for the scope verifies nothing
   (SUP-03 §6); then check the Compose artifact shape (``artifactType``
   ``application/vnd.org.margo.component.compose+json``, exactly one
   ``application/vnd.org.margo.component.compose.tar+gzip`` layer);
3. pull the layer; its bytes are verified against the OCI digest before anything else looks at them
   (REG-016), then the SUP-01 archive rules run (REG-013/014/015) and any MUST finding refuses it;
4. extract safely into ``<state_dir>/deployments/<deployment id>/<component>/``, write
   ``margo.override.yaml`` that labels every service (``org.margo.deployment-id``,
   ``org.margo.component``, ``org.margo.conformance=1``) and the project's own networks and volumes;
5. ``docker compose -p <project> -f compose.yaml -f margo.override.yaml up -d [--wait --wait-timeout s]``
   with the deployment's parameters that target this component in the process environment (the
   pointer is the variable name; Compose interpolates them). They are never written to disk.

Every subprocess is bounded; Compose's stderr (trimmed) becomes the component's error message. A
component that fails with ``wait: true`` stops the components after it (reported failed, code
``not-attempted``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker.errors  # type: ignore[import-untyped]
import requests
import yaml

from ..._internal import runtime_docker, tar_safety
from ..._internal.images import docker_client
from ..._internal.oci import OCI_MANIFEST, DigestMismatch, OciClient, OciReference
from ..._internal.tools import compose_binary
from ...errors import MargoError
from ...findings import Level
from ...package.compose_archive import COMPOSE_FILE, check_compose_archive
from ...package.oci_source import (
    COMPONENT_VERSION_ANNOTATION,
    COMPOSE_ARTIFACT_TYPE,
    COMPOSE_LAYER_MEDIA_TYPE,
)
from ...signing.oci_signatures import verify_artifact
from ...signing.package_check import Trust
from ...signing.policy import Check, Failure, Outcome, Rule, SignatureVerdict
from .faults import RUNTIME_FAULTS, FaultSet
from .runtime import ComponentOutcome, StatusError

LOG = logging.getLogger(__name__)
SECURITY = logging.getLogger("margo_conformance.reference.device.security")

DEPLOYMENT_LABEL = "org.margo.deployment-id"
COMPONENT_LABEL = "org.margo.component"
OVERRIDE_FILE = "margo.override.yaml"
SHARED_NETWORK = "margo-shared-by-all"  # only the shared-network fault uses it
# OBS-011: what the injects-otel-env variant gives every container (the device's collector, HTTP+protobuf)
OTEL_ENV = {
    "HTTP_OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.device.invalid:4318",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
}
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024
MAX_MESSAGE = 800
DOWN_TIMEOUT_S = 60.0
LS_TIMEOUT_S = 20.0
GRACE_S = 20.0  # beyond --wait-timeout, for creating networks and containers
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_ENV = ("PATH", "HOME", "TMPDIR", "XDG_RUNTIME_DIR")
_PASSED_ENV = ("PATH", "HOME", "TMPDIR", "XDG_RUNTIME_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
_DOCKER_ERRORS = (docker.errors.DockerException, requests.RequestException)
_RESERVED_PREFIXES = ("DOCKER_", "COMPOSE_")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class ComponentFailure(Exception):
    """One component could not be installed: ``code`` and a message for the status report."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- small pure helpers --------------------------------------------------------------------------------


def parse_duration(text: object) -> float | None:
    """A Go-style duration (``5m0s``, ``90s``, ``1h30m``, ``500ms``) in seconds; a bare number is
    seconds; None if it is not one."""
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        return float(text) if text >= 0 else None
    if not isinstance(text, str) or not text.strip():
        return None
    value = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    position = 0
    total = 0.0
    for match in _DURATION_PART.finditer(value):
        if match.start() != position:
            return None
        total += float(match[1]) * _UNITS[match[2]]
        position = match.end()
    return total if position == len(value) and position > 0 else None


def waits(properties: Mapping[str, Any]) -> bool:
    """ADEP-009: ``wait`` defaults to true; only an explicit false lets the next component start early."""
    return properties.get("wait", True) is not False


def project_name(deployment_id: str, component: str) -> str:
    """``margo-<first 12 of the id>-<8 hex of its sha256>-<component>``, lowercase ``[a-z0-9_-]``
    (the hash keeps two ids that share 12 characters apart)."""
    digest = hashlib.sha256(deployment_id.encode("utf-8")).hexdigest()[:8]
    short = _slug(deployment_id[:12]) or "x"
    return f"margo-{short}-{digest}-{_slug(component) or 'component'}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")


_PROGRESS = re.compile(
    r"^(Container|Network|Volume|Image)\s+\S+\s+(Creat|Start|Wait|Health|Running|Stop|Remov|Recreat|Pull)"
)


def _trim(text: str, limit: int = MAX_MESSAGE) -> str:
    """One line of Compose output, progress lines dropped when anything else is left, the tail kept."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not _PROGRESS.match(line)] or lines
    joined = " | ".join(lines)
    return joined if len(joined) <= limit else "..." + joined[-(limit - 3) :]


def _safe_dir_name(name: str) -> str:
    """A component name as one path segment (never '', '.', '..' or containing '/')."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    return cleaned if cleaned.strip(".") else f"_{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _component_entries(application_deployment: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = application_deployment.get("spec")
    profile = spec.get("deploymentProfile") if isinstance(spec, Mapping) else None
    components = profile.get("components") if isinstance(profile, Mapping) else None
    if not isinstance(components, list):
        return []
    return [c if isinstance(c, Mapping) else {} for c in components]


def component_environment(application_deployment: Mapping[str, Any], component: str) -> dict[str, str]:
    """The parameters whose targets name ``component``: pointer -> value as text."""
    spec = application_deployment.get("spec")
    parameters = spec.get("parameters") if isinstance(spec, Mapping) else None
    env: dict[str, str] = {}
    if not isinstance(parameters, Mapping):
        return env
    for name, parameter in parameters.items():
        if not isinstance(parameter, Mapping):
            continue
        for target in parameter.get("targets") or []:
            if not isinstance(target, Mapping) or component not in (target.get("components") or []):
                continue
            pointer = str(target.get("pointer", ""))
            if not _ENV_NAME.match(pointer):
                raise ComponentFailure(
                    "parameter-invalid", f"parameter {name!r}: pointer {pointer!r} is not a variable name"
                )
            if pointer in _RESERVED_ENV or pointer.startswith(_RESERVED_PREFIXES):
                raise ComponentFailure(
                    "parameter-invalid",
                    f"parameter {name!r}: pointer {pointer!r} is reserved for the runtime",
                )
            env[pointer] = _as_text(parameter.get("value"))
    return env


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def override_document(compose: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    """The override that labels every service, and the project's own (non-external) networks and
    volumes, of a parsed compose.yaml."""
    services = compose.get("services")
    document: dict[str, Any] = {
        "services": {str(name): {"labels": dict(labels)} for name in (services or {})},
    }
    for section in ("networks", "volumes"):
        declared = compose.get(section)
        own = {
            str(name): {"labels": dict(labels)}
            for name, value in (declared or {}).items()
            if not (isinstance(value, Mapping) and value.get("external"))
        }
        if section == "networks" and "default" not in own and not (declared or {}).get("default"):
            own["default"] = {"labels": dict(labels)}
        if own:
            document[section] = own
    return document


# -- the runtime ------------------------------------------------------------------------------------------


class ComposeRuntime:
    """Deploys ApplicationDeployments with Docker Compose v2 (see the module docstring)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        timeout_s: float = 120,
        registry_plain_http: bool | None = None,
        compose: str | None = None,
        stop_timeout_s: int = 10,
        faults: FaultSet | None = None,
        trust: Trust | None = None,
    ) -> None:
        self.faults = faults if faults is not None else FaultSet()
        self.trust = trust  # the operator's Notary trust policy and store; None: nothing is verified
        self._environments: dict[str, dict[str, str]] = {}  # what each held deployment was given
        self.state_dir = Path(state_dir)
        self.timeout_s = float(timeout_s)
        self.registry_plain_http = registry_plain_http
        self._compose = compose
        self.stop_timeout_s = stop_timeout_s

    # -- paths and environment -----------------------------------------------------------------------

    @property
    def deployments_dir(self) -> Path:
        return self.state_dir / "deployments"

    def deployment_dir(self, deployment_id: str) -> Path:
        return self.deployments_dir / _safe_dir_name(deployment_id)

    def component_dir(self, deployment_id: str, component: str) -> Path:
        return self.deployment_dir(deployment_id) / _safe_dir_name(component)

    def _binary(self) -> str:
        binary = self._compose or compose_binary()
        if binary is None:
            raise ComponentFailure("runtime-unavailable", "Docker Compose v2 is not installed")
        return binary

    @staticmethod
    def _base_env() -> dict[str, str]:
        """What Compose needs to reach the engine (PATH, HOME, DOCKER_*), and nothing else of the
        device's environment: neither COMPOSE_* steering nor variables a Compose file could interpolate."""
        return {k: v for k, v in os.environ.items() if k in _PASSED_ENV or k.startswith("DOCKER_")}

    def _run(
        self,
        args: list[str],
        *,
        what: str,
        timeout: float,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        command = [self._binary(), *args]
        try:
            return subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                cwd=cwd,
                env={**self._base_env(), **(env or {})},
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else exc.stderr
            detail = _trim(stderr or "")
            message = f"docker compose {what} took longer than {timeout:g} s" + (
                f": {detail}" if detail else ""
            )
            raise ComponentFailure("timeout", message) from None
        except OSError as exc:
            raise ComponentFailure("runtime-unavailable", f"cannot run Docker Compose: {exc}") from None

    # -- Runtime protocol ---------------------------------------------------------------------------------

    def deploy(
        self, deployment_id: str, application_deployment: Mapping[str, Any], yaml_bytes: bytes
    ) -> list[ComponentOutcome]:
        outcomes: list[ComponentOutcome] = []
        stopped_by: str | None = None
        entries = _component_entries(application_deployment)
        for entry in entries:
            name = str(entry.get("name", ""))
            if stopped_by is not None:
                error = StatusError("not-attempted", name, f"not installed: component {stopped_by!r} failed")
                outcomes.append(ComponentOutcome(name, "failed", error))
                continue
            properties = entry.get("properties")
            properties = properties if isinstance(properties, Mapping) else {}
            try:
                self._deploy_component(deployment_id, name, properties, application_deployment)
                outcomes.append(ComponentOutcome(name, "installed"))
            except ComponentFailure as exc:
                outcomes.append(ComponentOutcome(name, "failed", StatusError(exc.code, name, exc.message)))
                if waits(properties):
                    stopped_by = name
            except MargoError as exc:  # registry unreachable, bad input …
                error = StatusError("pull-failed", name, _trim(str(exc)))
                outcomes.append(ComponentOutcome(name, "failed", error))
                if waits(properties):
                    stopped_by = name
        wanted = {project_name(deployment_id, str(e.get("name", ""))) for e in entries}
        for project in self._projects_of(deployment_id) - wanted:  # an update dropped a component
            self._down(project, None)
        return outcomes

    def remove(self, deployment_id: str) -> None:
        if self.faults.active("removes-every-deployment"):  # ISO-107 broken
            for other in sorted(p.name for p in self.deployments_dir.glob("*") if p.is_dir()):
                if other != _safe_dir_name(deployment_id):
                    for project in sorted(self._projects_of(other)):
                        self._down(project, None)
        self._environments.pop(deployment_id, None)
        for project in sorted(self._projects_of(deployment_id)):
            self._down(project, self._dir_of_project(deployment_id, project))
        shutil.rmtree(self.deployment_dir(deployment_id), ignore_errors=True)
        if self.faults.active("shared-network"):  # the mutant's own network goes with its last user
            runtime_docker.remove_network_if_unused(SHARED_NETWORK)

    def running(self) -> set[str]:
        containers = self._containers({"label": DEPLOYMENT_LABEL, "status": "running"})
        return {str(c.labels.get(DEPLOYMENT_LABEL)) for c in containers if c.labels.get(DEPLOYMENT_LABEL)}

    # -- one component -----------------------------------------------------------------------------------

    def _deploy_component(
        self,
        deployment_id: str,
        name: str,
        properties: Mapping[str, Any],
        application_deployment: Mapping[str, Any],
    ) -> None:
        if not name:
            raise ComponentFailure("invalid-component", "the component has no name")
        env = component_environment(application_deployment, name)
        archive = self._pull(name, properties)
        findings = check_compose_archive(archive, component=name, location=f"component {name}")
        refusals = [f for f in findings if f.level is Level.MUST]
        if refusals:
            text = "; ".join(f"{f.requirement}: {f.message}" for f in refusals)
            raise ComponentFailure("archive-refused", _trim(text))
        directory = self._extract(deployment_id, name, archive)
        compose = yaml.safe_load((directory / COMPOSE_FILE).read_text(encoding="utf-8")) or {}
        labels = {DEPLOYMENT_LABEL: deployment_id, COMPONENT_LABEL: name, **runtime_docker.SUITE_LABELS}
        document = override_document(compose, labels)
        if self.faults.names & RUNTIME_FAULTS:
            self._apply_faults(directory, compose, document)
        self._environments[deployment_id] = env
        override = yaml.safe_dump(document, sort_keys=True)
        (directory / OVERRIDE_FILE).write_text(override, encoding="utf-8")

        wait = waits(properties)
        requested = parse_duration(properties.get("timeout"))
        limit = min(requested, self.timeout_s) if requested is not None else self.timeout_s
        limit = max(limit, 1.0)
        args = ["-p", project_name(deployment_id, name), "-f", COMPOSE_FILE, "-f", OVERRIDE_FILE, "up", "-d"]
        args += ["--remove-orphans", "--pull", "never"]  # images come from the device, never from outside
        if wait:
            args += ["--wait", "--wait-timeout", str(int(limit))]
        result = self._run(args, what="up", timeout=limit + GRACE_S, cwd=directory, env=env)
        if result.returncode != 0 and not self.faults.active("ignores-compose-failure"):  # DS-002 broken
            raise ComponentFailure(
                "install-failed",
                f"docker compose up exited with {result.returncode}: {_trim(result.stderr or result.stdout)}",
            )

    def _apply_faults(self, directory: Path, compose: dict[str, Any], document: dict[str, Any]) -> None:
        """The runtime faults of the isolation profile (one deliberate hole each) and the runtime's
        variants (a behaviour the spec allows)."""
        services = document["services"]
        if self.faults.active("drops-resource-limits"):  # ISO-105 broken: the package's limits are cut out
            for service in (compose.get("services") or {}).values():
                (service.get("deploy") or {}).pop("resources", None)
            (directory / COMPOSE_FILE).write_text(yaml.safe_dump(compose, sort_keys=False), encoding="utf-8")
        for settings in services.values():
            if self.faults.active("privileged-workloads"):  # ISO-103 broken
                settings["privileged"] = True
            if self.faults.active("runs-as-root"):  # ISO-104 broken
                settings["user"] = "0:0"
            if self.faults.active("shares-environment"):  # ISO-106 broken: every deployment's variables
                settings["environment"] = {
                    k: v for env in self._environments.values() for k, v in env.items()
                }
            if self.faults.active("injects-otel-env"):  # variant: OBS-011's variables in every container
                settings["environment"] = {**(settings.get("environment") or {}), **OTEL_ENV}
            if self.faults.active("shared-volume"):  # ISO-102 broken: one host folder in every deployment
                settings["volumes"] = [f"{self.state_dir / 'shared'}:/shared"]
            if self.faults.active("shared-network"):  # ISO-101 broken: one network for every deployment
                settings["networks"] = {"default": {}, SHARED_NETWORK: {}}
        if self.faults.active("shared-network"):
            runtime_docker.ensure_network(SHARED_NETWORK)
            document.setdefault("networks", {})[SHARED_NETWORK] = {"external": True}

    def _pull(self, name: str, properties: Mapping[str, Any]) -> bytes:
        repository = properties.get("repository")
        revision = properties.get("revision")
        if not isinstance(repository, str) or not repository:
            raise ComponentFailure("invalid-component", "no properties.repository")
        try:
            ref = OciReference.parse(repository)
            if ref.digest is None and ref.tag is None:
                if not isinstance(revision, (str, int, float)) or not str(revision):
                    raise ComponentFailure("invalid-component", "no properties.revision")
                ref = ref.with_tag(str(revision).replace("+", "_"))
        except MargoError as exc:
            raise ComponentFailure("invalid-component", _trim(str(exc))) from None
        with OciClient(ref.registry, plain_http=self.registry_plain_http) as client:
            body, media_type, digest = client.get_manifest(ref.repository, ref.reference)
            if self.trust is not None and not self.faults.active("skips-signature-verification"):  # SIGN-114
                self._verify_signature(client, ref.with_digest(digest))
            layer = self._compose_layer(body, media_type, str(ref))
            expected = str(revision).replace("_", "+") if revision is not None else None
            version = (layer.get("annotations") or {}).get(COMPONENT_VERSION_ANNOTATION)
            if expected is not None and isinstance(version, str) and version.replace("_", "+") != expected:
                raise ComponentFailure(
                    "artifact-refused",
                    f"{ref}: {COMPONENT_VERSION_ANNOTATION} {version!r} is not {expected!r}",
                )
            size = layer.get("size")
            if isinstance(size, int) and size > MAX_ARCHIVE_BYTES:
                raise ComponentFailure("artifact-refused", f"{ref}: layer of {size} bytes is too large")
            try:  # REG-016: get_blob returns the bytes only once they hash to the layer's digest
                return client.get_blob(ref.repository, str(layer.get("digest")), max_bytes=MAX_ARCHIVE_BYTES)
            except DigestMismatch as exc:
                raise ComponentFailure("digest-mismatch", _trim(str(exc))) from None

    def _verify_signature(self, client: OciClient, ref: OciReference) -> None:
        """Verify the manifest ``ref`` names by digest under the trust policy of its scope; refuse the
        component on an enforced failure (or when verification cannot be completed: fail closed)."""
        assert self.trust is not None
        try:
            verdict = verify_artifact(client, ref, self.trust.policy, self.trust.store)
        except Exception as exc:  # fail closed: whatever stops verification refuses the component
            detail = str(exc) if isinstance(exc, MargoError) else f"{type(exc).__name__}: {exc}"
            message = f"{ref}: signature verification could not be completed: {detail}"
            SECURITY.warning("component refused: %s", message, exc_info=not isinstance(exc, MargoError))
            raise self._refusal(message) from None
        under = f"trust policy {verdict.policy!r} ({verdict.level})" if verdict.policy else "no trust policy"
        verdict = self._accepts_anyway(verdict)
        if verdict.accepted and self._refuses_anyway(verdict):  # a signing mutant's own refusal
            refusal = verdict.logged or (Failure(Check.INTEGRITY, f"{verdict.algorithm} signature refused"),)
            verdict = replace(verdict, outcome=Outcome.FAILED, enforced=refusal, logged=())
        if not verdict.accepted:
            message = f"{ref}: signature verification failed under {under}: {verdict.reason}"
            SECURITY.warning("component refused: %s", message)
            raise self._refusal(message)
        if verdict.logged:
            SECURITY.warning("%s: signature accepted under %s; %s", ref, under, verdict.reason)
        else:
            LOG.info("%s: signature %s under %s", ref, verdict.outcome, under)

    def _refusal(self, message: str) -> ComponentFailure:
        """The component's refusal; the own-refusal-words variant words it without naming the signature
        (SUP-03 sets no wording), the full reason stays in the device's log."""
        if self.faults.active("own-refusal-words"):  # variant
            return ComponentFailure("verification-refused", "notary verification failed: not trusted")
        return ComponentFailure("signature-refused", _trim(message))

    def _refuses_anyway(self, verdict: SignatureVerdict) -> bool:
        """Faults that refuse what verified: an algorithm SUP-03 requires, or a merely logged failure."""
        algorithm = str(verdict.algorithm or "")
        return (
            (self.faults.active("rejects-es256") and algorithm == "ES256")  # SIGN-114 broken
            or (self.faults.active("rejects-ps256") and algorithm == "PS256")  # SIGN-114 broken
            or (self.faults.active("enforces-logged-failures") and bool(verdict.logged))  # SIGN-116 broken
        )

    def _accepts_anyway(self, verdict: SignatureVerdict) -> SignatureVerdict:
        """Faults that accept what the verifier refused: the refusal's failures are all of a kind the
        mutant ignores. The hole is here, around the verdict; the verifier itself has no switches."""
        ignored = {
            rule
            for rule, fault in (
                (Rule.CHAIN, "accepts-untrusted-signer"),  # SIGN-116 broken: any root will do
                (Rule.VALIDITY, "accepts-expired-signing-certificate"),  # SIGN-116 broken
                (Rule.ALGORITHM, "accepts-rs256"),  # SIGN-114 broken
                (Rule.BINDING, "ignores-signed-digest"),  # SIGN-116 broken: any descriptor will do
            )
            if self.faults.active(fault)
        }
        if verdict.accepted or not verdict.examined or not ignored:
            return verdict
        if any(failure.about not in ignored for failure in verdict.enforced):
            return verdict
        forgiven = verdict.logged + verdict.enforced
        return replace(verdict, outcome=Outcome.VERIFIED, enforced=(), logged=forgiven)

    @staticmethod
    def _compose_layer(body: bytes, media_type: str, where: str) -> Mapping[str, Any]:
        try:
            manifest = json.loads(body)
        except ValueError:
            raise ComponentFailure("artifact-refused", f"{where}: the manifest is not JSON") from None
        if media_type != OCI_MANIFEST or not isinstance(manifest, dict):
            raise ComponentFailure("artifact-refused", f"{where}: not an OCI image manifest ({media_type})")
        if manifest.get("artifactType") != COMPOSE_ARTIFACT_TYPE:
            raise ComponentFailure(
                "artifact-refused",
                f"{where}: artifactType {manifest.get('artifactType')!r} is not {COMPOSE_ARTIFACT_TYPE}",
            )
        layers = manifest.get("layers")
        if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
            count = len(layers) if isinstance(layers, list) else 0
            raise ComponentFailure("artifact-refused", f"{where}: {count} layers, expected exactly one")
        if layers[0].get("mediaType") != COMPOSE_LAYER_MEDIA_TYPE:
            raise ComponentFailure(
                "artifact-refused",
                f"{where}: layer media type {layers[0].get('mediaType')!r} is not {COMPOSE_LAYER_MEDIA_TYPE}",
            )
        return layers[0]

    def _extract(self, deployment_id: str, name: str, archive: bytes) -> Path:
        """Extract into a staging folder, then move the archive's top-level folder into place."""
        target = self.component_dir(deployment_id, name)
        staging = target.parent / f".staging-{target.name}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            with tar_safety.open_tar_gz(archive) as tar:
                tops = sorted(tar_safety.top_level_names(tar))
                tar_safety.extract_safely(tar, staging)
            if len(tops) != 1 or not (staging / tops[0] / COMPOSE_FILE).is_file():
                raise ComponentFailure("archive-refused", f"unexpected archive layout {tops}")
            shutil.rmtree(target, ignore_errors=True)
            (staging / tops[0]).rename(target)
        except MargoError as exc:
            raise ComponentFailure("archive-refused", _trim(str(exc))) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def restart(self, deployment_id: str) -> None:
        """Restart the deployment's containers as they are (the restarts-workloads-on-restart variant)."""
        for container in self._containers({"label": f"{DEPLOYMENT_LABEL}={deployment_id}"}):
            try:
                container.restart(timeout=self.stop_timeout_s)
            except _DOCKER_ERRORS as exc:
                LOG.warning("restarting %s failed: %s", container.name, exc)

    # -- removal -------------------------------------------------------------------------------------------

    def _projects_of(self, deployment_id: str) -> set[str]:
        """Projects of the deployment: by container label, and by the component folders on disk."""
        projects: set[str] = set()
        directory = self.deployment_dir(deployment_id)
        if directory.is_dir():
            projects |= {
                project_name(deployment_id, p.name)
                for p in directory.iterdir()
                if p.is_dir() and not p.name.startswith(".")
            }
        containers = self._containers({"label": f"{DEPLOYMENT_LABEL}={deployment_id}"}, all_=True)
        projects |= {
            str(c.labels[runtime_docker.COMPOSE_PROJECT_LABEL])
            for c in containers
            if c.labels.get(runtime_docker.COMPOSE_PROJECT_LABEL)
        }
        return projects

    @staticmethod
    def _containers(filters: Mapping[str, str], *, all_: bool = False) -> list[Any]:
        """Containers matching ``filters``; [] (logged) when the engine does not answer."""
        try:
            client = docker_client()
        except MargoError as exc:
            LOG.warning("the Docker engine does not answer: %s", exc)
            return []
        try:
            return list(client.containers.list(all=all_, filters=dict(filters)))
        except _DOCKER_ERRORS as exc:
            LOG.warning("listing containers (%s) failed: %s", filters, exc)
            return []
        finally:
            client.close()

    def _dir_of_project(self, deployment_id: str, project: str) -> Path | None:
        directory = self.deployment_dir(deployment_id)
        if not directory.is_dir():
            return None
        for path in directory.iterdir():
            if path.is_dir() and project_name(deployment_id, path.name) == project:
                return path
        return None

    def _down(self, project: str, directory: Path | None) -> None:
        """``compose down`` (with the files when they are still there), then a label sweep for what
        Compose could not see; failures are logged, and what is left raises."""
        args = ["-p", project]
        if directory is not None and (directory / COMPOSE_FILE).is_file():
            args += ["-f", COMPOSE_FILE]
            if (directory / OVERRIDE_FILE).is_file():
                args += ["-f", OVERRIDE_FILE]
        args += ["down", "--remove-orphans", "--volumes", "--timeout", str(self.stop_timeout_s)]
        with contextlib.suppress(ComponentFailure):
            result = self._run(args, what="down", timeout=DOWN_TIMEOUT_S + self.stop_timeout_s, cwd=directory)
            if result.returncode != 0:
                LOG.warning("docker compose down of %s: %s", project, _trim(result.stderr))
        removed = runtime_docker.remove_project(project)
        if removed.errors:
            raise RuntimeError(f"removing project {project}: {'; '.join(removed.errors)}")
