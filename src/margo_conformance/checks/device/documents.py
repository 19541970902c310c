"""Checks over the documents a device sent: its capabilities report and its status reports."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ...findings import Level
from ...schemas import SchemaSet
from .. import Violation


def ensure_valid(document: Any, document_type: str, level: Level = Level.MUST) -> None:
    """The schema rules of one level of a document the device sent (rc.3 OpenAPI, the suite's schemas):
    a SHOULD rule (e.g. no legacy envelope, STAT-103) is its own check, so that it never fails a MUST."""
    findings = [f for f in SchemaSet.load().validate(document, document_type) if f.level is level]
    if findings:
        evidence = "\n".join(f"{f.location or '$'}: {f.message}" for f in findings)
        what = "does not validate" if level is Level.MUST else f"departs from a {level.value} rule"
        raise Violation(findings[0].requirement, f"the {document_type} {what}", evidence)


def ensure_hosting(capabilities: Mapping[str, Any]) -> None:
    """CAP-004/DEV-004: a hosting device reports otelCollector true, a runtime and a deployment type."""
    properties = capabilities.get("properties") or {}
    problems = []
    if properties.get("otelCollector") is not True:
        problems.append(f"otelCollector is {properties.get('otelCollector')!r}, not true")
    if not properties.get("supportedRuntimes"):
        problems.append("no supportedRuntimes")
    if not properties.get("supportedDeploymentTypes"):
        problems.append("no supportedDeploymentTypes")
    if problems:
        raise Violation("CAP-004", "not a hosting device: " + "; ".join(problems))


def ensure_compose_runtime(capabilities: Mapping[str, Any], deployment_type: str, runtime: str) -> None:
    """DEV-007: a Compose device reports the Compose deployment type and an OCI container runtime."""
    properties = capabilities.get("properties") or {}
    problems = [
        f"{key} {properties.get(key) or []!r} lacks {wanted!r}"
        for key, wanted in (("supportedDeploymentTypes", deployment_type), ("supportedRuntimes", runtime))
        if wanted not in (properties.get(key) or [])
    ]
    if problems:
        raise Violation("DEV-007", "not a Compose device: " + "; ".join(problems))


def states(reports: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str((r.get("status") or {}).get("state")) for r in reports]


def component_names(application_deployment: Mapping[str, Any]) -> list[str]:
    profile = (application_deployment.get("spec") or {}).get("deploymentProfile") or {}
    return [str(c.get("name")) for c in profile.get("components") or []]


def component_states(report: Mapping[str, Any]) -> dict[str, str]:
    return {str(c.get("name")): str(c.get("state")) for c in report.get("components") or []}


def error_messages(report: Mapping[str, Any]) -> list[str]:
    """The non-empty error messages of one report: the overall one and the components'."""
    errors = [(report.get("status") or {}).get("error")]
    errors += [c.get("error") for c in report.get("components") or [] if isinstance(c, Mapping)]
    return [
        str(e["message"]).strip()
        for e in errors
        if isinstance(e, Mapping) and str(e.get("message") or "").strip()
    ]


def ensure_state(report: Mapping[str, Any], state: str, requirement: str = "") -> None:
    seen = (report.get("status") or {}).get("state")
    if seen != state:
        raise Violation(requirement, f"the deployment was reported {seen!r}, not {state!r}", str(report))


def ensure_error_message(report: Mapping[str, Any], requirement: str = "STAT-005") -> None:
    """A failed report says why, overall or per component (status.error is optional, OA3 616-624)."""
    if not error_messages(report):
        raise Violation(requirement, "the report gives no error message", str(report))


def ensure_error_sources(report: Mapping[str, Any], application: Any) -> None:
    """STAT-005: an overall error, when there is one, names the application; a failed component's error
    names the component."""
    error = (report.get("status") or {}).get("error")
    overall = error.get("source") if isinstance(error, Mapping) else application
    components = {
        str(c.get("name")): (c.get("error") or {}).get("source") for c in report.get("components") or []
    }
    failed = [c for c, state in component_states(report).items() if state == "failed"]
    if overall != application or any(components.get(c) != c for c in failed):
        raise Violation(
            "STAT-005",
            f"status.error.source {overall!r} (want {application!r}); component error sources {components}",
        )


def ensure_states_in_order(reports: Iterable[Mapping[str, Any]], first: str, last: str) -> None:
    """DS-002: ``first`` was reported before ``last``."""
    seen = states(reports)
    if not (first in seen and last in seen and seen.index(first) < seen.index(last)):
        raise Violation("DS-002", f'no "{first}" report before "{last}"', f"states reported: {seen}")


def ensure_not_reported(reports: Iterable[Mapping[str, Any]], forbidden: Iterable[str]) -> None:
    """ADEP-003: a refused deployment is never reported in these states (errata INC-141)."""
    seen = states(reports)
    wrong = [s for s in forbidden if s in seen]
    if wrong:
        raise Violation("ADEP-003", f"the deployment was reported {wrong}", f"states reported: {seen}")


def ensure_components_listed(reports: Sequence[Mapping[str, Any]], expected: Sequence[str]) -> None:
    """STAT-004: one components[] entry per component of the deployment, no more, no fewer."""
    problems = []
    for index, report in enumerate(reports):
        names = [str(c.get("name")) for c in report.get("components") or []]
        if sorted(names) != sorted(expected):
            problems.append(
                f"report {index + 1} lists components {names}, the deployment has {list(expected)}"
            )
    if problems:
        raise Violation(
            "STAT-004", "a report does not list exactly the deployment's components", "\n".join(problems)
        )


def ensure_adopted(reports: Iterable[Mapping[str, Any]], version: int) -> None:
    """STAT-008: every report adopts the manifestVersion that brought the deployment."""
    adopted = [r.get("adoptedManifestVersion") for r in reports]
    if not adopted or any(v != version for v in adopted):
        raise Violation(
            "STAT-008", f"adoptedManifestVersion per report {adopted}; the change came with {version}"
        )


def ensure_component_states(report: Mapping[str, Any], expected: Mapping[str, str]) -> None:
    """STAT-003/STAT-004: each named component is reported in the expected state."""
    shown = component_states(report)
    if any(shown.get(name) != state for name, state in expected.items()):
        raise Violation("STAT-004", f"components {shown}, expected {dict(expected)}")
