"""The scenario catalogue: every scenario of features/ with its tags, read without running pytest.

Used by ``requirements --uncovered`` and by the project's tests (unknown requirement IDs, missing tags).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gherkin.parser import Parser

TAG_FAMILIES = ("req", "persona", "level", "profile")
CHECKER_TAG = "checker"  # scenarios that judge the suite's own fixtures (the checker's proof)


@dataclass(frozen=True)
class ScenarioInfo:
    feature: Path
    name: str
    line: int
    tags: tuple[str, ...]  # without '@', feature tags included

    def values(self, family: str) -> list[str]:
        prefix = f"{family}:"
        return [tag[len(prefix) :] for tag in self.tags if tag.startswith(prefix)]

    @property
    def checker(self) -> bool:
        """Judges the suite's own fixtures: proof of the checker, covering nothing of a subject."""
        return CHECKER_TAG in self.tags

    @property
    def where(self) -> str:
        return f"{self.feature}:{self.line}"


def scenarios(features_dir: Path) -> list[ScenarioInfo]:
    found: list[ScenarioInfo] = []
    for path in sorted(features_dir.rglob("*.feature")):
        document: Any = Parser().parse(path.read_text(encoding="utf-8"))  # a TypedDict tree
        feature: dict[str, Any] = document.get("feature") or {}
        feature_tags = [t["name"].lstrip("@") for t in feature.get("tags", [])]
        for child in feature.get("children", []):
            scenario = child.get("scenario")
            if scenario is None:
                continue
            tags = feature_tags + [t["name"].lstrip("@") for t in scenario.get("tags", [])]
            for examples in scenario.get("examples", []):
                tags += [t["name"].lstrip("@") for t in examples.get("tags", [])]
            found.append(ScenarioInfo(path, scenario["name"], scenario["location"]["line"], tuple(tags)))
    return found


def covered_pairs(features_dir: Path) -> set[tuple[str, str]]:
    """(requirement id, persona) for every @req tag of every scenario that judges a subject
    (``@checker`` scenarios prove the checker on the suite's fixtures: they cover no subject)."""
    return {
        (rid, persona)
        for s in scenarios(features_dir)
        if not s.checker
        for rid in s.values("req")
        for persona in s.values("persona")
    }
