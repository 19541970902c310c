"""Expectations the package scenarios assert, as checks that raise (never a status to drop).

A ``Violation`` (checks: requirement, message, evidence = every collected finding) is a finding
against the subject (verdict fail); ``Blocked`` means the
scenario could not establish what it needs to judge (verdict blocked) — e.g. no Compose archive
was available, so a rule about archives could not be evaluated and must not pass by default.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..checks import Violation
from ..errors import Blocked
from ..findings import Finding, Level
from ..registry import Registry
from .check import PackageReport


def _described(findings: Sequence[tuple[str, Finding]]) -> str:
    return "\n".join(f"  {origin}: [{f.level.value}] {f.location}: {f.message}" for origin, f in findings)


def _findings(reports: Sequence[PackageReport], requirement: str, level: Level) -> list[tuple[str, Finding]]:
    Registry.load().get(requirement)  # an unknown ID in a step is a suite defect: fail loudly
    return [
        (r.origin, f)
        for r in reports
        for f in r.findings
        if f.requirement == requirement and f.level is level
    ]


def ensure_evaluated(reports: Sequence[PackageReport], requirement: str) -> None:
    """At least one package was actually checked against the requirement."""
    if not any(requirement in r.checked for r in reports):
        raise Blocked(f"no package under test could be checked against {requirement}")


def ensure_meets(reports: Sequence[PackageReport], requirement: str) -> None:
    """No package has a MUST-level finding for the requirement."""
    ensure_evaluated(reports, requirement)
    found = _findings(reports, requirement, Level.MUST)
    if found:
        raise Violation(requirement, "is broken:", _described(found))


def ensure_meets_recommendation(reports: Sequence[PackageReport], requirement: str) -> None:
    """No package departs from the SHOULD part of the requirement."""
    ensure_evaluated(reports, requirement)
    found = _findings(reports, requirement, Level.SHOULD)
    if found:
        raise Violation(requirement, "(recommendation) is not followed:", _described(found))


def ensure_artifacts_checked(reports: Sequence[PackageReport], deployment_type: str) -> None:
    """Every component of this type had its artifact checked, and at least one was."""
    missing = [
        f"{r.origin}: {name}"
        for r in reports
        for name, kind in r.unchecked_components
        if kind == deployment_type
    ]
    if missing:
        raise Blocked(f"{deployment_type} artifacts not available to check: {', '.join(missing)}")
    if not any(deployment_type in r.checked_components for r in reports):
        raise Blocked(f"no package under test has a {deployment_type} component")


def ensure_refused(report: PackageReport, requirement: str) -> None:
    """The package is non-conformant and a MUST finding names the requirement; else show everything."""
    found = _findings([report], requirement, Level.MUST)
    if report.conformant or not found:
        everything = _described([(report.origin, f) for f in report.findings]) or "  (no findings)"
        raise Violation(
            requirement,
            f"expected {report.origin} to be refused; the checker reported:",
            everything,
        )


def ensure_departs_from_recommendation(report: PackageReport, requirement: str) -> None:
    """The package stays conformant, with a SHOULD finding naming the requirement."""
    found = _findings([report], requirement, Level.SHOULD)
    if not report.conformant or not found:
        everything = _described([(report.origin, f) for f in report.findings]) or "  (no findings)"
        raise Violation(
            requirement,
            f"expected {report.origin} to stay conformant with a {requirement} warning; reported:",
            everything,
        )
