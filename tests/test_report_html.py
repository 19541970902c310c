"""report.html: a rendering of the run's results dict that a person reads in a browser, offline, and that
shows the subject's bytes as text (a hostile scenario message must never run or restyle the page).

The browser tests open the page in Debian's chromium (headless). scripts/setup installs it; when it is
missing they fail (a report nobody checked in a browser is not a tested report)."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from margo_conformance.paths import suite_root
from margo_conformance.registry import Registry
from margo_conformance.suite.report_html import render_html, write_html
from margo_conformance.suite.results import MESSAGE_LINES, RunResults, ScenarioResult
from margo_conformance.suite.runner import RunOutcome, run_suite
from margo_conformance.verdicts import Verdict

PIN = "margo-1.0.0-rc.3"
HOSTILE_NAME = "Hostile <script>document.body.dataset.pwned='name'</script> [red]not markup[/red]"
HOSTILE_MESSAGE = (
    "WFM-001: the WFM answered <img src=x onerror=\"document.body.dataset.pwned='img'\"> [bold]X[/bold]"
)
PRIVATE_KEY = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBsecretsecret\n-----END EC PRIVATE KEY-----"
BROWSER_BOUND_S = 120.0  # a bound on a hung browser, not a timed assertion


def _scenario(name: str, verdict: Verdict, message: str = "", **fields: object) -> ScenarioResult:
    values: dict[str, object] = {
        "nodeid": f"steps/test_x.py::{name}",
        "feature": "wfm/deployments.feature",
        "requirements": ("PKG-001",),
        "persona": "wfm",
        "level": "must",
        "profile": "core",
        "duration_s": 1.25,
    } | fields
    return ScenarioResult(name=name, verdict=verdict, message=message, **values)  # type: ignore[arg-type]


def _evidence() -> str:
    """A failure's whole text: more lines than the console shows, a credential header and a key."""
    exchange = [f"  line {n} of the exchange" for n in range(40)]
    return (
        "\n".join(
            [
                HOSTILE_MESSAGE,
                "> GET /api/v1/clients HTTP/1.1",
                "> Authorization: Bearer s3cr3t-token",
                *exchange,
            ]
        )
        + f"\n{PRIVATE_KEY}\nLAST LINE OF THE EVIDENCE"
    )


@pytest.fixture(scope="module")
def data() -> dict[str, object]:
    results = RunResults(
        "20260101T000000Z-test",
        PIN,
        {"wfm": {"url": "https://wfm.example:8443", "password": "<redacted>"}},
        ("core",),
        scenarios=[
            _scenario(HOSTILE_NAME, Verdict.FAIL, _evidence()),
            _scenario("A SHOULD expectation", Verdict.FAIL, "PKG-001: a warning", level="should"),
            _scenario("Needs a device", Verdict.BLOCKED, "the SUT file declares no 'device' subject"),
            _scenario("The suite broke", Verdict.INCONCLUSIVE, "KeyError: 'x'", suite_error=True),
            _scenario("Served", Verdict.PASS),
            _scenario("Helm only", Verdict.NOT_APPLICABLE, "profile 'helm' is not declared", profile="helm"),
        ],
    )
    return results.as_dict(Registry.load(PIN), suite_root())


def _scenario_data(data: dict[str, object], name: str) -> dict[str, object]:
    scenarios = data["scenarios"]
    assert isinstance(scenarios, list)
    return next(s for s in scenarios if s["scenario"] == name)


# -- the results tree carries the evidence ---------------------------------------------------------


def test_a_failure_keeps_its_whole_text_as_evidence_and_a_short_message(data: dict[str, object]) -> None:
    failed = _scenario_data(data, HOSTILE_NAME)
    assert len(str(failed["message"]).splitlines()) == MESSAGE_LINES + 1  # and the "…" line
    assert str(failed["evidence"]).endswith("LAST LINE OF THE EVIDENCE")
    assert "evidence" not in _scenario_data(data, "Needs a device")  # a short reason is not repeated


def test_a_credential_or_private_key_in_a_failure_text_is_redacted(data: dict[str, object]) -> None:
    text = yaml.safe_dump(data)
    assert "s3cr3t-token" not in text and "secretsecret" not in text
    assert "<redacted private key>" in text and "Authorization: <redacted>" in text


def test_requirements_carry_their_text_source_and_errata_and_the_gaps_their_reason(
    data: dict[str, object],
) -> None:
    registry = Registry.load(PIN)
    requirements = data["requirements"]
    assert isinstance(requirements, dict)
    assert requirements["PKG-001"]["summary"] == registry.get("PKG-001").summary
    assert requirements["PKG-001"]["source"] == registry.get("PKG-001").source.cite()
    uncovered = data["uncovered"]
    assert isinstance(uncovered, list) and uncovered, "the wfm persona has requirements no scenario covers"
    assert all(u["reason"] and "wfm" in u["personas"] for u in uncovered)
    assert set(data["errata"]) == set(data["errata_touched"])  # type: ignore[call-overload]


# -- the page --------------------------------------------------------------------------------------


def test_the_page_is_self_contained_and_escapes_the_subjects_text(data: dict[str, object]) -> None:
    page = render_html(data)
    assert "<script" not in page and "<img" not in page and "<link" not in page
    assert 'href="http' not in page and 'http-equiv="Content-Security-Policy"' in page
    assert "&lt;script&gt;" in page and "[red]not markup[/red]" in page
    assert "LAST LINE OF THE EVIDENCE" in page and "<details>" in page


def test_the_page_puts_the_verdict_first_then_must_failures_before_warnings(data: dict[str, object]) -> None:
    page = render_html(data)
    assert (
        page.index("Not conformant")
        < page.index("Not eligible for certification")
        < page.index('id="failures"')
    )
    findings = page[page.index('id="failures"') :]
    assert (
        findings.index("Hostile") < findings.index("A SHOULD expectation") < findings.index("Needs a device")
    )
    assert "the suite broke" in page


class _Dom(HTMLParser):
    """What a browser built: the elements, the body's attributes and the visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.body: dict[str, str | None] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "body":
            self.body = dict(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed: run scripts/setup, which installs Debian's chromium")
    return found


def _browse(page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_BOUND_S, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_chromium_renders_the_page_without_errors_and_shows_hostile_text_as_text(
    data: dict[str, object], tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    write_html(data, page)
    done = _browse(page, tmp_path, "--dump-dom")
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Refused to" in line]
    assert not console, "the page made the browser complain:\n" + "\n".join(console)
    dom = _Dom()
    dom.feed(done.stdout)
    text = " ".join(dom.text)
    assert "Not conformant" in text and "Not eligible for certification" in text
    assert HOSTILE_NAME in text and "[bold]X[/bold]" in text
    assert "script" not in dom.tags and "img" not in dom.tags
    assert "data-pwned" not in dom.body, "a scenario's text ran as script in the report"


def test_chromium_draws_a_screenshot_of_the_page(data: dict[str, object], tmp_path: Path) -> None:
    page, shot = tmp_path / "report.html", tmp_path / "report.png"
    write_html(data, page)
    _browse(page, tmp_path, "--hide-scrollbars", "--window-size=1280,1600", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- every run writes it -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def package_run(tmp_path_factory: pytest.TempPathFactory) -> RunOutcome:
    return run_suite(
        persona="package",
        sut=None,
        reports_root=tmp_path_factory.mktemp("reports"),
        echo=False,
        pytest_args=("-k", "exactly and one and Application and Description"),
    )


def test_a_run_writes_report_html_rendered_from_the_same_data_as_results_yaml(
    package_run: RunOutcome,
) -> None:
    written = (package_run.reports / "report.html").read_text(encoding="utf-8")
    data = yaml.safe_load(package_run.results.read_text(encoding="utf-8"))
    assert written == render_html(data)
    assert "Conformant" in written and data["summary"]["conformant"]


ETAG_SCENARIO = "The manifest ETag is the strong, quoted digest of the exact body"


@pytest.fixture(scope="module")
def failing_wfm_run(tmp_path_factory: pytest.TempPathFactory) -> RunOutcome:
    """The reference WFM with a weak manifest ETag: its failure text holds a transcript longer than the
    console's 12 lines (the response body comes last)."""
    return run_suite(
        persona="wfm",
        sut=None,
        reports_root=tmp_path_factory.mktemp("reports"),
        echo=False,
        pytest_args=("--margo-scenario", ETAG_SCENARIO, "--margo-wfm-fault", "etag-weak"),
    )


def test_a_failures_whole_transcript_reaches_results_yaml_and_report_html(
    failing_wfm_run: RunOutcome,
) -> None:
    data = yaml.safe_load(failing_wfm_run.results.read_text(encoding="utf-8"))
    (failed,) = data["scenarios"]
    assert failed["verdict"] == "fail" and failed["message"].endswith("…")
    assert "manifestVersion" not in failed["message"], "the response body is past the console's lines"
    assert "manifestVersion" in failed["evidence"] and failed["evidence"].startswith(failed["message"][:-1])
    page = (failing_wfm_run.reports / "report.html").read_text(encoding="utf-8")
    assert "manifestVersion" in page and "Not conformant" in page
