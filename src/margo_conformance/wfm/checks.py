"""What the WFM scenarios assert about the exchanges of the virtual client: one decision per check.

Every check raises ``AssertionError`` naming the rule it judged (registry ID where there is one) and
showing the exchange's transcript; it returns the parsed thing a later step needs. A WFM that could not
be reached at all (TCP refused, unresolvable host, the suite's client rejecting the WFM's certificate) is
not a finding: those raise ``Blocked``.

Readings chosen where the spec leaves room (each says so in its docstring): media-type parameters are
tolerated (DS-005, DS-014), a manifest max-age must be absent or 0 (DS-009), a timeout is not a refusal
(API-SEC-002), bundle members are matched by content (INC-104), manifest urls may carry a path prefix
(INC-110), and an absent component ``wait`` equals ``wait: true`` (ADEP-102).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from .._internal import bounded
from .._internal.tar_safety import open_tar_gz
from ..errors import Blocked, InputError
from ..pki import SpiffeId
from ..schemas import EXTENSION_NAME, SchemaSet
from .client import (
    BUNDLE_TYPE,
    CANNOT_CONNECT,
    CLIENT_REJECTED_SERVER,
    MANIFEST_TYPE,
    PROBLEM_JSON,
    PROBLEM_TYPE_BASE,
    TIMED_OUT,
    Exchange,
)

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
IMMUTABLE_MAX_AGE = "31536000"
_STRONG_DIGEST_ETAG = re.compile(r'^"sha256:[0-9a-f]{64}"$')
_DELTA_SECONDS = re.compile(r"^[0-9]+$")
_URL_PREFIX = re.compile(r"^(/[^/?#\s]+)*$")
_EXCERPT = 2048


def _fail(exchange: Exchange, message: str) -> AssertionError:
    return AssertionError(f"{message}\n{exchange.transcript()}")


def _document_fail(message: str, document: object) -> AssertionError:
    text = document.decode("utf-8", "replace") if isinstance(document, bytes) else _dump(document)
    excerpt = text[:_EXCERPT] + (" …" if len(text) > _EXCERPT else "")
    return AssertionError(f"{message}\n--- document ---\n{excerpt}")


def _dump(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _short(value: object) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."


def _media_type(value: str | None) -> str | None:
    """The type/subtype of a Content-Type value, lowercased (RFC 9110 §8.3.1), parameters dropped."""
    return value.split(";", 1)[0].strip().lower() if value is not None else None


def _directives(exchange: Exchange, name: str) -> dict[str, str | None]:
    """A comma-list header (Cache-Control, Vary) as lowercased directive → value (unquoted) or None."""
    found: dict[str, str | None] = {}
    for field in exchange.header_values(name):
        for item in re.findall(r'(?:[^,"]|"[^"]*")+', field):
            key, eq, value = item.strip().partition("=")
            if key:
                found.setdefault(key.strip().lower(), value.strip().strip('"') if eq else None)
    return found


def _schema_problems(document: object, document_type: str) -> list[str]:
    findings = SchemaSet.load().validate(document, document_type)
    return [f"  [{f.requirement}] {f.location}: {f.message}" for f in findings]


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---- responses and refusals ----


def _ensure_response(exchange: Exchange) -> int:
    """The HTTP status; Blocked when the WFM was never reached, AssertionError when it did not answer."""
    if exchange.status is not None:
        return exchange.status
    reason = exchange.refused or "no response"
    if reason.startswith(CANNOT_CONNECT) or CLIENT_REJECTED_SERVER in reason:
        raise Blocked(f"the WFM could not be reached for {exchange.method} {exchange.path}: {reason}")
    raise _fail(exchange, f"expected an HTTP response, but there was none ({reason})")


def ensure_status(exchange: Exchange, *expected: int) -> None:
    """The WFM answered with one of the ``expected`` HTTP status codes."""
    status = _ensure_response(exchange)
    if status not in expected:
        wanted = " or ".join(str(code) for code in expected)
        raise _fail(exchange, f"expected HTTP {wanted}, got {status}")


def ensure_answered(exchange: Exchange) -> None:
    """SVID-001, TLS-008: the connection was established and the WFM answered over HTTP (any status).

    Here the suite's own client rejecting the WFM's certificate IS the finding: the client holds only
    the bundle's anchors, so a WFM that leaves out an intermediate (or presents a chain to another CA)
    cannot be validated."""
    reason = exchange.refused or ""
    if exchange.status is None and CLIENT_REJECTED_SERVER in reason:
        raise _fail(
            exchange, f"SVID-001/TLS-008: the WFM's chain does not validate against the bundle: {reason}"
        )
    _ensure_response(exchange)


def ensure_tls_version(exchange: Exchange, version: str) -> None:
    """TLS-003 (TLS-004 for the 1.2 fallback): the session used ``version`` ("TLSv1.3", "TLSv1.2")."""
    _ensure_response(exchange)
    if exchange.tls_version != version:
        found = exchange.tls_version or f"no TLS session ({exchange.refused})"
        raise _fail(exchange, f"TLS-003: expected the connection to use {version}, it used {found}")


def ensure_refused(exchange: Exchange) -> None:
    """API-SEC-002, WIP-005: the WFM refused the connection — the TLS handshake failed, or the connection
    was closed or reset without any HTTP response. A connection left hanging until the timeout is not a
    refusal, and neither is the suite's own client rejecting the WFM (then nothing was judged: Blocked)."""
    if exchange.status is not None:
        raise _fail(
            exchange,
            f"API-SEC-002/WIP-005: expected the WFM to refuse the connection, but it answered HTTP "
            f"{exchange.status}",
        )
    reason = exchange.refused or ""
    if reason.startswith(CANNOT_CONNECT) or CLIENT_REJECTED_SERVER in reason:
        raise Blocked(f"cannot judge the refusal: {reason}")
    if reason.startswith(TIMED_OUT):
        raise _fail(
            exchange,
            f"API-SEC-002/WIP-005: expected the WFM to refuse the connection, but it neither answered nor "
            f"closed it ({reason}); a hanging connection is not a refusal",
        )


def ensure_not_served(exchange: Exchange) -> None:
    """API-SEC-002 / API-SEC-008: the WFM did not serve this client — it refused the connection (handshake
    failure, close or reset) or answered 403 with a #not-authorized problem. Either refusal is allowed."""
    if exchange.status is None:
        ensure_refused(exchange)
        return
    if exchange.status != 403:
        raise _fail(
            exchange,
            f"API-SEC-002: expected the WFM not to serve this client — a refused connection or 403 "
            f"#not-authorized (API-SEC-008) — but it answered HTTP {exchange.status}",
        )
    try:
        ensure_problem(exchange, 403, "not-authorized")
    except AssertionError as exc:
        raise AssertionError(
            f"the WFM refused with HTTP 403 (allowed), but its problem is wrong: {exc}"
        ) from None


# ---- problem details ----


def ensure_problem(exchange: Exchange, status: int, problem: str) -> dict[str, Any]:
    """ERR-001: HTTP ``status`` with a valid problem whose type is the registered Margo type ``problem``
    (a fragment such as ``semantic-error``, or a full URI such as ``about:blank``); returns the problem."""
    ensure_status(exchange, status)
    document = ensure_problem_shape(exchange)
    expected = problem if ":" in problem else PROBLEM_TYPE_BASE + problem
    if document.get("type") != expected:
        raise _fail(
            exchange, f"ERR-001: expected problem type {expected}, got {_short(document.get('type'))}"
        )
    return document


def ensure_problem_lists_errors(exchange: Exchange) -> list[dict[str, Any]]:
    """CAP-102 (SHOULD; OA3 says errors[] SHOULD be present on 422): the problem lists what it found in
    errors[], each entry with a message; returns the entries."""
    document = ensure_problem_shape(exchange)
    errors = document.get("errors")
    if not isinstance(errors, list) or not errors:
        raise _fail(exchange, "CAP-102: a semantic-error problem should list what it found in errors[]")
    if not all(isinstance(e, dict) and isinstance(e.get("message"), str) and e["message"] for e in errors):
        raise _fail(exchange, "CAP-102: every errors[] entry should carry a message")
    return errors


def ensure_problem_shape(exchange: Exchange) -> dict[str, Any]:
    """API-ERR-001: an error response is application/problem+json with a valid ProblemDetail whose status
    is the HTTP status, a Margo-namespace type only if registered (ERR-004), and retry members and
    Retry-After as the API-RETRY table says; returns the problem."""
    status = _ensure_response(exchange)
    if not 400 <= status <= 599:
        raise _fail(exchange, f"API-ERR-001: expected an error status (4xx/5xx), got {status}")
    ensure_problem_media_type(exchange)
    document = _problem_document(exchange)
    problems = _schema_problems(document, "ProblemDetail")
    if problems:
        raise _fail(exchange, "API-ERR-002: the problem body breaks ProblemDetail:\n" + "\n".join(problems))
    if document["status"] != status:
        raise _fail(exchange, f"API-ERR-001: problem status {document['status']} differs from HTTP {status}")
    ensure_registered_margo_type(exchange, document)
    ensure_retry_semantics(exchange, document)
    return document


def ensure_problem_media_type(exchange: Exchange) -> None:
    """API-ERR-001: Content-Type is application/problem+json (parameters such as charset tolerated)."""
    found = exchange.header("Content-Type")
    if _media_type(found) != PROBLEM_JSON:
        raise _fail(exchange, f"API-ERR-001: error Content-Type must be {PROBLEM_JSON}, got {found!r}")


def _problem_document(exchange: Exchange) -> dict[str, Any]:
    try:
        document = bounded.load_json(exchange.decoded_body(), where="body", limits=bounded.HTTP_BODY_LIMITS)
    except bounded.UntrustedInput as exc:
        raise _fail(exchange, f"API-ERR-001: the problem body is not JSON ({exc.problem})") from None
    if not isinstance(document, dict):
        raise _fail(exchange, "API-ERR-001: the problem body is not a JSON object")
    return document


def ensure_registered_margo_type(exchange: Exchange, problem: Mapping[str, Any]) -> None:
    """ERR-004: a type in the reserved Margo namespace is one of the registered problem types."""
    kind = problem.get("type")
    namespace = PROBLEM_TYPE_BASE.rstrip("#")
    if isinstance(kind, str) and kind.startswith(namespace):
        fragment = kind[len(PROBLEM_TYPE_BASE) :] if kind.startswith(PROBLEM_TYPE_BASE) else ""
        if fragment not in REGISTERED_PROBLEMS:
            raise _fail(exchange, f"ERR-004: {kind!r} is in the Margo namespace but is not a registered type")


def ensure_retry_semantics(exchange: Exchange, problem: Mapping[str, Any]) -> None:
    """API-RETRY-001..004: 429/503 carry a valid Retry-After, retryable true, backoffStrategy exponential;
    500 may (SHOULD) and says true/exponential when it says anything; every other error sends no
    Retry-After and, if it carries the members, retryable false and backoffStrategy none."""
    status = exchange.status
    rule = {429: "API-RETRY-001", 503: "API-RETRY-002", 500: "API-RETRY-003"}.get(
        status or 0, "API-RETRY-004"
    )
    retry_after = exchange.header_values("Retry-After")
    if rule == "API-RETRY-004":
        if retry_after:
            raise _fail(exchange, f"API-RETRY-004: a {status} response must not carry Retry-After")
        _ensure_member(exchange, problem, rule, "retryable", False, required=False)
        _ensure_member(exchange, problem, rule, "backoffStrategy", "none", required=False)
        return
    for value in retry_after:
        if not _valid_retry_after(value):
            raise _fail(exchange, f"{rule}: Retry-After {value!r} is neither delta-seconds nor an HTTP-date")
    required = status != 500  # API-RETRY-003 is a recommendation: 500 is judged only on what it says
    if required and not retry_after:
        raise _fail(exchange, f"{rule}: a {status} response must carry a Retry-After header")
    _ensure_member(exchange, problem, rule, "retryable", True, required=required)
    _ensure_member(exchange, problem, rule, "backoffStrategy", "exponential", required=required)


def _ensure_member(
    exchange: Exchange, problem: Mapping[str, Any], rule: str, name: str, value: object, *, required: bool
) -> None:
    if name not in problem:
        if required:
            raise _fail(exchange, f"{rule}: a {exchange.status} problem must say {name}: {_short(value)}")
        return
    found = problem[name]
    if type(found) is not type(value) or found != value:
        raise _fail(
            exchange,
            f"{rule}: a {exchange.status} problem must say {name}: {_short(value)}, got {_short(found)}",
        )


def _valid_retry_after(value: str) -> bool:
    text = value.strip()
    if _DELTA_SECONDS.match(text):
        return True
    try:
        return email.utils.parsedate_to_datetime(text) is not None
    except (TypeError, ValueError):
        return False


# ---- the State Manifest ----


def ensure_manifest(exchange: Exchange) -> dict[str, Any]:
    """DS-005, DS-103: a 200 with Content-Type application/vnd.margo.manifest.v1+json, an ETag, and a body
    that validates as a State Manifest; returns the manifest. The media type is compared exactly
    (case-insensitively); parameters such as charset are tolerated, as they do not change the type."""
    ensure_status(exchange, 200)
    found = exchange.header("Content-Type")
    if _media_type(found) != MANIFEST_TYPE:
        raise _fail(exchange, f"DS-005: manifest Content-Type must be {MANIFEST_TYPE}, got {found!r}")
    if not exchange.header("ETag"):
        raise _fail(exchange, "DS-005: a 200 manifest response must carry an ETag")
    document = exchange.json()
    if not isinstance(document, dict):
        raise _fail(exchange, "DS-103: the manifest body is not a JSON object")
    problems = _schema_problems(document, "StateManifest")
    if problems:
        raise _fail(
            exchange, "DS-103: the manifest breaks the State Manifest schema:\n" + "\n".join(problems)
        )
    return document


def ensure_strong_digest_etag(exchange: Exchange) -> str:
    """DS-007: the manifest ETag is one strong, quoted "sha256:<64 lowercase hex>" equal to the digest of
    the exact (decoded) body; returns it as sent, ready for If-None-Match."""
    _ensure_response(exchange)
    values = exchange.header_values("ETag")
    if len(values) != 1:
        raise _fail(exchange, f"DS-007: expected exactly one ETag header, got {len(values)}")
    etag = values[0].strip()
    if etag.startswith("W/"):
        raise _fail(exchange, f"DS-007: the manifest ETag must be strong, got the weak validator {etag!r}")
    if not _STRONG_DIGEST_ETAG.match(etag):
        raise _fail(
            exchange, f'DS-007: the manifest ETag must be "sha256:<64 lowercase hex>" (quoted), got {etag!r}'
        )
    actual = _sha256(exchange.decoded_body())
    if etag[1:-1] != actual:
        raise _fail(exchange, f"DS-007: the ETag {etag} is not the digest of the body sent ({actual})")
    return etag


def ensure_private_not_immutable(exchange: Exchange) -> None:
    """DS-009, DS-010: the manifest is Cache-Control private, never immutable, and has no long max-age —
    read strictly: max-age, when present, is 0 (any positive lifetime lets a cache serve a stale manifest)."""
    _ensure_response(exchange)
    directives = _directives(exchange, "Cache-Control")
    if "private" not in directives:
        raise _fail(exchange, "DS-010: the manifest response must be Cache-Control: private")
    if "immutable" in directives:
        raise _fail(exchange, "DS-009: the manifest response must never be Cache-Control immutable")
    max_age = directives.get("max-age", "0")
    if "max-age" in directives and max_age != "0":
        raise _fail(
            exchange, f"DS-009: the manifest must not have a max-age (or only max-age=0), got {max_age!r}"
        )


def ensure_not_modified(exchange: Exchange) -> None:
    """DS-006: a matching If-None-Match gets 304 with no body."""
    ensure_status(exchange, 304)
    if exchange.body:
        raise _fail(exchange, f"DS-006: a 304 must have no body, got {len(exchange.body)} bytes")
    if exchange.anomaly:
        raise _fail(exchange, f"DS-006: a 304 must have no body ({exchange.anomaly})")


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
        raise _document_fail(
            f"DS-101: {where} must be [<path prefix>]{expected}, got {_short(url)}", manifest
        )


def ensure_bundle_null_iff_empty(manifest: Mapping[str, Any], *, expect_empty: bool | None = None) -> None:
    """DS-012: bundle is always present; it is null exactly when deployments is empty. With
    ``expect_empty`` the scenario also says whether the client should have deployments at all."""
    empty = not manifest.get("deployments")
    if expect_empty is not None and empty != expect_empty:
        wanted = "no deployments" if expect_empty else "deployments"
        raise _document_fail(f"expected the manifest to list {wanted}", manifest)
    if "bundle" not in manifest:
        raise _document_fail("DS-012: the manifest must always carry bundle (null when empty)", manifest)
    if empty and manifest["bundle"] is not None:
        raise _document_fail(
            "DS-012: with no deployments, bundle must be null (never an empty archive)", manifest
        )
    if not empty and manifest["bundle"] is None:
        raise _document_fail("DS-012: with deployments, bundle must not be null", manifest)


def ensure_manifest_version(manifest: Mapping[str, Any], version: int) -> None:
    """DS-011: manifestVersion is ``version`` (a client's first manifest is 1)."""
    found = manifest.get("manifestVersion")
    if isinstance(found, bool) or found != version:
        raise _document_fail(f"DS-011: manifestVersion must be {version}, got {_short(found)}", manifest)


def ensure_manifest_version_advanced(before: int, after: int, *, changed: bool) -> None:
    """DS-011: a changed desired state gets a strictly larger manifestVersion; an unchanged one keeps it."""
    if changed and not after > before:
        raise AssertionError(
            f"DS-011: the desired state changed, so manifestVersion must grow past {before}; it is {after}"
        )
    if not changed and after != before:
        raise AssertionError(
            f"DS-011: nothing changed, so manifestVersion must stay {before} (a new manifest needs a new "
            f"version, an unchanged one must not get one); it is {after}"
        )


# ---- digest-addressed resources ----


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
    if _media_type(found) != content_type.lower():
        rule = "DS-014" if content_type == BUNDLE_TYPE else "OA3 (200 response media type)"
        raise _fail(exchange, f"{rule}: Content-Type must be {content_type}, got {found!r}")


def ensure_body_digest(exchange: Exchange, digest: str) -> bytes:
    """DS-021, DS-018: the exact body, after removing Content-Encoding, hashes to ``digest``."""
    if exchange.anomaly:
        raise _fail(exchange, f"DS-021: the body did not arrive whole ({exchange.anomaly})")
    data = exchange.decoded_body()
    actual = _sha256(data)
    if actual != digest:
        raise _fail(exchange, f"DS-021: the decoded body hashes to {actual}, not to the digest {digest}")
    return data


def ensure_etag_is_digest(exchange: Exchange, digest: str) -> None:
    """DS-015: ETag is the quoted digest from the URL (strong; no W/)."""
    found = exchange.header_values("ETag")
    if found != [f'"{digest}"']:
        raise _fail(exchange, f'DS-015: ETag must be "{digest}" (quoted, strong), got {found!r}')


def ensure_immutable_caching(exchange: Exchange) -> None:
    """DS-015, DS-010: Cache-Control has private, max-age=31536000 and immutable."""
    directives = _directives(exchange, "Cache-Control")
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
        raise _fail(exchange, f"DS-015: Cache-Control must include {', '.join(missing)}; got {found!r}")


def ensure_vary_when_encoded(exchange: Exchange) -> None:
    """DS-016 (SHOULD): a response sent with a Content-Encoding carries Vary: Accept-Encoding."""
    if not exchange.content_codings():
        return
    vary = _directives(exchange, "Vary")
    if "accept-encoding" not in vary and "*" not in vary:
        raise _fail(exchange, "DS-016: a Content-Encoded response should send Vary: Accept-Encoding")


def ensure_bundle_holds_exactly(bundle: bytes, yamls: Mapping[str, bytes]) -> None:
    """DS-013: the gzip'd tar holds at its root exactly the given YAMLs (keyed by deploymentId) as regular
    files — matched by content digest, names free (INC-104) — and nothing else (a './' entry aside)."""
    expected = Counter(_sha256(data) for data in yamls.values())
    owners = {_sha256(data): name for name, data in yamls.items()}
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
                found[_sha256(handle.read())] += 1
    except InputError as exc:
        raise AssertionError(f"DS-013: the bundle is not a readable gzip'd tar: {exc}") from None
    missing = [owners[d] for d in (expected - found).elements()]
    extra = len(list((found - expected).elements()))
    if missing or extra or others:
        raise AssertionError(
            "DS-013: the bundle must hold exactly the referenced YAMLs at its root;"
            + (f" missing (by content): {', '.join(missing)};" if missing else "")
            + (f" {extra} file(s) whose content no deployment references;" if extra else "")
            + (f" other members: {', '.join(others)}" if others else "")
        )


# ---- the ApplicationDeployment YAML ----
#
# Each check takes the deployment as served (bytes) or already parsed (a mapping) and the Application
# Description it was made from; the profile is ``profile_id`` when given, else the description's profile
# with the deployment's type and component names (else the first of that type).

Deployment = bytes | Mapping[str, Any]


def ensure_application_deployment(
    document_bytes: bytes,
    *,
    deployment_id: str,
    description: Mapping[str, Any],
    device_id: str,
    parameters: Mapping[str, Any],
    profile_id: str | None = None,
) -> dict[str, Any]:
    """Everything a served ApplicationDeployment owes the description it was made from, for this device
    and these user ``parameters`` (each sub-check below); returns the parsed document."""
    document = ensure_valid_application_deployment(document_bytes, deployment_id=deployment_id)
    ensure_application_id(document, description=description)
    ensure_target_device(document, device_id)
    ensure_components_copied(document, description=description, profile_id=profile_id)
    ensure_constraints_copied(document, description=description, profile_id=profile_id)
    ensure_device_extensions_copied(document, description=description, profile_id=profile_id)
    ensure_root_extensions_not_forwarded(document, description=description)
    ensure_parameters(document, description=description, parameters=parameters)
    return document


def ensure_valid_application_deployment(document: Deployment, *, deployment_id: str) -> dict[str, Any]:
    """ADEP-103, DS-102: one YAML mapping, valid as an rc.3 ApplicationDeployment, whose top-level id is
    the manifest's deploymentId; returns it parsed."""
    parsed = _parsed(document)
    problems = _schema_problems(parsed, "ApplicationDeployment")
    if problems:
        raise _document_fail("ADEP-103: the deployment breaks the schema:\n" + "\n".join(problems), parsed)
    ensure_deployment_id(parsed, deployment_id)
    return parsed


def _parsed(document: Deployment) -> dict[str, Any]:
    if not isinstance(document, bytes):
        return dict(document)
    try:
        parsed = bounded.load_yaml(document, where="deployment", limits=bounded.HTTP_BODY_LIMITS)
    except bounded.UntrustedInput as exc:
        raise _document_fail(f"ADEP-103: the deployment is not YAML: {exc.problem}", document) from None
    if not isinstance(parsed, dict):
        raise _document_fail("ADEP-103: the deployment YAML is not a mapping", document)
    return parsed


def _spec(document: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = document.get("spec")
    if not isinstance(spec, Mapping) or not isinstance(spec.get("deploymentProfile"), Mapping):
        raise _document_fail("ADEP-103: the deployment has no spec.deploymentProfile", document)
    return spec


def ensure_deployment_ids(
    document: Deployment, *, deployment_id: str, description: Mapping[str, Any]
) -> None:
    """DS-102 and ADEP-101: id is the deploymentId, spec.applicationId the description's id."""
    parsed = _parsed(document)
    ensure_deployment_id(parsed, deployment_id)
    ensure_application_id(parsed, description=description)


def ensure_deployment_id(document: Deployment, deployment_id: str) -> None:
    """DS-102: the YAML's top-level id is the manifest's deploymentId."""
    found = _parsed(document).get("id")
    if found != deployment_id:
        raise _document_fail(
            f"DS-102: id must be the deploymentId {deployment_id}, got {_short(found)}", document
        )


def ensure_application_id(document: Deployment, *, description: Mapping[str, Any]) -> None:
    """ADEP-101: spec.applicationId is the description's id."""
    found = _spec(_parsed(document)).get("applicationId")
    if found != description.get("id"):
        raise _document_fail(
            f"ADEP-101: spec.applicationId must be {_short(description.get('id'))}, got {_short(found)}",
            document,
        )


def ensure_target_device(document: Deployment, device_id: str) -> None:
    """metadata.deviceId names the device the deployment was assigned to (no registry ID: the scenario's
    own expectation; its shape is ADEP-103)."""
    metadata = _parsed(document).get("metadata")
    found = metadata.get("deviceId") if isinstance(metadata, Mapping) else None
    if found != device_id:
        raise _document_fail(f"metadata.deviceId must be {device_id!r}, got {_short(found)}", document)


def _profile_of(
    document: Mapping[str, Any], description: Mapping[str, Any], profile_id: str | None
) -> Mapping[str, Any]:
    profiles = [p for p in description.get("deploymentProfiles") or [] if isinstance(p, Mapping)]
    if profile_id is not None:
        chosen = [p for p in profiles if p.get("id") == profile_id]
        if not chosen:
            raise ValueError(f"the description has no deployment profile {profile_id!r}")
        return chosen[0]
    served = _spec(document)["deploymentProfile"]
    names = [c.get("name") for c in served.get("components") or [] if isinstance(c, Mapping)]
    same_type = [p for p in profiles if p.get("type") == served.get("type")]
    if not same_type:
        raise _document_fail(
            f"ADEP-102: the description has no {served.get('type')!r} deployment profile to deploy", document
        )
    matching = [p for p in same_type if [c.get("name") for c in p.get("components") or []] == names]
    return (matching or same_type)[0]


def ensure_components_copied(
    document: Deployment, *, description: Mapping[str, Any], profile_id: str | None = None
) -> None:
    """ADEP-102: the profile's type, and its components in order with unchanged names and properties (an
    absent ``wait`` and ``wait: true`` are the same, true being the default)."""
    parsed = _parsed(document)
    profile = _profile_of(parsed, description, profile_id)
    served = _spec(parsed)["deploymentProfile"]
    if served.get("type") != profile.get("type"):
        raise _document_fail(
            f"ADEP-102: profile type must be {profile.get('type')!r}, got {served.get('type')!r}", parsed
        )
    want = [(c.get("name"), _with_default_wait(c.get("properties"))) for c in profile.get("components") or []]
    got = [(c.get("name"), _with_default_wait(c.get("properties"))) for c in served.get("components") or []]
    if not _same(want, got):
        raise _document_fail(
            f"ADEP-102: components must be those of profile {profile.get('id')!r}, in order and unchanged:\n"
            f"  expected {_short(want)}\n  served   {_short(got)}",
            parsed,
        )


def _with_default_wait(properties: object) -> object:
    if isinstance(properties, Mapping) and "wait" not in properties:
        return {**properties, "wait": True}
    return properties


def ensure_constraints_copied(
    document: Deployment, *, description: Mapping[str, Any], profile_id: str | None = None
) -> None:
    """ADEP-001: the profile's deviceConstraints appear unmodified; none are invented."""
    parsed = _parsed(document)
    wanted = _profile_of(parsed, description, profile_id).get("deviceConstraints")
    served = _spec(parsed)["deploymentProfile"].get("deviceConstraints")
    if not _same(wanted, served):
        raise _document_fail(
            f"ADEP-001: deviceConstraints must be copied unmodified:\n  expected {_short(wanted)}\n"
            f"  served   {_short(served)}",
            parsed,
        )


def ensure_device_extensions_copied(
    document: Deployment, *, description: Mapping[str, Any], profile_id: str | None = None
) -> None:
    """ADEP-005, APPD-008: x-…-extensions of the profile and of each component appear verbatim in the
    matching objects (components matched by name)."""
    parsed = _parsed(document)
    profile = _profile_of(parsed, description, profile_id)
    served = _spec(parsed)["deploymentProfile"]
    pairs: list[tuple[str, Mapping[str, Any], Mapping[str, Any]]] = [("deploymentProfile", profile, served)]
    by_name = {c.get("name"): c for c in served.get("components") or [] if isinstance(c, Mapping)}
    pairs += [
        (f"component {c.get('name')!r}", c, by_name.get(c.get("name"), {}))
        for c in profile.get("components") or []
    ]
    for where, source, target in pairs:
        for name, value in source.items():
            if EXTENSION_NAME.match(name) and not (name in target and _same(value, target[name])):
                raise _document_fail(
                    f"ADEP-005: {where} must carry {name} verbatim: expected {_short(value)}, "
                    f"got {_short(target.get(name))}",
                    parsed,
                )


def ensure_root_extensions_not_forwarded(document: Deployment, *, description: Mapping[str, Any]) -> None:
    """APPD-007: extensions at the description root are for the WFM and never reach the device (looked
    for at the deployment's top level and in spec)."""
    parsed = _parsed(document)
    root = [name for name in description if EXTENSION_NAME.match(name)]
    for where, holder in (("the top level", parsed), ("spec", _spec(parsed))):
        leaked = [name for name in root if name in holder]
        if leaked:
            raise _document_fail(
                f"APPD-007: root extension(s) {', '.join(leaked)} passed on to the device in {where}", parsed
            )


def ensure_parameters(
    document: Deployment, *, description: Mapping[str, Any], parameters: Mapping[str, Any]
) -> None:
    """APPD-001: every description parameter with a value reaches spec.parameters with the user's value
    (else its default) and its targets unchanged; no parameter the description lacks appears."""
    parsed = _parsed(document)
    declared: Mapping[str, Any] = description.get("parameters") or {}
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ValueError(f"parameters {unknown} are not declared by the description")
    extra = sorted(set(_spec(parsed).get("parameters") or {}) - set(declared))
    if extra:
        raise _document_fail(
            f"APPD-001: spec.parameters has parameters the description lacks: {extra}", parsed
        )
    for name, declaration in declared.items():
        if name in parameters:
            ensure_parameter(parsed, name=name, value=parameters[name], description=description)
        elif "value" in declaration:
            ensure_parameter(parsed, name=name, value=declaration["value"], description=description)
        # else: nobody gave a value, so the parameter may be left out


def ensure_parameter(document: Deployment, *, name: str, value: Any, description: Mapping[str, Any]) -> None:
    """APPD-001: spec.parameters[name] is ``value`` with the description's targets for that parameter."""
    parsed = _parsed(document)
    declaration = (description.get("parameters") or {}).get(name)
    if not isinstance(declaration, Mapping):
        raise ValueError(f"the description declares no parameter {name!r}")
    expected = {"value": value, "targets": declaration.get("targets")}
    found = (_spec(parsed).get("parameters") or {}).get(name)
    if not _same(expected, found):
        raise _document_fail(
            f"APPD-001: parameter {name!r} must be {_short(expected)}, got {_short(found)}", parsed
        )


def _same(a: object, b: object) -> bool:
    """Deep equality that keeps booleans apart from numbers (YAML true is not 1) and strings from numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if (
        isinstance(a, Sequence)
        and not isinstance(a, str)
        and isinstance(b, Sequence)
        and not isinstance(b, str)
    ):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


# ---- identity ----


def ensure_wfm_identity(exchange: Exchange, expected: SpiffeId) -> None:
    """WIP-004/WIP-007: the WFM presented exactly ``expected`` (spiffe://<td>/margo/wfm/<wfm-id>)."""
    _ensure_response(exchange)
    found = exchange.peer_spiffe_id
    if found is None:
        raise _fail(exchange, f"WIP-007: expected the WFM to present {expected}, but no SPIFFE ID was seen")
    if str(found) != str(expected):
        raise _fail(exchange, f"WIP-007: the WFM must present exactly {expected}, it presented {found}")
