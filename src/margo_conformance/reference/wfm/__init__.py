"""The reference Workload Fleet Manager: the whole rc.3 southbound API over mutual TLS.

Module map: ``server`` (listeners, TLS, lifecycle), ``southbound`` (the Management Interface),
``mis`` (trust endpoints), ``admin`` (provisioning/control), ``core`` (domain logic), ``identity``
(client recognition and accepted-client policy), ``appdeploy`` (description -> ApplicationDeployment),
``documents`` (digests, manifest JSON, bundle archive), ``store`` (SQLite), ``problems``
(problem+json), ``faults`` (the fault catalogue).
"""

from .faults import FAULTS, Fault, FaultSet
from .server import BackgroundWfm, Endpoints, WfmConfig, WfmServer, parse_address, run_wfm

__all__ = [
    "FAULTS",
    "BackgroundWfm",
    "Endpoints",
    "Fault",
    "FaultSet",
    "WfmConfig",
    "WfmServer",
    "parse_address",
    "run_wfm",
]
