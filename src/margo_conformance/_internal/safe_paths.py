"""Names from an untrusted package used as paths: only ever one plain name inside the package.

A component named ``../../../../etc/ssl`` must never make the suite read or pack ``/etc/ssl``; nor may a
symbolic link inside a package folder lead the suite outside it.
"""

from __future__ import annotations

from pathlib import Path

MAX_NAME_BYTES = 200  # below the usual 255-byte file name limit, leaving room for a suffix


def plain_name(name: str) -> bool:
    """True when ``name`` is one path component the suite may join to a folder of the package."""
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return (
        bool(name)
        and name not in (".", "..")
        and not any(c in name for c in "/\\\0")
        and len(encoded) <= MAX_NAME_BYTES
    )


def resolves_inside(root: Path, path: Path) -> bool:
    """True when ``path``, all links followed, stays inside ``root``; False on any OS error."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError):  # a link loop, a name too long, a NUL
        return False


def is_file_inside(root: Path, relative: str) -> bool:
    """True when ``root/relative`` is a regular file inside ``root``; never raises for odd names."""
    try:
        path = root / relative
        return resolves_inside(root, path) and path.is_file()
    except (OSError, ValueError):
        return False
