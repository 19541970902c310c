"""Benchmark: State Manifest polls per second against the reference WFM over mutual TLS.

Why: a WFM serves fleets that poll GET /api/v1/deployments all the time, so its poll rate and latency
are the figures that matter; DESIGN.md §8 asks to measure them in benchmarks, never in timed tests.

What: the reference WFM runs as its own process (`margo-conformance reference wfm`, loopback only).
Each virtual client has its own SVID, one registered device and one deployment, and keeps ONE
keep-alive mTLS connection open (opened before timing starts, so handshakes are not counted). For 1, 10
and 100 clients the script polls for --duration seconds twice: unconditional (200 with the manifest body)
and conditional (If-None-Match with the current ETag, 304 without body). The clients are asyncio
connections in this process speaking minimal HTTP/1.1, so the client side stays cheap; on a small
machine client and server still share the CPUs, which the figures include.

    .venv/bin/python benchmarks/wfm_polls.py [--duration 5] [--clients 1,10,100]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from margo_conformance.pki import Pki
from margo_conformance.pki.tls import client_context

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).parent / "margo-conformance"
MANIFEST = "application/vnd.margo.manifest.v1+json"
DESCRIPTION = (ROOT / "fixtures" / "packages" / "vendor-a-compose" / "margo.yaml").read_text(encoding="utf-8")


@dataclass
class Result:
    clients: int
    mode: str
    polls: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rate(self) -> float:
        return self.polls / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def start_wfm(workdir: Path, pki: Pki) -> tuple[subprocess.Popen[str], dict[str, str]]:
    ready = workdir / "ready.json"
    command = [str(CLI), "reference", "wfm", "--pki", str(pki.directory), "--state", str(workdir / "state")]
    process = subprocess.Popen([*command, "--ready-file", str(ready)], stdout=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 30
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the reference WFM did not start")
        time.sleep(0.05)
    return process, json.loads(ready.read_text())


def admin(url: str, path: str, body: object) -> object:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def provision(endpoints: dict[str, str], pki: Pki, workdir: Path, count: int) -> list[ssl.SSLContext]:
    """``count`` clients, each with an SVID, one device and one deployment."""
    admin(endpoints["admin_url"], "/admin/clients/accept", {"pattern": f"{pki.wfm_spiffe_id}/client/*"})
    host, port = endpoints["url"].removeprefix("https://").rsplit(":", 1)
    contexts = []
    for index in range(count):
        name = f"bench-{index}"
        context = client_context(pki.mint_client(name).write(workdir / "clients", name), pki.bundle_pem)
        body = {
            "properties": {"id": "dev", "vendor": "V", "modelNumber": "M", "serialNumber": "S"},
        }
        connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
        connection.request(
            "PUT", "/api/v1/capabilities/dev", json.dumps(body), {"Content-Type": "application/json"}
        )
        assert connection.getresponse().status == 201
        connection.close()
        admin(
            endpoints["admin_url"],
            "/admin/deployments",
            {"client_id": name, "device_id": "dev", "application_description": DESCRIPTION},
        )
        contexts.append(context)
    return contexts


async def run(url: str, contexts: list[ssl.SSLContext], conditional: bool, duration: float) -> Result:
    host, port = url.removeprefix("https://").rsplit(":", 1)
    connections = [await asyncio.open_connection(host, int(port), ssl=c) for c in contexts]
    requests = []
    for reader, writer in connections:  # one unconditional poll each: learn the ETag, warm up
        writer.write(
            f"GET /api/v1/deployments HTTP/1.1\r\nHost: {host}\r\nAccept: {MANIFEST}\r\n\r\n".encode()
        )
        _, headers = await read_response(reader)
        condition = f"If-None-Match: {headers['etag']}\r\n" if conditional else ""
        head = f"GET /api/v1/deployments HTTP/1.1\r\nHost: {host}\r\nAccept: {MANIFEST}\r\n"
        requests.append(f"{head}{condition}\r\n".encode())
    latencies: list[float] = []
    errors = 0
    expected = 304 if conditional else 200
    started = time.perf_counter()
    deadline = started + duration

    async def poll(connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes) -> int:
        nonlocal errors
        reader, writer = connection
        done = 0
        while time.perf_counter() < deadline:
            begin = time.perf_counter()
            writer.write(request)
            status, _ = await read_response(reader)
            latencies.append(time.perf_counter() - begin)
            errors += status != expected
            done += 1
        return done

    counts = await asyncio.gather(*(poll(c, r) for c, r in zip(connections, requests, strict=True)))
    elapsed = time.perf_counter() - started
    for _, writer in connections:
        writer.close()
    await asyncio.gather(*(w.wait_closed() for _, w in connections), return_exceptions=True)
    return Result(
        len(contexts),
        "304 conditional" if conditional else "200 full",
        sum(counts),
        elapsed,
        latencies,
        errors,
    )


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    length = int(headers.get("content-length", "0"))
    if length:
        await reader.readexactly(length)
    return int(lines[0].split()[1]), headers


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of polling per row (default 5)")
    parser.add_argument("--clients", default="1,10,100", help="comma-separated client counts")
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    with tempfile.TemporaryDirectory(prefix="wfm-polls-") as temporary:
        workdir = Path(temporary)
        pki = Pki.init(workdir / "pki", trust_domain="bench.example", wfm_id="wfm-bench")
        process, endpoints = start_wfm(workdir, pki)
        try:
            contexts = provision(endpoints, pki, workdir, max(counts))
            results = [
                asyncio.run(run(endpoints["url"], contexts[:count], conditional, args.duration))
                for count in counts
                for conditional in (False, True)
            ]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)
    print(f"reference WFM manifest polls over mTLS (TLS 1.3, keep-alive), {args.duration:g} s per row")
    print(
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, loopback\n"
    )
    columns = ("polls", "polls/s", "p50 ms", "p99 ms")
    print(f"{'clients':>7}  {'answer':<16} " + " ".join(f"{c:>8}" for c in columns) + f" {'errors':>6}")
    for r in results:
        print(
            f"{r.clients:>7}  {r.mode:<16} {r.polls:>8} {r.rate:>8.0f} "
            f"{r.percentile(0.5):>8.2f} {r.percentile(0.99):>8.2f} {r.errors:>6}"
        )
    mean = statistics.mean(r.rate for r in results)
    print(f"\nmean over rows: {mean:.0f} polls/s")


if __name__ == "__main__":
    main()
