"""The device's capabilities document (DeviceCapabilitiesManifest, CAP-001..005) from host facts.

``host_capabilities`` reads what Linux tells about the host: processors and architecture
(/proc/cpuinfo, ``platform``), memory (/proc/meminfo MemTotal), free storage under the state folder
(``os.statvfs``), network interfaces (/sys/class/net) and, where readable, vendor/model/serial from DMI.
Reported resources should be the share reserved for Margo (CAP-003); without an operator setting the
reference device offers what the host has. ``otelCollector`` is reported true as a hosting device must
(CAP-004); the runtime stage provides the collector.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
MIB = 1024 * 1024
GIB = 1024 * MIB


def architecture() -> str:
    machine = platform.machine().lower()
    if machine in ARCHITECTURES:
        return ARCHITECTURES[machine]
    return "arm" if machine.startswith("arm") else "amd64"


def cpu_count(cpuinfo: Path = Path("/proc/cpuinfo")) -> int:
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return os.cpu_count() or 1
    count = sum(1 for line in text.splitlines() if line.split(":")[0].strip() == "processor")
    return count or os.cpu_count() or 1


def memory_bytes(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in meminfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def storage_bytes(path: Path) -> int | None:
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def interfaces(net: Path = Path("/sys/class/net")) -> list[dict[str, str]]:
    kinds: set[str] = set()
    try:
        names = [p.name for p in net.iterdir()]
    except OSError:
        names = []
    for name in names:
        if name.startswith(("wl", "wlan")):
            kinds.add("wifi")
        elif name != "lo":
            kinds.add("ethernet")
    return [{"type": kind} for kind in sorted(kinds or {"ethernet"})]


def _dmi(name: str, default: str) -> str:
    try:
        value = Path("/sys/class/dmi/id", name).read_text(encoding="utf-8").strip()
    except OSError:
        return default
    return value or default


def host_capabilities(
    device_id: str, *, storage_path: Path = Path("/"), labels: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A hosting device's capabilities from this host's facts (CAP-004: every hosting field)."""
    memory = memory_bytes()
    storage = storage_bytes(storage_path)
    properties: dict[str, Any] = {
        "id": device_id,
        "vendor": _dmi("sys_vendor", "margo-conformance"),
        "modelNumber": _dmi("product_name", "reference-device"),
        "serialNumber": _dmi("product_serial", device_id),
        "cpus": [{"cores": cpu_count(), "architecture": architecture()}],
        "memory": f"{memory // MIB}Mi" if memory else "0Mi",
        "storage": f"{storage // GIB}Gi" if storage else "0Gi",
        "peripherals": [],
        "interfaces": interfaces(),
        "otelCollector": True,
        "supportedRuntimes": ["oci"],
        "supportedDeploymentTypes": ["compose"],
    }
    document: dict[str, Any] = {"properties": properties}
    if labels:
        document["labels"] = dict(labels)
    return document
