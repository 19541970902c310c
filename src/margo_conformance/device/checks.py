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
# OBS-011: what the device owner injects into each container; the same in every vendor's (errata INC-142)
OBS_011_VARIABLES = frozenset(
    {
        "HTTP_OTEL_EXPORTER_OTLP_ENDPOINT",
        "GRPC_OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    }
)
WEAK_TLS = frozenset({"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"})  # TLS-005: never negotiated


def schema_problems(document: Any, document_type: str) -> list[str]:
    """MUST-level schema violations of a document the device sent (rc.3 OpenAPI, our own schemas)."""
    return [
        f"{f.location or '$'}: {f.message}"
        for f in SchemaSet.load().validate(document, document_type)  # loaded once (cached)
        if f.level is Level.MUST
    ]


def hosting_problems(capabilities: Mapping[str, Any]) -> list[str]:
    """CAP-004/DEV-004: a hosting device reports otelCollector true, a runtime and a deployment type."""
    properties = capabilities.get("properties") or {}
    problems = []
    if properties.get("otelCollector") is not True:
        problems.append(f"otelCollector is {properties.get('otelCollector')!r}, not true")
    if not properties.get("supportedRuntimes"):
        problems.append("no supportedRuntimes")
    if not properties.get("supportedDeploymentTypes"):
        problems.append("no supportedDeploymentTypes")
    return problems


def runtime_problems(capabilities: Mapping[str, Any], deployment_type: str, runtime: str) -> list[str]:
    """DEV-007: a Compose device reports the Compose deployment type and an OCI container runtime."""
    properties = capabilities.get("properties") or {}
    problems = []
    for key, wanted in (("supportedDeploymentTypes", deployment_type), ("supportedRuntimes", runtime)):
        found = properties.get(key) or []
        if wanted not in found:
            problems.append(f"{key} {found!r} lacks {wanted!r}")
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


def error_messages(report: Mapping[str, Any]) -> list[str]:
    """The non-empty error messages of one report: the overall one and the components'."""
    errors = [(report.get("status") or {}).get("error")]
    errors += [c.get("error") for c in report.get("components") or [] if isinstance(c, Mapping)]
    return [
        str(e["message"]).strip()
        for e in errors
        if isinstance(e, Mapping) and str(e.get("message") or "").strip()
    ]


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
    (``declared`` names) nor its image sets, nor OBS-011 makes the device inject into every container."""
    own = set(declared) | set(image) | OBS_011_VARIABLES
    return [
        f"{name}={value}"
        for name, value in sorted(live.items())
        if name not in own and other.get(name) == value
    ]


def retry_gap(records: Sequence[Any], status: int) -> tuple[float, float] | None:
    """(time of the first answer with ``status``, time of the retry: the next request with the same
    method and path) or None. Other requests may come sooner (errata INC-140)."""
    refused = next((r for r in records if r.kind == "request" and r.status == status), None)
    if refused is None:
        return None
    after = [
        r
        for r in records
        if r.kind == "request"
        and r.time > refused.time
        and (r.method, r.path) == (refused.method, refused.path)
    ]
    return (refused.time, after[0].time) if after else None


def stored_etag_problems(before: Sequence[Any], poll: Any) -> list[str]:
    """DS-025: the first poll after a restart carries, in If-None-Match, the ETag of the last manifest
    the device was given (a 200 answer to GET /api/v1/deployments) before it."""
    given = [
        r.data.get("response_headers", {}).get("etag")
        for r in before
        if r.kind == "request" and r.method == "GET" and r.path == "/api/v1/deployments" and r.status == 200
    ]
    if not given or not given[-1]:
        return ["the transcript holds no manifest with an ETag before the restart"]
    sent = (poll.data.get("request_headers") or {}).get("if-none-match")
    if sent != given[-1]:
        return [
            f"the first poll after the restart sent If-None-Match {sent!r}; the stored ETag is {given[-1]!r}"
        ]
    return []


def weak_tls_problems(records: Iterable[Any]) -> list[str]:
    """TLS-005: connections whose handshake completed with a TLS version below 1.2."""
    return [
        f"connection {r.data.get('connection')} negotiated {r.data.get('tls_version')}"
        for r in records
        if r.kind == "connection" and r.data.get("tls_version") in WEAK_TLS
    ]
