"""Benchmark: our `package check` against `linkml validate` on the same Application Descriptions.

Why: upstream Margo publishes the Application Description as a LinkML model, so `linkml validate` is
the tool a vendor reaches for first. This script shows, file by file, whether our checker and LinkML
reach the same verdict, and how long each one takes:

  (a) in process: our check_description() against linkml's Validator with its schema loaded once (a
      helper, linkml_timer.py, runs inside LinkML's own venv so LinkML's pins never meet ours);
  (b) end to end: `margo-conformance package check DIR` against `linkml validate -s SCHEMA -C CLASS
      FILE`, process start included, which is what a user runs.

Inputs: the margo.yaml of every reference package, the description of every fault in faults.yaml that
edits the description, and the upstream pre-draft example (which does not parse, erratum INC-020).
Verdicts: ours is "conformant" unless check_description() reports a MUST finding; LinkML's is its CLI
exit code. Where they differ, the file, both verdicts, our findings and LinkML's message are printed
(benchmarks/README.md explains each). A fault both reject is marked † when LinkML rejects its
unmodified origin too (the pre-draft LinkML refuses every x-…-extensions member, INC-020); for those a
control run of LinkML on the fault with its extensions removed shows whether LinkML sees the fault
itself. Times are reported, never asserted.

    .venv/bin/python benchmarks/package_vs_linkml.py [--repeat N] [--shared DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from itertools import dropwhile
from pathlib import Path
from typing import Any, TypeVar

import yaml

from margo_conformance.findings import Findings
from margo_conformance.package.description import check_description
from margo_conformance.package.local_source import load_from_directory
from margo_conformance.package.mutants import load_faults, materialize

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
LINKML_PIN = "1.12.1"
TARGET_CLASS = "ApplicationDescription"
SCHEMA = "margo-spec/linkml/pre-draft/application-description.linkml.yaml"
UPSTREAM_EXAMPLE = "margo-spec/examples/pre-draft/valid/ApplicationDescription-002.yaml"
DESCRIPTION_EDITS = {"set", "delete", "append", "description_text"}  # fault edits that touch margo.yaml
INSTALL_TIMEOUT = 900.0
TARGET_RATIO = 50.0
T = TypeVar("T")


@dataclass(frozen=True)
class Subject:
    """One Application Description: `package check` gets root, linkml gets description."""

    name: str
    root: Path
    description: Path
    origin: str | None = None  # the reference package a fault was derived from


@dataclass
class Row:
    name: str
    ours: str
    linkml: str
    agree: str  # "yes", "yes†" (linkml also rejects the unmodified origin) or "NO"
    ours_ms: float
    linkml_ms: float
    ours_cli: str
    linkml_in_process: str
    ours_cli_ms: float
    linkml_cli_ms: float
    our_findings: list[str]
    linkml_messages: list[str]
    linkml_control: str | None = None  # for a † fault: linkml's verdict once x-…-extensions are removed

    @property
    def ratio(self) -> float:
        return self.linkml_ms / self.ours_ms

    @property
    def cli_ratio(self) -> float:
        return self.linkml_cli_ms / self.ours_cli_ms


def parse_args() -> argparse.Namespace:
    layout = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=layout)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="holds margo-spec/")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per file and tool (median kept)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed to each subprocess")
    parser.add_argument("--venv", type=Path, default=BENCHMARKS / ".venv-linkml", help="LinkML's own venv")
    parser.add_argument("--output", type=Path, help="JSON results (default reports/benchmarks/…-<date>.json)")
    return parser.parse_args()


def run(command: Sequence[object], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        argv = [str(c) for c in command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        sys.exit(f"timed out after {timeout:.0f} s: {' '.join(map(str, command))}")


def ensure_linkml(venv: Path) -> Path:
    """The venv's bin folder, with linkml==LINKML_PIN installed into it first when it is not there."""
    python = venv / "bin" / "python"
    probe = [python, "-c", "import importlib.metadata as m; print(m.version('linkml'))"]
    if python.exists() and run(probe, 60).stdout.strip() == LINKML_PIN:
        return python.parent
    if not python.exists():
        print(f"creating {venv} …", flush=True)
        _check(run([sys.executable, "-m", "venv", venv], INSTALL_TIMEOUT))
    print(f"installing linkml=={LINKML_PIN} into {venv} (a minute or two) …", flush=True)
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "-q", f"linkml=={LINKML_PIN}"]
    _check(run(pip, INSTALL_TIMEOUT))
    return python.parent


def _check(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        sys.exit(f"{' '.join(result.args)} failed:\n{result.stdout}{result.stderr}")


def subjects(shared: Path, workdir: Path) -> list[Subject]:
    """Reference packages, faulty descriptions materialized under workdir, the upstream example."""
    references = REPO / "fixtures" / "packages"
    found = [Subject(p.parent.name, p.parent, p) for p in sorted(references.glob("*/margo.yaml"))]
    for fault in load_faults(references / "faults.yaml").values():
        if any(DESCRIPTION_EDITS & edit.keys() for edit in fault.edits):
            root = materialize(fault, references, workdir / "faults")
            found.append(Subject(f"fault:{fault.name}", root, _only_yaml(root), fault.origin))
    example = shared / UPSTREAM_EXAMPLE
    root = workdir / "upstream"
    root.mkdir()
    shutil.copy(example, root / example.name)
    found.append(Subject(f"upstream:{example.stem}", root, root / example.name))
    return found


def _only_yaml(root: Path) -> Path:
    return next(p for p in sorted(root.iterdir()) if p.suffix in (".yaml", ".yml"))


def timed(call: Callable[[], T], repeat: int, *, warm_up: bool) -> tuple[T, float]:
    """The first result of call() and the median of `repeat` timed calls, in milliseconds."""
    results = [call()] if warm_up else []
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        results.append(call())
        timings.append((time.perf_counter() - start) * 1000)
    return results[0], statistics.median(timings)


def verdict(conformant: bool) -> str:
    return "conformant" if conformant else "non-conformant"


def cli_verdict(result: subprocess.CompletedProcess[str]) -> str:
    return {0: "conformant", 1: "non-conformant"}.get(result.returncode, f"error (exit {result.returncode})")


def linkml_messages(result: subprocess.CompletedProcess[str]) -> list[str]:
    """`[ERROR] [file/0] message` lines without their prefix, or the exception that ended a crash."""
    errors = [line.split("] ", 2)[-1] for line in result.stdout.splitlines() if line.startswith("[ERROR]")]
    if errors or result.returncode == 0:
        return errors
    lines = result.stderr.splitlines()
    frames = lines[max((i for i, line in enumerate(lines) if line.startswith("Traceback")), default=-1) + 1 :]
    return [" ".join(line.strip() for line in dropwhile(lambda line: line.startswith(" "), frames))]


def first_call_ms(subject: Subject) -> float:
    """Our first check_description() in this process, which loads and compiles the pin's schemas."""
    loaded = load_from_directory(subject.root)
    start = time.perf_counter()
    check_description(loaded.description_text or "", loaded.description_location, loaded.resources)
    return (time.perf_counter() - start) * 1000


def linkml_in_process(
    bin_dir: Path, schema: Path, files: list[Path], repeat: int, timeout: float
) -> dict[str, Any]:
    command = [
        bin_dir / "python",
        BENCHMARKS / "linkml_timer.py",
        "--schema",
        schema,
        "--target-class",
        TARGET_CLASS,
        "--repeat",
        str(repeat),
        *files,
    ]
    result = run(command, timeout)
    _check(result)
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def measure(
    subject: Subject, helper: dict[str, Any], bin_dir: Path, schema: Path, args: argparse.Namespace
) -> Row:
    """Both tools on one subject: in process (ours here, linkml's from the helper's report) and by CLI."""
    loaded = load_from_directory(subject.root)
    assert loaded.description_text is not None, subject
    check = partial(check_description, loaded.description_text, loaded.description_location, loaded.resources)
    (_, findings), ours_ms = timed(check, args.repeat, warm_up=True)
    ours_command = [Path(sys.executable).parent / "margo-conformance", "package", "check", subject.root]
    linkml_command = [bin_dir / "linkml", "validate", "-s", schema, "-C", TARGET_CLASS, subject.description]
    ours_cli, ours_cli_ms = timed(lambda: run(ours_command, args.timeout), args.repeat, warm_up=False)
    linkml_cli, linkml_cli_ms = timed(lambda: run(linkml_command, args.timeout), args.repeat, warm_up=False)
    in_process = helper["files"][str(subject.description)]
    ours, linkml = verdict(findings.conformant), cli_verdict(linkml_cli)
    return Row(
        name=subject.name,
        ours=ours,
        linkml=linkml,
        agree="yes" if ours == linkml else "NO",
        ours_ms=ours_ms,
        linkml_ms=statistics.median(in_process["ms"]),
        ours_cli=cli_verdict(ours_cli),
        linkml_in_process=verdict(not in_process["errors"]),
        ours_cli_ms=ours_cli_ms,
        linkml_cli_ms=linkml_cli_ms,
        our_findings=_describe(findings),
        linkml_messages=linkml_messages(linkml_cli),
    )


def _describe(findings: Findings) -> list[str]:
    return [f"{f.requirement} ({f.level.value}) {f.location}: {f.message}" for f in findings]


def mark_confounded(rows: list[Row], subjects_: list[Subject]) -> list[tuple[Row, Subject]]:
    """Mark 'yes†' the faults both reject while linkml rejects the unmodified origin too: its verdict
    does not show that it saw the fault. Returns those rows with their subjects."""
    rejected = {r.name for r in rows if r.linkml != "conformant"}
    for row, subject in zip(rows, subjects_, strict=True):
        if row.agree == "yes" and subject.origin in rejected:
            row.agree = "yes†"
    return [(r, s) for r, s in zip(rows, subjects_, strict=True) if r.agree == "yes†"]


def without_extensions(node: Any) -> Any:
    """The document without its x-…-extensions members, which the pre-draft LinkML refuses (INC-020)."""
    if isinstance(node, dict):
        return {
            k: without_extensions(v)
            for k, v in node.items()
            if not (isinstance(k, str) and k.startswith("x-") and k.endswith("-extensions"))
        }
    return [without_extensions(v) for v in node] if isinstance(node, list) else node


def run_control(
    confounded: list[tuple[Row, Subject]], workdir: Path, bin_dir: Path, schema: Path, timeout: float
) -> None:
    """Control for the † rows: linkml on each fault with the extensions removed, so that only the fault
    itself can make it fail. A description that is not YAML has no control."""
    copies: dict[Path, Row] = {}
    (workdir / "control").mkdir()
    for row, subject in confounded:
        try:
            document = yaml.safe_load(subject.description.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            row.linkml_control = "not YAML"
            continue
        copy = workdir / "control" / f"{subject.root.name}.yaml"
        copy.write_text(yaml.safe_dump(without_extensions(document), sort_keys=False), encoding="utf-8")
        copies[copy] = row
    if copies:
        report = linkml_in_process(bin_dir, schema, list(copies), 1, timeout)
        for copy, row in copies.items():
            row.linkml_control = verdict(not report["files"][str(copy)]["errors"])


def summary(rows: list[Row]) -> dict[str, Any]:
    def spread(ratios: list[float]) -> dict[str, float | int]:
        return {
            "min": min(ratios),
            "max": max(ratios),
            "geomean": statistics.geometric_mean(ratios),
            f"files_at_least_{TARGET_RATIO:g}x": sum(r >= TARGET_RATIO for r in ratios),
        }

    return {
        "files": len(rows),
        "agree": sum(r.agree.startswith("yes") for r in rows),
        "agree_confounded": sum(r.agree == "yes†" for r in rows),
        "disagree": [r.name for r in rows if r.agree == "NO"],
        "control": {
            outcome: [r.name for r in rows if r.agree == "yes†" and r.linkml_control == outcome]
            for outcome in ("non-conformant", "conformant", "not YAML")
        },
        "in_process_ratio": spread([r.ratio for r in rows]),
        "cli_ratio": spread([r.cli_ratio for r in rows]),
    }


# The table: header, alignment and width, value format, value.
COLUMNS: tuple[tuple[str, str, str, Callable[[Row], object]], ...] = (
    ("ours", "<14", "", lambda r: r.ours),
    ("linkml", "<14", "", lambda r: r.linkml),
    ("agree", "<5", "", lambda r: r.agree),
    ("ours ms", ">8", ".2f", lambda r: r.ours_ms),
    ("linkml ms", ">9", ".2f", lambda r: r.linkml_ms),
    ("ratio", ">6", ".1f", lambda r: r.ratio),
    ("CLI ours", ">8", ".0f", lambda r: r.ours_cli_ms),
    ("CLI linkml", ">10", ".0f", lambda r: r.linkml_cli_ms),
    ("ratio", ">6", ".1f", lambda r: r.cli_ratio),
)


def print_report(rows: list[Row], totals: dict[str, Any]) -> None:
    width = max(len(r.name) for r in rows)
    print("\n" + "  ".join([f"{'file':<{width}}", *(f"{h:{a}}" for h, a, _, _ in COLUMNS)]))
    for r in rows:
        print("  ".join([f"{r.name:<{width}}", *(f"{v(r):{a}{f}}" for _, a, f, v in COLUMNS)]))
    print("(ms: median; ratio = linkml time / our time; † = linkml also rejects the fault's origin package)")
    for r in rows:
        if r.agree == "NO":
            print(f"\nDISAGREE {r.name}: ours {r.ours}, linkml {r.linkml}")
            for line in r.our_findings:
                print(f"  ours:   {line}")
            for line in r.linkml_messages:
                print(f"  linkml: {line[:300]}")
        if r.ours_cli != r.ours or r.linkml_in_process != r.linkml:
            print(f"\nNOTE {r.name}: our CLI says {r.ours_cli}, linkml's API says {r.linkml_in_process}")
    for key in ("in_process_ratio", "cli_ratio"):
        s = totals[key]
        print(
            f"\n{key}: {s['min']:.1f}× … {s['max']:.1f}×, geometric mean {s['geomean']:.1f}×, "
            f"{s[f'files_at_least_{TARGET_RATIO:g}x']}/{totals['files']} files at ≥{TARGET_RATIO:g}×"
        )
    cold = totals["first_call_ms"]
    print(
        f"first call in a fresh process (schema loading included): ours {cold['ours']:.0f} ms, "
        f"linkml {cold['linkml']:.0f} ms"
    )
    print(
        f"verdicts: {totals['agree']}/{totals['files']} agree ({totals['agree_confounded']} of them †), "
        f"{len(totals['disagree'])} disagree"
    )
    print(
        "† control, linkml's verdict on those faults once x-…-extensions are removed (conformant = it does"
        " not see the fault):"
    )
    for outcome, names in totals["control"].items():
        print(f"  {outcome} ({len(names)}): {', '.join(n.removeprefix('fault:') for n in names) or '-'}")


def main() -> None:
    args = parse_args()
    schema = args.shared / SCHEMA
    if not schema.is_file():
        sys.exit(f"{schema}: not found (use --shared to point at the folder holding margo-spec/)")
    bin_dir = ensure_linkml(args.venv)
    with tempfile.TemporaryDirectory(prefix="margo-bench-") as tmp:
        todo = subjects(args.shared, Path(tmp))
        print(f"{len(todo)} files; in-process timing in {args.venv.name} …", flush=True)
        first_call = {"ours": first_call_ms(todo[0])}
        helper = linkml_in_process(bin_dir, schema, [s.description for s in todo], args.repeat, args.timeout)
        rows = []
        for subject in todo:
            print(f"  {subject.name}", flush=True)
            rows.append(measure(subject, helper, bin_dir, schema, args))
        run_control(mark_confounded(rows, todo), Path(tmp), bin_dir, schema, args.timeout)
    totals = summary(rows) | {"first_call_ms": first_call | {"linkml": helper["first_call_ms"]}}
    print_report(rows, totals)
    output = args.output or REPO / "reports" / "benchmarks" / f"package_vs_linkml-{dt.date.today()}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "linkml": helper["linkml"],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "repeat": args.repeat,
        "schema": str(schema),
        "target_class": TARGET_CLASS,
    }
    rows_out = [asdict(r) | {"ratio": r.ratio, "cli_ratio": r.cli_ratio} for r in rows]
    report = {"meta": meta, "summary": totals, "rows": rows_out}
    output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwritten: {output}")


if __name__ == "__main__":
    main()
