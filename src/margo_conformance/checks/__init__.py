"""The one shape of a check (house style, OIDF/schemathesis): a small verb-named function that decides
one thing about what the subject did and raises :class:`Violation` when the subject broke a rule.

A Violation names the requirement it is about, says what was expected and seen in words a vendor can act
on, and carries the evidence (a redacted transcript, a path, an observation). The scenario's
``@level:`` decides what it means (must: fail, should: a warning); a collector (the package persona's
findings) gathers Violations instead of stopping at the first.

Checks import nothing from ``reference/`` and no test driver (pytest, docker, requests): an architecture
test keeps it so, so that a misreading shared with the reference implementation cannot hide.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Violation(AssertionError):
    """The subject broke ``requirement``: ``message`` says how, ``evidence`` shows it."""

    requirement: str
    message: str
    evidence: str = ""

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        head = f"{self.requirement}: {self.message}" if self.requirement else self.message
        return f"{head}\n{self.evidence}" if self.evidence else head


__all__ = ["Violation"]
