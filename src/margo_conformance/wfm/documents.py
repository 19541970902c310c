"""Request bodies the virtual client sends: valid rc.3 documents and deliberately broken ones.

Valid builders produce documents our schemas accept (tests prove it); each broken builder breaks exactly
one thing, named in its docstring, so a WFM's answer can be judged against one rule.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

MALFORMED_JSON: bytes = b'{"properties": {'  # not JSON at all: a WFM answers 400 #invalid-request

HOSTING_FIELDS = (
    "cpus",
    "memory",
    "storage",
    "peripherals",
    "interfaces",
    "otelCollector",
    "supportedRuntimes",
    "supportedDeploymentTypes",
)


def make_capabilities(
    device_id: str, *, hosting: bool = True, labels: Mapping[str, Any] | None = None, **properties: Any
) -> dict[str, Any]:
    """A valid rc.3 DeviceCapabilitiesManifest for ``device_id``.

    A hosting device reports every hosting field (CAP-004); ``hosting=False`` gives a see-thru gateway
    that hosts nothing and sends only its identity fields (CAP-009). ``properties`` override or add
    members of ``properties``; ``labels`` become the top-level labels object.
    """
    reported: dict[str, Any] = {
        "id": device_id,
        "vendor": "Margo Conformance Suite",
        "modelNumber": "virtual-device-1",
        "serialNumber": f"VC-{device_id.replace('/', '-')}",
    }
    if hosting:
        reported.update(
            cpus=[{"cores": 4, "architecture": "amd64"}],
            memory="4Gi",
            storage="32Gi",
            peripherals=[{"type": "display", "manufacturer": "Virtual", "model": "vd-1"}],
            interfaces=[{"type": "ethernet"}],
            otelCollector=True,
            supportedRuntimes=["oci"],
            supportedDeploymentTypes=["compose"],
        )
    reported.update(copy.deepcopy(properties))
    document: dict[str, Any] = {"properties": reported}
    if labels is not None:
        document["labels"] = copy.deepcopy(dict(labels))
    return document


def make_status(
    deployment_id: str,
    *,
    adopted_manifest_version: int,
    state: str = "installed",
    components: Sequence[str] = ("app",),
    device_id: str | None = None,
) -> dict[str, Any]:
    """A valid rc.3 DeploymentStatusManifest: every component in ``state``, so the roll-up is ``state``."""
    document: dict[str, Any] = {
        "deploymentId": deployment_id,
        "adoptedManifestVersion": adopted_manifest_version,
        "status": {"state": state},
        "components": [{"name": name, "state": state} for name in components],
    }
    if device_id is not None:
        document["deviceId"] = device_id
    return document


def make_capabilities_with_envelope(device_id: str) -> dict[str, Any]:
    """The rc.1 shape: apiVersion/kind around the properties; rc.3's closed top level rejects it (INC-008)."""
    return {
        "apiVersion": "device.margo/v1",
        "kind": "DeviceCapabilitiesManifest",
        **make_capabilities(device_id),
    }


def make_capabilities_semantic_error(device_id: str) -> dict[str, Any]:
    """Well-formed JSON whose cpu architecture is outside the enum (amd64|arm64|arm): a 422 case.

    The architecture enum is used rather than supportedRuntimes because CAP-006 lets a WFM default an
    unknown runtime or deployment type to ``custom``.
    """
    return make_capabilities(device_id, cpus=[{"cores": 4, "architecture": "sparc64"}])


def make_status_schema_invalid(deployment_id: str) -> dict[str, Any]:
    """A status whose state ``running`` is not one of the six rc.3 states (STAT-002): a 422 case."""
    document = make_status(deployment_id, adopted_manifest_version=1, state="installed")
    document["status"]["state"] = "running"
    for component in document["components"]:
        component["state"] = "running"
    return document
