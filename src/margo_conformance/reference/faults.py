"""The fault machinery both reference implementations share (DESIGN.md §3: faults as data).

A fault is ONE named violation of ONE requirement (a *mutant* when the self-test switches it on). A
*variant* is its dual: ONE named behaviour the spec allows but the reference does not choose, citing the
passage that allows it (``allowed_by``); the self-test runs every scenario against every variant and
each must pass. Both live in the same catalogue and are switched on the same way.

Each reference implementation keeps its own catalogue (``reference/wfm/faults.py``,
``reference/device/faults.py``) and asks ``faults.active(name)`` at the one place where the
faulty behaviour differs from the correct one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import UsageError


@dataclass(frozen=True)
class Fault:
    """One named violation of one requirement."""

    name: str
    requirement: str
    summary: str
    area: str  # where it acts, so a test or the self-test can probe just that area
    kind: str = "mutant"  # "mutant" (breaks ``requirement``) or "variant" (allowed by ``allowed_by``)
    allowed_by: str = ""  # for a variant: the spec passage or erratum that allows the behaviour

    def __post_init__(self) -> None:
        if self.kind not in ("mutant", "variant"):
            raise ValueError(f"fault {self.name}: kind must be mutant or variant, not {self.kind!r}")
        if (self.kind == "variant") != bool(self.allowed_by):
            raise ValueError(f"fault {self.name}: a variant, and only a variant, cites allowed_by")


def variant(name: str, requirement: str, summary: str, area: str, *, allowed_by: str) -> Fault:
    """A behaviour the spec allows (``requirement`` is the rule whose latitude it uses)."""
    return Fault(name, requirement, summary, area, kind="variant", allowed_by=allowed_by)


def catalogue(*faults: Fault) -> dict[str, Fault]:
    """The faults by name; a duplicate name is a programming error."""
    table: dict[str, Fault] = {}
    for fault in faults:
        if fault.name in table:
            raise ValueError(f"duplicate fault {fault.name}")
        table[fault.name] = fault
    return table


class FaultSet:
    """The faults switched on in one running subject; replaced as a whole at run time (thread-safe)."""

    def __init__(self, known: Mapping[str, Fault], names: Iterable[str] = (), *, kind: str = "fault") -> None:
        self._known, self._kind = known, kind
        self._lock = threading.Lock()
        self._active = self.check_names(names)

    def check_names(self, names: Iterable[str]) -> frozenset[str]:
        """The names as a set; an unknown name is a usage error that lists the known ones."""
        wanted = frozenset(names)
        unknown = sorted(wanted - self._known.keys())
        if unknown:
            raise UsageError(
                f"unknown {self._kind}(s) {', '.join(unknown)}; known: {', '.join(sorted(self._known))}"
            )
        return wanted

    def active(self, name: str) -> bool:
        """Whether ``name`` is switched on. A name outside the catalogue is a programming error."""
        if name not in self._known:
            raise KeyError(f"no {self._kind} named {name!r} in the catalogue")
        return name in self._active

    def replace(self, names: Iterable[str]) -> frozenset[str]:
        """Switch on exactly ``names``; returns the previous set."""
        wanted = self.check_names(names)
        with self._lock:
            previous, self._active = self._active, wanted
        return previous

    @property
    def names(self) -> frozenset[str]:
        return self._active
