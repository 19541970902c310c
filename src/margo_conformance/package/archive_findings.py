"""Opening a component archive for checking: unreadable archives and unsafe members become findings."""

from __future__ import annotations

import tarfile

from .._internal import tar_safety
from ..errors import InputError
from ..findings import Findings
from ..registry import make_finding


def open_for_checks(
    data: bytes,
    *,
    location: str,
    findings: Findings,
    format_requirement: str,
    safety_requirement: str,
    what: str,
) -> tarfile.TarFile | None:
    """The archive, with a finding per unsafe member; None (and a finding) when it is no gzip'd tar."""
    try:
        tar = tar_safety.open_tar_gz(data)
    except InputError as exc:
        findings.add(make_finding(format_requirement, location, f"not a {what}: {exc}"))
        return None
    for problem in tar_safety.member_problems(tar):
        findings.add(make_finding(safety_requirement, f"{location}!{problem.member}", problem.detail))
    return tar
