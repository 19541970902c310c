"""SPIFFE IDs of the WFM Identity Profile (WIP-001, WIP-002) and their exact shapes.

Parsing is strict on purpose: the suite must tell a vendor *which* rule an identity breaks, so every
refusal is an ``SvidError`` whose message starts with the rule it names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import MargoError

SCHEME = "spiffe://"
MIAF_PREFIX = ("margo",)  # MIAF-002: every MIAF SPIFFE ID path starts with /margo/
# WIP-002 (RFC 3986 "unreserved"): letters, digits, '.', '_', '~', '-'. Caution: SPIFFE-ID §2.2 allows no
# '~' in path segments, so SPIFFE libraries (go-spiffe, SPIRE) refuse an ID with one; mint such IDs only
# to probe that edge, never where acceptance is expected.
_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
# SPIFFE-ID §2.1: lowercase letters, digits, '.', '-', '_'; at most 255 bytes.
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+")
_TRUST_DOMAIN_MAX = 255


class SvidError(MargoError):
    """An identity or SVID breaks a rule; the message starts with the rule's ID."""


def check_segment(value: str) -> None:
    """WIP-002: a wfm-id or wfm-client-id is non-empty, unreserved characters only, not '.' or '..'."""
    if not value:
        raise SvidError("WIP-002: identifier segment is empty")
    if value in (".", ".."):
        raise SvidError(f"WIP-002: identifier segment {value!r} is a dot segment")
    if not _SEGMENT.fullmatch(value):
        raise SvidError(f"WIP-002: identifier segment {value!r} has characters outside [A-Za-z0-9._~-]")


def check_trust_domain(value: str) -> None:
    """SPIFFE-ID §2.1: a trust domain is lowercase letters, digits, '.', '-', '_' (no port, no userinfo)."""
    if not value:
        raise SvidError("SVID-001: trust domain is empty")
    if len(value.encode()) > _TRUST_DOMAIN_MAX:
        raise SvidError(f"SVID-001: trust domain is longer than {_TRUST_DOMAIN_MAX} bytes")
    if not _TRUST_DOMAIN.fullmatch(value):
        raise SvidError(f"SVID-001: trust domain {value!r} has characters outside [a-z0-9._-]")


@dataclass(frozen=True)
class SpiffeId:
    """``spiffe://<trust_domain><path>``; compared exactly and case-sensitively (WIP-003)."""

    trust_domain: str
    path: str  # starts with "/"

    def __post_init__(self) -> None:
        check_trust_domain(self.trust_domain)
        _check_path(self.path)

    @classmethod
    def parse(cls, uri: str) -> SpiffeId:
        """Parse a URI SAN; refuse anything that is not a spiffe URI with a non-root path (SVID-006(c))."""
        if not uri.startswith(SCHEME):
            raise SvidError(f"SVID-006(c): {uri!r} is not a spiffe:// URI")
        rest = uri[len(SCHEME) :]
        if any(c in rest for c in "?#"):
            raise SvidError(f"SVID-006(c): {uri!r} has a query or fragment")
        trust_domain, slash, path = rest.partition("/")
        if not slash or not path:
            raise SvidError(f"SVID-006(c): {uri!r} has an empty or root path")
        try:
            return cls(trust_domain, "/" + path)
        except SvidError as exc:
            raise SvidError(f"{exc} (in {uri!r})") from None

    @classmethod
    def wfm(cls, trust_domain: str, wfm_id: str) -> SpiffeId:
        """WIP-001: ``spiffe://<td>/margo/wfm/<wfm-id>``."""
        check_segment(wfm_id)
        return cls(trust_domain, f"/margo/wfm/{wfm_id}")

    @classmethod
    def client(cls, trust_domain: str, wfm_id: str, client_id: str) -> SpiffeId:
        """WIP-001: ``spiffe://<td>/margo/wfm/<wfm-id>/client/<wfm-client-id>``."""
        check_segment(wfm_id)
        check_segment(client_id)
        return cls(trust_domain, f"/margo/wfm/{wfm_id}/client/{client_id}")

    @property
    def segments(self) -> tuple[str, ...]:
        """The path's segments, without the leading slash."""
        return tuple(self.path[1:].split("/"))

    @property
    def wfm_id(self) -> str | None:
        """The wfm-id of a WFM or client ID; None for any other shape."""
        parts = self.segments
        if len(parts) == 3 and parts[:2] == (*MIAF_PREFIX, "wfm"):
            return parts[2]
        return parts[2] if self.client_id is not None else None

    @property
    def client_id(self) -> str | None:
        """The wfm-client-id of the client shape; None otherwise."""
        parts = self.segments
        if len(parts) == 5 and parts[:2] == (*MIAF_PREFIX, "wfm") and parts[3] == "client":
            return parts[4]
        return None

    @property
    def is_wfm(self) -> bool:
        """True for the exact WFM shape."""
        return self.wfm_id is not None and self.client_id is None

    @property
    def is_client(self) -> bool:
        """True for the exact client shape."""
        return self.client_id is not None

    def __str__(self) -> str:
        return f"{SCHEME}{self.trust_domain}{self.path}"


def _check_path(path: str) -> None:
    """A non-root path of non-empty, non-dot segments (SPIFFE-ID §2.2)."""
    if not path.startswith("/") or path == "/":
        raise SvidError(f"SVID-006(c): SPIFFE ID path {path!r} is empty or root")
    for segment in path[1:].split("/"):
        if not segment or segment in (".", ".."):
            raise SvidError(f"SVID-006(c): SPIFFE ID path {path!r} has an empty or dot segment")
        if not _SEGMENT.fullmatch(segment):
            raise SvidError(f"SVID-006(c): SPIFFE ID path {path!r} has characters outside [A-Za-z0-9._~-]")
