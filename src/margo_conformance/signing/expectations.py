"""What the signing scenarios assert about a package's signature check, as checks that raise.

Refusal and "reported but allowed" reuse the package persona's expectations on the check's report;
a ``Violation`` always carries every finding and note as evidence, so a wrong verdict explains itself.
"""

from __future__ import annotations

from ..checks import Violation
from ..package import expectations as package
from .package_check import SignatureCheck
from .policy import Outcome


def _everything(check: SignatureCheck) -> str:
    lines = [f"  [{f.level.value}] {f.requirement} {f.location}: {f.message}" for f in check.findings]
    lines += [f"  note: {note}" for note in check.notes]
    return "\n".join(lines) or "  (no findings, no notes)"


def ensure_accepted(check: SignatureCheck) -> None:
    """Every signed artifact verified, and nothing was reported against the package."""
    unverified = [v for v in check.verdicts if v.verdict.outcome is not Outcome.VERIFIED]
    if unverified or len(check.findings) or not check.verdicts:
        raise Violation(
            "", f"expected {check.reference} to verify cleanly; the check reported:", _everything(check)
        )


def ensure_refused(check: SignatureCheck, requirement: str, validation: str) -> None:
    """Refused with a MUST finding of the requirement, raised by the named Notary validation."""
    package.ensure_refused(check.report(), requirement)
    if not any(
        f.requirement == requirement and f.message.startswith(f"{validation}: ") for f in check.findings
    ):
        raise Violation(
            requirement,
            f"expected the finding on {check.reference} to come from the {validation!r} validation; "
            "the check reported:",
            _everything(check),
        )


def ensure_logged(check: SignatureCheck, requirement: str) -> None:
    """Not refused, and the failed validation is reported (at SHOULD level) under the requirement."""
    package.ensure_departs_from_recommendation(check.report(), requirement)


def ensure_not_examined(check: SignatureCheck) -> None:
    """No signature was looked at (skip level, or no trust policy for the scope) and nothing refused."""
    if check.examined or len(check.findings):
        raise Violation(
            "SIGN-111",
            f"expected no signature of {check.reference} to be examined; the check reported:",
            _everything(check),
        )
