"""The WFM's own identity (WIP-004, WIP-007)."""

from __future__ import annotations

from ...pki import SpiffeId
from ...wfm.client import Exchange
from ._common import fail
from .transport import ensure_response


def ensure_wfm_identity(exchange: Exchange, expected: SpiffeId) -> None:
    """WIP-004/WIP-007: the WFM presented exactly ``expected`` (spiffe://<td>/margo/wfm/<wfm-id>)."""
    ensure_response(exchange)
    found = exchange.peer_spiffe_id
    if found is None:
        raise fail(exchange, "WIP-007", f"expected the WFM to present {expected}, but no SPIFFE ID was seen")
    if str(found) != str(expected):
        raise fail(exchange, "WIP-007", f"the WFM must present exactly {expected}, it presented {found}")
