"""The self-test: the suite against its reference subjects and against every mutant (DESIGN.md §3).

Expected results are data (the fault catalogue's kill lists). A run passes when
1. every scenario passes against the reference subjects;
2. every refusal scenario fails when its fault is switched off (so no refusal can pass vacuously);
3. each mutant makes exactly the scenarios on its kill list fail, and every other scenario it can
   see still passes;
4. each variant (a behaviour the spec allows, DESIGN.md §3) passes every scenario of the persona: any
   other verdict than pass or not-applicable is a false failure of the suite.
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
SIGNING_FEATURES = ("signing",)  # a signing fault: the vendor-facing signature scenarios


@dataclass
class KillRow:
    subject: str
    requirement: str
    expected: set[str]
    failed: set[str]
    unexpected: dict[str, str] = field(default_factory=dict)  # scenario -> verdict, beyond the kill list
    run: str = ""
    kind: str = "mutant"  # mutant | variant | reference

    @property
    def ok(self) -> bool:
        return self.failed == self.expected and not self.unexpected

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "kind": self.kind,
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
    """Scenario -> verdict of one run; a run that wrote no results is one row-breaking entry, not a crash."""
    try:
        data = yaml.safe_load(outcome.results.read_text(encoding="utf-8"))
        return {s["scenario"]: s["verdict"] for s in data["scenarios"]}
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        return {f"(the run wrote no results: {type(exc).__name__}; see {outcome.reports}/run.log)": "error"}


PASSING = {Verdict.PASS.value, Verdict.NOT_APPLICABLE.value}


def _variant_row(subject: str, requirement: str, outcome: RunOutcome) -> KillRow:
    """A variant must pass every scenario it runs: anything else is a false failure of the suite."""
    verdicts = _verdicts(outcome)
    unexpected = {name: v for name, v in verdicts.items() if v not in PASSING}
    if not verdicts:
        unexpected = {"(no scenario ran)": f"pytest exit {outcome.pytest_exit}"}
    return KillRow(subject, requirement, set(), set(), unexpected, str(outcome.reports), kind="variant")


def _row(subject: str, requirement: str, expected: set[str], outcome: RunOutcome) -> KillRow:
    verdicts = _verdicts(outcome)
    failed = {name for name, v in verdicts.items() if v == Verdict.FAIL.value}
    unexpected = {
        name: v
        for name, v in verdicts.items()
        if (name in expected) != (v == Verdict.FAIL.value) and v != Verdict.NOT_APPLICABLE.value
    }
    return KillRow(subject, requirement, expected, failed & expected, unexpected, str(outcome.reports))


@dataclass(frozen=True)
class Mutant:
    """One fault switched on, as the self-test runs it: the pytest arguments that select and enable it."""

    name: str
    requirement: str
    kills: frozenset[str]  # scenario names expected to fail; ALL = every scenario the run selects
    args: tuple[str, ...]
    features: tuple[str, ...] = ()  # the feature files (stems) the mutant runs against
    kind: str = "mutant"  # a "variant" runs against every scenario and must pass them all


ALL = "*"


def package_mutants() -> list[Mutant]:
    """Each package fault against the subject scenarios that can see it (OCI faults only in a registry)."""
    faults = load_faults(suite_root() / "fixtures" / "packages" / "faults.yaml")
    mutants = []
    for fault in faults.values():
        features = _package_features(fault)
        args = ["-m", "not negative", "--margo-mutant", fault.name]
        for feature in features:
            args += ["--margo-feature", feature]
        mutants.append(Mutant(fault.name, fault.requirement, frozenset(fault.kills), tuple(args), features))
    return mutants


def _package_features(fault: PackageFault) -> tuple[str, ...]:
    if fault.signature is not None:  # signed with a fault: only the signature scenarios see it
        return SIGNING_FEATURES
    return OCI_FEATURES if fault.needs_registry else LOCAL_FEATURES


def wfm_mutants() -> list[Mutant]:
    """Each reference-WFM fault against the WFM features that can see it (fixtures/wfm/faults.yaml)."""
    return _subject_mutants("wfm", "--margo-wfm-fault")


def device_mutants() -> list[Mutant]:
    """Each reference-device fault against the device features that can see it
    (fixtures/device/faults.yaml)."""
    return _subject_mutants("device", "--margo-device-fault")


def mis_mutants() -> list[Mutant]:
    """Each fault of the reference identity service (the reference WFM's trust endpoints, area mis)
    against the MIS features (fixtures/mis/faults.yaml)."""
    return _subject_mutants("mis", "--margo-wfm-fault")


def _subject_mutants(persona: str, option: str) -> list[Mutant]:
    path = suite_root() / "fixtures" / persona / "faults.yaml"
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))["faults"]
    mutants = []
    for entry in entries:
        args = [option, entry["name"]]
        if entry.get("kind") == "variant":  # every scenario of the persona, none may fail
            mutants.append(
                Mutant(entry["name"], entry["requirement"], frozenset(), tuple(args), kind="variant")
            )
            continue
        for feature in entry.get("features") or []:
            args += ["--margo-feature", feature]
        for scenario in entry.get("scenarios") or []:  # narrower than features, for slow subjects
            args += ["--margo-scenario", scenario]
        features = tuple(entry.get("features") or ())
        mutants.append(
            Mutant(entry["name"], entry["requirement"], frozenset(entry["kills"]), tuple(args), features)
        )
    return mutants


MUTANTS: dict[str, Callable[[], list[Mutant]]] = {
    "package": package_mutants,
    "wfm": wfm_mutants,
    "device": device_mutants,
    "mis": mis_mutants,
}


def _variants_together(mutants: list[Mutant]) -> list[Mutant]:
    """The mutants, then one subject with every variant switched on at once (if there are any)."""
    found = [m for m in mutants if m.kind == "variant"]
    if not found:
        return mutants
    together = Mutant(
        "+".join(m.name for m in found),
        ", ".join(sorted({m.requirement for m in found})),
        frozenset(),
        tuple(arg for m in found for arg in m.args),
        kind="variant",
    )
    return [m for m in mutants if m.kind != "variant"] + [together]


def profile_features(profile: str) -> dict[str, tuple[str, ...]]:
    """Persona -> the feature files (stems) that carry ``@profile:<profile>``."""
    found: dict[str, list[str]] = {}
    for path in sorted((suite_root() / "features").glob("*/*.feature")):
        if f"@profile:{profile}" in path.read_text(encoding="utf-8"):
            found.setdefault(path.parent.name, []).append(path.stem)
    return {persona: tuple(stems) for persona, stems in found.items()}


def mutants_for(persona: str, profile: str | None = None) -> list[Mutant]:
    """The persona's mutants; with ``profile``, those that run against that profile's features."""
    if profile is None:
        return MUTANTS[persona]()
    features = set(profile_features(profile).get(persona, ()))
    return [m for m in MUTANTS[persona]() if m.kind == "variant" or set(m.features) & features]


def selftest(
    persona: str,
    *,
    reports_root: Path,
    workers: int = 2,
    progress: Callable[[str], None] = print,
    profile: str | None = None,
    variants: str = "each",
) -> list[KillRow]:
    """Reference run, (for packages) the faults-off run, then every mutant and variant; writes
    kill-matrix.yaml.

    ``variants="together"`` runs the persona's variants as ONE subject with all of them switched on (they
    are written to be compatible): one full run instead of one per variant, for slow personas in CI; a
    failure there names the scenarios, and ``"each"`` then tells which variant caused it.

    With ``profile``, only the persona's features of that profile run, against the mutants that run
    on them (none of the persona's features carries it: no rows)."""
    features = profile_features(profile).get(persona, ()) if profile else ()
    if profile and not features:
        return []
    only = tuple(arg for stem in features for arg in ("--margo-feature", stem))
    runs = reports_root / f"{new_run_id()}-selftest-{persona}{f'-{profile}' if profile else ''}"

    def run(name: str, *args: str, faults_off: bool = False) -> RunOutcome:
        return run_suite(
            persona=persona,
            sut=None,
            reports_root=runs,
            run_id=name,
            pytest_args=args,
            faults_off=faults_off,
            echo=False,
        )

    # the package persona's reference row also runs the checker's proof (@checker: the refusals of the
    # bundled faults and the signature fixtures), which a vendor's run never selects
    proof = ("--margo-checker",) if persona == "package" else ()
    rows = [_variant_row("reference", "-", run("reference", *proof, *only))]
    rows[0].kind = "reference"
    progress(f"selftest: {persona} reference {_word(rows[0].ok)}")
    if persona == "package":
        negatives = run("faults-off", "-m", "negative", *proof, *only, faults_off=True)
        rows.append(_row("faults switched off", "-", set(_verdicts(negatives)), negatives))
        progress(f"selftest: faults switched off {_word(rows[-1].ok)}")
    mutants = mutants_for(persona, profile)
    if variants == "together":
        mutants = _variants_together(mutants)

    def kill(mutant: Mutant) -> KillRow:
        if mutant.kind == "variant":
            return _variant_row(
                mutant.name, mutant.requirement, run(f"variant-{mutant.name}", *mutant.args, *only)
            )
        outcome = run(f"mutant-{mutant.name}", *mutant.args)
        expected = set(_verdicts(outcome)) if ALL in mutant.kills else set(mutant.kills)
        return _row(mutant.name, mutant.requirement, expected, outcome)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for index, row in enumerate(pool.map(kill, mutants), start=1):
            progress(
                f"selftest: {persona} [{index}/{len(mutants)}] {row.kind} {row.subject}: {_word(row.ok)}"
            )
            rows.append(row)
    (runs / "kill-matrix.yaml").write_text(
        yaml.safe_dump(
            {"persona": persona, "profile": profile, "rows": [r.as_dict() for r in rows]},
            sort_keys=False,
            width=110,
        ),
        encoding="utf-8",
    )
    return rows
