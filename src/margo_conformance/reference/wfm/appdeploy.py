"""From an Application Description to the ApplicationDeployment YAML a device receives.

What the WFM does (protocol digest §4.7, spec digest §8 and §10):
  1. the description must be valid (our ApplicationDescription schema);
  2. pick one deployment profile: the first whose type the target device reported in
     ``supportedDeploymentTypes``, else the first helm/compose profile, else the first (ADEP-008);
  3. copy that profile's type, components (every key, extensions included), ``deviceConstraints`` and
     profile-level ``x-…-extensions`` verbatim (ADEP-001, ADEP-005, ADEP-102);
  4. parameters: the operator's values over the description's defaults, each checked against its
     configuration schema (APPD-001, APPD-002); an immutable setting keeps its installed value (APPD-003);
  5. never forward the description's root extensions, which are meant for the WFM (APPD-007);
  6. serialise once, deterministically; the bytes are what the digest covers (DS-021).

A description may also come from an application package in a registry (``fetch_package``): the tag is
resolved to a digest once, that digest's signatures and its components' are verified under the WFM's
Notary trust policy (SUP-03 §4, SIGN-113; the signing library decides, the WFM only refuses), and the
description is read from the very digest that was verified. Without a trust policy nothing is verified
(SUP-03 §6).
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from ..._internal.oci import OciClient, OciReference
from ...errors import InputError, MargoError, UsageError
from ...findings import Level
from ...schemas import SchemaSet
from ...signing.oci_signatures import manifest_descriptor
from ...signing.package_check import SignatureCheck, Trust, check_signatures, description_layer
from ...signing.policy import Check, Failure, Rule
from .faults import FaultSet
from .problems import Problem

EXTENSION = re.compile(r"^x-[a-z][a-z0-9-]*-extensions$")
DEVICE_ID_WITH_ASTERISK = re.compile(r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*(/\*)?$")
NAMESPACE = "margo"
DELIVERABLE_TYPES = ("compose", "helm")


def parse_description(text: str) -> dict[str, Any]:
    """Step 1: YAML text -> a valid ApplicationDescription mapping, else a 422 problem."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise Problem.of("invalid-request", f"application_description is not YAML: {exc}") from None
    if not isinstance(document, dict):
        raise Problem.of("invalid-request", "application_description is not a YAML mapping")
    findings = [
        f for f in SchemaSet.load().validate(document, "ApplicationDescription") if f.level is Level.MUST
    ]
    if findings:
        raise Problem.of(
            "semantic-error",
            "the Application Description is not valid",
            errors=[{"field": f.location, "message": f"{f.requirement}: {f.message}"} for f in findings],
        )
    return document


def choose_profile(description: Mapping[str, Any], capabilities: Mapping[str, Any] | None) -> dict[str, Any]:
    """Step 2."""
    profiles: list[dict[str, Any]] = list(description["deploymentProfiles"])
    properties = (capabilities or {}).get("properties") or {}
    supported = properties.get("supportedDeploymentTypes") or []
    for profile in profiles:
        if profile["type"] in supported:
            return profile
    for profile in profiles:
        if profile["type"] in DELIVERABLE_TYPES:
            return profile
    return profiles[0]


def resolve_parameters(
    description: Mapping[str, Any],
    given: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    faults: FaultSet,
) -> dict[str, Any]:
    """Step 4: name -> value for every parameter of the description."""
    declared: Mapping[str, Any] = description.get("parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise Problem.of(
            "semantic-error",
            "parameters the description does not declare",
            errors=[
                {"field": f"parameters.{name}", "message": "not declared by the description"}
                for name in unknown
            ],
        )
    schemas = _setting_schemas(description)
    values: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    for name, parameter in declared.items():
        if name in given and not faults.active("parameters-ignored"):
            value = given[name]
            problem = check_value(value, schemas.get(name))
            if problem:
                errors.append({"field": f"parameters.{name}", "message": problem})
        elif "value" in parameter:
            value = parameter["value"]
        else:
            errors.append({"field": f"parameters.{name}", "message": "no value given and no default"})
            continue
        if previous is not None and name in _immutable(description) and previous.get(name, value) != value:
            errors.append(
                {"field": f"parameters.{name}", "message": "immutable setting cannot change (APPD-003)"}
            )
        values[name] = value
    if errors:
        raise Problem.of("semantic-error", "parameter values are not acceptable", errors=errors)
    return values


def check_value(value: Any, schema: Mapping[str, Any] | None) -> str | None:
    """APPD-002: the value against its configuration schema (dataType and the declared limits)."""
    if schema is None:
        return None
    data_type = str(schema.get("dataType", "string"))
    items = value if data_type.startswith("array[") else [value]
    if data_type.startswith("array[") and not isinstance(value, list):
        return f"expected an array ({data_type})"
    base = data_type.removeprefix("array[").removesuffix("]")
    for item in items:
        problem = _check_scalar(item, base, schema)
        if problem:
            return problem
    return None


def _check_scalar(value: Any, data_type: str, schema: Mapping[str, Any]) -> str | None:
    if data_type == "boolean":
        return None if isinstance(value, bool) else "expected a boolean"
    if data_type in ("integer", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number ({data_type})"
        if data_type == "integer" and not (isinstance(value, int) or float(value).is_integer()):
            return "expected an integer"
        if isinstance(value, float) and not math.isfinite(value):
            return "expected a finite number"
        if "minValue" in schema and value < schema["minValue"]:
            return f"below minValue {schema['minValue']}"
        if "maxValue" in schema and value > schema["maxValue"]:
            return f"above maxValue {schema['maxValue']}"
        return None
    if not isinstance(value, str):
        return "expected a string"
    if value == "" and not schema.get("allowEmpty", False):
        return "empty value not allowed (allowEmpty is false)"
    if "minLength" in schema and value and len(value) < schema["minLength"]:
        return f"shorter than minLength {schema['minLength']}"
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return f"longer than maxLength {schema['maxLength']}"
    if "regexMatch" in schema:
        try:
            if not re.fullmatch(str(schema["regexMatch"]), value):
                return f"does not match {schema['regexMatch']}"
        except re.error:
            return None
    if "options" in schema and value not in schema["options"]:
        return f"not one of {schema['options']}"
    return None


def _setting_schemas(description: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    configuration = description.get("configuration") or {}
    by_name = {entry["name"]: entry for entry in configuration.get("schema") or []}
    return {
        setting["parameter"]: by_name[setting["schema"]]
        for section in configuration.get("sections") or []
        for setting in section.get("settings") or []
        if setting.get("schema") in by_name
    }


def _immutable(description: Mapping[str, Any]) -> set[str]:
    configuration = description.get("configuration") or {}
    return {
        setting["parameter"]
        for section in configuration.get("sections") or []
        for setting in section.get("settings") or []
        if setting.get("immutable")
    }


def build_deployment(
    *,
    deployment_id: str,
    description: Mapping[str, Any],
    device_id: str,
    capabilities: Mapping[str, Any] | None,
    parameters: Mapping[str, Any],
    faults: FaultSet,
) -> bytes:
    """Steps 2, 3, 5 and 6: the exact YAML bytes of the ApplicationDeployment."""
    application_id = str(description["id"])
    profile = choose_profile(description, capabilities)
    deployment_profile: dict[str, Any] = {
        "type": profile["type"],
        "components": [_component(c, faults) for c in profile["components"]],
    }
    if "deviceConstraints" in profile:
        deployment_profile["deviceConstraints"] = _constraints(profile["deviceConstraints"], faults)
    deployment_profile.update(_extensions(profile, faults))
    spec: dict[str, Any] = {
        "applicationId": f"{application_id}-wfm" if faults.active("application-id-wrong") else application_id,
        "deploymentProfile": deployment_profile,
    }
    declared: Mapping[str, Any] = description.get("parameters") or {}
    if declared:
        spec["parameters"] = {
            name: {
                "value": copy.deepcopy(parameters[name]),
                "targets": copy.deepcopy(declared[name]["targets"]),
            }
            for name in declared
            if name in parameters
        }
    if faults.active("root-extensions-forwarded"):  # APPD-007 forbids this: root extensions are the WFM's
        spec.update({k: copy.deepcopy(v) for k, v in description.items() if EXTENSION.match(k)})
    document = {
        "id": deployment_id,
        "metadata": {"name": application_id, "namespace": NAMESPACE, "deviceId": device_id},
        "spec": spec,
    }
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096)
    return text.encode("utf-8")


def _component(component: Mapping[str, Any], faults: FaultSet) -> dict[str, Any]:
    """Every key verbatim: name, properties and the component's extensions (ADEP-005)."""
    extensions = _extensions(component, faults)
    return {
        key: extensions[key] if EXTENSION.match(key) else copy.deepcopy(value)
        for key, value in component.items()
        if not EXTENSION.match(key) or key in extensions
    }


def _extensions(source: Mapping[str, Any], faults: FaultSet) -> dict[str, Any]:
    """The device-targeted ``x-…-extensions`` of a profile or component, verbatim (ADEP-005)."""
    if faults.active("extensions-dropped"):
        return {}
    return {key: copy.deepcopy(value) for key, value in source.items() if EXTENSION.match(key)}


def _constraints(constraints: Mapping[str, Any], faults: FaultSet) -> dict[str, Any]:
    """ADEP-001: verbatim; the fault changes one value (memory) in a still schema-valid way."""
    copied = copy.deepcopy(dict(constraints))
    if faults.active("constraints-modified"):
        capacity = copied.setdefault("capacityRequirements", {})
        capacity["memory"] = "999Mi" if capacity.get("memory") != "999Mi" else "998Mi"
    return copied


# -- packages from a registry (SUP-03) ----------------------------------------------------------------

REGISTRY_TIMEOUT_S = 5.0  # per registry request: well inside an admin caller's own time limit
MAX_TAG_LIST_BYTES = 1024 * 1024
REFERRERS_TAG = re.compile(r"^sha256-[0-9a-f]{64}$")


@dataclass(frozen=True)
class Package:
    """A package as the WFM read it: the reference pinned to the verified digest, and the description."""

    reference: str  # oci://host/repository[:tag]@digest
    description_text: str


class PackageRefused(MargoError):
    """The trust policy refuses the package (SIGN-113); ``failures`` has one line per failed check."""

    def __init__(self, reference: str, failures: Sequence[str]) -> None:
        super().__init__(f"{reference}: signature verification failed: {'; '.join(failures)}")
        self.reference = reference
        self.failures = tuple(failures)


def fetch_package(
    reference: str, trust: Trust | None, faults: FaultSet, *, timeout: float = REGISTRY_TIMEOUT_S
) -> Package:
    """Resolve once, verify by digest, read what was verified (never by tag: SUP-03 §4 item 1).

    Raises ``PackageRefused``; ``UsageError`` for a reference that does not parse; ``InputError`` or
    ``DigestMismatch`` for what the registry holds; ``EnvironmentProblem`` for a registry out of reach.
    """
    ref = OciReference.parse(reference)
    if ref.tag is None and ref.digest is None:
        raise UsageError(f"{reference}: name a tag or a digest (oci://host/repository:tag)")
    with OciClient(ref.registry, timeout=timeout) as client:
        pinned = ref.with_digest(manifest_descriptor(client, ref.repository, ref.reference).digest)
        if trust is not None and not faults.active("skips-signature-verification"):
            verified = _earlier_target(client, pinned) if faults.active("verifies-tag-not-digest") else pinned
            failures = refusing_failures(check_signatures(str(verified), trust, timeout=timeout), faults)
            if failures:
                raise PackageRefused(str(pinned), failures)
        data = description_layer(client, pinned)
    try:
        return Package(str(pinned), data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{pinned}: the description layer is not UTF-8 text") from None


def refusing_failures(check: SignatureCheck, faults: FaultSet) -> list[str]:
    """Every enforced failure of the package and its components, one line each: any one refuses."""
    lines: list[str] = []
    for artifact in check.verdicts:
        if artifact.role != "package" and faults.active("ignores-component-signatures"):
            continue
        verdict = artifact.verdict
        where = "package manifest" if artifact.role == "package" else f"{artifact.role} {verdict.reference}"
        lines += [f"{where}: {failure}" for failure in verdict.enforced if not _overlooked(failure, faults)]
        if verdict.accepted and verdict.algorithm == "ES256" and faults.active("rejects-es256"):
            lines.append(f"{where}: ES256 signature refused")  # SIGN-113 broken: SUP-03 requires ES256
    return lines


def _overlooked(failure: Failure, faults: FaultSet) -> bool:
    """What a faulty WFM lets through (one fault each)."""
    if failure.about is Rule.CHAIN:
        return faults.active("accepts-untrusted-signer")
    if failure.check is Check.AUTHENTIC_TIMESTAMP:
        return faults.active("accepts-expired-signing-certificate")
    return False


def _earlier_target(client: OciClient, pinned: OciReference) -> OciReference:
    """Fault verifies-tag-not-digest: a manifest of the repository that has a referrers-tag index
    (``sha256-<hex>``: an earlier target of the tag that was signed) stands in for the digest the tag
    resolves to now, unless that one is signed itself."""
    signed = sorted(
        f"sha256:{tag[7:]}" for tag in _tags(client, pinned.repository) if REFERRERS_TAG.match(tag)
    )
    if not signed or pinned.digest in signed:
        return pinned
    return pinned.with_digest(signed[0])


def _tags(client: OciClient, repository: str) -> list[str]:
    """The repository's tags (first page of ``/v2/<name>/tags/list``). OciClient has no call for it, so
    its request helpers are reused (as ``oci_signatures`` does for the Referrers API)."""
    where = f"oci://{client.registry}/{repository} (tags)"
    response = client._request("GET", f"{client._base}/v2/{repository}/tags/list", where, stream=True)
    client._check(response, where, "listing tags", (200,))
    try:
        tags = json.loads(client._read_body(response, where, MAX_TAG_LIST_BYTES)).get("tags")
    except (ValueError, AttributeError):
        return []
    return [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []
