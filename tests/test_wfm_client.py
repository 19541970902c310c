"""The virtual WFM client and the WFM protocol checks: every check passes on a good exchange and fails,
naming its rule, on a bad one; the client is shown against a tiny real mTLS server."""

from __future__ import annotations

import contextlib
import copy
import functools
import gzip
import hashlib
import io
import json
import socket
import ssl
import tarfile
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from margo_conformance.checks import Violation
from margo_conformance.checks import wfm as checks
from margo_conformance.errors import Blocked
from margo_conformance.pki import Pki, SpiffeId, SvidFiles
from margo_conformance.pki.tls import server_context
from margo_conformance.schemas import SchemaSet
from margo_conformance.wfm import documents
from margo_conformance.wfm.client import (
    BUNDLE_TYPE,
    MANIFEST_TYPE,
    PROBLEM_TYPE_BASE,
    YAML_TYPE,
    Exchange,
    VirtualClient,
)

ROOT = Path(__file__).resolve().parents[1]
DESCRIPTION = ROOT / "fixtures" / "packages" / "vendor-a-compose" / "margo.yaml"
DEPLOYMENT_ID = "3f2b6a1e-9c4d-4e8f-a1b2-c3d4e5f60718"
OTHER_ID = "7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6"
WFM_ID = SpiffeId.wfm("conformance.test", "wfm-1")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def exchange(
    status: int | None = 200,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes = b"",
    *,
    method: str = "GET",
    path: str = "/api/v1/deployments",
    refused: str | None = None,
    anomaly: str | None = None,
    peer: SpiffeId | None = WFM_ID,
    request_headers: tuple[tuple[str, str], ...] = (("Host", "wfm.test"),),
    request_body: bytes = b"",
) -> Exchange:
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    return Exchange(
        method,
        path,
        request_headers,
        request_body,
        status,
        tuple(pairs),
        body,
        refused,
        "TLSv1.3" if status is not None else None,
        peer,
        0.01,
        anomaly,
    )


SERVED = exchange(200)  # a served positive control (issue 15)


def refused(reason: str) -> Exchange:
    return exchange(None, refused=reason, peer=None)


def problem_exchange(
    status: int, document: dict[str, Any], headers: dict[str, str] | None = None
) -> Exchange:
    return exchange(
        status, {"Content-Type": "application/problem+json", **(headers or {})}, json.dumps(document).encode()
    )


def problem(fragment: str, status: int, **extra: Any) -> dict[str, Any]:
    return {"type": PROBLEM_TYPE_BASE + fragment, "title": "t", "status": status, **extra}


def manifest_document(deployments: int = 1) -> dict[str, Any]:
    entries = [
        {
            "deploymentId": DEPLOYMENT_ID,
            "digest": sha(b"a"),
            "url": f"/api/v1/deployments/{DEPLOYMENT_ID}/{sha(b'a')}",
        }
    ][:deployments]
    bundle = {"mediaType": BUNDLE_TYPE, "digest": sha(b"b"), "url": f"/api/v1/bundles/{sha(b'b')}"}
    return {"manifestVersion": 3, "bundle": bundle if entries else None, "deployments": entries}


def manifest_exchange(document: dict[str, Any] | None = None, **headers: str) -> Exchange:
    body = json.dumps(document or manifest_document(), indent=1).encode() + b"\n"
    base = {
        "Content-Type": MANIFEST_TYPE,
        "ETag": f'"{sha(body)}"',
        "Cache-Control": "private",
    }
    base.update({k.replace("_", "-"): v for k, v in headers.items()})
    return exchange(200, {k: v for k, v in base.items() if v}, body)


def fails(check: Any, *args: Any, match: str, **kwargs: Any) -> str:
    with pytest.raises(AssertionError, match="(?s)" + match) as info:
        check(*args, **kwargs)
    return str(info.value)


# ==============================================================================================
# Exchange
# ==============================================================================================


def test_exchange_headers_are_case_insensitive_and_keep_every_value() -> None:
    ex = exchange(200, [("ETag", '"x"'), ("Vary", "Accept"), ("vary", "Accept-Encoding")])
    assert ex.header("etag") == '"x"'
    assert ex.header_values("VARY") == ["Accept", "Accept-Encoding"]
    assert ex.header("missing") is None


def test_decoded_body_removes_gzip_and_deflate() -> None:
    data = b"id: x\n" * 100
    assert exchange(200, {"Content-Encoding": "gzip"}, gzip.compress(data)).decoded_body() == data
    assert exchange(200, {"Content-Encoding": "deflate"}, zlib.compress(data)).decoded_body() == data
    assert exchange(200, {"Content-Encoding": "identity"}, data).decoded_body() == data
    with pytest.raises(AssertionError, match="unsupported Content-Encoding 'br'"):
        exchange(200, {"Content-Encoding": "br"}, data).decoded_body()
    with pytest.raises(AssertionError, match="corrupt"):
        exchange(200, {"Content-Encoding": "gzip"}, b"\x1f\x8bnot gzip").decoded_body()


def test_json_failure_carries_the_transcript() -> None:
    message = fails(exchange(200, {"Content-Type": "text/plain"}, b"<html>").json, match="not JSON")
    assert "> GET /api/v1/deployments HTTP/1.1" in message
    assert "< HTTP/1.1 200 OK" in message
    assert "< <html>" in message


def test_transcript_redacts_secrets_shortens_text_and_hides_binary() -> None:
    key = b"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n"
    ex = exchange(
        200,
        {"Set-Cookie": "session=abc", "Content-Type": "text/plain"},
        b"x" * 5000,
        request_headers=(("Authorization", "Bearer secret"),),
        request_body=key,
    )
    text = ex.transcript()
    assert "secret" not in text and "session=abc" not in text and "MIGHAgEA" not in text
    assert "<private key redacted>" in text
    assert "(5000 bytes in all)" in text
    assert len(text) < 3000
    binary = exchange(200, {"Content-Type": BUNDLE_TYPE}, bytes(range(256)) * 4).transcript()
    assert "<1024 bytes>" in binary
    gz = exchange(200, {"Content-Encoding": "gzip"}, gzip.compress(b"hello: world\n")).transcript()
    assert "gzip-encoded" in gz and "hello: world" in gz
    assert "(no response: TLS handshake failed: x)" in refused("TLS handshake failed: x").transcript()


# ==============================================================================================
# status, refusal
# ==============================================================================================


def test_ensure_status() -> None:
    checks.ensure_status(exchange(201), 200, 201)
    fails(checks.ensure_status, exchange(404), 200, 201, match="expected HTTP 200 or 201, got 404")
    fails(checks.ensure_status, refused("connection reset"), 200, match="there was none .connection reset")
    with pytest.raises(Blocked, match="could not be reached"):
        checks.ensure_status(refused("cannot connect to h:1: connection refused"), 200)


def test_ensure_answered_and_tls_version() -> None:
    checks.ensure_answered(exchange(403))
    fails(checks.ensure_answered, refused("connection reset"), match="there was none")
    checks.ensure_tls_version(exchange(200), "TLSv1.3")
    fails(checks.ensure_tls_version, exchange(200), "TLSv1.2", match="TLS-003: .*TLSv1.2, it used TLSv1.3")
    fails(checks.ensure_tls_version, refused("connection reset"), "TLSv1.3", match="no TLS session")


def test_ensure_refused() -> None:
    checks.ensure_refused(
        refused("TLS handshake failed: the WFM sent alert 'certificate required'"), control=SERVED
    )
    checks.ensure_refused(refused("connection closed before any response"), control=SERVED)
    checks.ensure_refused(refused("connection reset"), control=SERVED)
    fails(
        checks.ensure_refused,
        exchange(200),
        control=SERVED,
        match="API-SEC-002/WIP-005: .* answered HTTP 200",
    )
    fails(
        checks.ensure_refused,
        refused("timed out after 1 s"),
        control=SERVED,
        match="hanging connection is not a refusal",
    )
    with pytest.raises(Blocked):
        checks.ensure_refused(
            refused("TLS handshake failed: the suite's client rejected the WFM's certificate"), control=SERVED
        )


def test_a_refusal_without_a_served_control_is_blocked() -> None:
    """Issue 15: a WFM that resets every connection 'refuses' every flawed client; without a served
    positive control in the same scenario the refusal proves nothing."""
    reset = refused("connection reset")
    for check in (checks.ensure_refused, checks.ensure_not_served):
        with pytest.raises(Blocked, match="positive control failed: no accepted client"):
            check(reset, control=None)
        with pytest.raises(Blocked, match=r"positive control failed: .*\(connection reset\)"):
            check(reset, control=reset)
        with pytest.raises(Blocked, match=r"positive control failed: .*\(HTTP 503\)"):
            check(exchange(403), control=exchange(503))
    with pytest.raises(Blocked, match="positive control failed"):
        checks.ensure_http_refusal_form(exchange(403), "not-authorized", control=None)


def test_ensure_not_served() -> None:
    checks.ensure_not_served(refused("connection reset"), control=SERVED)
    checks.ensure_not_served(problem_exchange(403, problem("not-authorized", 403)), control=SERVED)
    # the MUST: any 403 refuses; its form is the SHOULD (INC-125)
    checks.ensure_not_served(exchange(403), control=SERVED)
    fails(
        checks.ensure_not_served,
        exchange(200),
        control=SERVED,
        match="API-SEC-002: .*403 .*INC-125.*HTTP 200",
    )
    fails(
        checks.ensure_not_served,
        problem_exchange(401, problem("not-authorized", 401)),
        control=SERVED,
        match="HTTP 401",
    )


def test_ensure_http_refusal_form() -> None:
    form = functools.partial(checks.ensure_http_refusal_form, control=SERVED)
    form(refused("connection reset"), "not-authorized")  # WIP-005 form
    form(problem_exchange(403, problem("not-authorized", 403)), "not-authorized")
    retired = problem_exchange(403, problem("wfm-client-relationship-retired", 403))
    form(retired, "not-authorized", "wfm-client-relationship-retired")  # INC-001
    fails(form, retired, "not-authorized", match="ERR-001: .*not-authorized")
    fails(form, exchange(200), "not-authorized", match="expected HTTP 403")


def test_ensure_report_refused() -> None:
    checks.ensure_report_refused(problem_exchange(404, problem("deployment-not-found", 404)))
    checks.ensure_report_refused(problem_exchange(422, problem("semantic-error", 422)))
    fails(checks.ensure_report_refused, exchange(201), match="API-SEC-003/004: .*answered 201")


def test_ensure_lists_none_of() -> None:
    manifest = manifest_document(1)
    theirs = manifest["deployments"][0]["deploymentId"]
    checks.ensure_lists_none_of(manifest, ["someone-else"])
    fails(checks.ensure_lists_none_of, manifest, [theirs], match=f"API-SEC-004: .*{theirs}")


# ==============================================================================================
# problems
# ==============================================================================================


def test_ensure_problem_passes_and_returns_the_problem() -> None:
    document = problem("semantic-error", 422, errors=[{"field": "x", "message": "y"}])
    assert checks.ensure_problem(problem_exchange(422, document), 422, "semantic-error") == document
    throttled = {"type": "about:blank", "title": "Too Many Requests", "status": 429}
    throttled |= {"retryable": True, "backoffStrategy": "exponential"}
    checks.ensure_problem(problem_exchange(429, throttled, {"Retry-After": "5"}), 429, "about:blank")
    with_charset = exchange(
        400,
        {"Content-Type": "application/problem+json; charset=utf-8"},
        json.dumps(problem("invalid-request", 400)).encode(),
    )
    checks.ensure_problem(with_charset, 400, "invalid-request")


@pytest.mark.parametrize(
    ("ex", "status", "fragment", "rule"),
    [
        (
            problem_exchange(422, problem("invalid-request", 422)),
            422,
            "semantic-error",
            "ERR-001: expected problem type",
        ),
        (
            problem_exchange(400, problem("invalid-request", 400)),
            422,
            "semantic-error",
            "expected HTTP 422, got 400",
        ),
        (
            exchange(400, {"Content-Type": "application/json"}, b"{}"),
            400,
            "invalid-request",
            "API-ERR-001: error Content-Type",
        ),
        (
            exchange(400, {"Content-Type": "application/problem+json"}, b"oops"),
            400,
            "invalid-request",
            "API-ERR-001: the problem body is not JSON",
        ),
        (
            problem_exchange(400, {"type": PROBLEM_TYPE_BASE + "invalid-request", "status": 400}),
            400,
            "invalid-request",
            r"API-ERR-002: .*title",
        ),
        (
            problem_exchange(400, problem("invalid-request", 404)),
            400,
            "invalid-request",
            "API-ERR-001: problem status 404 differs",
        ),
        (problem_exchange(404, problem("no-such-type", 404)), 404, "no-such-type", "ERR-004"),
        (
            problem_exchange(
                429,
                problem("x", 429, retryable=True, backoffStrategy="exponential") | {"type": "about:blank"},
            ),
            429,
            "about:blank",
            "API-RETRY-001: .*Retry-After",
        ),
        (
            problem_exchange(429, {"type": "about:blank", "title": "t", "status": 429}, {"Retry-After": "3"}),
            429,
            "about:blank",
            "API-RETRY-001: .*retryable",
        ),
        (
            problem_exchange(
                503, problem("x", 503, retryable=False) | {"type": "about:blank"}, {"Retry-After": "3"}
            ),
            503,
            "about:blank",
            "API-RETRY-002",
        ),
        (
            problem_exchange(
                503,
                {
                    "type": "about:blank",
                    "title": "t",
                    "status": 503,
                    "retryable": True,
                    "backoffStrategy": "exponential",
                },
                {"Retry-After": "soon"},
            ),
            503,
            "about:blank",
            "API-RETRY-002: Retry-After 'soon'",
        ),
        (
            problem_exchange(404, problem("device-not-found", 404), {"Retry-After": "3"}),
            404,
            "device-not-found",
            "API-RETRY-004: .*must not carry Retry-After",
        ),
        (
            problem_exchange(404, problem("device-not-found", 404, retryable=True)),
            404,
            "device-not-found",
            "API-RETRY-004",
        ),
        (
            problem_exchange(
                500, {"type": "about:blank", "title": "t", "status": 500, "backoffStrategy": "none"}
            ),
            500,
            "about:blank",
            "API-RETRY-003",
        ),
    ],
)
def test_ensure_problem_fails_naming_the_rule(ex: Exchange, status: int, fragment: str, rule: str) -> None:
    message = fails(checks.ensure_problem, ex, status, fragment, match=rule)
    assert "< HTTP/1.1" in message  # the transcript is attached


def test_ensure_problem_lists_errors() -> None:
    listed = problem("semantic-error", 422, errors=[{"field": "/properties/cpus", "message": "bad"}])
    assert checks.ensure_problem_lists_errors(problem_exchange(422, listed)) == listed["errors"]
    bare = problem("semantic-error", 422)
    fails(checks.ensure_problem_lists_errors, problem_exchange(422, bare), match="CAP-102: .*errors")
    silent = problem("semantic-error", 422, errors=[{"field": "x"}])
    fails(checks.ensure_problem_lists_errors, problem_exchange(422, silent), match="CAP-102: .*message")


def test_ensure_problem_shape_needs_an_error_status() -> None:
    checks.ensure_problem_shape(problem_exchange(500, {"type": "about:blank", "title": "t", "status": 500}))
    fails(checks.ensure_problem_shape, exchange(200), match="API-ERR-001: expected an error status")


# ==============================================================================================
# the State Manifest
# ==============================================================================================


def test_ensure_manifest() -> None:
    assert checks.ensure_manifest(manifest_exchange())["manifestVersion"] == 3
    checks.ensure_manifest(manifest_exchange(Content_Type=MANIFEST_TYPE + "; charset=utf-8"))
    fails(
        checks.ensure_manifest,
        manifest_exchange(Content_Type="application/json"),
        match="DS-005: manifest Content-Type",
    )
    fails(checks.ensure_manifest, manifest_exchange(ETag=""), match="DS-005: .*ETag")
    broken = manifest_document()
    del broken["deployments"][0]["digest"]
    fails(checks.ensure_manifest, manifest_exchange(broken), match=r"DS-103: .*\[DS-103\] .*digest")
    fails(checks.ensure_manifest, exchange(304), match="expected HTTP 200, got 304")


def test_ensure_strong_digest_etag() -> None:
    ok = manifest_exchange()
    assert checks.ensure_strong_digest_etag(ok) == ok.header("ETag")
    gzipped = exchange(200, {"ETag": f'"{sha(b"{}")}"', "Content-Encoding": "gzip"}, gzip.compress(b"{}"))
    checks.ensure_strong_digest_etag(gzipped)
    digest = sha(ok.body)
    fails(checks.ensure_strong_digest_etag, manifest_exchange(ETag=f'W/"{digest}"'), match="DS-007: .*weak")
    fails(checks.ensure_strong_digest_etag, manifest_exchange(ETag=digest), match="DS-007: .*quoted")
    fails(
        checks.ensure_strong_digest_etag,
        manifest_exchange(ETag=f'"{sha(b"x")}"'),
        match="DS-007: .*not the digest",
    )
    fails(checks.ensure_strong_digest_etag, manifest_exchange(ETag=f'"{digest.upper()}"'), match="DS-007")


@pytest.mark.parametrize(
    "value",
    ["private", "private, max-age=0", "no-cache, PRIVATE", "private, max-age=5", "private, max-age=60"],
)
def test_ensure_private_not_immutable_passes(value: str) -> None:
    checks.ensure_private_not_immutable(manifest_exchange(Cache_Control=value))


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("public", "DS-010"),
        ("", "DS-010"),
        ("private, immutable", "DS-009: .*immutable"),
        ("private, max-age=61", "DS-009: .*long max-age .*INC-126"),
        ("private, max-age=31536000", "DS-009: .*long max-age"),
        ('private, max-age="3600"', "DS-009"),
    ],
)
def test_ensure_private_not_immutable_fails(value: str, rule: str) -> None:
    fails(checks.ensure_private_not_immutable, manifest_exchange(Cache_Control=value), match=rule)


def test_ensure_not_modified() -> None:
    checks.ensure_not_modified(exchange(304, {"ETag": '"x"'}))
    fails(checks.ensure_not_modified, manifest_exchange(), match="expected HTTP 304, got 200")
    fails(checks.ensure_not_modified, exchange(304, {}, b"stray"), match="DS-006: .*5 bytes")


def test_ensure_manifest_urls() -> None:
    checks.ensure_manifest_urls(manifest_document())
    prefixed = manifest_document()
    prefixed["bundle"]["url"] = "/v1alpha2/margo" + prefixed["bundle"]["url"]
    checks.ensure_manifest_urls(prefixed)
    absolute = manifest_document()
    absolute["bundle"]["url"] = "https://wfm.test" + absolute["bundle"]["url"]
    fails(checks.ensure_manifest_urls, absolute, match="DS-101: bundle.url")
    other = manifest_document()
    other["deployments"][0]["url"] = f"/api/v1/deployments/{OTHER_ID}/{sha(b'a')}"
    fails(checks.ensure_manifest_urls, other, match=r"DS-101: deployments\[0\].url")
    digest = manifest_document()
    digest["deployments"][0]["url"] = f"/api/v1/deployments/{DEPLOYMENT_ID}/{sha(b'zz')}"
    fails(checks.ensure_manifest_urls, digest, match="DS-101")


def test_ensure_bundle_null_iff_empty() -> None:
    checks.ensure_bundle_null_iff_empty(manifest_document(1))
    checks.ensure_bundle_null_iff_empty(manifest_document(0))
    empty_with_bundle = manifest_document(0) | {"bundle": manifest_document(1)["bundle"]}
    fails(checks.ensure_bundle_null_iff_empty, empty_with_bundle, match="DS-012: with no deployments")
    fails(
        checks.ensure_bundle_null_iff_empty,
        manifest_document(1) | {"bundle": None},
        match="DS-027: with deployments, bundle must not be null",
    )
    missing = manifest_document(0)
    del missing["bundle"]
    fails(checks.ensure_bundle_null_iff_empty, missing, match="DS-012: .*always")


def test_ensure_manifest_version() -> None:
    checks.ensure_manifest_version({"manifestVersion": 1}, 1)
    fails(
        checks.ensure_manifest_version, {"manifestVersion": 0}, 1, match="DS-011: manifestVersion must be 1"
    )
    fails(checks.ensure_manifest_version, {"manifestVersion": True}, 1, match="DS-011")


def test_ensure_bundle_null_iff_empty_with_an_expectation() -> None:
    checks.ensure_bundle_null_iff_empty(manifest_document(0), expect_empty=True)
    checks.ensure_bundle_null_iff_empty(manifest_document(1), expect_empty=False)
    fails(
        checks.ensure_bundle_null_iff_empty, manifest_document(1), expect_empty=True, match="no deployments"
    )


def test_ensure_manifest_version_advanced() -> None:
    checks.ensure_manifest_version_advanced(3, 4, changed=True)
    checks.ensure_manifest_version_advanced(3, 3, changed=False)
    checks.ensure_manifest_version_advanced(3, 4, changed=False)  # allowed without a change (INC-127)
    fails(checks.ensure_manifest_version_advanced, 3, 3, changed=True, match="DS-011: .*grow past 3")
    fails(checks.ensure_manifest_version_advanced, 3, 2, changed=True, match="DS-011")
    fails(checks.ensure_manifest_version_advanced, 3, 1, changed=False, match="DS-011: .*never decrease")


# ==============================================================================================
# digest-addressed resources
# ==============================================================================================

YAML_BODY = b"id: x\nmetadata:\n  name: y\n"


def digest_exchange(body: bytes = YAML_BODY, **headers: str) -> Exchange:
    base = {
        "Content-Type": YAML_TYPE,
        "ETag": f'"{sha(YAML_BODY)}"',
        "Cache-Control": "private, max-age=31536000, immutable",
    }
    base.update({k.replace("_", "-"): v for k, v in headers.items()})
    return exchange(
        200, {k: v for k, v in base.items() if v}, body, path=f"/api/v1/deployments/x/{sha(YAML_BODY)}"
    )


def test_ensure_digest_resource_passes_and_returns_the_decoded_bytes() -> None:
    assert checks.ensure_digest_resource(digest_exchange(), sha(YAML_BODY), YAML_TYPE) == YAML_BODY
    encoded = digest_exchange(gzip.compress(YAML_BODY), Content_Encoding="gzip", Vary="Accept-Encoding")
    assert checks.ensure_digest_resource(encoded, sha(YAML_BODY), YAML_TYPE) == YAML_BODY
    checks.ensure_vary_when_encoded(encoded)
    checks.ensure_vary_when_encoded(digest_exchange())


@pytest.mark.parametrize(
    ("ex", "rule"),
    [
        (digest_exchange(YAML_BODY + b"\n"), "DS-021: the decoded body hashes to"),
        (digest_exchange(ETag=f'W/"{sha(YAML_BODY)}"'), "DS-015: ETag must be"),
        (digest_exchange(ETag=sha(YAML_BODY)), "DS-015: ETag must be"),
        (
            digest_exchange(Cache_Control="public, max-age=31536000, immutable"),
            "DS-015: Cache-Control must include private",
        ),
        (digest_exchange(Cache_Control="private, max-age=600"), "DS-015: .*max-age=31536000, immutable"),
        (digest_exchange(Content_Type="text/yaml"), "OA3 .*: Content-Type must be application/yaml"),
        (exchange(404, {}, b""), "expected HTTP 200, got 404"),
        (
            exchange(
                200,
                {"Content-Type": YAML_TYPE},
                YAML_BODY[:5],
                anomaly="connection ended after 5 of 27 body bytes",
            ),
            "DS-021: the body did not arrive whole",
        ),
    ],
)
def test_ensure_digest_resource_fails_naming_the_rule(ex: Exchange, rule: str) -> None:
    fails(checks.ensure_digest_resource, ex, sha(YAML_BODY), YAML_TYPE, match=rule)


def test_ensure_content_type_names_ds014_for_the_bundle() -> None:
    checks.ensure_content_type(exchange(200, {"Content-Type": BUNDLE_TYPE}), BUNDLE_TYPE)
    wrong = exchange(200, {"Content-Type": "application/gzip"})
    fails(
        checks.ensure_content_type, wrong, BUNDLE_TYPE, match="DS-014: Content-Type must be application/vnd"
    )


def test_ensure_vary_when_encoded_fails_without_vary() -> None:
    encoded = digest_exchange(gzip.compress(YAML_BODY), Content_Encoding="gzip")
    fails(checks.ensure_vary_when_encoded, encoded, match="DS-016")


def tar_gz(files: dict[str, bytes], *, directories: tuple[str, ...] = ()) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name in directories:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_ensure_bundle_holds_exactly() -> None:
    yamls = {DEPLOYMENT_ID: b"a: 1\n", OTHER_ID: b"b: 2\n"}
    checks.ensure_bundle_holds_exactly(
        tar_gz({"one.yaml": b"a: 1\n", "./two.yaml": b"b: 2\n"}, directories=(".",)), yamls
    )
    fails(
        checks.ensure_bundle_holds_exactly,
        tar_gz({"one.yaml": b"a: 1\n"}),
        yamls,
        match=f"DS-013: .*missing .*{OTHER_ID}",
    )
    fails(
        checks.ensure_bundle_holds_exactly,
        tar_gz({"one.yaml": b"a: 1\n", "two.yaml": b"b: 2\n", "three.yaml": b"c: 3\n"}),
        yamls,
        match="DS-013: .*1 file",
    )
    fails(
        checks.ensure_bundle_holds_exactly,
        tar_gz({"one.yaml": b"a: 1\n", "sub/two.yaml": b"b: 2\n"}, directories=("sub",)),
        yamls,
        match="DS-013: .*'sub/two.yaml' .not a regular file at the archive root",
    )
    fails(checks.ensure_bundle_holds_exactly, b"not a tarball", yamls, match="DS-013: .*not a readable")


# ==============================================================================================
# the ApplicationDeployment YAML
# ==============================================================================================


@pytest.fixture
def description() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(DESCRIPTION.read_text(encoding="utf-8"))
    return document


def make_deployment(description: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """What a conformant WFM makes from the description's first profile."""
    profile = copy.deepcopy(description["deploymentProfiles"][0])
    for name in ("id", "description"):
        profile.pop(name, None)
    values = {
        name: {"value": parameters.get(name, p["value"]), "targets": p["targets"]}
        for name, p in description["parameters"].items()
    }
    return {
        "id": DEPLOYMENT_ID,
        "metadata": {"name": "sensor-hub", "namespace": "margo", "deviceId": "gw-1/dev-1"},
        "spec": {"applicationId": description["id"], "deploymentProfile": profile, "parameters": values},
    }


def judge(
    description: dict[str, Any], deployment: dict[str, Any], parameters: dict[str, Any]
) -> dict[str, Any]:
    return checks.ensure_application_deployment(
        yaml.safe_dump(deployment, sort_keys=False).encode(),
        deployment_id=DEPLOYMENT_ID,
        description=description,
        device_id="gw-1/dev-1",
        parameters=parameters,
    )


def test_ensure_application_deployment_passes(description: dict[str, Any]) -> None:
    assert "x-vendor-a-extensions" in description  # a root extension that must not travel
    document = judge(description, make_deployment(description, {"listenPort": 9090}), {"listenPort": 9090})
    assert document["spec"]["parameters"]["listenPort"]["value"] == 9090
    without_wait = make_deployment(description, {})
    del without_wait["spec"]["deploymentProfile"]["components"][0]["properties"][
        "wait"
    ]  # wait: true is the default
    judge(description, without_wait, {})


def _edit(path: str, value: Any) -> Any:
    def apply(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is KeyError:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return apply


@pytest.mark.parametrize(
    ("edit", "rule"),
    [
        (_edit("id", OTHER_ID), "DS-102: id must be the deploymentId"),
        (_edit("spec.applicationId", "another-app"), "ADEP-101"),
        (_edit("metadata.deviceId", "gw-1/dev-2"), "metadata.deviceId must be 'gw-1/dev-1'"),
        (_edit("spec.deploymentProfile.components.0.properties.revision", "1.2.1"), "ADEP-102: components"),
        (_edit("spec.deploymentProfile.components.0.properties.wait", False), "ADEP-102"),
        (_edit("spec.deploymentProfile.deviceConstraints.capacityRequirements.memory", "256Mi"), "ADEP-001"),
        (_edit("spec.deploymentProfile.deviceConstraints", KeyError), "ADEP-001"),
        (
            _edit("spec.deploymentProfile.components.0.x-vendor-a-extensions", KeyError),
            "ADEP-005: component 'sensor-hub'",
        ),
        (
            _edit("spec.deploymentProfile.components.0.x-vendor-a-extensions", {"restartPolicy": "always"}),
            "ADEP-005",
        ),
        (_edit("spec.x-vendor-a-extensions", {"telemetry": True}), "APPD-007"),
        (_edit("spec.parameters.listenPort.value", 8080), "APPD-001: parameter 'listenPort'"),
        (_edit("spec.parameters.listenPort.value", "9090"), "APPD-001"),
        (_edit("spec.parameters.siteName", KeyError), "APPD-001: parameter 'siteName'"),
        (
            _edit(
                "spec.parameters.debug",
                {"value": True, "targets": [{"pointer": "D", "components": ["sensor-hub"]}]},
            ),
            "APPD-001: .*lacks",
        ),
        (_edit("apiVersion", "margo.org/v1"), r"ADEP-103: .*apiVersion"),
    ],
)
def test_ensure_application_deployment_fails_naming_the_rule(
    description: dict[str, Any], edit: Any, rule: str
) -> None:
    deployment = make_deployment(description, {"listenPort": 9090})
    edit(deployment)
    fails(judge, description, deployment, {"listenPort": 9090}, match=rule)


def test_sub_checks_take_served_bytes(description: dict[str, Any]) -> None:
    served = yaml.safe_dump(make_deployment(description, {"listenPort": 9090}), sort_keys=False).encode()
    assert (
        checks.ensure_valid_application_deployment(served, deployment_id=DEPLOYMENT_ID)["id"] == DEPLOYMENT_ID
    )
    fails(checks.ensure_valid_application_deployment, served, deployment_id=OTHER_ID, match="DS-102")
    checks.ensure_deployment_ids(served, deployment_id=DEPLOYMENT_ID, description=description)
    fails(
        checks.ensure_deployment_ids,
        served,
        deployment_id=DEPLOYMENT_ID,
        description={"id": "x"},
        match="ADEP-101",
    )
    checks.ensure_components_copied(served, description=description)
    checks.ensure_constraints_copied(
        served, description=description, profile_id="vendor-a-sensor-hub-compose"
    )
    checks.ensure_device_extensions_copied(served, description=description)
    checks.ensure_root_extensions_not_forwarded(served, description=description)
    checks.ensure_parameter(served, name="listenPort", value=9090, description=description)
    fails(
        checks.ensure_parameter,
        served,
        name="listenPort",
        value=8080,
        description=description,
        match="APPD-001",
    )
    with pytest.raises(ValueError, match="no parameter"):
        checks.ensure_parameter(served, name="nope", value=1, description=description)
    with pytest.raises(ValueError, match="no deployment profile"):
        checks.ensure_constraints_copied(served, description=description, profile_id="nope")


def test_ensure_application_deployment_refuses_non_yaml(description: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {
        "deployment_id": DEPLOYMENT_ID,
        "description": description,
        "device_id": "d",
        "parameters": {},
    }
    fails(
        checks.ensure_application_deployment,
        b"key: [unclosed",
        match="ADEP-103: the deployment is not YAML",
        **kwargs,
    )
    fails(checks.ensure_application_deployment, b"- a list", match="ADEP-103: .*not a mapping", **kwargs)


def test_ensure_wfm_identity() -> None:
    checks.ensure_wfm_identity(exchange(200), WFM_ID)
    fails(
        checks.ensure_wfm_identity,
        exchange(200),
        SpiffeId.wfm("conformance.test", "wfm-2"),
        match="WIP-004/WIP-007: .*exactly|WIP-007: .*exactly",
    )
    fails(checks.ensure_wfm_identity, refused("connection reset"), WFM_ID, match="expected an HTTP response")


# ==============================================================================================
# request bodies
# ==============================================================================================


def test_valid_builders_validate_and_broken_ones_do_not() -> None:
    schemas = SchemaSet.load()
    assert schemas.validate(documents.make_capabilities("gw-1/dev-1"), "DeviceCapabilitiesManifest") == []
    gateway = documents.make_capabilities("gw-1", hosting=False)
    assert schemas.validate(gateway, "DeviceCapabilitiesManifest") == []
    assert not set(documents.HOSTING_FIELDS) & set(gateway["properties"])
    custom = documents.make_capabilities("d", supportedRuntimes=["custom"], labels={"example.com/x": "y"})
    assert schemas.validate(custom, "DeviceCapabilitiesManifest") == []
    status = documents.make_status(
        DEPLOYMENT_ID, adopted_manifest_version=2, components=("a", "b"), device_id="gw/c"
    )
    assert schemas.validate(status, "DeploymentStatusManifest") == []
    assert {
        f.requirement
        for f in schemas.validate(
            documents.make_capabilities_with_envelope("d"), "DeviceCapabilitiesManifest"
        )
    }
    broken = schemas.validate(documents.make_capabilities_semantic_error("d"), "DeviceCapabilitiesManifest")
    assert [f.location for f in broken] == ["$.properties.cpus[0].architecture"]
    invalid_status = schemas.validate(
        documents.make_status_schema_invalid(DEPLOYMENT_ID), "DeploymentStatusManifest"
    )
    assert {f.requirement for f in invalid_status} == {"STAT-002"}
    with pytest.raises(json.JSONDecodeError):
        json.loads(documents.MALFORMED_JSON)


# ==============================================================================================
# the client against a real mTLS server
# ==============================================================================================


def raw_response(
    status: str, headers: list[tuple[str, str]], body: bytes = b"", *, length: bool = True
) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers)]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class TlsServer:
    """A tiny threaded TLS server answering requests by path with canned raw HTTP responses.

    behaviour: "http" (keep-alive loop), "silent" (accepts TCP, never speaks), "abort" (handshake, read
    the request, close). ``close_after`` ends every connection after its first response."""

    def __init__(
        self,
        context: ssl.SSLContext,
        responses: dict[str, bytes] | None = None,
        *,
        behaviour: str = "http",
        close_after: bool = False,
    ) -> None:
        self.context = context
        self.responses = responses or {}
        self.behaviour = behaviour
        self.close_after = close_after
        self.accepted = 0
        self.paths: list[str] = []
        self.handshake_errors: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def __enter__(self) -> TlsServer:
        self._spawn(self._accept_loop)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._spawn(self._handle, conn)

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        if self.behaviour == "silent":
            self._stop.wait(10)
            conn.close()
            return
        tls = self.context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            self.handshake_errors.append(str(exc))
            self._linger(tls)
            return
        try:
            self._serve(tls)
        except OSError:
            pass
        finally:
            tls.close()

    def _serve(self, tls: ssl.SSLSocket) -> None:
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                data = tls.recv(65536)
                if not data:
                    return
                buffer += data
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            sizes = [
                int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")
            ]
            length = sizes[0] if sizes else 0
            while len(buffer) < length:
                buffer += tls.recv(65536)
            buffer = buffer[length:]
            path = lines[0].split(" ")[1]
            self.paths.append(path)
            if self.behaviour == "abort":
                return
            tls.sendall(self.responses.get(path) or raw_response("404 Not Found", []))
            if self.close_after:
                return

    @staticmethod
    def _linger(tls: ssl.SSLSocket) -> None:
        """After a refused handshake: half-close and drain, so the alert is not lost to a TCP reset."""
        try:
            tls.shutdown(socket.SHUT_WR)
            while tls.recv(65536):
                pass
        except OSError:
            pass
        finally:
            tls.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.init(tmp_path_factory.mktemp("pki") / "pki", trust_domain="conformance.test", wfm_id="wfm-1")


@pytest.fixture(scope="module")
def client_svid(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> SvidFiles:
    return pki.mint_client("device-1").write(tmp_path_factory.mktemp("client"), "client")


@pytest.fixture
def server_tls(pki: Pki) -> ssl.SSLContext:
    return server_context(pki.wfm_svid_files, pki.bundle_pem)


# not canonical JSON on purpose: the client must hand over the bytes exactly as sent
MANIFEST_BODY = b'{ "manifestVersion": 1,\n  "bundle": null, "deployments": [] }\n'
MANIFEST_RESPONSE = raw_response(
    "200 OK",
    [("Content-Type", MANIFEST_TYPE), ("ETag", f'"{sha(MANIFEST_BODY)}"'), ("Cache-Control", "private")],
    MANIFEST_BODY,
)


def test_client_receives_exact_bytes_from_the_wfm_it_expects(
    pki: Pki, client_svid: SvidFiles, server_tls: ssl.SSLContext
) -> None:
    log: list[Exchange] = []
    with (
        TlsServer(server_tls, {"/api/v1/deployments": MANIFEST_RESPONSE}) as server,
        VirtualClient(server.url, client_svid, pki.bundle_pem, timeout_s=5, log=log) as client,
    ):
        ex = client.get_manifest()
    assert ex.status == 200 and ex.body == MANIFEST_BODY and ex.refused is None
    assert ex.tls_version == "TLSv1.3"
    assert ex.peer_spiffe_id == pki.wfm_spiffe_id
    assert ("Accept", MANIFEST_TYPE) in ex.request_headers
    assert not any(name.lower() == "accept-encoding" for name, _ in ex.request_headers)
    assert log == [ex]
    assert checks.ensure_manifest(ex) == json.loads(MANIFEST_BODY)
    checks.ensure_strong_digest_etag(ex)
    checks.ensure_private_not_immutable(ex)
    checks.ensure_wfm_identity(ex, pki.wfm_spiffe_id)
    fails(checks.ensure_wfm_identity, ex, SpiffeId.wfm("conformance.test", "other"), match="WIP-007")


def test_client_keeps_one_connection_alive(
    pki: Pki, client_svid: SvidFiles, server_tls: ssl.SSLContext
) -> None:
    responses = {
        "/api/v1/deployments": MANIFEST_RESPONSE,
        "/api/v1/capabilities/gw-1/dev-1": raw_response("201 Created", []),
    }
    with (
        TlsServer(server_tls, responses) as server,
        VirtualClient(server.url, client_svid, pki.bundle_pem, timeout_s=5) as client,
    ):
        first = client.put_capabilities("gw-1/dev-1", documents.make_capabilities("gw-1/dev-1"))
        second = client.get_manifest(accept=None, if_none_match='"x"')
        assert server.accepted == 1 and client.connections_opened == 1
    assert (first.status, second.status) == (201, 200)
    assert server.paths == ["/api/v1/capabilities/gw-1/dev-1", "/api/v1/deployments"]
    assert json.loads(first.request_body)["properties"]["id"] == "gw-1/dev-1"
    assert ("Content-Type", "application/json") in first.request_headers
    assert not any(name == "Accept" for name, _ in second.request_headers)
    assert ("If-None-Match", '"x"') in second.request_headers


def test_client_reopens_a_connection_the_server_closed(
    pki: Pki, client_svid: SvidFiles, server_tls: ssl.SSLContext
) -> None:
    with (
        TlsServer(server_tls, {"/api/v1/deployments": MANIFEST_RESPONSE}, close_after=True) as server,
        VirtualClient(server.url, client_svid, pki.bundle_pem, timeout_s=5) as client,
    ):
        results = [client.get_manifest().status for _ in range(3)]
        assert server.accepted == 3 and client.connections_opened == 3
    assert results == [200, 200, 200]


def test_client_decodes_gzip_and_chunking_for_digest_checks(
    pki: Pki, client_svid: SvidFiles, server_tls: ssl.SSLContext
) -> None:
    digest = sha(YAML_BODY)
    encoded = gzip.compress(YAML_BODY)
    immutable = [("ETag", f'"{digest}"'), ("Cache-Control", "private, max-age=31536000, immutable")]
    chunked = (
        b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (encoded[:10], encoded[10:]))
        + b"0\r\n\r\n"
    )
    responses = {
        f"/api/v1/deployments/{DEPLOYMENT_ID}/{digest}": raw_response(
            "200 OK",
            [
                ("Content-Type", YAML_TYPE),
                ("Content-Encoding", "gzip"),
                ("Vary", "Accept-Encoding"),
                *immutable,
            ],
            encoded,
        ),
        f"/api/v1/bundles/{digest}": raw_response(
            "200 OK",
            [
                ("Content-Type", YAML_TYPE),
                ("Content-Encoding", "gzip"),
                ("Transfer-Encoding", "chunked"),
                *immutable,
            ],
            chunked,
            length=False,
        ),
    }
    with (
        TlsServer(server_tls, responses) as server,
        VirtualClient(server.url, client_svid, pki.bundle_pem, timeout_s=5) as client,
    ):
        single = client.fetch(f"/api/v1/deployments/{DEPLOYMENT_ID}/{digest}", accept_encoding="gzip")
        bundle = client.fetch(f"/api/v1/bundles/{digest}")
    assert single.body == encoded and sha(single.body) != digest
    assert ("Accept-Encoding", "gzip") in single.request_headers
    assert checks.ensure_digest_resource(single, digest, YAML_TYPE) == YAML_BODY
    checks.ensure_vary_when_encoded(single)
    assert bundle.body == encoded  # de-chunked, still gzip
    assert checks.ensure_digest_resource(bundle, digest, YAML_TYPE) == YAML_BODY
    fails(checks.ensure_vary_when_encoded, bundle, match="DS-016")


def test_client_flags_a_304_that_carries_a_body(
    pki: Pki, client_svid: SvidFiles, server_tls: ssl.SSLContext
) -> None:
    stray = b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\nstray body'
    responses = {"/api/v1/deployments": stray, "/api/v1/capabilities/d": raw_response("200 OK", [])}
    with (
        TlsServer(server_tls, responses) as server,
        VirtualClient(server.url, client_svid, pki.bundle_pem, timeout_s=5) as client,
    ):
        ex = client.get_manifest(if_none_match='"x"')
        after = client.put_capabilities("d", b"{}")
    assert ex.status == 304
    fails(checks.ensure_not_modified, ex, match="DS-006: a 304 must have no body")
    assert after.status == 200  # the stray bytes did not poison the next exchange


def test_client_times_out_on_a_server_that_never_answers(
    pki: Pki, client_svid: SvidFiles, server_tls: ssl.SSLContext
) -> None:
    with (
        TlsServer(server_tls, behaviour="silent") as server,
        VirtualClient(server.url, client_svid, pki.bundle_pem, timeout_s=1) as client,
    ):
        started = time.monotonic()
        ex = client.get_manifest()
        took = time.monotonic() - started
    assert ex.status is None and ex.refused == "timed out after 1 s"
    assert 0.9 <= took < 2.0 and ex.elapsed_s < 2.0
    fails(checks.ensure_refused, ex, control=SERVED, match="not a refusal")


def test_client_bounds_a_body_that_stalls(
    pki: Pki, client_svid: SvidFiles, server_tls: ssl.SSLContext
) -> None:
    stalled = raw_response(
        "200 OK", [("Content-Type", YAML_TYPE), ("Content-Length", "100")], b"id: x\n", length=False
    )
    with (
        TlsServer(server_tls, {"/api/v1/bundles/x": stalled}) as server,
        VirtualClient(server.url, client_svid, pki.bundle_pem, timeout_s=1) as client,
    ):
        ex = client.fetch("/api/v1/bundles/x")
    assert ex.status == 200 and ex.body == b"id: x\n" and ex.elapsed_s < 2.0
    assert ex.anomaly is not None and ex.anomaly.startswith("timed out after 1 s while reading the body")
    fails(checks.ensure_body_digest, ex, sha(b"id: x\n"), match="DS-021: the body did not arrive whole")


def test_client_reports_a_close_after_the_handshake(
    pki: Pki, client_svid: SvidFiles, server_tls: ssl.SSLContext
) -> None:
    with (
        TlsServer(server_tls, behaviour="abort") as server,
        VirtualClient(server.url, client_svid, pki.bundle_pem, timeout_s=5) as client,
    ):
        ex = client.get_manifest()
    assert ex.status is None and ex.refused == "connection closed before any response"
    assert ex.peer_spiffe_id == pki.wfm_spiffe_id  # the handshake itself succeeded
    checks.ensure_refused(ex, control=SERVED)
    checks.ensure_not_served(ex, control=SERVED)


def test_client_without_svid_is_refused_in_the_handshake(pki: Pki, server_tls: ssl.SSLContext) -> None:
    with (
        TlsServer(server_tls) as server,
        VirtualClient(server.url, None, pki.bundle_pem, timeout_s=5) as client,
    ):
        ex = client.get_manifest()
        assert server.paths == []  # nothing reached HTTP
    assert ex.status is None
    assert ex.refused is not None and ex.refused.startswith("TLS handshake failed"), ex.refused
    checks.ensure_refused(ex, control=SERVED)
    fails(checks.ensure_status, ex, 200, match="TLS handshake failed")


def test_client_rejects_a_wfm_outside_its_bundle(pki: Pki, client_svid: SvidFiles, tmp_path: Path) -> None:
    foreign = Pki.init(tmp_path / "foreign", trust_domain="conformance.test", wfm_id="wfm-1")
    context = server_context(foreign.wfm_svid_files, pki.bundle_pem)
    with (
        TlsServer(context) as server,
        VirtualClient(server.url, client_svid, pki.bundle_pem, timeout_s=5) as client,
    ):
        ex = client.get_manifest()
    assert ex.refused is not None and "rejected the WFM's certificate" in ex.refused
    with pytest.raises(Blocked):
        checks.ensure_refused(ex, control=SERVED)


def test_client_reports_an_unreachable_wfm(pki: Pki, client_svid: SvidFiles) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with VirtualClient(f"https://127.0.0.1:{port}", client_svid, pki.bundle_pem, timeout_s=2) as client:
        ex = client.get_manifest()
    assert ex.refused is not None and ex.refused.startswith("cannot connect"), ex.refused
    with pytest.raises(Blocked):
        checks.ensure_status(ex, 200)


def test_client_honours_a_base_path_prefix(
    pki: Pki, client_svid: SvidFiles, server_tls: ssl.SSLContext
) -> None:
    ok = raw_response("200 OK", [])
    responses = {"/p/api/v1/deployments": ok, "/p/api/v1/bundles/x": ok, "/p/api/v1/bundles/y": ok}
    with (
        TlsServer(server_tls, responses) as server,
        VirtualClient(server.url + "/p/", client_svid, pki.bundle_pem, timeout_s=5) as client,
    ):
        statuses = [
            client.get_manifest().status,
            client.fetch("/api/v1/bundles/x").status,
            client.fetch("/p/api/v1/bundles/y").status,
            client.fetch(f"{server.url}/p/api/v1/bundles/y").status,
        ]
        with pytest.raises(ValueError, match="not on the WFM's origin"):
            client.fetch("https://elsewhere.test/api/v1/bundles/x")
    assert statuses == [200, 200, 200, 200]
    assert server.paths == [
        "/p/api/v1/deployments",
        "/p/api/v1/bundles/x",
        "/p/api/v1/bundles/y",
        "/p/api/v1/bundles/y",
    ]


# ==============================================================================================
# one check shape (issue 9): a Violation naming its requirement, with the evidence
# ==============================================================================================


def test_a_check_raises_a_violation_with_requirement_and_transcript() -> None:
    with pytest.raises(Violation) as caught:
        checks.ensure_private_not_immutable(manifest_exchange(Cache_Control="public"))
    assert caught.value.requirement == "DS-010" and "Cache-Control" in caught.value.evidence


def test_ensure_etag_and_two_versions_and_deployments_listed() -> None:
    ok = manifest_exchange()
    assert checks.ensure_etag(ok) == ok.header("ETag")
    fails(checks.ensure_etag, exchange(200), match="DS-005: .*ETag")
    assert checks.ensure_two_versions([{"manifestVersion": 1}, {"manifestVersion": 3}], ok) == (1, 3)
    fails(checks.ensure_two_versions, [{"manifestVersion": 1}], ok, match="DS-011: expected two")
    checks.ensure_deployments_listed(["a"], ["a", "b"])
    fails(checks.ensure_deployments_listed, ["a", "c"], ["a"], match="made \\(c\\) are not in")
