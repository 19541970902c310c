"""The admin interface's client now lives in the instrument contract (``margo_conformance.instrument``),
which the checker and the reference both import; this name stays for scripts written against it."""

from __future__ import annotations

from ...instrument.admin import PACKAGE_UNAVAILABLE, SIGNATURE_REFUSED, AdminClient, AdminError

__all__ = ["PACKAGE_UNAVAILABLE", "SIGNATURE_REFUSED", "AdminClient", "AdminError"]
