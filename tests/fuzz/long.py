"""The long fuzzing mode (``scripts/fuzz``): N generated cases, each in a forked child with a time and a
memory limit; every failing input is kept under ``tests/fuzz/regressions/`` and replayed by the tests.

Exit 0 when no case failed, 1 otherwise. The summary gives counts per outcome, the slowest case and the
peak memory of any child.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

from fuzz.generators import Case, cases
from fuzz.harness import Outcome, keep, run_in_child, warm_up


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__)
    parser.add_argument("--cases", type=int, default=100_000, help="cases to run (default 100000)")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit per case (default 30)")
    parser.add_argument("--memory-mib", type=int, default=2048, help="address-space limit per case")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default: random)")
    parser.add_argument("--keep-per-signature", type=int, default=0, help="0: keep every failing input")
    parser.add_argument("--no-keep", action="store_true", help="keep no regression fixtures")
    parser.add_argument("--with-compose", action="store_true", help="also run `docker compose config`")
    options = parser.parse_args(args)

    warm_up()
    counts: collections.Counter[str] = collections.Counter()
    kept: collections.Counter[str] = collections.Counter()
    slowest = (0.0, "")
    peak = 0.0
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="margo-fuzz-"))

    def one(case: Case) -> None:
        nonlocal slowest, peak
        folder = Path(tempfile.mkdtemp(dir=scratch))
        try:
            outcome: Outcome = run_in_child(
                case,
                folder,
                seconds=options.seconds,
                memory_mib=options.memory_mib,
                compose=options.with_compose,
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        label = f"{case.kind}: {'ok' if outcome.ok else 'FAIL ' + outcome.what}"
        counts[label] += 1
        slowest = max(slowest, (outcome.seconds, case.kind))
        peak = max(peak, outcome.peak_rss_mib)
        if not outcome.ok:
            signature = f"{case.kind}:{outcome.what}:{outcome.stderr.strip().splitlines()[-1:] or ''}"
            limit = options.keep_per_signature
            if not options.no_keep and (limit == 0 or kept[signature] < limit):
                kept[signature] += 1
                where = keep(case, outcome)
                print(f"FAIL {outcome.what} ({case.kind}) kept in {where}", flush=True)
        done = sum(counts.values())
        if done % 500 == 0:
            print(f"{done} cases, {time.monotonic() - started:.0f} s", flush=True)

    runner = settings(
        max_examples=options.cases,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )(given(cases())(one))
    if options.seed is not None:
        runner = seed(options.seed)(runner)
    try:
        runner()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    failed = sum(n for label, n in counts.items() if "FAIL" in label)
    print(f"\n{sum(counts.values())} cases in {time.monotonic() - started:.0f} s; {failed} failed")
    for label, n in sorted(counts.items()):
        print(f"  {n:7d}  {label}")
    print(f"slowest case {slowest[0]:.1f} s ({slowest[1]}); peak RSS of a case {peak:.0f} MiB")
    print(f"limits: {options.seconds:g} s and {options.memory_mib} MiB address space per case")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
