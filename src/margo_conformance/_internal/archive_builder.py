"""Deterministic gzip'd tar archives from an explicit list of entries.

The same bytes every time (sorted entries, mtime 0, root ownership, gzip header without a
timestamp) so that digests of fixtures and published artifacts are reproducible. Entries are data,
so a fault can add, rename or re-mode one before packing (see ``package.mutants``).
"""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import InputError
from .tar_safety import MAX_DECOMPRESSED_BYTES, MAX_MEMBERS

ENTRY_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "fifo": tarfile.FIFOTYPE,
}


@dataclass(frozen=True)
class ArchiveEntry:
    name: str
    type: str = "file"  # one of ENTRY_TYPES
    data: bytes = b""
    target: str = ""  # link target for symlink/hardlink
    mode: int = 0o644

    def with_mode(self, mode: int) -> ArchiveEntry:
        return replace(self, mode=mode)


def entries_from_directory(directory: Path, top: str) -> list[ArchiveEntry]:
    """The files of ``directory`` under one top-level folder named ``top`` (symlinks are not followed),
    within the member and size bounds of ``tar_safety`` checked before a file is read."""
    entries = [ArchiveEntry(name=top, type="dir", mode=0o755)]
    total = 0
    for path in sorted(directory.rglob("*")):
        name = f"{top}/{path.relative_to(directory).as_posix()}"
        if len(entries) >= MAX_MEMBERS:  # the same bounds an archive of it would meet when read back
            raise InputError(f"{directory}: more than {MAX_MEMBERS} entries; refusing to pack it")
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
            if total > MAX_DECOMPRESSED_BYTES:
                raise InputError(f"{directory}: more than {MAX_DECOMPRESSED_BYTES} bytes; not packing it")
        if path.is_symlink():
            entries.append(ArchiveEntry(name=name, type="symlink", target=str(path.readlink()), mode=0o777))
        elif path.is_dir():
            entries.append(ArchiveEntry(name=name, type="dir", mode=0o755))
        elif path.is_file():
            executable = path.stat().st_mode & 0o111
            entries.append(
                ArchiveEntry(name=name, data=path.read_bytes(), mode=0o755 if executable else 0o644)
            )
    return entries


def pack(entries: list[ArchiveEntry]) -> bytes:
    """A gzip'd tar with exactly these entries, in order, with normalised metadata."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = ENTRY_TYPES[entry.type]
            info.mode = entry.mode
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.linkname = entry.target
            payload = entry.data if entry.type == "file" else b""
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload else None)
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def pack_directory(directory: Path, top: str) -> bytes:
    return pack(entries_from_directory(directory, top))
