"""RFC 9457 problem documents of the Management Interface (protocol digest §8, ERR-001/002,
API-RETRY-001..004).

Handlers raise ``Problem``; one middleware turns it into ``application/problem+json`` with the
registered Margo ``type``. The retry members follow the API-REQ table: 429/503 (and 500) are
retryable with exponential backoff, everything else ``retryable: false``, ``backoffStrategy: none``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web

NAMESPACE = "https://docs.margo.org/specification/problem-types"
PROBLEM_MEDIA_TYPE = "application/problem+json"

# The registry of problem types (PT): fragment -> (status, title).
REGISTERED: dict[str, tuple[int, str]] = {
    "invalid-request": (400, "Invalid Request"),
    "semantic-error": (422, "Semantic Error"),
    "not-authorized": (403, "Not Authorized"),
    "gateway-not-found": (404, "Gateway Not Found"),
    "device-not-found": (404, "Device Not Found"),
    "invalid-bundle": (404, "Invalid Bundle"),
    "deployment-not-found": (404, "Deployment Not Found"),
    "server-cannot-generate-response": (406, "Server Cannot Generate Response"),
}
# A type the prose names but the registry lacks (errata INC-001); only the variant retired-problem-type
# sends it, to prove the suite treats it as an allowed 403 form.
NAMED_IN_PROSE: dict[str, tuple[int, str]] = {
    "wfm-client-relationship-retired": (403, "Client Relationship Retired"),
}
_KNOWN = {**REGISTERED, **NAMED_IN_PROSE}
RETRYABLE_STATUSES = frozenset({429, 500, 503})


def type_uri(name: str) -> str:
    """The registered URI of a Margo problem type (no slash before '#', errata INC-011)."""
    if name not in _KNOWN:
        raise KeyError(f"{name!r} is not a registered Margo problem type")
    return f"{NAMESPACE}#{name}"


@dataclass
class Problem(Exception):
    """An error answer. ``kind`` is a registered Margo type, or None for about:blank (ERR-002)."""

    status: int
    detail: str
    kind: str | None = None
    errors: list[dict[str, str]] | None = None
    retry_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False  # end the connection after the answer (the request was not read to its end)

    @classmethod
    def of(cls, kind: str, detail: str, **extra: Any) -> Problem:
        """A problem of a registered type with that type's status."""
        status, _ = _KNOWN[kind]
        return cls(status=status, detail=detail, kind=kind, **extra)

    @classmethod
    def of_http(cls, exc: web.HTTPException) -> Problem:
        """aiohttp's own refusal (routing 404/405, limits 413) as a problem; a 405 keeps the Allow
        header that RFC 9110 §15.5.6 requires (the methods the target resource supports)."""
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
        return cls(status=exc.status, detail=exc.reason, headers=allow)

    @property
    def title(self) -> str:
        if self.kind is not None:
            return _KNOWN[self.kind][1]
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return "Error"

    def body(self, *, with_type: bool = True, with_errors: bool = True) -> dict[str, Any]:
        """The ProblemDetail; ``with_type``/``with_errors`` exist only for faults."""
        document: dict[str, Any] = {}
        if with_type:
            document["type"] = type_uri(self.kind) if self.kind is not None else "about:blank"
        document["title"] = self.title
        document["status"] = self.status
        document["detail"] = self.detail
        retryable = self.status in RETRYABLE_STATUSES
        document["retryable"] = retryable
        document["backoffStrategy"] = "exponential" if retryable else "none"
        if retryable and self.retry_after is not None:
            document["retryAfterSeconds"] = self.retry_after
        if self.errors is not None and with_errors:
            document["errors"] = self.errors
        return document

    def encoded(self, *, with_type: bool = True, with_errors: bool = True) -> bytes:
        return json.dumps(
            self.body(with_type=with_type, with_errors=with_errors), ensure_ascii=False, sort_keys=True
        ).encode("utf-8")
