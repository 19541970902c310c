"""The instrument contract: what the checker needs of the WFM that plays a device's counterpart.

DESIGN §3: the instrument WFM *is* the reference WFM, but the checker must receive it, not import it.
This package is the seam both sides import: the admin client (``AdminClient``, ``AdminError``, the admin
interface's problem types) and ``StartWfm``, the one call that starts an instrument. The driver layer
(``suite/``) wires the reference WFM in as that call; ``device/`` only ever sees this contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .admin import PACKAGE_UNAVAILABLE, SIGNATURE_REFUSED, AdminClient, AdminError


@dataclass(frozen=True)
class StartedWfm:
    """A running instrument WFM: its southbound URL, its admin URL, and how to stop it."""

    url: str
    admin_url: str
    stop: Callable[[], None]


class StartWfm(Protocol):
    """Start an instrument WFM with the PKI in ``pki_dir`` (its trust domain and server SVID), keeping its
    state in ``state_dir`` and listening on ``host`` (any free port)."""

    def __call__(self, pki_dir: Path, state_dir: Path, *, host: str) -> StartedWfm: ...


__all__ = [
    "PACKAGE_UNAVAILABLE",
    "SIGNATURE_REFUSED",
    "AdminClient",
    "AdminError",
    "StartWfm",
    "StartedWfm",
]
