"""The ApplicationDeployment a WFM makes from a description (ADEP-*, APPD-*).

Each check takes the deployment as served (bytes) or already parsed (a mapping) and the Application
Description it was made from; the profile is ``profile_id`` when given, else the description's profile
with the deployment's type and component names (else the first of that type)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..._internal import bounded
from ...schemas import EXTENSION_NAME
from ._common import document_fail, schema_problems, short

Deployment = bytes | Mapping[str, Any]


def ensure_application_deployment(
    document_bytes: bytes,
    *,
    deployment_id: str,
    description: Mapping[str, Any],
    device_id: str,
    parameters: Mapping[str, Any],
    profile_id: str | None = None,
) -> dict[str, Any]:
    """Everything a served ApplicationDeployment owes the description it was made from, for this device
    and these user ``parameters`` (each sub-check below); returns the parsed document."""
    document = ensure_valid_application_deployment(document_bytes, deployment_id=deployment_id)
    ensure_application_id(document, description=description)
    ensure_target_device(document, device_id)
    ensure_components_copied(document, description=description, profile_id=profile_id)
    ensure_constraints_copied(document, description=description, profile_id=profile_id)
    ensure_device_extensions_copied(document, description=description, profile_id=profile_id)
    ensure_root_extensions_not_forwarded(document, description=description)
    ensure_parameters(document, description=description, parameters=parameters)
    return document


def ensure_valid_application_deployment(document: Deployment, *, deployment_id: str) -> dict[str, Any]:
    """ADEP-103, DS-102: one YAML mapping, valid as an rc.3 ApplicationDeployment, whose top-level id is
    the manifest's deploymentId; returns it parsed."""
    parsed = _parsed(document)
    problems = schema_problems(parsed, "ApplicationDeployment")
    if problems:
        raise document_fail("ADEP-103", "the deployment breaks the schema:\n" + "\n".join(problems), parsed)
    ensure_deployment_id(parsed, deployment_id)
    return parsed


def _parsed(document: Deployment) -> dict[str, Any]:
    if not isinstance(document, bytes):
        return dict(document)
    try:
        parsed = bounded.load_yaml(document, where="deployment", limits=bounded.HTTP_BODY_LIMITS)
    except bounded.UntrustedInput as exc:
        raise document_fail("ADEP-103", f"the deployment is not YAML: {exc.problem}", document) from None
    if not isinstance(parsed, dict):
        raise document_fail("ADEP-103", "the deployment YAML is not a mapping", document)
    return parsed


def _spec(document: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = document.get("spec")
    if not isinstance(spec, Mapping) or not isinstance(spec.get("deploymentProfile"), Mapping):
        raise document_fail("ADEP-103", "the deployment has no spec.deploymentProfile", document)
    return spec


def ensure_deployment_ids(
    document: Deployment, *, deployment_id: str, description: Mapping[str, Any]
) -> None:
    """DS-102 and ADEP-101: id is the deploymentId, spec.applicationId the description's id."""
    parsed = _parsed(document)
    ensure_deployment_id(parsed, deployment_id)
    ensure_application_id(parsed, description=description)


def ensure_deployment_id(document: Deployment, deployment_id: str) -> None:
    """DS-102: the YAML's top-level id is the manifest's deploymentId."""
    found = _parsed(document).get("id")
    if found != deployment_id:
        raise document_fail(
            "DS-102", f"id must be the deploymentId {deployment_id}, got {short(found)}", document
        )


def ensure_application_id(document: Deployment, *, description: Mapping[str, Any]) -> None:
    """ADEP-101: spec.applicationId is the description's id."""
    found = _spec(_parsed(document)).get("applicationId")
    if found != description.get("id"):
        raise document_fail(
            "ADEP-101",
            f"spec.applicationId must be {short(description.get('id'))}, got {short(found)}",
            document,
        )


def ensure_target_device(document: Deployment, device_id: str) -> None:
    """metadata.deviceId names the device the deployment was assigned to (no registry ID: the scenario's
    own expectation; its shape is ADEP-103)."""
    metadata = _parsed(document).get("metadata")
    found = metadata.get("deviceId") if isinstance(metadata, Mapping) else None
    if found != device_id:
        raise document_fail("", f"metadata.deviceId must be {device_id!r}, got {short(found)}", document)


def _profile_of(
    document: Mapping[str, Any], description: Mapping[str, Any], profile_id: str | None
) -> Mapping[str, Any]:
    profiles = [p for p in description.get("deploymentProfiles") or [] if isinstance(p, Mapping)]
    if profile_id is not None:
        chosen = [p for p in profiles if p.get("id") == profile_id]
        if not chosen:
            raise ValueError(f"the description has no deployment profile {profile_id!r}")
        return chosen[0]
    served = _spec(document)["deploymentProfile"]
    names = [c.get("name") for c in served.get("components") or [] if isinstance(c, Mapping)]
    same_type = [p for p in profiles if p.get("type") == served.get("type")]
    if not same_type:
        raise document_fail(
            "ADEP-102",
            f"the description has no {served.get('type')!r} deployment profile to deploy",
            document,
        )
    matching = [p for p in same_type if [c.get("name") for c in p.get("components") or []] == names]
    return (matching or same_type)[0]


def ensure_components_copied(
    document: Deployment, *, description: Mapping[str, Any], profile_id: str | None = None
) -> None:
    """ADEP-102: the profile's type, and its components in order with unchanged names and properties (an
    absent ``wait`` and ``wait: true`` are the same, true being the default)."""
    parsed = _parsed(document)
    profile = _profile_of(parsed, description, profile_id)
    served = _spec(parsed)["deploymentProfile"]
    if served.get("type") != profile.get("type"):
        raise document_fail(
            "ADEP-102", f"profile type must be {profile.get('type')!r}, got {served.get('type')!r}", parsed
        )
    want = [(c.get("name"), _with_default_wait(c.get("properties"))) for c in profile.get("components") or []]
    got = [(c.get("name"), _with_default_wait(c.get("properties"))) for c in served.get("components") or []]
    if not _same(want, got):
        raise document_fail(
            "ADEP-102",
            f"components must be those of profile {profile.get('id')!r}, in order and unchanged:\n"
            f"  expected {short(want)}\n  served   {short(got)}",
            parsed,
        )


def _with_default_wait(properties: object) -> object:
    if isinstance(properties, Mapping) and "wait" not in properties:
        return {**properties, "wait": True}
    return properties


def ensure_constraints_copied(
    document: Deployment, *, description: Mapping[str, Any], profile_id: str | None = None
) -> None:
    """ADEP-001: the profile's deviceConstraints appear unmodified; none are invented."""
    parsed = _parsed(document)
    wanted = _profile_of(parsed, description, profile_id).get("deviceConstraints")
    served = _spec(parsed)["deploymentProfile"].get("deviceConstraints")
    if not _same(wanted, served):
        raise document_fail(
            "ADEP-001",
            f"deviceConstraints must be copied unmodified:\n  expected {short(wanted)}\n"
            f"  served   {short(served)}",
            parsed,
        )


def ensure_device_extensions_copied(
    document: Deployment, *, description: Mapping[str, Any], profile_id: str | None = None
) -> None:
    """ADEP-005, APPD-008: x-…-extensions of the profile and of each component appear verbatim in the
    matching objects (components matched by name)."""
    parsed = _parsed(document)
    profile = _profile_of(parsed, description, profile_id)
    served = _spec(parsed)["deploymentProfile"]
    pairs: list[tuple[str, Mapping[str, Any], Mapping[str, Any]]] = [("deploymentProfile", profile, served)]
    by_name = {c.get("name"): c for c in served.get("components") or [] if isinstance(c, Mapping)}
    pairs += [
        (f"component {c.get('name')!r}", c, by_name.get(c.get("name"), {}))
        for c in profile.get("components") or []
    ]
    for where, source, target in pairs:
        for name, value in source.items():
            if EXTENSION_NAME.match(name) and not (name in target and _same(value, target[name])):
                raise document_fail(
                    "ADEP-005",
                    f"{where} must carry {name} verbatim: expected {short(value)}, "
                    f"got {short(target.get(name))}",
                    parsed,
                )


def ensure_root_extensions_not_forwarded(document: Deployment, *, description: Mapping[str, Any]) -> None:
    """APPD-007: extensions at the description root are for the WFM and never reach the device (looked
    for at the deployment's top level and in spec)."""
    parsed = _parsed(document)
    root = [name for name in description if EXTENSION_NAME.match(name)]
    for where, holder in (("the top level", parsed), ("spec", _spec(parsed))):
        leaked = [name for name in root if name in holder]
        if leaked:
            raise document_fail(
                "APPD-007",
                f"root extension(s) {', '.join(leaked)} passed on to the device in {where}",
                parsed,
            )


def ensure_parameters(
    document: Deployment, *, description: Mapping[str, Any], parameters: Mapping[str, Any]
) -> None:
    """APPD-001: every description parameter with a value reaches spec.parameters with the user's value
    (else its default) and its targets unchanged; no parameter the description lacks appears."""
    parsed = _parsed(document)
    declared: Mapping[str, Any] = description.get("parameters") or {}
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ValueError(f"parameters {unknown} are not declared by the description")
    extra = sorted(set(_spec(parsed).get("parameters") or {}) - set(declared))
    if extra:
        raise document_fail(
            "APPD-001", f"spec.parameters has parameters the description lacks: {extra}", parsed
        )
    for name, declaration in declared.items():
        if name in parameters:
            ensure_parameter(parsed, name=name, value=parameters[name], description=description)
        elif "value" in declaration:
            ensure_parameter(parsed, name=name, value=declaration["value"], description=description)
        # else: nobody gave a value, so the parameter may be left out


def ensure_parameter(document: Deployment, *, name: str, value: Any, description: Mapping[str, Any]) -> None:
    """APPD-001: spec.parameters[name] is ``value`` with the description's targets for that parameter."""
    parsed = _parsed(document)
    declaration = (description.get("parameters") or {}).get(name)
    if not isinstance(declaration, Mapping):
        raise ValueError(f"the description declares no parameter {name!r}")
    expected = {"value": value, "targets": declaration.get("targets")}
    found = (_spec(parsed).get("parameters") or {}).get(name)
    if not _same(expected, found):
        raise document_fail(
            "APPD-001", f"parameter {name!r} must be {short(expected)}, got {short(found)}", parsed
        )


def _same(a: object, b: object) -> bool:
    """Deep equality that keeps booleans apart from numbers (YAML true is not 1) and strings from numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if (
        isinstance(a, Sequence)
        and not isinstance(a, str)
        and isinstance(b, Sequence)
        and not isinstance(b, str)
    ):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b
