"""The WFM persona's instrument: a virtual WFM Client (``client``), the request bodies it sends
(``documents``); the checks the WFM scenarios assert live in ``margo_conformance.checks.wfm``.

Nothing here imports the test driver; steps wire these into scenarios.
"""

from .client import BUNDLE_TYPE, MANIFEST_TYPE, PROBLEM_TYPE_BASE, YAML_TYPE, Exchange, VirtualClient

__all__ = ["BUNDLE_TYPE", "MANIFEST_TYPE", "PROBLEM_TYPE_BASE", "YAML_TYPE", "Exchange", "VirtualClient"]
