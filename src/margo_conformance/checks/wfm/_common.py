"""What every WFM check shares: the registered problem types, the readings' constants, and the few helpers
that turn what was seen into a :class:`~margo_conformance.checks.Violation` with its evidence."""

from __future__ import annotations

import hashlib
import json
import re

from ...schemas import SchemaSet
from ...wfm.client import Exchange
from .. import Violation

REGISTERED_PROBLEMS = {
    "invalid-request": 400,
    "semantic-error": 422,
    "not-authorized": 403,
    "gateway-not-found": 404,
    "device-not-found": 404,
    "invalid-bundle": 404,
    "deployment-not-found": 404,
    "server-cannot-generate-response": 406,
}
# Named by the prose for a retired client but not registered: never an ERR-004 failure (errata INC-001).
NAMED_IN_PROSE = {"wfm-client-relationship-retired": 403}
IMMUTABLE_MAX_AGE = "31536000"
# DS-009's "long max-age": longer than this many seconds (errata INC-126).
LONG_MAX_AGE = 60
DELTA_SECONDS = re.compile(r"^[0-9]+$")
_EXCERPT = 2048


def fail(exchange: Exchange, requirement: str, message: str) -> Violation:
    """The exchange broke ``requirement`` (may be empty: the scenario's own expectation)."""
    return Violation(requirement, message, exchange.transcript())


def document_fail(requirement: str, message: str, document: object) -> Violation:
    """A served document broke ``requirement``; the evidence is its (shortened) text."""
    text = document.decode("utf-8", "replace") if isinstance(document, bytes) else dump(document)
    excerpt = text[:_EXCERPT] + (" …" if len(text) > _EXCERPT else "")
    return Violation(requirement, message, f"--- document ---\n{excerpt}")


def dump(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def short(value: object) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."


def media_type(value: str | None) -> str | None:
    """The type/subtype of a Content-Type value, lowercased (RFC 9110 §8.3.1), parameters dropped."""
    return value.split(";", 1)[0].strip().lower() if value is not None else None


def header_directives(exchange: Exchange, name: str) -> dict[str, str | None]:
    """A comma-list header (Cache-Control, Vary) as lowercased directive → value (unquoted) or None."""
    found: dict[str, str | None] = {}
    for field in exchange.header_values(name):
        for item in re.findall(r'(?:[^,"]|"[^"]*")+', field):
            key, eq, value = item.strip().partition("=")
            if key:
                found.setdefault(key.strip().lower(), value.strip().strip('"') if eq else None)
    return found


def schema_problems(document: object, document_type: str) -> list[str]:
    findings = SchemaSet.load().validate(document, document_type)
    return [f"  [{f.requirement}] {f.location}: {f.message}" for f in findings]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
