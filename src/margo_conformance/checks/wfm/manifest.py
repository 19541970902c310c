"""The State Manifest (DS-003..DS-012, DS-101, DS-103): negotiation, ETag, caching (errata INC-126),
manifestVersion (errata INC-127), bundle (errata INC-129) and the caller's scope (API-SEC-004)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ...wfm.client import MANIFEST_TYPE, Exchange
from .. import Violation
from ._common import (
    DELTA_SECONDS,
    LONG_MAX_AGE,
    document_fail,
    fail,
    header_directives,
    media_type,
    schema_problems,
    sha256,
    short,
)
from .transport import ensure_response, ensure_status

_STRONG_DIGEST_ETAG = re.compile(r'^"sha256:[0-9a-f]{64}"$')
_URL_PREFIX = re.compile(r"^(/[^/?#\s]+)*$")


def ensure_manifest(exchange: Exchange) -> dict[str, Any]:
    """DS-005, DS-103: a 200 with Content-Type application/vnd.margo.manifest.v1+json, an ETag, and a body
    that validates as a State Manifest; returns the manifest. The media type is compared exactly
    (case-insensitively); parameters such as charset are tolerated, as they do not change the type."""
    ensure_status(exchange, 200)
    found = exchange.header("Content-Type")
    if media_type(found) != MANIFEST_TYPE:
        raise fail(exchange, "DS-005", f"manifest Content-Type must be {MANIFEST_TYPE}, got {found!r}")
    if not exchange.header("ETag"):
        raise fail(exchange, "DS-005", "a 200 manifest response must carry an ETag")
    document = exchange.json()
    if not isinstance(document, dict):
        raise fail(exchange, "DS-103", "the manifest body is not a JSON object")
    problems = schema_problems(document, "StateManifest")
    if problems:
        raise fail(
            exchange, "DS-103", "the manifest breaks the State Manifest schema:\n" + "\n".join(problems)
        )
    return document


def ensure_strong_digest_etag(exchange: Exchange) -> str:
    """DS-007: the manifest ETag is one strong, quoted "sha256:<64 lowercase hex>" equal to the digest of
    the exact (decoded) body; returns it as sent, ready for If-None-Match."""
    ensure_response(exchange)
    values = exchange.header_values("ETag")
    if len(values) != 1:
        raise fail(exchange, "DS-007", f"expected exactly one ETag header, got {len(values)}")
    etag = values[0].strip()
    if etag.startswith("W/"):
        raise fail(exchange, "DS-007", f"the manifest ETag must be strong, got the weak validator {etag!r}")
    if not _STRONG_DIGEST_ETAG.match(etag):
        raise fail(
            exchange,
            "DS-007",
            f'the manifest ETag must be "sha256:<64 lowercase hex>" (quoted), got {etag!r}',
        )
    actual = sha256(exchange.decoded_body())
    if etag[1:-1] != actual:
        raise fail(exchange, "DS-007", f"the ETag {etag} is not the digest of the body sent ({actual})")
    return etag


def ensure_private_not_immutable(exchange: Exchange) -> None:
    """DS-009, DS-010: the manifest is Cache-Control private, never immutable, and has no long max-age
    (errata INC-126: long is over LONG_MAX_AGE seconds; a malformed max-age counts as long)."""
    ensure_response(exchange)
    directives = header_directives(exchange, "Cache-Control")
    if "private" not in directives:
        raise fail(exchange, "DS-010", "the manifest response must be Cache-Control: private")
    if "immutable" in directives:
        raise fail(exchange, "DS-009", "the manifest response must never be Cache-Control immutable")
    max_age = directives.get("max-age", "0") or ""
    if not DELTA_SECONDS.match(max_age) or int(max_age) > LONG_MAX_AGE:
        raise fail(
            exchange,
            "DS-009",
            f"the manifest must not have a long max-age (over {LONG_MAX_AGE} s, errata INC-126), "
            f"got {max_age!r}",
        )


def ensure_not_modified(exchange: Exchange) -> None:
    """DS-006: a matching If-None-Match gets 304 with no body."""
    ensure_status(exchange, 304)
    if exchange.body:
        raise fail(exchange, "DS-006", f"a 304 must have no body, got {len(exchange.body)} bytes")
    if exchange.anomaly:
        raise fail(exchange, "DS-006", f"a 304 must have no body ({exchange.anomaly})")


def ensure_manifest_urls(manifest: Mapping[str, Any]) -> None:
    """DS-101: bundle.url is /api/v1/bundles/{bundle.digest} and every deployments[].url is
    /api/v1/deployments/{deploymentId}/{digest} of its own entry; a path prefix before /api/v1 is
    allowed (INC-110), an absolute URL is not."""
    bundle = manifest.get("bundle")
    if isinstance(bundle, Mapping):
        _ensure_url(manifest, "bundle.url", bundle.get("url"), f"/api/v1/bundles/{bundle.get('digest')}")
    for index, entry in enumerate(manifest.get("deployments") or []):
        expected = f"/api/v1/deployments/{entry.get('deploymentId')}/{entry.get('digest')}"
        _ensure_url(manifest, f"deployments[{index}].url", entry.get("url"), expected)


def _ensure_url(manifest: Mapping[str, Any], where: str, url: object, expected: str) -> None:
    if not isinstance(url, str) or not url.endswith(expected) or not _URL_PREFIX.match(url[: -len(expected)]):
        raise document_fail(
            "DS-101", f"{where} must be [<path prefix>]{expected}, got {short(url)}", manifest
        )


def ensure_bundle_null_iff_empty(manifest: Mapping[str, Any], *, expect_empty: bool | None = None) -> None:
    """DS-012: bundle is always present; it is null exactly when deployments is empty. With
    ``expect_empty`` the scenario also says whether the client should have deployments at all."""
    empty = not manifest.get("deployments")
    if expect_empty is not None and empty != expect_empty:
        wanted = "no deployments" if expect_empty else "deployments"
        raise document_fail("", f"expected the manifest to list {wanted}", manifest)
    if "bundle" not in manifest:
        raise document_fail("DS-012", "the manifest must always carry bundle (null when empty)", manifest)
    if empty and manifest["bundle"] is not None:
        raise document_fail(
            "DS-012", "with no deployments, bundle must be null (never an empty archive)", manifest
        )
    if not empty and manifest["bundle"] is None:
        raise document_fail(
            "DS-027",
            "with deployments, bundle must not be null: the client chooses between the bundle and "
            "the YAMLs (errata INC-129)",
            manifest,
        )


def ensure_lists_none_of(manifest: Mapping[str, Any], deployment_ids: Sequence[str]) -> None:
    """API-SEC-004: a client's manifest lists none of the given (another client's) deployments."""
    listed = {str(entry.get("deploymentId")) for entry in manifest.get("deployments") or []}
    leaked = sorted(listed & set(deployment_ids))
    if leaked:
        raise document_fail(
            "API-SEC-004", f"the manifest lists another client's deployment(s): {', '.join(leaked)}", manifest
        )


def ensure_manifest_version(manifest: Mapping[str, Any], version: int) -> None:
    """DS-011: manifestVersion is ``version`` (a client's first manifest is 1)."""
    found = manifest.get("manifestVersion")
    if isinstance(found, bool) or found != version:
        raise document_fail("DS-011", f"manifestVersion must be {version}, got {short(found)}", manifest)


def ensure_manifest_version_advanced(before: int, after: int, *, changed: bool) -> None:
    """DS-011: a changed desired state gets a strictly larger manifestVersion; without a change it never
    goes down (it may go up: errata INC-127)."""
    if changed and not after > before:
        raise Violation(
            "DS-011", f"the desired state changed, so manifestVersion must grow past {before}; it is {after}"
        )
    if not changed and after < before:
        raise Violation(
            "DS-011",
            f"manifestVersion must never decrease or restart (errata INC-127); it went from "
            f"{before} to {after}",
        )


def ensure_etag(exchange: Exchange) -> str:
    """DS-005: a 200 manifest carries an ETag; returns it as sent, ready for If-None-Match."""
    ensure_status(exchange, 200)
    etag = exchange.header("ETag")
    if etag is None:
        raise fail(exchange, "DS-005", "a 200 manifest response must carry an ETag")
    return etag


def ensure_two_versions(manifests: Sequence[Mapping[str, Any]], exchange: Exchange) -> tuple[int, int]:
    """DS-011: the last two polls both got a State Manifest; returns their manifestVersions."""
    if len(manifests) < 2:
        raise fail(exchange, "DS-011", f"expected two State Manifests to compare, got {len(manifests)}")
    return int(manifests[-2]["manifestVersion"]), int(manifests[-1]["manifestVersion"])


def ensure_deployments_listed(made: Sequence[str], listed: Sequence[str]) -> None:
    """The deployments the operator made for this client are in its manifest (the scenario's premise)."""
    missing = sorted(set(made) - set(listed))
    if missing:
        raise Violation(
            "",
            f"the deployments the operator made ({', '.join(missing)}) are not in the client's manifest: "
            f"{sorted(listed)}",
        )
