"""Problem details (ERR-001, API-ERR-001/002, API-RETRY-001..004): the form of every error the WFM sends,
including the SHOULD form of a policy denial (API-SEC-008, errata INC-001/INC-125)."""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from typing import Any

from ..._internal import bounded
from ...wfm.client import PROBLEM_JSON, PROBLEM_TYPE_BASE, Exchange
from ._common import (
    DELTA_SECONDS,
    NAMED_IN_PROSE,
    REGISTERED_PROBLEMS,
    fail,
    media_type,
    schema_problems,
    short,
)
from .transport import ensure_control, ensure_refused, ensure_response, ensure_status


def ensure_problem(exchange: Exchange, status: int, problem: str) -> dict[str, Any]:
    """ERR-001: HTTP ``status`` with a valid problem whose type is the registered Margo type ``problem``
    (a fragment such as ``semantic-error``, or a full URI such as ``about:blank``); returns the problem."""
    ensure_status(exchange, status)
    document = ensure_problem_shape(exchange)
    expected = problem if ":" in problem else PROBLEM_TYPE_BASE + problem
    if document.get("type") != expected:
        raise fail(
            exchange, "ERR-001", f"expected problem type {expected}, got {short(document.get('type'))}"
        )
    return document


def ensure_problem_among(exchange: Exchange, status: int, *problems: str) -> dict[str, Any]:
    """ERR-001 where an erratum allows more than one answer (INC-103: 400 #invalid-request or 422
    #semantic-error): HTTP ``status`` with one of the ``problems`` (fragments); returns the problem."""
    document = ensure_problem_shape(exchange)
    expected = [PROBLEM_TYPE_BASE + problem for problem in problems]
    if exchange.status != status or document.get("type") not in expected:
        raise fail(
            exchange,
            "ERR-001",
            f"expected HTTP {status} with a problem of type {' or '.join(expected)}, got HTTP "
            f"{exchange.status} with {short(document.get('type'))}",
        )
    return document


def ensure_refusal_among(exchange: Exchange, *answers: tuple[int, str]) -> dict[str, Any]:
    """An error the errata allow in more than one form: one of the (status, problem) ``answers``."""
    status = ensure_response(exchange)
    wanted = [problem for code, problem in answers if code == status]
    if not wanted:
        forms = " or ".join(f"{code} #{problem}" for code, problem in answers)
        raise fail(exchange, "", f"expected {forms}, got HTTP {status}")
    return ensure_problem_among(exchange, status, *wanted)


def ensure_registered_problem(exchange: Exchange) -> dict[str, Any]:
    """ERR-001: an error of a registered category carries a registered Margo type (not about:blank, not
    a vendor type), with that type's status; returns the problem."""
    document = ensure_problem_shape(exchange)
    kind = document.get("type")
    fragment = (
        kind[len(PROBLEM_TYPE_BASE) :] if isinstance(kind, str) and kind.startswith(PROBLEM_TYPE_BASE) else ""
    )
    if REGISTERED_PROBLEMS.get(fragment) != exchange.status:
        raise fail(
            exchange,
            "ERR-001",
            f"expected a registered Margo problem type for HTTP {exchange.status}, got {short(kind)}",
        )
    return document


def ensure_problem_lists_errors(exchange: Exchange) -> list[dict[str, Any]]:
    """CAP-102 (SHOULD; OA3 says errors[] SHOULD be present on 422): the problem lists what it found in
    errors[], each entry with a message; returns the entries."""
    document = ensure_problem_shape(exchange)
    errors = document.get("errors")
    if not isinstance(errors, list) or not errors:
        raise fail(exchange, "CAP-102", "a semantic-error problem should list what it found in errors[]")
    if not all(isinstance(e, dict) and isinstance(e.get("message"), str) and e["message"] for e in errors):
        raise fail(exchange, "CAP-102", "every errors[] entry should carry a message")
    return errors


def ensure_problem_shape(exchange: Exchange) -> dict[str, Any]:
    """API-ERR-001: an error response is application/problem+json with a valid ProblemDetail whose status
    is the HTTP status, a Margo-namespace type only if registered (ERR-004), and retry members and
    Retry-After as the API-RETRY table says; returns the problem."""
    status = ensure_response(exchange)
    if not 400 <= status <= 599:
        raise fail(exchange, "API-ERR-001", f"expected an error status (4xx/5xx), got {status}")
    ensure_problem_media_type(exchange)
    document = _problem_document(exchange)
    problems = schema_problems(document, "ProblemDetail")
    if problems:
        raise fail(exchange, "API-ERR-002", "the problem body breaks ProblemDetail:\n" + "\n".join(problems))
    if document["status"] != status:
        raise fail(exchange, "API-ERR-001", f"problem status {document['status']} differs from HTTP {status}")
    ensure_registered_margo_type(exchange, document)
    ensure_retry_semantics(exchange, document)
    return document


def ensure_problem_media_type(exchange: Exchange) -> None:
    """API-ERR-001: Content-Type is application/problem+json (parameters such as charset tolerated)."""
    found = exchange.header("Content-Type")
    if media_type(found) != PROBLEM_JSON:
        raise fail(exchange, "API-ERR-001", f"error Content-Type must be {PROBLEM_JSON}, got {found!r}")


def _problem_document(exchange: Exchange) -> dict[str, Any]:
    try:
        document = bounded.load_json(exchange.decoded_body(), where="body", limits=bounded.HTTP_BODY_LIMITS)
    except bounded.UntrustedInput as exc:
        raise fail(exchange, "API-ERR-001", f"the problem body is not JSON ({exc.problem})") from None
    if not isinstance(document, dict):
        raise fail(exchange, "API-ERR-001", "the problem body is not a JSON object")
    return document


def ensure_registered_margo_type(exchange: Exchange, problem: Mapping[str, Any]) -> None:
    """ERR-004: a type in the reserved Margo namespace is one of the registered problem types."""
    kind = problem.get("type")
    namespace = PROBLEM_TYPE_BASE.rstrip("#")
    if isinstance(kind, str) and kind.startswith(namespace):
        fragment = kind[len(PROBLEM_TYPE_BASE) :] if kind.startswith(PROBLEM_TYPE_BASE) else ""
        if fragment not in REGISTERED_PROBLEMS and fragment not in NAMED_IN_PROSE:
            raise fail(
                exchange, "ERR-004", f"{kind!r} is in the Margo namespace but is not a registered type"
            )


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
            raise fail(exchange, "API-RETRY-004", f"a {status} response must not carry Retry-After")
        _ensure_member(exchange, problem, rule, "retryable", False, required=False)
        _ensure_member(exchange, problem, rule, "backoffStrategy", "none", required=False)
        return
    for value in retry_after:
        if not _valid_retry_after(value):
            raise fail(exchange, rule, f"Retry-After {value!r} is neither delta-seconds nor an HTTP-date")
    required = status != 500  # API-RETRY-003 is a recommendation: 500 is judged only on what it says
    if required and not retry_after:
        raise fail(exchange, rule, f"a {status} response must carry a Retry-After header")
    _ensure_member(exchange, problem, rule, "retryable", True, required=required)
    _ensure_member(exchange, problem, rule, "backoffStrategy", "exponential", required=required)


def _ensure_member(
    exchange: Exchange, problem: Mapping[str, Any], rule: str, name: str, value: object, *, required: bool
) -> None:
    if name not in problem:
        if required:
            raise fail(exchange, rule, f"a {exchange.status} problem must say {name}: {short(value)}")
        return
    found = problem[name]
    if type(found) is not type(value) or found != value:
        raise fail(
            exchange,
            rule,
            f"a {exchange.status} problem must say {name}: {short(value)}, got {short(found)}",
        )


def _valid_retry_after(value: str) -> bool:
    text = value.strip()
    if DELTA_SECONDS.match(text):
        return True
    try:
        return email.utils.parsedate_to_datetime(text) is not None
    except (TypeError, ValueError):
        return False


def ensure_http_refusal_form(exchange: Exchange, *problems: str, control: Exchange | None) -> None:
    """API-SEC-008 (SHOULD): a policy denial given over HTTP is 403 with one of the ``problems``; a
    connection refused before any HTTP is the other allowed refusal (WIP-005) and has no form to judge
    (errata INC-125). A WFM that served the client is judged by the MUST scenario, not here. ``control``
    is the scenario's positive control: a 403 or a refusal counts only after it."""
    ensure_control(control)
    if exchange.status is None:
        ensure_refused(exchange, control=control)
        return
    ensure_status(exchange, 403)
    ensure_problem_among(exchange, 403, *problems)


def ensure_report_refused(exchange: Exchange) -> None:
    """API-SEC-003/004 (errata INC-130): a status report for a deployment that is not the caller's is
    refused with a 4xx problem; which 4xx (403, 404, 422) is the WFM's choice."""
    status = ensure_response(exchange)
    if not 400 <= status <= 499:
        raise fail(
            exchange,
            "API-SEC-003/004",
            f"a status report for another client's deployment was answered {status}",
        )
    ensure_problem_shape(exchange)
