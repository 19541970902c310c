"""Checks over the workloads a device runs, as the suite's observer found them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import Violation

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


class Workload(Protocol):
    """One container the observer found (the observer's Workload)."""

    @property
    def name(self) -> str: ...
    @property
    def running(self) -> bool: ...
    @property
    def security(self) -> Mapping[str, Any]: ...
    @property
    def env(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class WorkloadState:
    """One container as the scenario remembered it: ``instance`` (container id and start time) changes
    on every restart or re-creation, ``running`` and ``env`` only when it is configured otherwise."""

    name: str
    instance: str
    running: bool
    env: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class NetworkProbe:
    """What a probe container on one network of a deployment reached: the deployment's own service
    (``control``, None when it has no address there) and the other vendor's addresses it reached."""

    network: str
    control: str | None
    control_answered: bool
    reached: tuple[str, ...] = ()


@dataclass(frozen=True)
class SeenEnvironment:
    """The environment one running container really has, and what the other vendor's configured."""

    container: str
    live: Mapping[str, str]
    other: Mapping[str, str]
    declared: frozenset[str] = frozenset()
    image: Mapping[str, str] = field(default_factory=dict)


def _refuse(problems: Sequence[str], requirement: str, what: str) -> None:
    if problems:
        raise Violation(requirement, what, "\n".join(problems))


def ensure_unprivileged(workloads: Iterable[Workload]) -> None:
    """ISO-103: no privileged mode, no host network/PID/IPC namespace."""
    problems = []
    for w in workloads:
        if w.security.get("privileged"):
            problems.append(f"{w.name} is privileged")
        for key, what in (("network_mode", "network"), ("pid_mode", "PID"), ("ipc_mode", "IPC")):
            if str(w.security.get(key)) == HOST_NAMESPACE:
                problems.append(f"{w.name} uses the host's {what} namespace")
    _refuse(problems, "ISO-103", "a workload is privileged or in a host namespace")


def ensure_no_shared_mounts(first: Iterable[Workload], second: Iterable[Workload]) -> None:
    """ISO-102: no mount source (volume name, host path) is used by both sets of workloads."""

    def sources(workloads: Iterable[Workload]) -> dict[str, str]:
        found: dict[str, str] = {}
        for w in workloads:
            for mount in w.security.get("mounts") or []:
                key = mount.get("name") or mount.get("source")
                if key:
                    found[str(key)] = f"{w.name}:{mount.get('destination')}"
        return found

    a, b = sources(first), sources(second)
    shared = [f"{a[key]} and {b[key]} share {key}" for key in sorted(set(a) & set(b))]
    _refuse(shared, "ISO-102", "the vendors share a mount source")


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


def ensure_not_running(workloads: Iterable[Workload], requirement: str = "") -> None:
    found = [w.name for w in workloads if w.running]
    if found:
        raise Violation(requirement, "the deployment runs", str(found))


def ensure_runs_with(workloads: Iterable[Workload], name: str, value: str) -> None:
    """DS-026: every running container of the deployment has the variable the change set."""
    seen = [w.env.get(name) for w in workloads if w.running]
    if not seen or any(v != value for v in seen):
        raise Violation("DS-026", f"{name} in the running containers: {seen}, want {value!r}")


def ensure_limits(workloads: Iterable[Workload], cpus: float, memory_bytes: int) -> None:
    """ISO-105: each running container has the CPU and memory limits its package asks for."""
    seen = [(w.security.get("cpus"), w.security.get("memory")) for w in workloads if w.running]
    if not seen or any((c, m) != (cpus, memory_bytes) for c, m in seen):
        raise Violation(
            "ISO-105", f"(cpus, memory bytes) per running container: {seen}, want {(cpus, memory_bytes)}"
        )


def ensure_serves(workloads: Iterable[Workload], fetch: Callable[[], str], mark: str) -> None:
    """DS-026: the deployment runs, and then its published port serves its page (``fetch``)."""
    if not any(w.running for w in workloads):
        raise Violation("DS-026", "no running container of the deployment")
    page = fetch()
    if mark not in page:
        raise Violation("DS-026", "the published port does not serve the application", repr(page[:200]))


def ensure_unreachable(probes: Sequence[NetworkProbe], port: int) -> None:
    """ISO-101: on every network of the deployment its own service answers (so a closed port means
    something) and none of the other vendor's addresses does."""
    problems = []
    for probe in probes:
        if probe.control is not None and not probe.control_answered:
            problems.append(
                f"on {probe.network} the deployment's own service did not answer: the probe proves nothing"
            )
        problems += [
            f"on {probe.network} {address}:{port} of the other vendor is reachable"
            for address in probe.reached
        ]
    _refuse(problems, "ISO-101", "the other vendor's service is reachable, or the probe proves nothing")


def ensure_runs_as(users: Mapping[str, str], uid: int) -> None:
    """ISO-104: each running container's processes run as ``uid`` (``users``: container -> ``id -u``)."""
    if not users:
        raise Violation("ISO-104", "no running container of the deployment")
    wrong = [f"{name} runs as uid {value}" for name, value in users.items() if value != str(uid)]
    _refuse(wrong, "ISO-104", f"a container does not run as uid {uid}, as its package asks")


def ensure_no_leaked_environment(seen: Iterable[SeenEnvironment]) -> None:
    """ISO-106: no container sees a variable only the other vendor configured."""
    leaks = [
        f"{s.container} sees {leak}"
        for s in seen
        for leak in leaked_environment(s.live, s.other, s.declared, s.image)
    ]
    _refuse(leaks, "ISO-106", "a container sees the other vendor's environment")


def ensure_untouched(
    before: Sequence[WorkloadState], now: Sequence[WorkloadState], requirement: str = ""
) -> None:
    """The deployment's containers are the very ones it had (not restarted, recreated or reconfigured)."""
    if list(now) == list(before):
        return
    old, new = {w.name: w for w in before}, {w.name: w for w in now}
    problems = [f"container {name} is gone" for name in sorted(set(old) - set(new))]
    problems += [f"container {name} is new" for name in sorted(set(new) - set(old))]
    problems += [
        f"container {name} was restarted, recreated or reconfigured"
        for name in sorted(set(old) & set(new))
        if old[name] != new[name]
    ]
    raise Violation(requirement, "the deployment's workloads changed", "\n".join(problems or ["(order)"]))


def ensure_same_configuration(
    before: Sequence[WorkloadState], now: Sequence[WorkloadState], requirement: str = "DS-024"
) -> None:
    """The deployment's containers run as configured before; a restart of the same configuration is
    not a difference (DS-025 binds the stored state, not the workloads' uptime)."""
    old = {w.name: (w.running, w.env) for w in before}
    new = {w.name: (w.running, w.env) for w in now}
    changed = [
        f"container {name} is gone, new, stopped or configured otherwise"
        for name in sorted(set(old) | set(new))
        if old.get(name) != new.get(name)
    ]
    _refuse(changed, requirement, "the deployment's workloads changed")
