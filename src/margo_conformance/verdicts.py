"""Verdicts, ordered so that the worst child wins when results are rolled up."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Verdict(StrEnum):
    """Outcome of a scenario, a requirement or a profile (DESIGN.md §5)."""

    NOT_APPLICABLE = "not-applicable"
    PASS = "pass"
    SKIPPED = "skipped"
    BLOCKED = "blocked"
    INCONCLUSIVE = "inconclusive"
    FAIL = "fail"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    @classmethod
    def worst(cls, verdicts: Iterable[Verdict]) -> Verdict:
        """The most severe verdict; NOT_APPLICABLE when there is nothing to roll up."""
        return max(verdicts, key=lambda v: v.rank, default=cls.NOT_APPLICABLE)


_ORDER = list(Verdict)
