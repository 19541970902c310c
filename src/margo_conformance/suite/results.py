"""The results tree of one run. results.yaml, junit.xml, report.html and the console summary are
renderings of the same data (``RunResults.as_dict``), so they agree on every verdict and every count;
cucumber.json is pytest-bdd's own step-level record.

The tree carries the evidence a certifier reads: each requirement's text, source and errata, the
requirements no scenario covers (with the recorded reason), and per scenario the whole failure text
(redacted, bounded), not only the first lines the console and junit.xml show."""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from .. import __version__
from ..errors import RegistryError
from ..registry import Registry, errata_entries
from ..verdicts import Verdict
from .catalogue import covered_pairs

MESSAGE_LINES = 12  # of a reason, in the console, junit.xml and results.yaml's ``message``
EVIDENCE_MAX_CHARS = 64_000  # of a scenario's whole failure text in ``evidence``; a runaway body is cut


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
    message: str = ""  # the whole reason (a failure's text with its evidence); rendered cut and in full
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
            whole = redact_text(self.message.strip())
            data["message"] = first_lines(whole)
            if data["message"] != whole:
                data["evidence"] = bounded(whole)
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

    def not_eligible(self) -> list[str]:
        """Why the run cannot support a certification (an empty list: it can). A MUST scenario of a
        declared profile that was blocked, skipped or inconclusive leaves its requirement undecided; a skip
        the operator chose, or a run where nothing was decided, does too."""
        undecided = (Verdict.BLOCKED, Verdict.SKIPPED, Verdict.INCONCLUSIVE)
        reasons = [
            f"{s.name}: {s.verdict.value} (MUST, profile {s.profile})"
            for s in self.scenarios
            if s.level == "must" and s.profile in self.declared_profiles and s.verdict in undecided
        ]
        reasons += [
            f"{s.name}: skipped" for s in self.scenarios if s.verdict is Verdict.SKIPPED and s.level != "must"
        ]
        if not any(s.verdict in (Verdict.PASS, Verdict.FAIL) for s in self.scenarios):
            reasons.append("no scenario decided anything (none passed or failed)")
        return reasons

    @property
    def conformant(self) -> bool:
        """Every MUST scenario passed or did not apply, and something ran; SHOULD failures are warnings."""
        return any(s.verdict is Verdict.PASS for s in self.scenarios) and all(
            s.verdict in (Verdict.PASS, Verdict.NOT_APPLICABLE) for s in self.scenarios if s.level == "must"
        )

    def counts(self) -> dict[str, int]:
        return {v.value: sum(1 for s in self.scenarios if s.verdict is v) for v in Verdict}

    def uncovered(self, registry: Registry, suite_root: Path) -> list[dict[str, Any]]:
        """Testable MUST requirements of the run's personas that no scenario covers, with the reason the
        registry records (a certifier must see what the run could not have decided)."""
        covered = covered_pairs(suite_root / "features")
        found: dict[str, dict[str, Any]] = {}
        for persona in sorted({s.persona for s in self.scenarios}):
            for requirement in registry.uncovered(covered, persona=persona):
                found.setdefault(
                    requirement.id,
                    describe(registry, requirement.id)
                    | {
                        "id": requirement.id,
                        "personas": list(requirement.personas),
                        "profile": requirement.profile,
                        "reason": requirement.deferred or "no scenario yet, and no reason recorded",
                    },
                )
        return [found[rid] for rid in sorted(found)]

    def as_dict(self, registry: Registry, suite_root: Path) -> dict[str, Any]:
        requirements = {
            rid: entry | describe(registry, rid) for rid, entry in self.requirement_verdicts().items()
        }
        errata = sorted({e for rid in requirements if rid in registry for e in registry.get(rid).errata})
        not_eligible = self.not_eligible()
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
                "eligible_for_certification": not not_eligible,
                "not_eligible_because": not_eligible,
                "suite_errors": sum(1 for s in self.scenarios if s.suite_error),
                "counts": self.counts(),
            },
            "profiles": {
                p: {"declared": p in self.declared_profiles, "verdict": v}
                for p, v in self.profile_verdicts().items()
            },
            "requirements": requirements,
            "uncovered": self.uncovered(registry, suite_root),
            "errata_touched": errata,
            "errata": errata_texts(registry.pin, errata),
            "scenarios": [s.as_dict() for s in self.scenarios],
        }


def describe(registry: Registry, rid: str) -> dict[str, Any]:
    """A requirement's text, level, source and errata, as the reports show them beside its verdict."""
    if rid not in registry:
        return {}
    requirement = registry.get(rid)
    return {
        "level": requirement.level.value,
        "summary": requirement.summary,
        "source": requirement.source.cite(),
        "errata": list(requirement.errata),
    }


def errata_texts(pin: str, ids: list[str]) -> dict[str, dict[str, str]]:
    """Title and reading of each erratum the run touched: the position the suite took where the spec is
    silent or defective, which a certifier must be able to read beside the verdict it decided."""
    try:
        entries = {str(e.get("id")): e for e in errata_entries(pin)}
    except RegistryError:
        return {}
    return {
        eid: {"title": str(entries[eid].get("title", "")), "reading": str(entries[eid].get("reading", ""))}
        for eid in ids
        if eid in entries
    }


def first_lines(text: str, count: int = MESSAGE_LINES) -> str:
    lines = text.strip().splitlines()
    return "\n".join(lines[:count]) + ("\n…" if len(lines) > count else "")


def bounded(text: str, limit: int = EVIDENCE_MAX_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}\n… ({len(text) - limit} more characters cut)"


_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S)
_SECRET_HEADER = re.compile(
    r"^([<>\s]*(?:authorization|proxy-authorization|cookie|set-cookie)\s*:\s*)(?!<redacted>).+$", re.I | re.M
)


def redact_text(text: str) -> str:
    """A last guard before a report is written: a private key or a credential header that reached a
    failure text (a subject may echo anything) never reaches results.yaml or report.html."""
    text = _PRIVATE_KEY.sub("<redacted private key>", text)
    return _SECRET_HEADER.sub(r"\1<redacted>", text)


def write_results(data: Mapping[str, Any], path: Path) -> None:
    """results.yaml from a ``RunResults.as_dict`` (the same data junit.xml and the console render)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(data), sort_keys=False, width=110), encoding="utf-8")


# -- junit.xml ----------------------------------------------------------------------------------------

# How each verdict reads in JUnit: a CI dashboard must show a run that decided nothing as broken, so a
# blocked or inconclusive scenario is an <error> (never <skipped>); only the subject's own failure is a
# <failure>; a scenario of an undeclared profile, or one the operator skipped, is <skipped>.
JUNIT_ELEMENT: Mapping[Verdict, str | None] = {
    Verdict.PASS: None,
    Verdict.FAIL: "failure",
    Verdict.BLOCKED: "error",
    Verdict.INCONCLUSIVE: "error",
    Verdict.NOT_APPLICABLE: "skipped",
    Verdict.SKIPPED: "skipped",
}
JUNIT_COUNT = {"failure": "failures", "error": "errors", "skipped": "skipped"}


def junit_tree(data: Mapping[str, Any]) -> ET.ElementTree[ET.Element]:
    """JUnit XML (the xunit2 shape CI systems read) of a results dict: one testcase per scenario, its
    verdict, requirements, level and profile as properties, and the reason as the element's message."""
    scenarios = data["scenarios"]
    totals = {"tests": len(scenarios), "failures": 0, "errors": 0, "skipped": 0}
    suite = ET.Element("testsuite", name="margo-conformance", timestamp=str(data["started"]))
    for scenario in scenarios:
        verdict = Verdict(scenario["verdict"])
        case = ET.SubElement(
            suite,
            "testcase",
            classname=str(scenario["feature"]).removesuffix(".feature").replace("/", "."),
            name=str(scenario["scenario"]),
            time=f"{scenario['duration_s']:.3f}",
        )
        properties = ET.SubElement(case, "properties")
        for name in ("verdict", "level", "profile", "persona"):
            ET.SubElement(properties, "property", name=name, value=str(scenario[name]))
        for rid in scenario["requirements"]:
            ET.SubElement(properties, "property", name="requirement", value=str(rid))
        element = JUNIT_ELEMENT[verdict]
        if element is not None:
            message = str(scenario.get("message", ""))
            outcome = ET.SubElement(case, element, type=verdict.value, message=f"{verdict.value}: {message}")
            outcome.text = message
            totals[JUNIT_COUNT[element]] += 1
    suite.attrib.update({key: str(value) for key, value in totals.items()})
    suite.set("time", f"{sum(s['duration_s'] for s in scenarios):.3f}")
    root = ET.Element("testsuites", {key: str(value) for key, value in totals.items()})
    root.append(suite)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(data: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_tree(data).write(path, encoding="utf-8", xml_declaration=True)


def summary_line(data: Mapping[str, Any]) -> str:
    """The console's one line, from the same results dict as results.yaml and junit.xml."""
    summary = data["summary"]
    counts = ", ".join(f"{n} {verdict}" for verdict, n in summary["counts"].items() if n) or "no scenarios"
    conformant = "conformant" if summary["conformant"] else "NOT conformant"
    eligible = "eligible" if summary["eligible_for_certification"] else "NOT eligible"
    return f"{counts}; {conformant} (MUST scenarios); {eligible} for certification"


SUITE_FOLDERS = ("features", "steps", "fixtures", "src/margo_conformance")


def suite_digest(root: Path) -> str:
    """SHA-256 over the suite's own files (relative names and bytes), so a report names exactly what ran."""
    digest = hashlib.sha256()
    for folder in SUITE_FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
