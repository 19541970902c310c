"""The container runtime seen by the device agent: a small protocol, and an in-memory runtime for tests.

The agent decides *what* runs (desired state, digests, eligibility); a runtime only makes it so. The
Docker Compose v2 runtime (one project per deployment, labelled with the deployment id, archives pulled
from the OCI registry per SUP-01) implements the same protocol in a later module.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

STATES = ("pending", "installing", "installed", "failed", "removing", "removed")  # STAT-002


@dataclass(frozen=True)
class StatusError:
    """``{code, source, message}`` of a status report (STAT-005: all three given)."""

    code: str
    source: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "source": self.source, "message": self.message}


@dataclass(frozen=True)
class ComponentOutcome:
    """What became of one component of a deployment."""

    name: str
    state: str  # one of STATES
    error: StatusError | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"component state {self.state!r} is not one of {', '.join(STATES)}")


class Runtime(Protocol):
    """Where the deployments run."""

    def deploy(
        self, deployment_id: str, application_deployment: Mapping[str, Any], yaml_bytes: bytes
    ) -> list[ComponentOutcome]:
        """Install or update the deployment; one outcome per component, in list order (ADEP-008)."""
        ...

    def remove(self, deployment_id: str) -> None:
        """Remove every trace of the deployment; removing an unknown id is not an error."""
        ...

    def running(self) -> set[str]:
        """The deployment ids the runtime currently holds."""
        ...


def component_names(application_deployment: Mapping[str, Any]) -> list[str]:
    """The component names of an ApplicationDeployment, in list order ('' for a nameless entry)."""
    spec = application_deployment.get("spec")
    profile = spec.get("deploymentProfile") if isinstance(spec, Mapping) else None
    components = profile.get("components") if isinstance(profile, Mapping) else None
    if not isinstance(components, list):
        return []
    return [str(c.get("name", "")) if isinstance(c, Mapping) else "" for c in components]


class InMemoryRuntime:
    """Holds deployments in a dict. ``fail_components`` names components whose install fails (code
    ``install-failed``, source the component name, STAT-005). ``history`` records every call."""

    def __init__(self, fail_components: Iterable[str] = ()) -> None:
        self.fail_components = set(fail_components)
        self.deployed: dict[str, tuple[dict[str, Any], bytes]] = {}
        self.history: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def deploy(
        self, deployment_id: str, application_deployment: Mapping[str, Any], yaml_bytes: bytes
    ) -> list[ComponentOutcome]:
        outcomes = []
        for name in component_names(application_deployment):
            if name in self.fail_components:
                error = StatusError("install-failed", name, f"component {name!r} failed to start")
                outcomes.append(ComponentOutcome(name, "failed", error))
            else:
                outcomes.append(ComponentOutcome(name, "installed"))
        with self._lock:
            self.deployed[deployment_id] = (dict(application_deployment), bytes(yaml_bytes))
            self.history.append(("deploy", deployment_id))
        return outcomes

    def remove(self, deployment_id: str) -> None:
        with self._lock:
            self.deployed.pop(deployment_id, None)
            self.history.append(("remove", deployment_id))

    def running(self) -> set[str]:
        with self._lock:
            return set(self.deployed)

    def yaml_of(self, deployment_id: str) -> bytes | None:
        """The exact bytes the deployment was deployed from (tests compare digests)."""
        with self._lock:
            held = self.deployed.get(deployment_id)
        return held[1] if held else None
