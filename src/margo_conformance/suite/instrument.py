"""The driver's wiring of the reference WFM in as the instrument (DESIGN §3): the one place outside
``reference/`` and ``cli/`` that starts it, so the checker receives an instrument and never imports one."""

from __future__ import annotations

from pathlib import Path

from ..instrument import StartedWfm
from ..reference.wfm import BackgroundWfm, WfmConfig


def start_reference_wfm(pki_dir: Path, state_dir: Path, *, host: str) -> StartedWfm:
    """The reference WFM in a background thread, with its admin interface on (``StartWfm``)."""
    server = BackgroundWfm(WfmConfig(pki_dir=pki_dir, state_dir=state_dir, listen=(host, 0)))
    endpoints = server.start()
    if endpoints.admin_url is None:  # admin_listen is on by default
        server.stop()
        raise RuntimeError("the reference WFM started without its admin interface")
    return StartedWfm(endpoints.url, endpoints.admin_url, server.stop)
