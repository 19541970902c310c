"""Checks of a packaged Helm chart component (``.tgz``): Chart apiVersion v2 and the Margo Helm limits."""

from __future__ import annotations

import re
import tarfile
from typing import Any

from .._internal import bounded, tar_safety
from ..findings import Findings
from ..registry import make_finding
from .archive_findings import open_for_checks

# APPD-004: no `lookup`, no hooks, no Helm-managed CRDs.
_LOOKUP = re.compile(r"\blookup\b")
_HOOK = re.compile(r"helm\.sh/hook\s*:")
MAX_SUBCHART_DEPTH = 4  # packaged subcharts inside packaged subcharts: bounded


def check_helm_chart(data: bytes, *, component: str, location: str) -> Findings:
    findings = Findings()
    tar = _open_chart(data, location, findings, "packaged Helm chart (.tgz)")
    if tar is None:
        return findings
    with tar:
        tops = sorted(tar_safety.top_level_names(tar))
        if len(tops) != 1:
            findings.add(
                make_finding(
                    "APPD-110", location, f"a chart archive has one top-level directory, found {tops}"
                )
            )
            return findings
        top = tops[0]
        files = {m.name.lstrip("./"): m for m in tar.getmembers() if m.isfile()}
        chart = _chart_yaml(tar, files.get(f"{top}/Chart.yaml"), f"{location}!{top}/Chart.yaml", findings)
        if chart is not None:
            _check_chart_metadata(chart, component, f"{location}!{top}/Chart.yaml", findings)
        _check_templates(tar, files, top, location, findings)
    return findings


def _check_templates(
    tar: tarfile.TarFile, files: dict[str, Any], top: str, location: str, findings: Findings, depth: int = 0
) -> None:
    """APPD-004 on the chart and every subchart under charts/ (folders, and packaged .tgz charts):
    Helm renders and installs them with the parent, so their hooks, lookups and CRDs count alike."""
    for name, member in files.items():
        role = _role(name.split("/")[1:])
        if role == "crds":
            findings.add(
                make_finding("APPD-004", f"{location}!{name}", "chart ships Helm-managed CRDs (crds/)")
            )
        elif role == "templates":
            text = _read_text(tar, member)
            if uses_lookup(text):
                findings.add(
                    make_finding("APPD-004", f"{location}!{name}", "template uses the Helm 'lookup' function")
                )
            if _HOOK.search(text):
                findings.add(make_finding("APPD-004", f"{location}!{name}", "template declares a Helm hook"))
        elif role == "subchart" and depth < MAX_SUBCHART_DEPTH:
            _check_packaged_subchart(_read_bytes(tar, member), f"{location}!{name}", findings, depth + 1)


def _role(parts: list[str]) -> str:
    """What a file is, by its path below the chart folder: descend charts/<name>/ into subcharts."""
    while len(parts) > 2 and parts[0] == "charts":
        parts = parts[2:]
    if len(parts) == 2 and parts[0] == "charts" and parts[1].endswith(".tgz"):
        return "subchart"
    return parts[0] if len(parts) > 1 and parts[0] in ("crds", "templates") else ""


def _check_packaged_subchart(data: bytes, location: str, findings: Findings, depth: int) -> None:
    tar = _open_chart(data, location, findings, "packaged Helm subchart (.tgz)")
    if tar is None:
        return
    with tar:
        files = {m.name.lstrip("./"): m for m in tar.getmembers() if m.isfile()}
        for top in sorted(tar_safety.top_level_names(tar)):
            _check_templates(
                tar,
                {n: m for n, m in files.items() if n.startswith(f"{top}/")},
                top,
                location,
                findings,
                depth,
            )


def _open_chart(data: bytes, location: str, findings: Findings, what: str) -> tarfile.TarFile | None:
    """A chart archive (unsafe members are APPD-110 findings), or None and a finding."""
    return open_for_checks(
        data,
        location=location,
        findings=findings,
        format_requirement="APPD-110",
        safety_requirement="APPD-110",
        what=what,
    )


def _read_bytes(tar: Any, member: Any) -> bytes:
    handle = tar.extractfile(member)
    return handle.read() if handle else b""


def _chart_yaml(tar: Any, member: Any, location: str, findings: Findings) -> dict[str, Any] | None:
    if member is None:
        findings.add(make_finding("APPD-110", location, "Chart.yaml is missing"))
        return None
    try:
        chart = bounded.load_yaml(_read_text(tar, member), where="Chart.yaml")
    except bounded.UntrustedInput as exc:
        findings.add(make_finding("APPD-110", location, f"Chart.yaml is not valid YAML: {exc.problem}"))
        return None
    if not isinstance(chart, dict):
        findings.add(make_finding("APPD-110", location, "Chart.yaml is not a mapping"))
        return None
    return chart


def uses_lookup(text: str) -> bool:
    """Whether a template action (``{{ … }}``, up to its first ``}``) calls ``lookup``.

    Linear: each action is scanned once. (``\\{\\{-?[^}]*\\blookup`` rescans the rest of the text from
    every ``{{``, which 20,000 ``{{`` in a 40 kB template turn into minutes.)
    """
    return any(_LOOKUP.search(action.partition("}")[0]) for action in text.split("{{")[1:])


def _check_chart_metadata(chart: dict[str, Any], component: str, location: str, findings: Findings) -> None:
    if chart.get("apiVersion") != "v2":
        findings.add(
            make_finding(
                "APPD-110", location, f"Chart apiVersion must be v2, found {chart.get('apiVersion')!r}"
            )
        )
    for field in ("name", "version"):
        if not isinstance(chart.get(field), str) or not chart.get(field):
            findings.add(make_finding("APPD-110", location, f"Chart.yaml lacks '{field}'"))
    if isinstance(chart.get("name"), str) and chart["name"] != component:
        findings.add(
            make_finding(
                "APPD-110",
                location,
                f"chart name {chart['name']!r} differs from component name {component!r}",
            )
        )


def _read_text(tar: Any, member: Any) -> str:
    return _read_bytes(tar, member).decode("utf-8", errors="replace")
