"""Durable state of the reference WFM: one SQLite file in the --state directory.

Everything that must survive a restart lives here: the accepted-client policy and retirements, devices
per (client, deviceId) with their capabilities, deployments with their exact YAML bytes (and every
revision ever served, since digest-addressed resources are immutable), the manifest version and the
deployment-set digest per client, bundles, and status reports. Writes commit at once, so a restart
with the same directory sees every acknowledged change and ``manifestVersion`` never goes back.

All calls happen on the server's event-loop thread; the connection is opened with
``check_same_thread=False`` only so that tests may inspect a stopped server's store from another thread.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import UsageError

SCHEMA_VERSION = 1
_DEPLOYMENT_COLUMNS = "id, client, device_id, application_id, description, parameters, digest, body"
DB_NAME = "wfm.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS policy (
    kind TEXT NOT NULL CHECK (kind IN ('spiffe_id', 'client_id', 'pattern')),
    value TEXT NOT NULL,
    added REAL NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE TABLE IF NOT EXISTS retired (spiffe_id TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    scope TEXT NOT NULL,
    device_id TEXT NOT NULL,
    reported_by TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (scope, device_id)
);
CREATE TABLE IF NOT EXISTS deployments (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    client TEXT NOT NULL,
    device_id TEXT NOT NULL,
    application_id TEXT NOT NULL,
    description TEXT NOT NULL,
    parameters TEXT NOT NULL,
    digest TEXT NOT NULL,
    body BLOB NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deployments_client ON deployments (client, seq);
CREATE TABLE IF NOT EXISTS revisions (
    client TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (client, deployment_id, digest)
);
CREATE TABLE IF NOT EXISTS manifests (
    client TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    set_digest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bundles (
    client TEXT NOT NULL,
    digest TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (client, digest)
);
CREATE TABLE IF NOT EXISTS status (
    client TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    report TEXT NOT NULL,
    first REAL NOT NULL,
    updated REAL NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (client, deployment_id)
);
"""


@dataclass(frozen=True)
class Deployment:
    id: str
    client: str
    device_id: str
    application_id: str
    description: str
    parameters: dict[str, Any]
    digest: str
    body: bytes


@dataclass(frozen=True)
class PolicyEntry:
    kind: str  # spiffe_id | client_id | pattern
    value: str


class Store:
    """The WFM's SQLite database."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / DB_NAME
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) != SCHEMA_VERSION:
            raise UsageError(f"{self.path}: state schema version {row[0]}, this WFM needs {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit of work (nested use is not supported)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- identity binding -------------------------------------------------------------------------

    def check_identity(self, trust_domain: str, wfm_id: str) -> None:
        """A state directory belongs to one WFM identity for ever (WIP-002: the wfm-id is stable)."""
        rows = dict(self._db.execute("SELECT key, value FROM meta WHERE key IN ('trust_domain', 'wfm_id')"))
        if not rows:
            self._db.executemany(
                "INSERT INTO meta VALUES (?, ?)", [("trust_domain", trust_domain), ("wfm_id", wfm_id)]
            )
        elif rows != {"trust_domain": trust_domain, "wfm_id": wfm_id}:
            raise UsageError(
                f"{self.path} belongs to trust domain {rows.get('trust_domain')!r}, wfm-id "
                f"{rows.get('wfm_id')!r}, not {trust_domain!r}/{wfm_id!r}"
            )

    # -- accepted-client policy -------------------------------------------------------------------

    def policy(self) -> tuple[list[PolicyEntry], set[str]]:
        entries = [
            PolicyEntry(k, v) for k, v in self._db.execute("SELECT kind, value FROM policy ORDER BY added")
        ]
        retired = {row[0] for row in self._db.execute("SELECT spiffe_id FROM retired")}
        return entries, retired

    def accept(self, entry: PolicyEntry) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO policy VALUES (?, ?, ?)", (entry.kind, entry.value, time.time())
            )
            if entry.kind == "spiffe_id":  # an explicit new acceptance ends a retirement
                self._db.execute("DELETE FROM retired WHERE spiffe_id = ?", (entry.value,))

    def retire(self, spiffe_id: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO retired VALUES (?, ?)", (spiffe_id, time.time()))

    # -- devices ----------------------------------------------------------------------------------

    def device(self, scope: str, device_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT capabilities FROM devices WHERE scope = ? AND device_id = ?", (scope, device_id)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def put_device(self, scope: str, device_id: str, reported_by: str, capabilities: dict[str, Any]) -> bool:
        """Insert or replace; True when the device was new in this scope."""
        now = time.time()
        text = json.dumps(capabilities, sort_keys=True, ensure_ascii=False)
        with self.transaction():
            existed = self.device(scope, device_id) is not None
            if existed:
                self._db.execute(
                    "UPDATE devices SET capabilities = ?, reported_by = ?, updated = ? "
                    "WHERE scope = ? AND device_id = ?",
                    (text, reported_by, now, scope, device_id),
                )
            else:
                self._db.execute(
                    "INSERT INTO devices VALUES (?, ?, ?, ?, ?, ?)",
                    (scope, device_id, reported_by, text, now, now),
                )
        return not existed

    def delete_device(self, scope: str, device_id: str) -> bool:
        """Remove the device and the devices behind it (a gone gateway takes its children along)."""
        with self.transaction():
            removed = self._db.execute(
                "DELETE FROM devices WHERE scope = ? AND device_id = ?", (scope, device_id)
            ).rowcount
            if removed:
                self._db.execute(
                    "DELETE FROM devices WHERE scope = ? AND substr(device_id, 1, ?) = ?",
                    (scope, len(device_id) + 1, device_id + "/"),
                )
        return bool(removed)

    def devices(self) -> list[dict[str, Any]]:
        return [
            {"scope": s, "deviceId": d, "reportedBy": r, "capabilities": json.loads(c)}
            for s, d, r, c in self._db.execute(
                "SELECT scope, device_id, reported_by, capabilities FROM devices ORDER BY scope, device_id"
            )
        ]

    # -- deployments ------------------------------------------------------------------------------

    def deployment(self, deployment_id: str) -> Deployment | None:
        row = self._db.execute(
            f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments WHERE id = ?",
            (deployment_id,),
        ).fetchone()
        return _deployment(row) if row else None

    def deployments(self, client: str | None = None) -> list[Deployment]:
        """The current deployments (of one client), in creation order."""
        query = f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments"
        rows = (
            self._db.execute(query + " WHERE client = ? ORDER BY seq", (client,))
            if client is not None
            else self._db.execute(query + " ORDER BY seq")
        )
        return [_deployment(row) for row in rows]

    def save_deployment(self, deployment: Deployment) -> None:
        """Insert or replace the deployment's current revision and keep the revision servable."""
        now = time.time()
        params = json.dumps(deployment.parameters, sort_keys=True, ensure_ascii=False)
        existing = self._db.execute("SELECT seq FROM deployments WHERE id = ?", (deployment.id,)).fetchone()
        if existing:
            self._db.execute(
                "UPDATE deployments SET client = ?, device_id = ?, application_id = ?, description = ?, "
                "parameters = ?, digest = ?, body = ?, updated = ? WHERE id = ?",
                (
                    deployment.client,
                    deployment.device_id,
                    deployment.application_id,
                    deployment.description,
                    params,
                    deployment.digest,
                    deployment.body,
                    now,
                    deployment.id,
                ),
            )
        else:
            seq = self._db.execute("SELECT coalesce(max(seq), 0) + 1 FROM deployments").fetchone()[0]
            self._db.execute(
                "INSERT INTO deployments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    deployment.id,
                    seq,
                    deployment.client,
                    deployment.device_id,
                    deployment.application_id,
                    deployment.description,
                    params,
                    deployment.digest,
                    deployment.body,
                    now,
                    now,
                ),
            )
        self._db.execute(
            "INSERT OR IGNORE INTO revisions VALUES (?, ?, ?, ?)",
            (deployment.client, deployment.id, deployment.digest, deployment.body),
        )

    def delete_deployment(self, deployment_id: str) -> None:
        self._db.execute("DELETE FROM deployments WHERE id = ?", (deployment_id,))

    def revision(self, client: str | None, deployment_id: str, digest: str) -> bytes | None:
        """Exact bytes of one revision ever issued to ``client`` (any client when None)."""
        if client is None:
            row = self._db.execute(
                "SELECT body FROM revisions WHERE deployment_id = ? AND digest = ?", (deployment_id, digest)
            ).fetchone()
        else:
            row = self._db.execute(
                "SELECT body FROM revisions WHERE client = ? AND deployment_id = ? AND digest = ?",
                (client, deployment_id, digest),
            ).fetchone()
        return bytes(row[0]) if row else None

    def ever_issued(self, client: str, deployment_id: str) -> bool:
        """Whether the deployment was ever assigned to the client (removed ones still get status reports)."""
        row = self._db.execute(
            "SELECT 1 FROM revisions WHERE client = ? AND deployment_id = ? LIMIT 1", (client, deployment_id)
        ).fetchone()
        return row is not None

    # -- manifests and bundles --------------------------------------------------------------------

    def manifest_state(self, client: str) -> tuple[int, str] | None:
        row = self._db.execute(
            "SELECT version, set_digest FROM manifests WHERE client = ?", (client,)
        ).fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def set_manifest_state(self, client: str, version: int, set_digest: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO manifests VALUES (?, ?, ?)", (client, version, set_digest))

    def forget_manifest_versions(self) -> None:
        """Only for the fault version-reset-on-restart."""
        self._db.execute("DELETE FROM manifests")

    def bump_manifest_versions(self) -> None:
        """Only for the variant version-bumped-on-restart."""
        self._db.execute("UPDATE manifests SET version = version + 1")

    def manifest_states(self) -> dict[str, dict[str, Any]]:
        return {
            c: {"manifestVersion": v, "setDigest": d}
            for c, v, d in self._db.execute(
                "SELECT client, version, set_digest FROM manifests ORDER BY client"
            )
        }

    def bundle(self, client: str, digest: str) -> bytes | None:
        row = self._db.execute(
            "SELECT body FROM bundles WHERE client = ? AND digest = ?", (client, digest)
        ).fetchone()
        return bytes(row[0]) if row else None

    def save_bundle(self, client: str, digest: str, body: bytes) -> None:
        self._db.execute("INSERT OR IGNORE INTO bundles VALUES (?, ?, ?)", (client, digest, body))

    # -- status -----------------------------------------------------------------------------------

    def save_status(self, client: str, deployment_id: str, report: dict[str, Any]) -> bool:
        """Record the latest report; True when it is the first one for (client, deployment)."""
        now = time.time()
        text = json.dumps(report, sort_keys=True, ensure_ascii=False)
        with self.transaction():
            updated = self._db.execute(
                "UPDATE status SET report = ?, updated = ?, count = count + 1 "
                "WHERE client = ? AND deployment_id = ?",
                (text, now, client, deployment_id),
            ).rowcount
            if not updated:
                self._db.execute(
                    "INSERT INTO status VALUES (?, ?, ?, ?, ?, 1)", (client, deployment_id, text, now, now)
                )
        return not updated

    def statuses(self) -> list[dict[str, Any]]:
        return [
            {"client": c, "deploymentId": d, "report": json.loads(r), "reports": n}
            for c, d, r, n in self._db.execute(
                "SELECT client, deployment_id, report, count FROM status ORDER BY client, deployment_id"
            )
        ]


def _deployment(row: tuple[Any, ...]) -> Deployment:
    return Deployment(
        id=row[0],
        client=row[1],
        device_id=row[2],
        application_id=row[3],
        description=row[4],
        parameters=json.loads(row[5]),
        digest=row[6],
        body=bytes(row[7]),
    )
