"""Checks over the transcript of what a device did on the wire (its connections and requests)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from .. import Violation

MANIFEST_PATH = "/api/v1/deployments"
CAPABILITIES_PREFIX = "/api/v1/capabilities/"
WEAK_TLS = frozenset({"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"})  # TLS-005: never negotiated
CLOCK_SLACK_S = 0.05  # the transcript's timestamps are the WFM's, taken around the send


class Record(Protocol):
    """One transcript record (the instrument's Record)."""

    @property
    def data(self) -> Any: ...
    @property
    def kind(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def status(self) -> int | None: ...
    @property
    def time(self) -> float: ...
    def brief(self) -> str: ...


def _requests(records: Iterable[Record]) -> list[Record]:
    return [r for r in records if r.kind == "request"]


def _is_capabilities(record: Record) -> bool:
    return record.method == "PUT" and record.path.startswith(CAPABILITIES_PREFIX)


def ensure_capabilities_first(records: Iterable[Record]) -> None:
    """CAP-001: the first request of a started device is the PUT of its capabilities, answered 201."""
    requests = _requests(records)
    first = requests[0] if requests else None
    if first is None or not _is_capabilities(first) or first.status != 201:
        raise Violation("CAP-001", f"the first request was {first.brief() if first else 'none'}")


def ensure_manifest_after_capabilities(records: Iterable[Record]) -> None:
    """ONB-004: after the capabilities (more PUTs may come first: a gateway's children, CAP-007/008)
    the device asks for its desired state."""
    requests = _requests(records)
    after = [r for r in requests if not _is_capabilities(r)]
    if not after or (after[0].method, after[0].path) != ("GET", MANIFEST_PATH):
        raise Violation(
            "ONB-004",
            "the device did not ask for its desired state next",
            str([r.brief() for r in requests[:5]]),
        )


def ensure_no_request(records: Iterable[Record], requirement: str) -> None:
    """A WFM the device must refuse gets no HTTP request."""
    sent = [r.brief() for r in _requests(records)]
    if sent:
        raise Violation(requirement, "the device sent requests to a WFM it must refuse", str(sent))


def ensure_no_weak_tls(records: Iterable[Record]) -> None:
    """TLS-005: no handshake completed with a TLS version below 1.2."""
    weak = [
        f"connection {r.data.get('connection')} negotiated {r.data.get('tls_version')}"
        for r in records
        if r.kind == "connection" and r.data.get("tls_version") in WEAK_TLS
    ]
    if weak:
        raise Violation("TLS-005", "the device negotiated a TLS version below 1.2", "\n".join(weak))


def retry_gap(records: Sequence[Record], status: int) -> tuple[float, float] | None:
    """(time of the first answer with ``status``, time of the retry: the next request with the same
    method and path) or None. Other requests may come sooner (errata INC-140)."""
    requests = _requests(records)
    refused = next((r for r in requests if r.status == status), None)
    if refused is None:
        return None
    after = [
        r for r in requests if r.time > refused.time and (r.method, r.path) == (refused.method, refused.path)
    ]
    return (refused.time, after[0].time) if after else None


def ensure_retry_after_honoured(gap: tuple[float, float], seconds: int) -> None:
    """API-RETRY-005: the retry comes no sooner than Retry-After."""
    answered, retried = gap
    if retried - answered < seconds - CLOCK_SLACK_S:
        raise Violation(
            "API-RETRY-005", f"the retry came {retried - answered:.3f} s after Retry-After {seconds}"
        )


def ensure_stored_etag(before: Sequence[Record], poll: Record) -> None:
    """DS-025: the first poll after a restart carries, in If-None-Match, the ETag of the last manifest
    the device was given (a 200 answer to GET /api/v1/deployments) before it."""
    given = [
        r.data.get("response_headers", {}).get("etag")
        for r in _requests(before)
        if r.method == "GET" and r.path == MANIFEST_PATH and r.status == 200
    ]
    if not given or not given[-1]:
        raise Violation("DS-025", "the transcript holds no manifest with an ETag before the restart")
    sent = (poll.data.get("request_headers") or {}).get("if-none-match")
    if sent != given[-1]:
        raise Violation(
            "DS-025",
            f"the first poll after the restart sent If-None-Match {sent!r}; the stored ETag is {given[-1]!r}",
        )
