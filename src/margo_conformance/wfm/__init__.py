"""The WFM persona's instrument: a virtual WFM Client (``client``), the request bodies it sends
(``documents``) and the protocol checks the WFM scenarios assert on its exchanges (``checks``).

Nothing here imports the test driver; steps wire these into scenarios.
"""

from .client import BUNDLE_TYPE, MANIFEST_TYPE, PROBLEM_TYPE_BASE, YAML_TYPE, Exchange, VirtualClient

__all__ = ["BUNDLE_TYPE", "MANIFEST_TYPE", "PROBLEM_TYPE_BASE", "YAML_TYPE", "Exchange", "VirtualClient"]
