"""The device agent's durable state (DS-025): the last accepted manifestVersion and its ETag, the
deployments it holds (digest, adopted version, last reported state), and status reports still to send.

One JSON document, ``state.json``, written atomically and durably: a temporary file in the same folder,
``fsync``, ``rename`` over the old one, ``fsync`` of the folder. Held deployment YAMLs are kept beside it
(``yaml/<hex>.yaml``, named by digest) so a runtime can be repaired without asking the WFM again.
A state file that cannot be read is a usage error, never silently treated as "nothing stored": that
would switch rollback protection off (DS-024).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import UsageError

STATE_FILE = "state.json"
FORMAT = 1


@dataclass
class HeldDeployment:
    """One deployment the device holds: the revision (digest) it applied and what it reported."""

    deployment_id: str
    digest: str
    adopted_version: int  # STAT-008: manifestVersion whose revision this is
    state: str  # the overall state last reported
    name: str = ""  # metadata.name (error source, STAT-005)
    components: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "deploymentId": self.deployment_id,
            "digest": self.digest,
            "adoptedVersion": self.adopted_version,
            "state": self.state,
            "name": self.name,
            "components": list(self.components),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeldDeployment:
        return cls(
            deployment_id=str(data["deploymentId"]),
            digest=str(data["digest"]),
            adopted_version=int(data["adoptedVersion"]),
            state=str(data["state"]),
            name=str(data.get("name", "")),
            components=[str(c) for c in data.get("components", [])],
        )


@dataclass
class DeviceState:
    """Everything the agent must remember across restarts."""

    manifest_version: int | None = None
    etag: str | None = None
    deployments: dict[str, HeldDeployment] = field(default_factory=dict)
    pending_reports: list[dict[str, Any]] = field(default_factory=list)  # status bodies not yet accepted

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "manifestVersion": self.manifest_version,
            "etag": self.etag,
            "deployments": [d.as_dict() for d in self.deployments.values()],
            "pendingReports": list(self.pending_reports),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceState:
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown state format {data.get('format')!r}")
        version = data.get("manifestVersion")
        etag = data.get("etag")
        held = [HeldDeployment.from_dict(d) for d in data.get("deployments", [])]
        return cls(
            manifest_version=None if version is None else int(version),
            etag=None if etag is None else str(etag),
            deployments={d.deployment_id: d for d in held},
            pending_reports=list(data.get("pendingReports", [])),
        )


class StateStore:
    """Reads and writes ``DeviceState`` in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / STATE_FILE

    def load(self) -> DeviceState:
        """The stored state, or an empty one when nothing was ever stored."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return DeviceState()
        except OSError as exc:
            raise UsageError(f"{self.path}: cannot read the device state ({exc})") from None
        try:
            return DeviceState.from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(
                f"{self.path}: the device state is unreadable ({exc}); refusing to start without rollback "
                "protection - move the file away to reset the device deliberately"
            ) from None

    def save(self, state: DeviceState) -> None:
        """Durably replace the stored state (tmp + fsync + rename + fsync of the folder)."""
        data = json.dumps(state.as_dict(), indent=1, sort_keys=True).encode("utf-8")
        _write_durably(self.path, data)

    def save_yaml(self, digest: str, data: bytes) -> Path:
        """Keep a held deployment's exact bytes, named by digest."""
        path = self.yaml_path(digest)
        if not path.exists():
            _write_durably(path, data)
        return path

    def load_yaml(self, digest: str) -> bytes | None:
        try:
            return self.yaml_path(digest).read_bytes()
        except OSError:
            return None

    def yaml_path(self, digest: str) -> Path:
        algorithm, _, encoded = digest.partition(":")
        return self.directory / "yaml" / f"{algorithm}-{encoded}.yaml"

    def prune_yaml(self, keep: set[str]) -> None:
        """Remove stored YAMLs of digests no longer held."""
        folder = self.directory / "yaml"
        wanted = {self.yaml_path(d).name for d in keep}
        if folder.is_dir():
            for path in folder.iterdir():
                if path.name not in wanted and path.suffix == ".yaml":
                    path.unlink(missing_ok=True)


def _write_durably(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
