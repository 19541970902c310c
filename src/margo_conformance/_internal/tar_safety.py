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
    kind: str  # absolute-path | parent-reference | link-escape | special-file | setid-bit | sticky-bit |
    #            header-field | missing-link-target
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
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, ValueError, OverflowError, UnicodeError) as exc:
        raise InputError(f"not a valid tar archive: {' '.join(str(exc).split())[:200]}") from None
    if len(members) > MAX_MEMBERS:
        raise InputError(f"archive has more than {MAX_MEMBERS} members; refusing it")
    _check_member_data(members, len(raw))
    return tar


def _check_member_data(members: list[tarfile.TarInfo], available: int) -> None:
    """Reading a member costs at most what the archive holds: sparse members (whose holes are filled
    with zeros on reading: 254 bytes can claim gigabytes) and members whose data runs past the end of
    the archive are refused before anything reads them."""
    for member in members:
        if member.sparse is not None:
            raise InputError(f"member {member.name[:200]!r} is a sparse file; refusing it")
        if member.isfile() and member.offset_data + member.size > available:
            raise InputError(
                f"member {member.name[:200]!r} claims {member.size} bytes, more than the archive holds"
            )


def member_problems(tar: tarfile.TarFile) -> list[MemberProblem]:
    """Every member that could escape its top-level folder or carry unsafe metadata.

    Paths are resolved the way an extractor would write them: following the archive's own symbolic
    links (a file written under ``d/`` where ``d -> ..`` lands outside), with a bound on link chains.
    """
    members = tar.getmembers()
    resolver = _Resolver({_normal(m.name): m.linkname for m in members if m.issym()})
    problems: list[MemberProblem] = []
    earlier: set[str] = set()
    for member in members:
        name = member.name
        top = _normal(name).split("/")[0]
        if name.startswith("/"):
            problems.append(MemberProblem(name, "absolute-path", "absolute path"))
        if ".." in name.split("/"):
            problems.append(MemberProblem(name, "parent-reference", "path contains '..'"))
        elif (parent := posixpath.dirname(_normal(name))) and not _inside(resolver.resolve(parent), top):
            problems.append(
                MemberProblem(name, "link-escape", "its folder is a link that leaves the top-level folder")
            )
        if not MIN_MTIME <= member.mtime <= MAX_MTIME:
            problems.append(
                MemberProblem(name, "header-field", f"modification time {member.mtime!r} out of range")
            )
        if member.issym() or member.islnk():
            if not _inside(_link_destination(member, resolver), top):
                kind = "symbolic" if member.issym() else "hard"
                problems.append(
                    MemberProblem(
                        name, "link-escape", f"{kind} link to {member.linkname!r} leaves the top-level folder"
                    )
                )
            elif member.islnk() and _normal(member.linkname) not in earlier:
                problems.append(
                    MemberProblem(
                        name, "missing-link-target", f"hard link to {member.linkname!r}: no such member"
                    )
                )
        elif not (member.isfile() or member.isdir()):
            problems.append(MemberProblem(name, "special-file", "device, FIFO or other special file"))
        if member.mode & 0o6000:
            problems.append(MemberProblem(name, "setid-bit", f"setuid/setgid bit set (mode {member.mode:o})"))
        if member.mode & 0o1000:
            problems.append(MemberProblem(name, "sticky-bit", f"sticky bit set (mode {member.mode:o})"))
        earlier.add(_normal(name))
    return problems


MAX_LINK_HOPS = 40
# Modification times an extractor can set (os.utime): a PAX header may carry any number (-1e300).
MIN_MTIME, MAX_MTIME = -(2**31), 2**33


def _normal(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def _inside(path: str | None, top: str) -> bool:
    return path is not None and (path == top or path.startswith(top + "/"))


def _link_destination(member: tarfile.TarInfo, resolver: _Resolver) -> str | None:
    """Where a link points, as an archive path (symlinks: relative to the link's folder)."""
    if member.linkname.startswith("/"):
        return None
    base = posixpath.dirname(_normal(member.name)) if member.issym() else ""
    return resolver.resolve(posixpath.join(base, member.linkname))


class _Resolver:
    """Resolves archive paths through the archive's symbolic links, each link at most once.

    A link's destination is remembered, so a chain like ``x_i -> x_{i+1}/../x_{i+1}`` (which names each
    next link twice, doubling the work per level without the memory) costs linear time.
    """

    def __init__(self, links: dict[str, str]) -> None:
        self.links = links
        self.done: dict[str, str | None] = {}

    def resolve(self, path: str, hops: int = 0) -> str | None:
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
            link = "/".join(parts)
            if link not in self.links:
                continue
            resolved = self._follow(link, parts[:-1], hops)
            if resolved is None:
                return None
            parts = resolved.split("/") if resolved else []
        return "/".join(parts)

    def _follow(self, link: str, folder: list[str], hops: int) -> str | None:
        if link in self.done:
            return self.done[link]
        target = self.links[link]
        self.done[link] = None  # while it resolves: a loop through it resolves to None
        if hops < MAX_LINK_HOPS and not target.startswith("/"):
            self.done[link] = self.resolve(posixpath.join(*folder, target) if folder else target, hops + 1)
        return self.done[link]


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
    except (tarfile.TarError, OSError, KeyError, ValueError, OverflowError) as exc:
        raise InputError(f"cannot extract archive: {' '.join(str(exc).split())[:200]}") from None
