"""Benchmark: how long a desired-state change takes to come back as a status report, and how much of
that is the suite's own doing.

Why: the device persona's run time is mostly waiting for the device; the issue asks for the median
time from a desired-state change to the matching status report, and for the suite's overhead beyond
the device's polling period. Measured here, never asserted in tests.

What: the suite's instrument WFM and the reference device (Docker Compose runtime, polling every
--poll seconds) as the device scenarios run them. vendor-a is installed once; then, --changes times,
the operator changes a parameter (a new digest under the same deploymentId) and the suite awaits the
"installed" report for the new manifestVersion. For each change, from the transcript:

  poll delay   operator change -> the device's first 200 manifest after it (bounded by the period)
  device work  that manifest -> the WFM receives the "installed" report (fetch, compose up, report)
  total        operator change -> report received
  suite        report received -> the suite's await returned (its own polling of the transcript)

    .venv/bin/python benchmarks/device_latency.py [--changes 10] [--poll 0.5]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import tempfile
import time
from pathlib import Path

from margo_conformance._internal.local_registry import LocalRegistry
from margo_conformance.config import DeviceSubjectConfig
from margo_conformance.device.apps import AppRequest
from margo_conformance.device.session import MANIFEST_PATH, DeviceScenario, free_port, start_device_run

ROOT = Path(__file__).resolve().parents[1]


def _epoch(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--poll", type=float, default=0.5)
    args = parser.parse_args()
    config = DeviceSubjectConfig(poll_interval_s=args.poll)
    rows: list[tuple[float, float, float, float]] = []
    packages = ROOT / "fixtures" / "packages"
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalRegistry() as registry,
        start_device_run(config, Path(tmp), registry_host=registry.host, packages=packages) as run,
    ):
        device = DeviceScenario(run)
        try:
            device.connect()
            deployment = device.deploy(AppRequest("vendor-a", host_port=free_port()))
            device.await_report(deployment, "installed")
            for change in range(args.changes):
                changed_at = time.time()
                device.update(deployment, {"listenPort": 9000 + change})
                report = device.await_report(deployment, "installed")
                returned_at = time.time()
                assert report["adoptedManifestVersion"] == deployment.manifest_version
                records = device.records(device.mark)
                manifest = next(
                    r for r in records if r.method == "GET" and r.path == MANIFEST_PATH and r.status == 200
                )
                received = next(
                    r
                    for r in records
                    if r.is_status_report(deployment.id)
                    and (r.body or {}).get("status", {}).get("state") == "installed"
                )
                rows.append(
                    (
                        manifest.time - changed_at,
                        received.time - manifest.time,
                        received.time - changed_at,
                        returned_at - received.time,
                    )
                )
        finally:
            device.close()
    print(f"{args.changes} changes, device polling every {args.poll:g} s (medians, then max), seconds:")
    for index, name in enumerate(("poll delay", "device work", "total", "suite")):
        values = [row[index] for row in rows]
        print(f"  {name:12} median {statistics.median(values):6.3f}   max {max(values):6.3f}")


if __name__ == "__main__":
    main()
