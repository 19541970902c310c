"""Transport and refusal: did the WFM answer, over which TLS, and did it refuse a client it must not serve
(API-SEC-002, WIP-005, WIP-008, API-SEC-007; errata INC-125: a refused connection or a 403)."""

from __future__ import annotations

from ...errors import Blocked
from ...wfm.client import CANNOT_CONNECT, CLIENT_REJECTED_SERVER, TIMED_OUT, Exchange
from ._common import fail


def ensure_response(exchange: Exchange) -> int:
    """The HTTP status; Blocked when the WFM was never reached, AssertionError when it did not answer."""
    if exchange.status is not None:
        return exchange.status
    reason = exchange.refused or "no response"
    if reason.startswith(CANNOT_CONNECT) or CLIENT_REJECTED_SERVER in reason:
        raise Blocked(f"the WFM could not be reached for {exchange.method} {exchange.path}: {reason}")
    raise fail(exchange, "", f"expected an HTTP response, but there was none ({reason})")


def ensure_status(exchange: Exchange, *expected: int) -> None:
    """The WFM answered with one of the ``expected`` HTTP status codes."""
    status = ensure_response(exchange)
    if status not in expected:
        wanted = " or ".join(str(code) for code in expected)
        raise fail(exchange, "", f"expected HTTP {wanted}, got {status}")


def ensure_answered(exchange: Exchange) -> None:
    """SVID-001, TLS-008: the connection was established and the WFM answered over HTTP (any status).

    Here the suite's own client rejecting the WFM's certificate IS the finding: the client holds only
    the bundle's anchors, so a WFM that leaves out an intermediate (or presents a chain to another CA)
    cannot be validated."""
    reason = exchange.refused or ""
    if exchange.status is None and CLIENT_REJECTED_SERVER in reason:
        raise fail(
            exchange, "SVID-001/TLS-008", f"the WFM's chain does not validate against the bundle: {reason}"
        )
    ensure_response(exchange)


def ensure_tls_version(exchange: Exchange, version: str) -> None:
    """TLS-003 (TLS-004 for the 1.2 fallback): the session used ``version`` ("TLSv1.3", "TLSv1.2")."""
    ensure_response(exchange)
    if exchange.tls_version != version:
        found = exchange.tls_version or f"no TLS session ({exchange.refused})"
        raise fail(exchange, "TLS-003", f"expected the connection to use {version}, it used {found}")


def ensure_control(control: Exchange | None) -> None:
    """A refusal counts only after the same scenario saw the WFM serve an accepted, unflawed client over
    the same connection set-up (the positive control); without it a dead or garbled WFM would "refuse"
    every flawed client. No control is a precondition the suite could not establish: Blocked."""
    if control is not None and control.status is not None and 200 <= control.status < 300:
        return
    if control is None:
        raise Blocked("the positive control failed: no accepted client was served in this scenario")
    seen = f"HTTP {control.status}" if control.status is not None else control.refused or "no response"
    raise Blocked(f"the positive control failed: the accepted client was not served ({seen})")


def ensure_refused(exchange: Exchange, *, control: Exchange | None) -> None:
    """API-SEC-002, WIP-005: the WFM refused the connection — the TLS handshake failed, or the connection
    was closed or reset without any HTTP response. A connection left hanging until the timeout is not a
    refusal, and neither is the suite's own client rejecting the WFM (then nothing was judged: Blocked).
    ``control`` is the scenario's positive control (see :func:`ensure_control`)."""
    ensure_control(control)
    if exchange.status is not None:
        raise fail(
            exchange,
            "API-SEC-002/WIP-005",
            f"expected the WFM to refuse the connection, but it answered HTTP {exchange.status}",
        )
    reason = exchange.refused or ""
    if reason.startswith(CANNOT_CONNECT) or CLIENT_REJECTED_SERVER in reason:
        raise Blocked(f"cannot judge the refusal: {reason}")
    if reason.startswith(TIMED_OUT):
        raise fail(
            exchange,
            "API-SEC-002/WIP-005",
            f"expected the WFM to refuse the connection, but it neither answered nor "
            f"closed it ({reason}); a hanging connection is not a refusal",
        )


def ensure_not_served(exchange: Exchange, *, control: Exchange | None) -> None:
    """API-SEC-002, WIP-005, WIP-008, API-SEC-007: the WFM did not serve this client — it refused the
    connection (handshake failure, close or reset) or answered 403. Either refusal meets the MUST; the
    403's problem form is API-SEC-008, a SHOULD judged in its own scenario (errata INC-125)."""
    ensure_control(control)
    if exchange.status is None:
        ensure_refused(exchange, control=control)
        return
    if exchange.status != 403:
        raise fail(
            exchange,
            "API-SEC-002",
            f"expected the WFM not to serve this client — a refused connection or 403 "
            f"(errata INC-125) — but it answered HTTP {exchange.status}",
        )
