"""The results tree of one run; results.yaml is a rendering of it (junit/cucumber come from pytest)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from .. import __version__
from ..registry import Registry
from ..verdicts import Verdict


@dataclass
class ScenarioResult:
    nodeid: str
    feature: str
    name: str
    verdict: Verdict
    requirements: tuple[str, ...]
    persona: str
    level: str
    profile: str
    duration_s: float
    message: str = ""
    suite_error: bool = False  # the suite broke, as opposed to the subject failing

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "scenario": self.name,
            "feature": self.feature,
            "id": self.nodeid,
            "verdict": self.verdict.value,
            "requirements": list(self.requirements),
            "persona": self.persona,
            "level": self.level,
            "profile": self.profile,
            "duration_s": round(self.duration_s, 3),
        }
        if self.message:
            data["message"] = self.message
        if self.suite_error:
            data["suite_error"] = True
        return data


@dataclass
class RunResults:
    run_id: str
    pin: str
    sut: dict[str, Any]
    declared_profiles: tuple[str, ...]
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    scenarios: list[ScenarioResult] = field(default_factory=list)

    def requirement_verdicts(self) -> dict[str, dict[str, Any]]:
        by_requirement: dict[str, list[ScenarioResult]] = {}
        for scenario in self.scenarios:
            for rid in scenario.requirements:
                by_requirement.setdefault(rid, []).append(scenario)
        return {
            rid: {
                "verdict": Verdict.worst(s.verdict for s in items).value,
                "scenarios": [s.name for s in items],
            }
            for rid, items in sorted(by_requirement.items())
        }

    def profile_verdicts(self) -> dict[str, str]:
        profiles: dict[str, list[Verdict]] = {}
        for scenario in self.scenarios:
            profiles.setdefault(scenario.profile, []).append(scenario.verdict)
        return {p: Verdict.worst(v).value for p, v in sorted(profiles.items())}

    @property
    def conformant(self) -> bool:
        """Every MUST scenario passed or did not apply, and something ran; SHOULD failures are warnings."""
        return any(s.verdict is Verdict.PASS for s in self.scenarios) and all(
            s.verdict in (Verdict.PASS, Verdict.NOT_APPLICABLE) for s in self.scenarios if s.level == "must"
        )

    def counts(self) -> dict[str, int]:
        return {v.value: sum(1 for s in self.scenarios if s.verdict is v) for v in Verdict}

    def as_dict(self, registry: Registry, suite_root: Path) -> dict[str, Any]:
        requirements = self.requirement_verdicts()
        errata = sorted({e for rid in requirements if rid in registry for e in registry.get(rid).errata})
        return {
            "run_id": self.run_id,
            "started": self.started.isoformat(timespec="seconds"),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "suite": {
                "name": "margo-conformance",
                "version": __version__,
                "sha256": suite_digest(suite_root),
            },
            "pin": self.pin,
            "sut": self.sut,
            "summary": {
                "conformant": self.conformant,
                "eligible_for_certification": not any(s.verdict is Verdict.SKIPPED for s in self.scenarios),
                "suite_errors": sum(1 for s in self.scenarios if s.suite_error),
                "counts": self.counts(),
            },
            "profiles": {
                p: {"declared": p in self.declared_profiles, "verdict": v}
                for p, v in self.profile_verdicts().items()
            },
            "requirements": requirements,
            "errata_touched": errata,
            "scenarios": [s.as_dict() for s in self.scenarios],
        }

    def write(self, path: Path, registry: Registry, suite_root: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            yaml.safe_dump(self.as_dict(registry, suite_root), sort_keys=False, width=110), encoding="utf-8"
        )


SUITE_FOLDERS = ("features", "steps", "fixtures", "src/margo_conformance")


def suite_digest(root: Path) -> str:
    """SHA-256 over the suite's own files (relative names and bytes), so a report names exactly what ran."""
    digest = hashlib.sha256()
    for folder in SUITE_FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
