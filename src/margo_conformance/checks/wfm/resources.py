"""Digest-addressed resources (DS-013..DS-021): a deployment YAML or the bundle, byte-exact, with its
digest as ETag and immutable private caching; the bundle's members matched by content (errata INC-104)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from ..._internal.tar_safety import open_tar_gz
from ...errors import InputError
from ...wfm.client import BUNDLE_TYPE, Exchange
from .. import Violation
from ._common import IMMUTABLE_MAX_AGE, fail, header_directives, media_type, sha256
from .transport import ensure_status


def ensure_digest_resource(exchange: Exchange, digest: str, content_type: str) -> bytes:
    """A deployment YAML or the bundle: 200, the Content-Type, decoded body hashing to ``digest`` (DS-021),
    ETag the quoted digest and immutable private caching (DS-015); returns the decoded bytes."""
    ensure_status(exchange, 200)
    ensure_content_type(exchange, content_type)
    data = ensure_body_digest(exchange, digest)
    ensure_etag_is_digest(exchange, digest)
    ensure_immutable_caching(exchange)
    return data


def ensure_content_type(exchange: Exchange, content_type: str) -> None:
    """DS-014 for the bundle (its manifest's bundle.mediaType), OA3 for a deployment (application/yaml):
    Content-Type names ``content_type``; parameters tolerated."""
    found = exchange.header("Content-Type")
    if media_type(found) != content_type.lower():
        rule = "DS-014" if content_type == BUNDLE_TYPE else "OA3 (200 response media type)"
        raise fail(exchange, rule, f"Content-Type must be {content_type}, got {found!r}")


def ensure_body_digest(exchange: Exchange, digest: str) -> bytes:
    """DS-021, DS-018: the exact body, after removing Content-Encoding, hashes to ``digest``."""
    if exchange.anomaly:
        raise fail(exchange, "DS-021", f"the body did not arrive whole ({exchange.anomaly})")
    data = exchange.decoded_body()
    actual = sha256(data)
    if actual != digest:
        raise fail(exchange, "DS-021", f"the decoded body hashes to {actual}, not to the digest {digest}")
    return data


def ensure_etag_is_digest(exchange: Exchange, digest: str) -> None:
    """DS-015: ETag is the quoted digest from the URL (strong; no W/)."""
    found = exchange.header_values("ETag")
    if found != [f'"{digest}"']:
        raise fail(exchange, "DS-015", f'ETag must be "{digest}" (quoted, strong), got {found!r}')


def ensure_immutable_caching(exchange: Exchange) -> None:
    """DS-015, DS-010: Cache-Control has private, max-age=31536000 and immutable."""
    directives = header_directives(exchange, "Cache-Control")
    missing = [
        text
        for text, ok in (
            ("private", "private" in directives),
            (f"max-age={IMMUTABLE_MAX_AGE}", directives.get("max-age") == IMMUTABLE_MAX_AGE),
            ("immutable", "immutable" in directives),
        )
        if not ok
    ]
    if missing:
        found = ", ".join(exchange.header_values("Cache-Control")) or "none"
        raise fail(exchange, "DS-015", f"Cache-Control must include {', '.join(missing)}; got {found!r}")


def ensure_vary_when_encoded(exchange: Exchange) -> None:
    """DS-016 (SHOULD): a response sent with a Content-Encoding carries Vary: Accept-Encoding."""
    if not exchange.content_codings():
        return
    vary = header_directives(exchange, "Vary")
    if "accept-encoding" not in vary and "*" not in vary:
        raise fail(exchange, "DS-016", "a Content-Encoded response should send Vary: Accept-Encoding")


def ensure_bundle_holds_exactly(bundle: bytes, yamls: Mapping[str, bytes]) -> None:
    """DS-013: the gzip'd tar holds at its root exactly the given YAMLs (keyed by deploymentId) as regular
    files — matched by content digest, names free (INC-104) — and nothing else (a './' entry aside)."""
    expected = Counter(sha256(data) for data in yamls.values())
    owners = {sha256(data): name for name, data in yamls.items()}
    found: Counter[str] = Counter()
    others: list[str] = []
    try:
        with open_tar_gz(bundle) as tar:
            for member in tar.getmembers():
                name = "/".join(p for p in member.name.split("/") if p not in ("", "."))
                if member.isdir() and not name:
                    continue
                handle = tar.extractfile(member) if member.isfile() and "/" not in name else None
                if handle is None:
                    others.append(f"{member.name!r} (not a regular file at the archive root)")
                    continue
                found[sha256(handle.read())] += 1
    except InputError as exc:
        raise Violation("DS-013", f"the bundle is not a readable gzip'd tar: {exc}") from None
    missing = [owners[d] for d in (expected - found).elements()]
    extra = len(list((found - expected).elements()))
    if missing or extra or others:
        raise Violation(
            "DS-013",
            "the bundle must hold exactly the referenced YAMLs at its root;"
            + (f" missing (by content): {', '.join(missing)};" if missing else "")
            + (f" {extra} file(s) whose content no deployment references;" if extra else "")
            + (f" other members: {', '.join(others)}" if others else ""),
        )
