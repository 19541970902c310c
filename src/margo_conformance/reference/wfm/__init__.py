"""The reference Workload Fleet Manager: the whole rc.3 southbound API over mutual TLS.

Module map: ``server`` (listeners, TLS, lifecycle), ``southbound`` (the Management Interface),
``mis`` (trust endpoints), ``admin`` (provisioning/control; its client is in the instrument contract,
``margo_conformance.instrument``, and ``admin_client`` re-exports it), ``core``
(domain logic, transcript), ``identity`` (client recognition and accepted-client policy), ``appdeploy``
(description -> ApplicationDeployment), ``documents`` (digests, manifest JSON, bundle archive), ``store``
(SQLite), ``problems`` (problem+json), ``faults`` (the fault catalogue: mutants of the WFM),
``instrument`` (served faults: wrong answers on purpose, for testing devices).

Names are imported on first use, so that a script needing only ``AdminClient`` does not load the
server (aiohttp, the PKI, the schemas).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .admin_client import AdminClient, AdminError
    from .faults import FAULTS, Fault, FaultSet
    from .instrument import SERVED, ActiveServed, Served
    from .server import BackgroundWfm, Endpoints, WfmConfig, WfmServer, parse_address, run_wfm

_HOME = {
    "AdminClient": "admin_client",
    "AdminError": "admin_client",
    "FAULTS": "faults",
    "Fault": "faults",
    "FaultSet": "faults",
    "SERVED": "instrument",
    "ActiveServed": "instrument",
    "Served": "instrument",
    "BackgroundWfm": "server",
    "Endpoints": "server",
    "WfmConfig": "server",
    "WfmServer": "server",
    "parse_address": "server",
    "run_wfm": "server",
}

__all__ = [
    "FAULTS",
    "SERVED",
    "ActiveServed",
    "AdminClient",
    "AdminError",
    "BackgroundWfm",
    "Endpoints",
    "Fault",
    "FaultSet",
    "Served",
    "WfmConfig",
    "WfmServer",
    "parse_address",
    "run_wfm",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value
