"""The self-test: the suite against its reference subjects and against every mutant (DESIGN.md §3).

Expected results are data (the fault catalogue's kill lists). A run passes when
1. every scenario passes against the reference subjects;
2. every refusal scenario fails when its fault is switched off (so no refusal can pass vacuously);
3. each mutant makes exactly the scenarios on its kill list fail, and every other scenario it can
   see still passes.
Each run is its own pytest process; mutants run two at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..package.mutants import PackageFault, load_faults
from ..paths import suite_root
from ..verdicts import Verdict
from .runner import RunOutcome, new_run_id, run_suite

# Which feature files can see a package mutant: OCI faults only show in a registry.
LOCAL_FEATURES = ("application-description", "eligibility-rules", "compose-archives", "helm-charts")
OCI_FEATURES = ("oci-artifacts",)


@dataclass
class KillRow:
    subject: str
    requirement: str
    expected: set[str]
    failed: set[str]
    unexpected: dict[str, str] = field(default_factory=dict)  # scenario -> verdict, beyond the kill list
    run: str = ""

    @property
    def ok(self) -> bool:
        return self.failed == self.expected and not self.unexpected

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "requirement": self.requirement,
            "ok": self.ok,
            "expected_to_fail": sorted(self.expected),
            "failed": sorted(self.failed),
            "unexpected": self.unexpected,
            "run": self.run,
        }


def _word(ok: bool) -> str:
    return "as expected" if ok else "MISMATCH"


def _verdicts(outcome: RunOutcome) -> dict[str, str]:
    data = yaml.safe_load(outcome.results.read_text(encoding="utf-8"))
    return {s["scenario"]: s["verdict"] for s in data["scenarios"]}


def _row(subject: str, requirement: str, expected: set[str], outcome: RunOutcome) -> KillRow:
    verdicts = _verdicts(outcome)
    failed = {name for name, v in verdicts.items() if v == Verdict.FAIL.value}
    unexpected = {
        name: v
        for name, v in verdicts.items()
        if (name in expected) != (v == Verdict.FAIL.value) and v != Verdict.NOT_APPLICABLE.value
    }
    return KillRow(subject, requirement, expected, failed & expected, unexpected, str(outcome.reports))


def selftest_package(
    *, reports_root: Path, workers: int = 2, progress: Callable[[str], None] = print
) -> list[KillRow]:
    faults = load_faults(suite_root() / "fixtures" / "packages" / "faults.yaml")
    base = new_run_id() + "-selftest"
    runs = reports_root / base

    def run(name: str, *args: str, faults_off: bool = False) -> RunOutcome:
        return run_suite(
            persona="package",
            sut=None,
            reports_root=runs,
            run_id=name,
            pytest_args=args,
            faults_off=faults_off,
            echo=False,
        )

    rows = [
        _row("reference", "-", set(), run("reference")),
    ]
    negatives = run("faults-off", "-m", "negative", faults_off=True)
    refusal_names = set(_verdicts(negatives))
    rows.append(_row("faults switched off", "-", refusal_names, negatives))
    progress(f"selftest: reference {_word(rows[0].ok)}; faults switched off {_word(rows[1].ok)}")

    def mutant(fault: PackageFault) -> KillRow:
        features = OCI_FEATURES if fault.needs_registry else LOCAL_FEATURES
        args = ["-m", "not negative", "--margo-mutant", fault.name]
        for feature in features:
            args += ["--margo-feature", feature]
        return _row(fault.name, fault.requirement, set(fault.kills), run(f"mutant-{fault.name}", *args))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for index, row in enumerate(pool.map(mutant, faults.values()), start=1):
            progress(f"selftest: [{index}/{len(faults)}] {row.subject}: {_word(row.ok)}")
            rows.append(row)
    (runs / "kill-matrix.yaml").write_text(
        yaml.safe_dump(
            {"persona": "package", "rows": [r.as_dict() for r in rows]}, sort_keys=False, width=110
        ),
        encoding="utf-8",
    )
    return rows
