"""Reading untrusted gzip'd tar archives without extracting them, and extracting them safely.

Bounds on decompressed size and member count keep a hostile archive (a gzip bomb, millions of
entries) from exhausting memory or time; every member is classified before anything touches disk.
"""

from __future__ import annotations

import gzip
import io
import posixpath
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .compression import GZIP_WBITS, inflate

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
    try:
        return inflate(data, wbits=GZIP_WBITS, limit=limit, several=True)
    except ValueError as exc:
        raise InputError(f"gzip data: {exc}".replace("compressed data", "gzip data")) from None


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
    """Every member that could escape its top-level folder or carry unsafe metadata.

    Paths are resolved the way an extractor would write them: following the archive's own symbolic
    links (a file written under ``d/`` where ``d -> ..`` lands outside), with a bound on link chains.
    """
    members = tar.getmembers()
    links = {_normal(m.name): m.linkname for m in members if m.issym()}
    problems: list[MemberProblem] = []
    for member in members:
        name = member.name
        top = _normal(name).split("/")[0]
        if name.startswith("/"):
            problems.append(MemberProblem(name, "absolute-path", "absolute path"))
        if ".." in name.split("/"):
            problems.append(MemberProblem(name, "parent-reference", "path contains '..'"))
        elif (parent := posixpath.dirname(_normal(name))) and not _inside(_resolve(parent, links), top):
            problems.append(
                MemberProblem(name, "link-escape", "its folder is a link that leaves the top-level folder")
            )
        if member.issym() or member.islnk():
            if not _inside(_link_destination(member, links), top):
                kind = "symbolic" if member.issym() else "hard"
                problems.append(
                    MemberProblem(
                        name, "link-escape", f"{kind} link to {member.linkname!r} leaves the top-level folder"
                    )
                )
        elif not (member.isfile() or member.isdir()):
            problems.append(MemberProblem(name, "special-file", "device, FIFO or other special file"))
        if member.mode & 0o6000:
            problems.append(MemberProblem(name, "setid-bit", f"setuid/setgid bit set (mode {member.mode:o})"))
        if member.mode & 0o1000:
            problems.append(MemberProblem(name, "sticky-bit", f"sticky bit set (mode {member.mode:o})"))
    return problems


MAX_LINK_HOPS = 40


def _normal(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def _inside(path: str | None, top: str) -> bool:
    return path is not None and (path == top or path.startswith(top + "/"))


def _link_destination(member: tarfile.TarInfo, links: dict[str, str]) -> str | None:
    """Where a link points, as an archive path (symlinks: relative to the link's folder)."""
    if member.linkname.startswith("/"):
        return None
    base = posixpath.dirname(_normal(member.name)) if member.issym() else ""
    return _resolve(posixpath.join(base, member.linkname), links)


def _resolve(path: str, links: dict[str, str], hops: int = 0) -> str | None:
    """The archive path ``path`` names after following archive symlinks; None if it leaves the root
    or the chain of links is too long (a loop)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
        target = links.get("/".join(parts))
        if target is not None:
            if hops >= MAX_LINK_HOPS or target.startswith("/"):
                return None
            resolved = _resolve(
                posixpath.join(*parts[:-1], target) if parts[:-1] else target, links, hops + 1
            )
            if resolved is None:
                return None
            parts = resolved.split("/") if resolved else []
    return "/".join(parts)


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
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: the stdlib's own filter as a second guard
            tar.extractall(destination, filter="data")
        else:  # older 3.11 (Debian 12's 3.11.2): our checks above are the guard
            tar.extractall(destination)  # noqa: S202
    except (tarfile.TarError, OSError) as exc:
        raise InputError(f"cannot extract archive: {exc}") from None
