"""The requirement registry of a pin: every normative requirement with an ID, level, persona and source.

The registry is data (``pins/<pin>/requirements.yaml``); this module loads and validates it so that
a malformed entry or a scenario tag naming an unknown ID is caught before anything runs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from . import DEFAULT_PIN
from .errors import RegistryError
from .findings import Finding, Level
from .paths import pin_dir

PERSONAS = ("package", "wfm", "device", "mis", "interop")
PROFILES = ("core", "compose", "helm", "custom", "gateway", "isolation", "signing", "observability", "legacy")
ID_PATTERN = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*-[0-9]{3}$")
_FIELDS = {
    "id",
    "persona",
    "level",
    "profile",
    "summary",
    "source",
    "protocol",
    "errata",
    "testable",
    "why",
    "deferred",
}


@dataclass(frozen=True)
class Source:
    """Where the requirement is stated: a file in the spec repository at a commit, and a section."""

    key: str
    repository: str
    path: str
    commit: str
    section: str

    def cite(self) -> str:
        return f"{self.repository}@{self.commit[:12]}:{self.path} §{self.section}"


@dataclass(frozen=True)
class Requirement:
    id: str
    personas: tuple[str, ...]
    level: Level
    profile: str
    summary: str
    source: Source
    protocol_ids: tuple[str, ...] = ()
    errata: tuple[str, ...] = ()
    testable: bool = True
    why: str = ""
    deferred: str = ""  # testable, but no scenario yet: why, and what would cover it


@dataclass(frozen=True)
class Registry:
    pin: str
    requirements: dict[str, Requirement]

    @classmethod
    def load(cls, pin: str = DEFAULT_PIN) -> Registry:
        return _load(pin)

    def get(self, requirement_id: str) -> Requirement:
        try:
            return self.requirements[requirement_id]
        except KeyError:
            raise RegistryError(f"requirement {requirement_id!r} is not in the {self.pin} registry") from None

    def __contains__(self, requirement_id: object) -> bool:
        return requirement_id in self.requirements

    def select(
        self, *, persona: str | None = None, level: Level | None = None, profile: str | None = None
    ) -> list[Requirement]:
        return [
            r
            for r in self.requirements.values()
            if (persona is None or persona in r.personas)
            and (level is None or r.level is level)
            and (profile is None or r.profile == profile)
        ]

    def uncovered(self, covered: Iterable[tuple[str, str]], **selection: Any) -> list[Requirement]:
        """Testable MUST requirements of the selection that no scenario of a matching persona covers.

        ``covered`` holds (requirement id, persona) pairs taken from scenario tags.
        """
        pairs = set(covered)
        persona = selection.get("persona")
        return [
            r
            for r in self.select(level=Level.MUST, **selection)
            if r.testable
            and not any((r.id, p) in pairs for p in r.personas if persona is None or p == persona)
        ]


@cache
def _load(pin: str) -> Registry:
    path = pin_dir(pin) / "requirements.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"{path}: cannot read the requirement registry: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("requirements"), list):
        raise RegistryError(f"{path}: expected a mapping with a 'requirements' list")
    sources = data.get("sources") or {}
    problems: list[str] = []
    requirements: dict[str, Requirement] = {}
    for index, entry in enumerate(data["requirements"]):
        where = f"{path.name} requirements[{index}]"
        try:
            requirement = _parse_entry(entry, sources)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if requirement.id in requirements:
            problems.append(f"{where}: duplicate id {requirement.id}")
        requirements[requirement.id] = requirement
    touched = _errata_touching(pin)
    named = {rid for rids in touched.values() for rid in rids if ID_PATTERN.match(rid)}  # not schema names
    unknown = sorted(named - requirements.keys())
    if unknown:
        problems.append(f"errata.yaml: 'touches' names requirements the registry lacks: {unknown}")
    if problems:
        raise RegistryError("malformed requirement registry:\n  " + "\n  ".join(problems))
    for rid, requirement in requirements.items():  # the errata that touch a requirement are its errata too
        extra = sorted(e for e, rids in touched.items() if rid in rids and e not in requirement.errata)
        if extra:
            requirements[rid] = dataclasses.replace(requirement, errata=(*requirement.errata, *extra))
    return Registry(pin=pin, requirements=requirements)


def _errata_touching(pin: str) -> dict[str, frozenset[str]]:
    """Erratum id -> the requirements it says it touches (errata.yaml), so that every report shows the
    reading wherever it decided a verdict, not only the digest's INC-001..024 listed in the registry."""
    return {
        str(e["id"]): frozenset(str(t) for t in e.get("touches") or ())
        for e in errata_entries(pin)
        if "id" in e
    }


@cache
def errata_entries(pin: str = DEFAULT_PIN) -> tuple[dict[str, Any], ...]:
    """The pin's errata (errata.yaml), read once: the registry links them to requirements, reports quote
    their title and reading."""
    path = pin_dir(pin) / "errata.yaml"
    if not path.is_file():
        return ()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"{path}: cannot read the errata: {exc}") from exc
    return tuple(e for e in data.get("errata") or [] if isinstance(e, dict))


def _parse_entry(entry: Any, sources: dict[str, Any]) -> Requirement:
    if not isinstance(entry, dict):
        raise ValueError("entry is not a mapping")
    unknown = set(entry) - _FIELDS
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}")
    rid = entry.get("id")
    if not isinstance(rid, str) or not ID_PATTERN.match(rid):
        raise ValueError(f"id {rid!r} does not match {ID_PATTERN.pattern}")
    personas = entry.get("persona")
    if isinstance(personas, str):
        personas = [personas]
    if not personas or not all(p in PERSONAS for p in personas):
        raise ValueError(f"{rid}: persona {personas!r} not in {PERSONAS}")
    try:
        level = Level(str(entry.get("level")))
    except ValueError:
        raise ValueError(f"{rid}: level {entry.get('level')!r} not one of MUST/SHOULD/MAY") from None
    profile = entry.get("profile")
    if profile not in PROFILES:
        raise ValueError(f"{rid}: profile {profile!r} not in {PROFILES}")
    summary = entry.get("summary")
    if not isinstance(summary, str) or len(summary.strip()) < 10:
        raise ValueError(f"{rid}: summary missing or too short")
    testable = entry.get("testable", True)
    why = entry.get("why", "")
    if testable is False and not why:
        raise ValueError(f"{rid}: testable: false needs a 'why'")
    return Requirement(
        id=rid,
        personas=tuple(personas),
        level=level,
        profile=profile,
        summary=" ".join(summary.split()),
        source=_parse_source(rid, entry.get("source"), sources),
        protocol_ids=tuple(entry.get("protocol") or ()),
        errata=tuple(entry.get("errata") or ()),
        testable=bool(testable),
        why=" ".join(str(why).split()),
        deferred=" ".join(str(entry.get("deferred", "")).split()),
    )


def _parse_source(rid: str, source: Any, sources: dict[str, Any]) -> Source:
    if not isinstance(source, dict) or "key" not in source or "section" not in source:
        raise ValueError(f"{rid}: source must be {{key, section}}")
    key = source["key"]
    known = sources.get(key)
    if not isinstance(known, dict) or not {"repository", "path", "commit"} <= set(known):
        raise ValueError(
            f"{rid}: source key {key!r} is not defined under 'sources' with repository/path/commit"
        )
    return Source(
        key=key,
        repository=str(known["repository"]),
        path=str(known["path"]),
        commit=str(known["commit"]),
        section=str(source["section"]),
    )


def make_finding(
    requirement_id: str, location: str, message: str, *, level: Level | None = None, pin: str = DEFAULT_PIN
) -> Finding:
    """A finding stamped with the requirement's level from the registry (or an explicit narrower level,
    for compound requirements such as 'MUST … SHOULD …')."""
    requirement = Registry.load(pin).get(requirement_id)
    return Finding(
        requirement=requirement_id, level=level or requirement.level, location=location, message=message
    )
