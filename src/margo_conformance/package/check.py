"""``package check``: load an artifact from wherever it is, run every check that applies, report findings.

The artifact is a package (folder, gzip'd tar, ``oci://``) or one component artifact on its own (a
Compose archive, a Helm chart, or either in a registry), told apart by content (``KINDS``; ``kind``
forces one). What could not be fetched is listed as unreachable beside the findings on the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError
from ..findings import Findings
from .compose_archive import check_compose_archive
from .description import check_description
from .helm_chart import check_helm_chart
from .local_source import (
    load_compose_archive,
    load_from_archive,
    load_from_directory,
    load_helm_chart,
    local_kind,
)
from .model import LoadedPackage

KINDS = {
    "package": "a package folder: the Application Description at its root, components/ beside it",
    "package-archive": "a package folder as a gzip'd tar (.tar.gz)",
    "compose": "one Compose archive: a gzip'd tar of one folder holding compose.yaml (SUP-01 alone)",
    "helm": "one Helm chart: packaged (.tgz) or a chart folder",
    "oci-package": "oci://HOST/REPO:TAG of an application package (artifactType application/vnd.margo.app.v1"
    "+json)",
    "oci-component": "oci://HOST/REPO:TAG of one Compose or Helm component artifact",
}
"""What ``package check`` can judge; without ``--as`` the target's content decides."""

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

UNJUDGED_WHEN_UNREACHABLE = {
    "compose": ("REG-010", "REG-011", "REG-012", "REG-017", *COMPOSE_REQUIREMENTS),
    "helm": HELM_REQUIREMENTS,
    "custom": ("CUST-001",),
}
"""Per deployment type: what stays unjudged when a component's artifact cannot be fetched."""
OCI_COMPONENT_REQUIREMENTS = {"compose": ("REG-011", "REG-012", "REG-016", "REG-017"), "helm": ("REG-016",)}
"""What a lone component artifact in a registry is judged on beyond its archive's own rules."""


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
    kind: str = "package"
    unreachable: dict[str, str] = field(default_factory=dict)  # reference -> why it could not be fetched
    unjudged: set[str] = field(default_factory=set)  # requirements an unreachable part leaves open

    @property
    def conformant(self) -> bool:
        """No MUST finding and nothing left unchecked."""
        return self.findings.conformant and not self.unreachable

    @property
    def verdict(self) -> str:
        """A MUST finding decides even when parts were unreachable; else what was not fetched leaves the
        verdict open."""
        if not self.findings.conformant:
            return "non-conformant"
        return "incomplete" if self.unreachable else "conformant"

    def verdicts(self) -> dict[str, str]:
        """Per checked requirement: 'fail' (a MUST finding), 'warn' (only weaker findings), 'pass', or
        'not-checked' where no finding was made but an unreachable part leaves it open."""
        result = {
            rid: "not-checked" if rid in self.unjudged else "pass"
            for rid in sorted(self.checked | self.unjudged | self.findings.requirements())
        }
        for finding in self.findings:
            if finding.level.breaks_conformance:
                result[finding.requirement] = "fail"
            elif result[finding.requirement] in ("pass", "not-checked"):
                result[finding.requirement] = "warn"
        return result

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.origin,
            "kind": self.kind,
            "verdict": self.verdict,
            "findings": [f.as_dict() for f in self.findings],
            "requirements": self.verdicts(),
            "unreachable": sorted(self.unreachable),
            "notes": self.notes,
        }


def target_kind(target: str, kind: str | None = None) -> str:
    """The kind ``target`` is read as: ``kind`` when given (checked against the target's form), else
    what its content says; an ``oci://`` target's manifest decides later ("oci")."""
    remote = target.startswith("oci://")
    if kind is not None:
        if kind not in KINDS:
            raise UsageError(f"--as {kind!r}: expected one of {', '.join(KINDS)}")
        if remote != kind.startswith("oci-"):
            form = "an oci:// reference" if remote else "a local path"
            raise UsageError(f"--as {kind}: {target} is {form}")
        return kind
    if remote:
        return "oci"
    path = Path(target)
    if not path.exists():
        raise InputError(
            f"{target}: no such file or directory (expected a package folder, a .tar.gz or .tgz, or oci://…)"
        )
    return local_kind(path)


def load_package(target: str, *, timeout: float = 10.0, kind: str | None = None) -> LoadedPackage:
    """The artifact at ``target`` loaded as ``kind`` (``KINDS``; None: as its content says)."""
    kind = target_kind(target, kind)
    if target.startswith("oci://"):
        from .oci_source import load_from_oci  # network code only when asked for

        forced = {"oci-package": "package", "oci-component": "component"}.get(kind)
        return load_from_oci(target, timeout=timeout, kind=forced)
    path = Path(target)
    if kind == "compose":
        return load_compose_archive(path)
    if kind == "helm":
        return load_helm_chart(path)
    return load_from_directory(path) if path.is_dir() else load_from_archive(path)


def check_package(target: str, *, timeout: float = 10.0, kind: str | None = None) -> PackageReport:
    loaded = load_package(target, timeout=timeout, kind=kind)
    report = PackageReport(origin=loaded.origin, kind=loaded.kind, unreachable=dict(loaded.unreachable))
    report.findings.extend(loaded.findings)
    report.notes.extend(loaded.notes)
    # the reason names the reference (one line from the transport, as the CLI's errors do)
    report.notes.extend(f"not checked: {reason}" for _, reason in sorted(loaded.unreachable.items()))
    if loaded.kind == "oci-package":
        report.checked.update(OCI_REQUIREMENTS)
    if loaded.kind == "oci-component":
        report.checked.update(OCI_COMPONENT_REQUIREMENTS[loaded.components[0].deployment_type])
    if loaded.kind in ("package", "package-archive", "oci-package"):
        report.checked.add("PKG-001")
        if loaded.description_text is None:
            return report
        _, findings = check_description(
            loaded.description_text, loaded.description_location, loaded.resources
        )
        report.findings.extend(findings)
        report.checked.update(DESCRIPTION_REQUIREMENTS)
    # a package's components, or the lone component artifact the target is (judged by its own rules)
    for component in loaded.components:
        if component.unreachable:
            report.unjudged.update(UNJUDGED_WHEN_UNREACHABLE.get(component.deployment_type, ()))
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
