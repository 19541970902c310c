"""Checks of the identity service's trust endpoints (Trust Bundle API; protocol digest §3.7).

Each decides one thing about what the identity service sent and raises :class:`Violation` naming the
requirement. Exchanges come from the MIS client (``mis.client``); nothing here talks to the network.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from .._internal import bounded
from ..errors import Blocked
from ..schemas import SchemaSet
from ..wfm.client import CANNOT_CONNECT, Exchange
from . import Violation

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
X509_SVID = "x509-svid"


def media_type(exchange: Exchange) -> str:
    """The Content-Type without parameters, lower case ("" when absent)."""
    return (exchange.header("Content-Type") or "").split(";")[0].strip().lower()


def _answered(exchange: Exchange, requirement: str) -> int:
    """The HTTP status; Blocked when the identity service was never reached, a Violation when the TLS
    handshake or the HTTP answer failed."""
    if exchange.status is not None:
        return exchange.status
    reason = exchange.refused or "no response"
    if reason.startswith(CANNOT_CONNECT):
        raise Blocked(f"the identity service could not be reached at {exchange.path}: {reason}")
    raise Violation(requirement, f"GET {exchange.path} got no HTTP answer: {reason}", exchange.transcript())


def ensure_json_document(exchange: Exchange, requirement: str) -> dict[str, Any]:
    """200, application/json, a JSON object: the document."""
    status = _answered(exchange, requirement)
    if status != 200:
        raise Violation(
            requirement, f"GET {exchange.path}: expected 200, got {status}", exchange.transcript()
        )
    if media_type(exchange) != JSON:
        raise Violation(
            requirement,
            f"GET {exchange.path}: expected Content-Type {JSON}, got {media_type(exchange) or 'none'}",
            exchange.transcript(),
        )
    try:
        document = bounded.load_json(exchange.decoded_body(), where="body", limits=bounded.HTTP_BODY_LIMITS)
    except bounded.UntrustedInput as exc:
        raise Violation(requirement, f"the body is not JSON: {exc.problem}", exchange.transcript()) from None
    if not isinstance(document, dict):
        raise Violation(requirement, "the body is not a JSON object", exchange.transcript())
    return document


def ensure_schema_valid(document: Mapping[str, Any], document_type: str, requirement: str) -> None:
    findings = SchemaSet.load().validate(document, document_type)
    if findings:
        lines = [f"  {f.location}: {f.message}" for f in findings]
        raise Violation(requirement, f"the {document_type} is not valid:\n" + "\n".join(lines))


def ensure_trust_domain(document: Mapping[str, Any], trust_domain: str) -> None:
    """TB-102: the document describes the configured trust domain."""
    if document.get("trustDomain") != trust_domain:
        raise Violation(
            "TB-102", f"trustDomain is {document.get('trustDomain')!r}, the trust domain is {trust_domain!r}"
        )


def ensure_absolute_https(uri: object) -> str:
    """TB-102: trustBundleUri is an absolute https URL (a client must reject any other scheme, TB-003)."""
    parts = urlsplit(uri) if isinstance(uri, str) else None
    if parts is None or parts.scheme != "https" or not parts.hostname:
        raise Violation("TB-102", f"trustBundleUri {uri!r} is not an absolute https URL")
    return str(uri)


def bundle_anchors(document: Mapping[str, Any]) -> tuple[x509.Certificate, ...]:
    """TB-104: the x509-svid keys, each one CA certificate in x5c; at least one. Other keys are ignored."""
    anchors = []
    keys = document.get("keys")
    for index, key in enumerate(keys if isinstance(keys, list) else []):
        if not isinstance(key, Mapping) or key.get("use") != X509_SVID:
            continue
        chain = key.get("x5c")
        if not isinstance(chain, list) or len(chain) != 1 or not isinstance(chain[0], str):
            raise Violation(
                "TB-104", f"keys[{index}]: an x509-svid key carries exactly one certificate in x5c"
            )
        try:
            certificate = x509.load_der_x509_certificate(base64.b64decode(chain[0], validate=True))
        except (ValueError, binascii.Error) as exc:
            raise Violation("TB-104", f"keys[{index}].x5c[0] is no DER certificate: {exc}") from None
        ensure_ca(certificate, f"keys[{index}]")
        anchors.append(certificate)
    if not anchors:
        raise Violation("TB-104", "the bundle carries no x509-svid key: it has no X.509 trust anchor")
    return tuple(anchors)


def ensure_ca(certificate: x509.Certificate, where: str) -> None:
    """TB-104: an anchor is a CA certificate (basicConstraints cA=true)."""
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise Violation(
            "TB-104", f"{where}: the x5c certificate ({certificate.subject.rfc4514_string()}) is not a CA"
        )


def ensure_sequence_not_backwards(first: Mapping[str, Any], second: Mapping[str, Any]) -> None:
    """TB-104 (SPIFFE bundle format §4.1, INC-197): spiffe_sequence never decreases between two fetches."""
    before, after = first.get("spiffe_sequence"), second.get("spiffe_sequence")
    if isinstance(before, int) and isinstance(after, int) and after < before:
        raise Violation("TB-104", f"spiffe_sequence went backwards: {before}, then {after}")
    if isinstance(before, int) != isinstance(after, int):
        raise Violation(
            "TB-104", f"spiffe_sequence came and went between two fetches: {before}, then {after}"
        )


def ensure_etag(exchange: Exchange) -> str:
    """TB-103 (SHOULD): the answer carries an ETag."""
    etag = exchange.header("ETag")
    if not etag:
        raise Violation("TB-103", f"GET {exchange.path}: the 200 carries no ETag", exchange.transcript())
    return etag


def ensure_not_modified(exchange: Exchange, etag: str) -> None:
    """TB-103 (SHOULD): a matching If-None-Match gets 304 without a body. A 200 under another ETag is
    no finding: the representation changed in between, and 200 is then the right answer."""
    status = _answered(exchange, "TB-103")
    if status == 200 and exchange.header("ETag") not in (None, etag):
        return
    if status != 304 or exchange.body:
        raise Violation(
            "TB-103",
            f"If-None-Match: {etag} expected 304 without a body, got {status} ({len(exchange.body)} bytes)",
            exchange.transcript(),
        )


def ensure_problem_404(exchange: Exchange) -> None:
    """TB-106: a 404 carries an application/problem+json ProblemDetail."""
    status = _answered(exchange, "TB-106")
    if status != 404:
        raise Violation("TB-106", f"GET {exchange.path}: expected 404, got {status}", exchange.transcript())
    if media_type(exchange) != PROBLEM_JSON:
        raise Violation(
            "TB-106",
            f"the 404 is {media_type(exchange) or 'untyped'}, not {PROBLEM_JSON}",
            exchange.transcript(),
        )
    try:
        document = bounded.load_json(exchange.decoded_body(), where="body", limits=bounded.HTTP_BODY_LIMITS)
    except bounded.UntrustedInput as exc:
        raise Violation("TB-106", f"the 404 body is not JSON: {exc.problem}", exchange.transcript()) from None
    ensure_schema_valid(document, "ProblemDetail", "TB-106")


def ensure_tls_version(exchange: Exchange, version: str, requirement: str) -> None:
    _answered(exchange, requirement)
    if exchange.tls_version != version:
        raise Violation(requirement, f"the connection used {exchange.tls_version}, expected {version}")


def ensure_refused(exchange: Exchange, requirement: str, *, control: Exchange | None) -> None:
    """The identity service refused the connection (no HTTP answer). The refusal counts only after the
    same scenario saw the same request served over the default connection (``control``, a 200); a server
    that resets or garbles every connection refuses everything (issue 15): Blocked."""
    if control is None or control.status != 200:
        seen = "no request" if control is None else f"HTTP {control.status}"
        raise Blocked(f"the positive control failed: the discovery document was not served ({seen})")
    if exchange.status is not None:
        raise Violation(
            requirement,
            f"the connection was served ({exchange.tls_version}, HTTP {exchange.status})",
            exchange.transcript(),
        )


def ensure_validates_wfm(failure: str | None, wfm_url: str) -> None:
    """TB-104: the bundle's anchors are the trust domain's: they validate its WFM's SVID."""
    if failure is not None:
        raise Violation("TB-104", f"the bundle's anchors do not validate the WFM at {wfm_url}: {failure}")


def ensure_member_of(spiffe_id: object, trust_domain: str, wfm_url: str) -> None:
    """TB-104: the SVID the anchors validate names the discovery document's trust domain."""
    domain = getattr(spiffe_id, "trust_domain", None)
    if domain != trust_domain:
        raise Violation("TB-104", f"the WFM at {wfm_url} presents {spiffe_id}, not in {trust_domain!r}")


def ensure_answered(exchange: Exchange, requirement: str) -> None:
    """The identity service answered over HTTP, whatever the status (the TLS handshake succeeded)."""
    _answered(exchange, requirement)
