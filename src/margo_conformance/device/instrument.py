"""The instrument WFM: the suite's reference WFM, playing the WFM for a device under test.

Scenarios drive it only through its control interface (``AdminClient``), never through the
southbound API the device uses: assign and remove deployments, switch a served fault on for one
resource, read the transcript of every connection and request the device made, and await the status
reports that should follow a change — with a time budget, never a fixed sleep.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..instrument import AdminClient, StartedWfm, StartWfm
from ..pki import Pki, SvidFiles
from ..pki.policy import uri_sans

TRUST_DOMAIN = "conformance.margo.example"
WFM_ID = "instrument-wfm"
POLL_STEP_S = 0.05  # how often an await looks at the transcript


@dataclass(frozen=True)
class DeviceIdentity:
    """What the suite hands a device: its client SVID files and the trust anchors, and who it is."""

    name: str
    svid: SvidFiles
    anchors: Path
    spiffe_id: str


@dataclass(frozen=True)
class Record:
    """One transcript record (a connection or an HTTP request the device made)."""

    data: Mapping[str, Any]

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", "request"))

    @property
    def method(self) -> str:
        return str(self.data.get("method", ""))

    @property
    def path(self) -> str:
        return str(self.data.get("path", ""))

    @property
    def status(self) -> int | None:
        value = self.data.get("status")
        return value if isinstance(value, int) else None

    @property
    def index(self) -> int:
        """The record's position in the transcript."""
        return int(self.data.get("index", -1))

    @property
    def body(self) -> Any:
        return self.data.get("body")

    @property
    def time(self) -> float:
        """Seconds since the epoch (the record's ISO 8601 UTC time)."""
        return datetime.datetime.fromisoformat(str(self.data["time"])).timestamp()

    def is_status_report(self, deployment_id: str | None = None) -> bool:
        if self.method != "POST" or not self.path.endswith("/status"):
            return False
        return deployment_id is None or self.path == f"/api/v1/deployments/{deployment_id}/status"

    def brief(self) -> str:
        if self.kind == "connection":
            return f"connection {self.data.get('outcome')} {self.data.get('note', '')}".strip()
        return f"{self.method} {self.path} -> {self.status}"


class InstrumentWfm:
    """A WFM with its own trust domain, started for one run of device scenarios (``start``: the driver
    passes the reference WFM in; the checker never imports it)."""

    def __init__(self, workdir: Path, start: StartWfm, *, host: str = "127.0.0.1") -> None:
        self.workdir = workdir
        self.pki = Pki.init(workdir / "pki", trust_domain=TRUST_DOMAIN, wfm_id=WFM_ID)
        self.endpoints: StartedWfm = start(self.pki.directory, workdir / "wfm", host=host)
        self.admin = AdminClient(self.endpoints.admin_url)

    @property
    def url(self) -> str:
        return self.endpoints.url

    def close(self) -> None:
        self.endpoints.stop()

    # -- identities --------------------------------------------------------------------------------

    def enrol(self, name: str) -> DeviceIdentity:
        """Mint a client SVID for a device, write its files, and accept it (WIP-008)."""
        svid = self.pki.mint_client(name)
        files = svid.write(self.workdir / "clients" / name, "client")
        spiffe_id = uri_sans(svid.certificate)[0]
        self.admin.accept_client(spiffe_id)
        return DeviceIdentity(name, files, self.pki.bundle_pem, spiffe_id)

    # -- the transcript ----------------------------------------------------------------------------

    def mark(self) -> int:
        """The transcript position now: later reads ``since`` it see only what happens after."""
        return self.admin.requests(since=10**12)[1]

    def records(self, spiffe_id: str, since: int = 0) -> list[Record]:
        """The device's records since ``since`` (connections are not attributable before TLS: all of
        them are included, the instrument serves one device at a time)."""
        records, _ = self.admin.requests(since=since)
        return [Record(r) for r in records if r.get("kind") == "connection" or r.get("client") == spiffe_id]

    def reports(self, spiffe_id: str, deployment_id: str, since: int = 0) -> list[dict[str, Any]]:
        """The status reports for one deployment the WFM accepted, in order."""
        return [
            r.body
            for r in self.records(spiffe_id, since)
            if r.is_status_report(deployment_id) and r.status in (200, 201) and isinstance(r.body, dict)
        ]

    def device_id_of(self, spiffe_id: str) -> str | None:
        """The deviceId the client registered its capabilities under (None before it has)."""
        for device in self.admin.state().get("devices", []):
            if device.get("reportedBy") == spiffe_id:
                return str(device["deviceId"])
        return None

    # -- awaiting --------------------------------------------------------------------------------

    def await_(
        self,
        what: str,
        probe: Callable[[], Any],
        *,
        budget_s: float,
        alive: Callable[[], None] = lambda: None,
    ) -> Any:
        """Poll ``probe`` until it returns something truthy; ``alive`` raises when the device died.

        Raises ``AwaitTimeout`` (an AssertionError: the device did not do what it must in time)."""
        deadline = time.monotonic() + budget_s
        while True:
            value = probe()
            if value:
                return value
            alive()
            if time.monotonic() >= deadline:
                raise AwaitTimeout(f"within {budget_s:g} s: {what}")
            time.sleep(POLL_STEP_S)


class AwaitTimeout(AssertionError):
    """What the device should have done did not happen within the budget."""


def iter_states(reports: list[dict[str, Any]]) -> Iterator[str]:
    for report in reports:
        status = report.get("status")
        if isinstance(status, dict) and isinstance(status.get("state"), str):
            yield status["state"]
