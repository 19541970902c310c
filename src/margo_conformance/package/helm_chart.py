"""Checks of a packaged Helm chart component (``.tgz``): Chart apiVersion v2 and the Margo Helm limits."""

from __future__ import annotations

import re
from typing import Any

from .._internal import bounded, tar_safety
from ..findings import Findings
from ..registry import make_finding
from .archive_findings import open_for_checks

# APPD-004: no `lookup`, no hooks, no Helm-managed CRDs.
_LOOKUP = re.compile(r"\blookup\b")
_HOOK = re.compile(r"helm\.sh/hook\s*:")


def check_helm_chart(data: bytes, *, component: str, location: str) -> Findings:
    findings = Findings()
    tar = open_for_checks(
        data,
        location=location,
        findings=findings,
        format_requirement="APPD-110",
        safety_requirement="APPD-110",
        what="packaged Helm chart (.tgz)",
    )
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
        for name, member in files.items():
            if name.startswith(f"{top}/crds/"):
                findings.add(
                    make_finding("APPD-004", f"{location}!{name}", "chart ships Helm-managed CRDs (crds/)")
                )
            elif name.startswith(f"{top}/templates/"):
                text = _read_text(tar, member)
                if uses_lookup(text):
                    findings.add(
                        make_finding(
                            "APPD-004", f"{location}!{name}", "template uses the Helm 'lookup' function"
                        )
                    )
                if _HOOK.search(text):
                    findings.add(
                        make_finding("APPD-004", f"{location}!{name}", "template declares a Helm hook")
                    )
    return findings


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
    handle = tar.extractfile(member)
    return handle.read().decode("utf-8", errors="replace") if handle else ""
