"""What the device scenarios judge, as plain functions over what the suite saw: documents the device
sent, transcript records, and workloads the observer found. Each returns the problems it found
(empty: conformant), so a step only has to assert that the list is empty and show it otherwise."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..findings import Level
from ..schemas import SchemaSet
from .observer import Workload

HOST_NAMESPACE = "host"


def schema_problems(document: Any, document_type: str) -> list[str]:
    """MUST-level schema violations of a document the device sent (rc.3 OpenAPI, our own schemas)."""
    return [
        f"{f.location or '$'}: {f.message}"
        for f in SchemaSet.load().validate(document, document_type)  # loaded once (cached)
        if f.level is Level.MUST
    ]


def hosting_problems(capabilities: Mapping[str, Any], deployment_type: str) -> list[str]:
    """CAP-004/DEV-004: a hosting device reports otelCollector true, a runtime and the deployment type."""
    properties = capabilities.get("properties") or {}
    problems = []
    if properties.get("otelCollector") is not True:
        problems.append(f"otelCollector is {properties.get('otelCollector')!r}, not true")
    if not properties.get("supportedRuntimes"):
        problems.append("no supportedRuntimes")
    types = properties.get("supportedDeploymentTypes") or []
    if deployment_type not in types:
        problems.append(f"supportedDeploymentTypes {types!r} lacks {deployment_type!r}")
    return problems


def states(reports: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str((r.get("status") or {}).get("state")) for r in reports]


def component_names(application_deployment: Mapping[str, Any]) -> list[str]:
    profile = (application_deployment.get("spec") or {}).get("deploymentProfile") or {}
    return [str(c.get("name")) for c in profile.get("components") or []]


def component_problems(reports: Sequence[Mapping[str, Any]], expected: Sequence[str]) -> list[str]:
    """STAT-004: one components[] entry per component of the deployment, no more, no fewer."""
    problems = []
    for index, report in enumerate(reports):
        names = [str(c.get("name")) for c in report.get("components") or []]
        if sorted(names) != sorted(expected):
            problems.append(
                f"report {index + 1} lists components {names}, the deployment has {list(expected)}"
            )
    return problems


def component_states(report: Mapping[str, Any]) -> dict[str, str]:
    return {str(c.get("name")): str(c.get("state")) for c in report.get("components") or []}


def error_sources(report: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(status.error.source, {component: its error.source}) of one report."""
    overall = ((report.get("status") or {}).get("error") or {}).get("source")
    return overall, {
        str(c.get("name")): (c.get("error") or {}).get("source") for c in report.get("components") or []
    }


def privilege_problems(workloads: Iterable[Workload]) -> list[str]:
    """ISO-103: no privileged mode, no host network/PID/IPC namespace."""
    problems = []
    for w in workloads:
        security = w.security
        if security.get("privileged"):
            problems.append(f"{w.name} is privileged")
        for key, what in (("network_mode", "network"), ("pid_mode", "PID"), ("ipc_mode", "IPC")):
            if str(security.get(key)) == HOST_NAMESPACE:
                problems.append(f"{w.name} uses the host's {what} namespace")
    return problems


def shared_mounts(first: Iterable[Workload], second: Iterable[Workload]) -> list[str]:
    """ISO-102: mount sources (volume names, host paths) that both sets of workloads use."""

    def sources(workloads: Iterable[Workload]) -> dict[str, str]:
        found: dict[str, str] = {}
        for w in workloads:
            for mount in w.security.get("mounts") or []:
                key = mount.get("name") or mount.get("source")
                if key:
                    found[str(key)] = f"{w.name}:{mount.get('destination')}"
        return found

    a, b = sources(first), sources(second)
    return [f"{a[key]} and {b[key]} share {key}" for key in sorted(set(a) & set(b))]


def leaked_environment(
    live: Mapping[str, str], other: Mapping[str, str], declared: Iterable[str], image: Mapping[str, str]
) -> list[str]:
    """ISO-106: variables a container really has (``live``) that come from the other vendor's
    configured environment (same name, same value), and that neither the container's own package
    (``declared`` names) nor its image sets."""
    own = set(declared) | set(image)
    return [
        f"{name}={value}"
        for name, value in sorted(live.items())
        if name not in own and other.get(name) == value
    ]


def retry_gap(records: Sequence[Any], status: int) -> tuple[float, float] | None:
    """(time of the first answer with ``status``, time of the next request after it) or None."""
    refused = next((r for r in records if r.kind == "request" and r.status == status), None)
    if refused is None:
        return None
    after = [r for r in records if r.kind == "request" and r.time > refused.time]
    return (refused.time, after[0].time) if after else None
