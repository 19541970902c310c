"""Findings: what a check observed about the subject, stamped with a requirement ID and level."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from .checks import Violation


class Level(StrEnum):
    """RFC 2119 strength of the requirement a finding is about."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"

    @property
    def breaks_conformance(self) -> bool:
        """Only a MUST violation makes a subject non-conformant; SHOULD is a warning."""
        return self is Level.MUST


@dataclass(frozen=True)
class Finding:
    """One violation of one requirement at one place."""

    requirement: str
    level: Level
    location: str
    message: str

    @classmethod
    def of(cls, violation: Violation, level: Level) -> Finding:
        """A check's Violation, collected at the level of the requirement (the evidence is where)."""
        return cls(violation.requirement, level, violation.evidence, violation.message)

    def violation(self) -> Violation:
        """The finding as the one shape of a check: requirement, message, evidence (its location)."""
        return Violation(self.requirement, self.message, self.location)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["level"] = self.level.value
        return data


@dataclass
class Findings:
    """An ordered collection of findings built up by the checks of one subject."""

    items: list[Finding] = field(default_factory=list)
    # The same findings as a set: ``add`` stays linear in the number of findings (a hostile description
    # with 100,000 unknown keys makes 100,000 findings; ``in list`` made that quadratic).
    _seen: set[Finding] = field(default_factory=set, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._seen.update(self.items)

    def add(self, finding: Finding) -> None:
        if finding not in self._seen:
            self._seen.add(finding)
            self.items.append(finding)

    def extend(self, findings: Findings | list[Finding]) -> None:
        for finding in findings.items if isinstance(findings, Findings) else findings:
            self.add(finding)

    @property
    def conformant(self) -> bool:
        return not any(f.level.breaks_conformance for f in self.items)

    def requirements(self) -> set[str]:
        return {f.requirement for f in self.items}

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
