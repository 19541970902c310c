"""report.html: the run's results dict (``RunResults.as_dict``, the data of results.yaml) as one page a
person reads, a certifier keeps and a browser opens offline.

One self-contained file: CSS inline, no script, no external asset; long parts fold into ``<details>``.
Summary first (conformant? eligible for certification, and why not? per profile), then the failures with
their requirement text, errata and evidence, then what was not decided and why, the requirement table
(exercised and uncovered), every scenario, and the run's subject, suite and pin.

Every text that reaches the page is escaped: scenario messages and evidence come from the subject, whose
bytes are untrusted (a ``<script>`` in a body must show as text).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ..verdicts import Verdict

UNDECIDED = (Verdict.BLOCKED.value, Verdict.INCONCLUSIVE.value, Verdict.SKIPPED.value)
# No script, no fetch: even text that escaped escaping could run nothing and load nothing.
CSP = "default-src 'none'; style-src 'unsafe-inline'"
REASONS_SHOWN = 10  # not-eligible reasons listed before the rest fold away

CSS = """
:root { --pass: #1a7f37; --fail: #c62828; --warn: #9a6700; --muted: #59636e; --line: #d1d9e0;
  --bg-pass: #e8f5ec; --bg-fail: #fdecea; --bg-warn: #fff4d6; --bg-muted: #f2f4f6; }
* { box-sizing: border-box; }
body { font: 15px/1.5 "DejaVu Sans", system-ui, sans-serif; color: #1f2328; margin: 0; background: #fafbfc; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 36px 0 12px;
  border-bottom: 1px solid var(--line); padding-bottom: 6px; } h3 { font-size: 16px; margin: 0 0 8px; }
.meta, .note { color: var(--muted); font-size: 13px; }
nav { margin: 12px 0 20px; font-size: 14px; } nav a { margin-right: 14px; color: #0b57d0; }
.verdict { border-radius: 8px; padding: 18px 22px; margin: 12px 0; border: 2px solid; }
.verdict.yes { border-color: var(--pass); background: var(--bg-pass); }
.verdict.no { border-color: var(--fail); background: var(--bg-fail); }
.verdict .big { font-size: 28px; font-weight: 700; }
.verdict.partly { border-color: var(--warn); background: var(--bg-warn); }
.verdict.yes .big { color: var(--pass); } .verdict.no .big { color: var(--fail); }
.verdict.partly .big { color: var(--warn); }
.eligible { font-size: 17px; font-weight: 600; margin-top: 8px; }
.badge { display: inline-block; border-radius: 10px; padding: 1px 9px; font-size: 12px; font-weight: 600;
  white-space: nowrap; }
.b-pass { background: var(--bg-pass); color: var(--pass); }
.b-fail { background: var(--bg-fail); color: var(--fail); }
.b-blocked, .b-inconclusive, .b-skipped, .b-warning { background: var(--bg-warn); color: var(--warn); }
.b-not-applicable { background: var(--bg-muted); color: var(--muted); }
.counts span { margin-right: 8px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin: 8px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg-muted); font-weight: 600; }
td.id, td.nowrap { white-space: nowrap; }
.finding { border: 1px solid var(--line); border-left: 5px solid var(--fail); border-radius: 6px;
  padding: 12px 16px; margin: 12px 0; }
.finding.warning, .finding.undecided { border-left-color: var(--warn); }
.finding dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0;
  font-size: 13px; }
.finding dt { color: var(--muted); } .finding dd { margin: 0; }
.req { margin: 6px 0; } .src, .erratum { color: var(--muted); font-size: 12.5px; overflow-wrap: anywhere; }
.erratum { margin-left: 14px; }
pre { background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px;
  font: 12.5px/1.45 "DejaVu Sans Mono", ui-monospace, monospace; white-space: pre-wrap;
  overflow-wrap: anywhere; margin: 6px 0; }
details { margin: 6px 0; } summary { cursor: pointer; color: #0b57d0; }
code { font: 13px "DejaVu Sans Mono", ui-monospace, monospace; overflow-wrap: anywhere; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _badge(verdict: str, label: str | None = None) -> str:
    return f'<span class="badge b-{_e(verdict)}">{_e(label or verdict)}</span>'


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """Cells are HTML already (each caller escapes what it puts in)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _folded(summary: str, content: str, *, open_: bool = False) -> str:
    return f"<details{' open' if open_ else ''}><summary>{_e(summary)}</summary>{content}</details>"


def _pre(text: str) -> str:
    return f"<pre>{_e(text)}</pre>"


# -- sections -----------------------------------------------------------------------------------------


def _header(data: Mapping[str, Any]) -> str:
    personas = sorted({str(s["persona"]) for s in data["scenarios"]}) or ["none"]
    return (
        "<header><h1>Margo conformance report</h1>"
        f'<p class="meta">run <code>{_e(data["run_id"])}</code> · pin <code>{_e(data["pin"])}</code> · '
        f"persona {_e(', '.join(personas))} · {_e(data['started'])} – {_e(data['finished'])}</p></header>"
        '<nav><a href="#summary">Summary</a><a href="#failures">Failures</a>'
        '<a href="#undecided">Not decided</a><a href="#requirements">Requirements</a>'
        '<a href="#scenarios">Scenarios</a><a href="#run">Subject and suite</a></nav>'
    )


def _summary(data: Mapping[str, Any]) -> str:
    summary = data["summary"]
    conformant = bool(summary["conformant"])
    eligible = bool(summary["eligible_for_certification"])
    reasons = list(summary["not_eligible_because"])
    why = _list(reasons[:REASONS_SHOWN]) if reasons else ""
    if len(reasons) > REASONS_SHOWN:
        why += _folded(f"{len(reasons) - REASONS_SHOWN} more reasons", _list(reasons[REASONS_SHOWN:]))
    suite_errors = int(summary.get("suite_errors", 0))
    broke = f'<p class="note">The suite itself broke in {suite_errors} scenario(s) (see Not decided).</p>'
    counts = (
        " ".join(_badge(v, f"{n} {v}") for v, n in reversed(list(summary["counts"].items())) if n)
        or "no scenarios ran"
    )
    profiles = _table(
        ("profile", "declared by the subject", "verdict"),
        (
            (
                f"<td>{_e(p)}</td>",
                f"<td>{'yes' if v['declared'] else 'no'}</td>",
                f"<td>{_badge(v['verdict'])}</td>",
            )
            for p, v in data["profiles"].items()
        ),
    )
    return (
        f'<section id="summary"><div class="verdict {_tone(conformant, eligible)}">'
        f'<div class="big">{"Conformant" if conformant else "Not conformant"}</div>'
        f"<div>{_e(_conformance_reason(data))}</div>"
        f'<div class="eligible">{"Eligible" if eligible else "Not eligible"} for certification</div>'
        f"{why}{broke if suite_errors else ''}"
        f'<p class="counts">{counts}</p></div>'
        f"<h2>Per profile</h2>{profiles}</section>"
    )


def _tone(conformant: bool, eligible: bool) -> str:
    """Green only when the run both conforms and can support a certification."""
    return "no" if not conformant else ("yes" if eligible else "partly")


def _conformance_reason(data: Mapping[str, Any]) -> str:
    """Why the run is (not) conformant, in the terms of results.py's rule."""
    must = [s for s in data["scenarios"] if s["level"] == "must"]
    failed = sum(1 for s in must if s["verdict"] == Verdict.FAIL.value)
    undecided = sum(1 for s in must if s["verdict"] in UNDECIDED)
    if data["summary"]["conformant"]:
        return "Every MUST scenario passed or did not apply; SHOULD failures are warnings."
    parts = [f"{failed} MUST scenario(s) failed"] if failed else []
    parts += [f"{undecided} MUST scenario(s) were not decided"] if undecided else []
    if not any(s["verdict"] == Verdict.PASS.value for s in data["scenarios"]):
        parts.append("no scenario passed")
    return "; ".join(parts) + "."


def _requirement_lines(data: Mapping[str, Any], rids: Iterable[str]) -> str:
    """Each requirement a scenario checks: its text and source, and the errata whose reading decided it."""
    out = []
    for rid in rids:
        entry = data["requirements"].get(rid, {})
        line = f'<div class="req"><code>{_e(rid)}</code> {_e(entry.get("summary", ""))}'
        line += _source(entry)
        for eid in entry.get("errata", []):
            erratum = data.get("errata", {}).get(eid, {})
            title = f"erratum {eid}: {erratum.get('title', '')}"
            reading = f"<p>{_e(erratum.get('reading', ''))}</p>"
            line += f'<div class="erratum">{_folded(title, reading)}</div>'
        out.append(line + "</div>")
    return "".join(out)


def _finding(data: Mapping[str, Any], scenario: Mapping[str, Any], kind: str) -> str:
    verdict = str(scenario["verdict"])
    label = "warning (SHOULD)" if kind == "warning" else verdict
    facts = [
        ("feature", scenario["feature"]),
        ("persona · level · profile", f"{scenario['persona']} · {scenario['level']} · {scenario['profile']}"),
        ("duration", f"{scenario['duration_s']:.1f} s"),
    ]
    if scenario.get("suite_error"):
        facts.append(("cause", "the suite broke (not the subject's failure)"))
    evidence = scenario.get("evidence")
    whole = (
        _folded(f"Whole text and evidence ({len(str(evidence).splitlines())} lines)", _pre(evidence))
        if evidence
        else ""
    )
    return (
        f'<article class="finding {kind}"><h3>{_badge("warning" if kind == "warning" else verdict, label)} '
        f"{_e(scenario['scenario'])}</h3>"
        "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts) + "</dl>"
        f"{_requirement_lines(data, scenario['requirements'])}"
        f"{_pre(scenario.get('message', '')) if scenario.get('message') else ''}{whole}</article>"
    )


def _failures(data: Mapping[str, Any]) -> str:
    failed = [s for s in data["scenarios"] if s["verdict"] == Verdict.FAIL.value]
    must = [s for s in failed if s["level"] == "must"]
    should = [s for s in failed if s["level"] != "must"]
    if not failed:
        return '<section id="failures"><h2>Failures</h2><p>No scenario failed.</p></section>'
    return (
        f'<section id="failures"><h2>Failures ({len(must)} MUST, {len(should)} SHOULD)</h2>'
        + "".join(_finding(data, s, "failure") for s in must)
        + "".join(_finding(data, s, "warning") for s in should)
        + "</section>"
    )


def _undecided(data: Mapping[str, Any]) -> str:
    items = sorted(
        (s for s in data["scenarios"] if s["verdict"] in UNDECIDED),
        key=lambda s: -Verdict(s["verdict"]).rank,
    )
    body = "".join(_finding(data, s, "undecided") for s in items) or "<p>Every scenario was decided.</p>"
    return (
        f'<section id="undecided"><h2>Blocked, inconclusive and skipped ({len(items)})</h2>{body}</section>'
    )


def _requirements(data: Mapping[str, Any]) -> str:
    rows = sorted(data["requirements"].items(), key=lambda item: (-Verdict(item[1]["verdict"]).rank, item[0]))
    exercised = _table(
        ("requirement", "verdict", "level", "text and source", "errata", "scenarios"),
        (
            (
                f'<td class="id"><code>{_e(rid)}</code></td>',
                f"<td>{_badge(entry['verdict'])}</td>",
                f"<td>{_e(entry.get('level', ''))}</td>",
                f"<td>{_e(entry.get('summary', ''))}{_source(entry)}</td>",
                f"<td>{_e(', '.join(entry.get('errata', [])))}</td>",
                f"<td>{_folded(str(len(entry['scenarios'])), _list(entry['scenarios']))}</td>",
            )
            for rid, entry in rows
        ),
    )
    uncovered = data.get("uncovered", [])
    gaps = _table(
        ("requirement", "persona", "profile", "text and source", "why no scenario"),
        (
            (
                f'<td class="id"><code>{_e(u["id"])}</code></td>',
                f"<td>{_e(', '.join(u.get('personas', [])))}</td>",
                f"<td>{_e(u.get('profile', ''))}</td>",
                f"<td>{_e(u.get('summary', ''))}{_source(u)}</td>",
                f"<td>{_e(u.get('reason', ''))}</td>",
            )
            for u in uncovered
        ),
    )
    return (
        f'<section id="requirements"><h2>Requirements exercised ({len(rows)})</h2>{exercised}'
        f"<h2>Testable MUST requirements no scenario covers ({len(uncovered)})</h2>"
        + (
            _folded(f"{len(uncovered)} uncovered requirements with the reason", gaps)
            if uncovered
            else "<p>None.</p>"
        )
        + "</section>"
    )


def _source(entry: Mapping[str, Any]) -> str:
    return f'<div class="src">{_e(entry["source"])}</div>' if entry.get("source") else ""


def _list(items: Iterable[object]) -> str:
    return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def _scenarios(data: Mapping[str, Any]) -> str:
    scenarios = sorted(
        data["scenarios"], key=lambda s: (-Verdict(s["verdict"]).rank, s["feature"], s["scenario"])
    )
    table = _table(
        ("verdict", "scenario", "feature", "level", "profile", "requirements", "s"),
        (
            (
                f"<td>{_badge(s['verdict'])}</td>",
                f"<td>{_e(s['scenario'])}</td>",
                f"<td><code>{_e(s['feature'])}</code></td>",
                f"<td>{_e(s['level'])}</td>",
                f"<td>{_e(s['profile'])}</td>",
                f"<td>{_e(', '.join(s['requirements']))}</td>",
                f'<td class="nowrap">{s["duration_s"]:.1f}</td>',
            )
            for s in scenarios
        ),
    )
    heading = f"<h2>Every scenario ({len(scenarios)})</h2>"
    return f'<section id="scenarios">{heading}{_folded("show all", table)}</section>'


def _run(data: Mapping[str, Any]) -> str:
    suite = data["suite"]
    errata = data.get("errata", {})
    touched = _table(
        ("erratum", "title", "the suite's reading"),
        (
            (
                f'<td class="id"><code>{_e(eid)}</code></td>',
                f"<td>{_e(e['title'])}</td>",
                f"<td>{_e(e['reading'])}</td>",
            )
            for eid, e in errata.items()
        ),
    )
    sut = yaml.safe_dump(data["sut"], sort_keys=False, width=110)
    return (
        f'<section id="run"><h2>Errata the run touched ({len(errata)})</h2>'
        + (
            _folded("where the spec is silent or defective, and what the suite reads instead", touched)
            if errata
            else "<p>None.</p>"
        )
        + "<h2>Subject, suite and pin</h2>"
        + _table(
            ("", ""),
            (
                ("<th>suite</th>", f"<td>{_e(suite['name'])} {_e(suite['version'])}</td>"),
                ("<th>suite sha256</th>", f"<td><code>{_e(suite['sha256'])}</code></td>"),
                ("<th>specification pin</th>", f"<td><code>{_e(data['pin'])}</code></td>"),
                ("<th>run id</th>", f"<td><code>{_e(data['run_id'])}</code></td>"),
            ),
        )
        + "<h3>The subject as declared (secrets redacted)</h3>"
        + _pre(sut)
        + "</section>"
    )


def render_html(data: Mapping[str, Any]) -> str:
    """The whole page for one results dict."""
    verdict = "conformant" if data["summary"]["conformant"] else "NOT conformant"
    title = f"Margo conformance: {verdict} — {data['run_id']}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>"
        + _header(data)
        + _summary(data)
        + _failures(data)
        + _undecided(data)
        + _requirements(data)
        + _scenarios(data)
        + _run(data)
        + '<footer class="note"><p>Rendered from the same results as results.yaml and junit.xml.</p></footer>'
        + "</main></body></html>\n"
    )


def write_html(data: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data), encoding="utf-8")
