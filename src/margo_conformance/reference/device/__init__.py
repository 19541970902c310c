"""The reference device agent: a real WFM client (protocol digest §9), without a container runtime yet.

Module map: ``agent`` (the poll / verify / reconcile / report cycle and retry rules), ``transport``
(mTLS to the WFM with the WIP-007 identity check), ``eligibility`` (capacity and eligibility rules),
``capabilities`` (the capabilities document from host facts), ``state`` (durable state), ``runtime``
(the Runtime protocol and an in-memory runtime), ``faults`` (the device fault catalogue), ``service``
(the foreground entry point for the CLI).
"""

from .agent import DeviceAgent, DeviceConfig, SyncResult
from .capabilities import host_capabilities
from .faults import FAULTS, Fault, FaultSet
from .runtime import ComponentOutcome, InMemoryRuntime, Runtime, StatusError
from .service import DeviceArgs, build_config, run_device
from .state import DeviceState, HeldDeployment, StateStore

__all__ = [
    "FAULTS",
    "ComponentOutcome",
    "DeviceAgent",
    "DeviceArgs",
    "DeviceConfig",
    "DeviceState",
    "Fault",
    "FaultSet",
    "HeldDeployment",
    "InMemoryRuntime",
    "Runtime",
    "StateStore",
    "StatusError",
    "SyncResult",
    "build_config",
    "host_capabilities",
    "run_device",
]
