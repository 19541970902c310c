"""Reading untrusted gzip'd tar archives without extracting them, and extracting them safely.

Bounds on decompressed size and member count keep a hostile archive (a gzip bomb, millions of
entries) from exhausting memory or time; every member is classified before anything touches disk.
"""

from __future__ import annotations

import gzip
import io
import posixpath
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024
MAX_MEMBERS = 10_000


@dataclass(frozen=True)
class MemberProblem:
    """Why one archive member is unsafe to extract (SUP-01 archive safety rules)."""

    member: str
    kind: str  # absolute-path | parent-reference | link-escape | special-file | setid-bit
    detail: str


def decompress_gzip(data: bytes, *, limit: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """The gunzipped bytes, refusing inputs that are not gzip or inflate beyond ``limit``."""
    if data[:2] != b"\x1f\x8b":
        raise InputError("not gzip data (no gzip magic number)")
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(data, limit + 1)
    except zlib.error as exc:
        raise InputError(f"corrupt gzip data: {exc}") from None
    if len(out) > limit or decompressor.unconsumed_tail:
        raise InputError(f"archive inflates beyond {limit // (1024 * 1024)} MiB; refusing it")
    return out


def open_tar_gz(data: bytes) -> tarfile.TarFile:
    """A TarFile over bounded, already-decompressed bytes; InputError if it is not a tar."""
    raw = decompress_gzip(data)
    try:
        tar = tarfile.open(fileobj=io.BytesIO(raw), mode="r:")  # noqa: SIM115 - the caller closes it
        members = tar.getmembers()
    except (tarfile.TarError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"not a valid tar archive: {exc}") from None
    if len(members) > MAX_MEMBERS:
        raise InputError(f"archive has more than {MAX_MEMBERS} members; refusing it")
    return tar


def member_problems(tar: tarfile.TarFile) -> list[MemberProblem]:
    """Every member that could escape the extraction root or carry unsafe metadata."""
    problems: list[MemberProblem] = []
    for member in tar.getmembers():
        name = member.name
        if name.startswith("/"):
            problems.append(MemberProblem(name, "absolute-path", "absolute path"))
        if ".." in name.split("/"):
            problems.append(MemberProblem(name, "parent-reference", "path contains '..'"))
        if member.issym() or member.islnk():
            target = _link_target(member)
            if target is None:
                kind = "symbolic" if member.issym() else "hard"
                problems.append(
                    MemberProblem(
                        name, "link-escape", f"{kind} link to {member.linkname!r} leaves the archive root"
                    )
                )
        elif not (member.isfile() or member.isdir()):
            problems.append(MemberProblem(name, "special-file", "device, FIFO or other special file"))
        if member.mode & 0o6000:
            problems.append(MemberProblem(name, "setid-bit", f"setuid/setgid bit set (mode {member.mode:o})"))
        if member.mode & 0o1000:
            problems.append(MemberProblem(name, "sticky-bit", f"sticky bit set (mode {member.mode:o})"))
    return problems


def _link_target(member: tarfile.TarInfo) -> str | None:
    """The link target as a normalised archive path, or None when it escapes the archive."""
    link = member.linkname
    if link.startswith("/"):
        return None
    base = posixpath.dirname(member.name) if member.issym() else ""
    resolved = posixpath.normpath(posixpath.join(base, link))
    if resolved == ".." or resolved.startswith("../"):
        return None
    return resolved


def top_level_names(tar: tarfile.TarFile, *, safe_only: bool = False) -> set[str]:
    """The distinct first path components of the members ('./' prefixes ignored); with ``safe_only``,
    members with absolute paths or '..' are left out."""
    names = set()
    for member in tar.getmembers():
        if safe_only and (member.name.startswith("/") or ".." in member.name.split("/")):
            continue
        parts = [p for p in member.name.split("/") if p not in ("", ".")]
        if parts:
            names.add(parts[0])
    return names


def extract_safely(tar: tarfile.TarFile, destination: Path) -> None:
    """Extract with the stdlib 'data' filter after our own checks found nothing unsafe."""
    problems = member_problems(tar)
    if problems:
        first = problems[0]
        raise InputError(f"refusing to extract: member {first.member!r}: {first.detail}")
    try:
        tar.extractall(destination, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise InputError(f"cannot extract archive: {exc}") from None
