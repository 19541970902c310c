"""Faults as data: a reference package with one named violation switched on (DESIGN.md §3).

A fault names its origin (a reference package folder), the requirement it breaks, the scenarios
that must fail because of it (the kill list), and the edits that introduce it. The same catalogue
serves the refusal scenarios ("the bundled package with the fault X") and the self-test (every
subject scenario run against every mutant).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .._internal.archive_builder import ArchiveEntry, entries_from_directory, pack
from ..errors import UsageError
from .local_source import ARTIFACT_SUFFIX

Path_ = list[str | int]


@dataclass(frozen=True)
class PackageFault:
    name: str
    origin: str
    requirement: str
    summary: str
    kills: tuple[str, ...]
    edits: tuple[dict[str, Any], ...] = ()
    publish: dict[str, Any] | None = None  # OCI publish overrides; present (even empty) = an OCI fault

    @property
    def needs_registry(self) -> bool:
        return self.publish is not None

    @property
    def signature(self) -> str | None:
        """The signature fault (a signing fixture kind) the package is published with, if any."""
        value = (self.publish or {}).get("signature")
        return str(value) if value is not None else None


def load_faults(catalogue: Path) -> dict[str, PackageFault]:
    """The fault catalogue, validated enough that a typo fails loudly."""
    try:
        data = yaml.safe_load(catalogue.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{catalogue}: cannot read the fault catalogue: {exc}") from None
    faults: dict[str, PackageFault] = {}
    for entry in data.get("faults", []):
        missing = {"name", "origin", "requirement", "summary", "kills"} - set(entry)
        if missing:
            raise UsageError(f"{catalogue}: fault {entry.get('name')!r} lacks {sorted(missing)}")
        if not entry.get("edits") and entry.get("publish") is None:
            raise UsageError(f"{catalogue}: fault {entry['name']!r} has neither edits nor publish overrides")
        faults[entry["name"]] = PackageFault(
            name=entry["name"],
            origin=entry["origin"],
            requirement=entry["requirement"],
            summary=" ".join(entry["summary"].split()),
            kills=tuple(entry["kills"]),
            edits=tuple(entry.get("edits") or ()),
            publish=dict(entry["publish"] or {}) if "publish" in entry else None,
        )
    return faults


def materialize(fault: PackageFault, references: Path, destination: Path) -> Path:
    """A copy of the fault's origin package with the fault's edits applied; returns its root."""
    root = destination / fault.name
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(references / fault.origin, root, symlinks=True)
    for edit in fault.edits:
        _apply(edit, root)
    return root


def _apply(edit: dict[str, Any], root: Path) -> None:
    if "archive" in edit:
        _edit_archive(root, edit)
    elif "write_file" in edit:
        (root / edit["write_file"]).write_text(edit["text"], encoding="utf-8")
    elif "remove_file" in edit:
        target = root / edit["remove_file"]
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    elif "description_text" in edit:
        _description_path(root).write_text(edit["description_text"], encoding="utf-8")
    else:
        path = _description_path(root)
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        _edit_document(document, edit)
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def _description_path(root: Path) -> Path:
    return next(p for p in sorted(root.iterdir()) if p.suffix in (".yaml", ".yml"))


def _edit_document(document: Any, edit: dict[str, Any]) -> None:
    """set / delete / append at a path of keys and list indices."""
    op = next(k for k in ("set", "delete", "append") if k in edit)
    *parents, last = edit[op]
    node = document
    for key in parents:
        node = node[key]
    if op == "set":
        node[last] = edit["value"]
    elif op == "delete":
        del node[last]
    else:
        node[last].append(edit["value"])


def _edit_archive(root: Path, edit: dict[str, Any]) -> None:
    """Replace components/<name>/ by a packed archive with one change to its entries."""
    name = edit["archive"]
    folder = root / "components" / name
    suffix = ARTIFACT_SUFFIX["helm"] if (folder / "Chart.yaml").exists() else ARTIFACT_SUFFIX["compose"]
    if "raw" in edit:
        data = edit["raw"].encode()
    else:
        entries = entries_from_directory(folder, top=name)
        data = pack(_edit_entries(entries, edit))
    shutil.rmtree(folder)
    (root / "components" / f"{name}{suffix}").write_bytes(data)


def _packed(files: list[dict[str, str]]) -> bytes:
    """A gzip'd tar of ``{name, text}`` files: an archive inside the archive (a packaged subchart)."""
    return pack([ArchiveEntry(f["name"], "file", f["text"].encode(), "", 0o644) for f in files])


def _edit_entries(entries: list[ArchiveEntry], edit: dict[str, Any]) -> list[ArchiveEntry]:
    by_name = {e.name: e for e in entries}
    if "add" in edit:
        spec = edit["add"]
        entries.append(
            ArchiveEntry(
                name=spec["name"],
                type=spec.get("type", "file"),
                data=_packed(spec["archive"]) if "archive" in spec else spec.get("text", "").encode(),
                target=spec.get("target", ""),
                mode=int(str(spec.get("mode", "644")), 8),
            )
        )
    elif "remove" in edit:
        entries.remove(by_name[edit["remove"]])
    elif "rename" in edit:
        old, new = edit["rename"]
        entries = [
            ArchiveEntry(e.name.replace(old, new, 1), e.type, e.data, e.target, e.mode)
            if e.name.startswith(old)
            else e
            for e in entries
        ]
    elif "mode" in edit:
        member, mode = edit["mode"]
        entries[entries.index(by_name[member])] = by_name[member].with_mode(int(str(mode), 8))
    elif "text" in edit:
        member, text = edit["text"]
        old = by_name[member]
        entries[entries.index(old)] = ArchiveEntry(old.name, "file", text.encode(), "", old.mode)
    return entries
