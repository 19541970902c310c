"""``package check``: load a package from wherever it is, run every package check, report findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..findings import Findings
from .compose_archive import check_compose_archive
from .description import check_description
from .helm_chart import check_helm_chart
from .local_source import load_from_archive, load_from_directory
from .model import LoadedPackage

# Requirements each stage evaluates, so a report can say "pass" for what was checked and found clean.
DESCRIPTION_REQUIREMENTS = (
    "PKG-001",
    "PKG-002",
    "PKG-003",
    "PKG-101",
    "APPD-006",
    "APPD-009",
    "ELIG-007",
    "EXT-005",
    "APPD-101",
    "APPD-102",
    "APPD-103",
    "APPD-104",
    "APPD-105",
    "APPD-106",
    "APPD-107",
    "APPD-108",
    "APPD-109",
    "EXT-003",
    "EXT-004",
    "ELIG-011",
    "ELIG-012",
    "ELIG-013",
    "ELIG-014",
    "ELIG-015",
)
COMPOSE_REQUIREMENTS = ("REG-013", "REG-014", "REG-015")
HELM_REQUIREMENTS = ("APPD-110", "APPD-004")
OCI_REQUIREMENTS = (
    "CUST-001",
    "REG-005",
    "REG-007",
    "REG-008",
    "REG-009",
    "REG-010",
    "REG-011",
    "REG-012",
    "REG-016",
    "REG-017",
)


@dataclass
class PackageReport:
    origin: str
    findings: Findings = field(default_factory=Findings)
    notes: list[str] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)
    unchecked_components: list[tuple[str, str]] = field(default_factory=list)  # (name, deployment type)
    checked_components: list[str] = field(
        default_factory=list
    )  # deployment types whose artifacts were checked

    @property
    def conformant(self) -> bool:
        return self.findings.conformant

    def verdicts(self) -> dict[str, str]:
        """Per checked requirement: 'fail' (a MUST finding), 'warn' (only weaker findings) or 'pass'."""
        result = {rid: "pass" for rid in sorted(self.checked | self.findings.requirements())}
        for finding in self.findings:
            if finding.level.breaks_conformance:
                result[finding.requirement] = "fail"
            elif result[finding.requirement] == "pass":
                result[finding.requirement] = "warn"
        return result

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.origin,
            "verdict": "conformant" if self.conformant else "non-conformant",
            "findings": [f.as_dict() for f in self.findings],
            "requirements": self.verdicts(),
            "notes": self.notes,
        }


def load_package(target: str, *, timeout: float = 10.0) -> LoadedPackage:
    if target.startswith("oci://"):
        from .oci_source import load_from_oci  # network code only when asked for

        return load_from_oci(target, timeout=timeout)
    path = Path(target)
    if path.is_dir():
        return load_from_directory(path)
    if path.is_file():
        return load_from_archive(path)
    raise InputError(
        f"{target}: no such file or directory (expected a package directory, a .tar.gz or oci://…)"
    )


def check_package(target: str, *, timeout: float = 10.0) -> PackageReport:
    loaded = load_package(target, timeout=timeout)
    report = PackageReport(origin=loaded.origin)
    report.findings.extend(loaded.findings)
    report.checked.add("PKG-001")
    if target.startswith("oci://"):
        report.checked.update(OCI_REQUIREMENTS)
    if loaded.description_text is None:
        return report
    _, findings = check_description(loaded.description_text, loaded.description_location, loaded.resources)
    report.findings.extend(findings)
    report.checked.update(DESCRIPTION_REQUIREMENTS)
    for component in loaded.components:
        report.findings.extend(
            _check_component(
                component.deployment_type, component.archive, component.name, component.location, report
            )
        )
    return report


def _check_component(
    kind: str, archive: bytes | None, name: str, location: str, report: PackageReport
) -> Findings:
    if kind not in ("compose", "helm"):
        report.notes.append(f"component {name!r}: deployment type {kind!r} has no artifact checks")
        return Findings()
    if archive is None:
        report.unchecked_components.append((name, kind))
        report.notes.append(
            f"component {name!r}: no {kind} artifact at {location}; its archive was not checked"
        )
        return Findings()
    report.checked_components.append(kind)
    if kind == "compose":
        report.checked.update(COMPOSE_REQUIREMENTS)
        return check_compose_archive(archive, component=name, location=location)
    report.checked.update(HELM_REQUIREMENTS)
    return check_helm_chart(archive, component=name, location=location)
