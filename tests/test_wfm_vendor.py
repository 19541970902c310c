"""The vendor path end to end: a WFM the suite did not start, an operator PKI from `pki init`, and a
`command` provisioner — here the reference WFM in its own process, driven by fixtures/wfm/vendorctl.py."""

from __future__ import annotations

import shlex
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from margo_conformance.pki import Pki
from margo_conformance.suite.runner import run_suite
from margo_conformance.wfm.subject import ReferenceWfmProcess

ROOT = Path(__file__).resolve().parents[1]
VENDORCTL = ROOT / "fixtures" / "wfm" / "vendorctl.py"
RESTART = "The manifest version survives a restart of the WFM"
SIGNING = "A WFM with a strict trust policy"  # features/wfm/signing.feature: the profile is not declared


def _verdicts(results: Path) -> dict[str, str]:
    data = yaml.safe_load(results.read_text(encoding="utf-8"))
    return {s["scenario"]: s["verdict"] for s in data["scenarios"]}


def _sut(tmp_path: Path, pki: Pki, url: str, admin_url: str, **wfm: object) -> Path:
    vendorctl = f"{shlex.quote(sys.executable)} {VENDORCTL} --admin {admin_url}"
    provisioner = {
        "type": "command",
        "timeout_s": 15,
        "accept_client": f"{vendorctl} accept {{spiffe_id}}",
        "retire_client": f"{vendorctl} retire {{spiffe_id}}",
        "deploy": f"{vendorctl} deploy {{spiffe_id}} {{device_id}} {{app_description}} {{parameters_file}}",
        "update": f"{vendorctl} update {{deployment_id}} {{app_description}} {{parameters_file}}",
        "undeploy": f"{vendorctl} undeploy {{deployment_id}}",
        "overload": f"{vendorctl} overload {{status}} {{retry_after}}",
    }
    document = {
        "pin": "margo-1.0.0-rc.3",
        "declares": ["core", "gateway"],
        "wfm": {
            "url": url,
            "wfm_id": pki.wfm_id,
            "trust_domain": pki.trust_domain,
            "pki": str(pki.directory),
            "provisioner": provisioner,
            **wfm,
        },
    }
    path = tmp_path / "sut.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def vendor_wfm(tmp_path: Path) -> Iterator[tuple[Pki, ReferenceWfmProcess]]:
    pki = Pki.init(tmp_path / "pki", trust_domain="plant.example", wfm_id="acme-wfm")
    (tmp_path / "state").mkdir()
    process = ReferenceWfmProcess(pki, tmp_path / "state")
    process.start()
    yield pki, process
    process.stop()


def test_a_vendor_wfm_with_a_command_provisioner_passes_all_but_what_it_cannot_provision(
    tmp_path: Path, vendor_wfm: tuple[Pki, ReferenceWfmProcess]
) -> None:
    pki, process = vendor_wfm
    sut = _sut(tmp_path, pki, process.endpoints["url"], process.endpoints["admin_url"])
    outcome = run_suite(persona="wfm", sut=sut, reports_root=tmp_path / "reports", echo=False)
    verdicts = _verdicts(outcome.results)
    assert verdicts.pop(RESTART) == "blocked", "no restart command: the restart scenario cannot be set up"
    undeclared = {name for name, verdict in verdicts.items() if verdict == "not-applicable"}
    assert undeclared and all(name.startswith(SIGNING) for name in undeclared), "signing is not declared"
    assert {verdicts[name] for name in set(verdicts) - undeclared} == {"pass"}, {
        k: v for k, v in verdicts.items() if v not in ("pass", "not-applicable")
    }
    report = outcome.results.read_text(encoding="utf-8")
    assert "BEGIN" not in report and "PRIVATE KEY" not in report, "key material reached the report"


@pytest.fixture
def hanging_wfm() -> Iterator[str]:
    """A TCP listener that accepts connections and never answers: the worst subject there is."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    for connection in held:
        connection.close()
    server.close()


def test_a_hanging_wfm_gets_bounded_waits_and_a_verdict_per_scenario(
    tmp_path: Path, hanging_wfm: str
) -> None:
    pki = Pki.init(tmp_path / "pki", trust_domain="plant.example", wfm_id="acme-wfm")
    sut = _sut(tmp_path, pki, hanging_wfm, "http://127.0.0.1:9", timeout_s=1)
    outcome = run_suite(
        persona="wfm",
        sut=sut,
        reports_root=tmp_path / "reports",
        echo=False,
        pytest_args=("--margo-feature", "identity"),
        timeout_s=300,
    )
    verdicts = _verdicts(outcome.results)
    assert verdicts and set(verdicts.values()) <= {"fail", "blocked"}
    # Hanging is not refusing: a negative counts only after its positive control was served, so against a
    # WFM that never completes a handshake it is blocked (reports/README.md: silence, refusals and positive
    # controls), and a run with a blocked MUST scenario is not conformant.
    assert verdicts["A client without a certificate is not served"] == "blocked"
    assert not outcome.conformant
