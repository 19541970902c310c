"""The identity-service persona: its checks (both ways), its SUT section, and a run against a vendor URL
(here the reference WFM's trust endpoints, started as a separate process and described by a SUT file)."""

from __future__ import annotations

import base64
import functools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from margo_conformance.checks import Violation
from margo_conformance.checks import mis as checks
from margo_conformance.config import Sut, WfmSubjectConfig
from margo_conformance.errors import Blocked, UsageError
from margo_conformance.pki import Pki, jwk_of, spiffe_bundle
from margo_conformance.suite.runner import run_suite
from margo_conformance.wfm.client import Exchange
from margo_conformance.wfm.subject import WfmSubject

TD = "factory.example"


def exchange(
    status: int | None = 200,
    body: bytes | dict[str, Any] = b"",
    *,
    content_type: str | None = "application/json",
    etag: str | None = None,
    refused: str | None = None,
    tls: str | None = "TLSv1.3",
) -> Exchange:
    headers = [("Content-Type", content_type)] if content_type else []
    headers += [("ETag", etag)] if etag else []
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    return Exchange("GET", "/x", (), b"", status, tuple(headers), data, refused, tls, None, 0.01)


def fails(requirement: str, check: Any, *args: Any) -> str:
    with pytest.raises(Violation) as raised:
        check(*args)
    assert raised.value.requirement == requirement
    return raised.value.message


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.init(tmp_path_factory.mktemp("pki"), trust_domain=TD, wfm_id="wfm-1")


# -- discovery --------------------------------------------------------------------------------------


def test_a_discovery_document_passes() -> None:
    document = {"trustDomain": TD, "trustBundleUri": "https://mis.test/.well-known/spiffe/bundle.json"}
    found = checks.ensure_json_document(exchange(body=document), "TB-102")
    checks.ensure_schema_valid(found, "DiscoveryDocument", "TB-102")
    checks.ensure_trust_domain(found, TD)
    assert checks.ensure_absolute_https(found["trustBundleUri"]) == document["trustBundleUri"]


@pytest.mark.parametrize(
    "uri", ["http://mis.test/b.json", "/.well-known/spiffe/bundle.json", "https:///b.json", 42, None]
)
def test_a_bundle_uri_that_is_not_absolute_https_fails(uri: object) -> None:
    assert "not an absolute https URL" in fails("TB-102", checks.ensure_absolute_https, uri)


def test_a_foreign_trust_domain_fails() -> None:
    assert "other.example" in fails(
        "TB-102", checks.ensure_trust_domain, {"trustDomain": "other.example"}, TD
    )


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (exchange(404, {"a": 1}), "expected 200, got 404"),
        (exchange(body={"a": 1}, content_type="text/plain"), "got text/plain"),
        (exchange(body=b"{"), "not JSON"),
        (exchange(body=b"[]"), "not a JSON object"),
        (exchange(None, refused="TLS handshake failed: the WFM sent certificate required"), "no HTTP answer"),
    ],
)
def test_a_discovery_answer_that_is_not_a_json_document_fails(answer: Exchange, message: str) -> None:
    assert message in fails("TB-102", checks.ensure_json_document, answer, "TB-102")


def test_an_unreachable_identity_service_is_blocked_not_failed() -> None:
    with pytest.raises(Blocked):
        checks.ensure_json_document(exchange(None, refused="cannot connect to h:1: refused"), "TB-102")


# -- the bundle -------------------------------------------------------------------------------------


def test_the_pki_bundle_has_one_ca_anchor(pki: Pki) -> None:
    document = spiffe_bundle(pki.anchors)
    checks.ensure_schema_valid(document, "SpiffeBundle", "TB-104")
    assert checks.bundle_anchors(document) == pki.anchors


def test_jwt_keys_are_ignored_beside_an_anchor(pki: Pki) -> None:
    jwt = {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "use": "jwt-svid", "kid": "k"}
    document = spiffe_bundle(pki.anchors) | {"keys": [jwt, jwk_of(pki.root)]}
    assert checks.bundle_anchors(document) == (pki.root,)


def test_a_bundle_without_x509_anchors_fails(pki: Pki) -> None:
    jwt = {"kty": "EC", "use": "jwt-svid"}
    assert "no X.509 trust anchor" in fails("TB-104", checks.bundle_anchors, {"keys": [jwt]})
    assert "no X.509 trust anchor" in fails("TB-104", checks.bundle_anchors, {"keys": "none"})


def test_a_leaf_as_anchor_fails(pki: Pki) -> None:
    assert "is not a CA" in fails(
        "TB-104", checks.bundle_anchors, {"keys": [jwk_of(pki.wfm_svid.certificate)]}
    )


def test_an_anchor_with_two_certificates_or_garbage_fails(pki: Pki) -> None:
    der = base64.b64encode(pki.root.public_bytes(serialization.Encoding.DER)).decode()
    two = jwk_of(pki.root) | {"x5c": [der, der]}
    assert "exactly one certificate" in fails("TB-104", checks.bundle_anchors, {"keys": [two]})
    garbage = jwk_of(pki.root) | {"x5c": ["AAAA"]}
    assert "no DER certificate" in fails("TB-104", checks.bundle_anchors, {"keys": [garbage]})


@pytest.mark.parametrize(("first", "second"), [(5, 5), (5, 6), (None, None)])
def test_a_sequence_that_stays_or_grows_passes(first: int | None, second: int | None) -> None:
    checks.ensure_sequence_not_backwards({"spiffe_sequence": first}, {"spiffe_sequence": second})


@pytest.mark.parametrize(("first", "second"), [(6, 5), (5, None), (None, 1)])
def test_a_sequence_that_goes_back_or_comes_and_goes_fails(first: int | None, second: int | None) -> None:
    fails(
        "TB-104",
        checks.ensure_sequence_not_backwards,
        {"spiffe_sequence": first},
        {"spiffe_sequence": second},
    )


def test_a_refresh_hint_string_is_schema_invalid(pki: Pki) -> None:
    document = spiffe_bundle(pki.anchors) | {"spiffe_refresh_hint": "3600"}
    assert "spiffe_refresh_hint" in fails(
        "TB-104", checks.ensure_schema_valid, document, "SpiffeBundle", "TB-104"
    )


# -- caching, 404, TLS, consistency -----------------------------------------------------------------


def test_etag_and_304() -> None:
    assert checks.ensure_etag(exchange(body={}, etag='"a"')) == '"a"'
    fails("TB-103", checks.ensure_etag, exchange(body={}))
    checks.ensure_not_modified(exchange(304, content_type=None), '"a"')
    checks.ensure_not_modified(exchange(200, {}, etag='"b"'), '"a"')  # changed in between: 200 is right
    assert "got 200" in fails("TB-103", checks.ensure_not_modified, exchange(200, {}, etag='"a"'), '"a"')
    fails("TB-103", checks.ensure_not_modified, exchange(304, b"x", content_type=None), '"a"')


def test_a_404_problem_passes_and_an_html_404_fails() -> None:
    problem = {"type": "about:blank", "title": "Not Found", "status": 404}
    checks.ensure_problem_404(exchange(404, problem, content_type="application/problem+json"))
    html = exchange(404, b"<html/>", content_type="text/html")
    assert "text/html" in fails("TB-106", checks.ensure_problem_404, html)
    assert "expected 404" in fails("TB-106", checks.ensure_problem_404, exchange(200, {}))
    incomplete = exchange(404, {"title": "x"}, content_type="application/problem+json")
    assert "ProblemDetail" in fails("TB-106", checks.ensure_problem_404, incomplete)


def test_tls_checks() -> None:
    checks.ensure_tls_version(exchange(body={}), "TLSv1.3", "TLS-003")
    fails("TLS-003", checks.ensure_tls_version, exchange(body={}, tls="TLSv1.2"), "TLSv1.3", "TLS-003")
    served = exchange(body={})
    checks.ensure_refused(
        exchange(None, refused="TLS handshake failed: protocol version"), "TLS-005", control=served
    )
    tls11 = exchange(body={}, tls="TLSv1.1")
    refused = functools.partial(checks.ensure_refused, control=served)
    assert "TLSv1.1" in fails("TLS-005", refused, tls11, "TLS-005")
    reset = exchange(None, refused="connection reset")
    for control in (None, exchange(500, body={})):  # issue 15: no served control, no refusal to count
        with pytest.raises(Blocked, match="positive control failed"):
            checks.ensure_refused(reset, "TLS-005", control=control)


def test_consistency_checks(pki: Pki) -> None:
    checks.ensure_validates_wfm(None, "https://wfm")
    fails("TB-104", checks.ensure_validates_wfm, "unable to get local issuer certificate", "https://wfm")
    checks.ensure_member_of(pki.wfm_spiffe_id, TD, "https://wfm")
    fails("TB-104", checks.ensure_member_of, pki.wfm_spiffe_id, "other.example", "https://wfm")
    fails("TB-104", checks.ensure_member_of, None, TD, "https://wfm")


# -- the SUT section --------------------------------------------------------------------------------


def test_the_reference_sut_has_a_reference_mis() -> None:
    sut = Sut.from_file(
        Path(__file__).resolve().parents[1] / "fixtures" / "sut" / "reference.yaml", environ={}
    )
    assert sut.mis is not None and sut.mis.reference


def test_a_vendor_mis_section(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("-", encoding="utf-8")
    path = tmp_path / "sut.yaml"
    path.write_text(
        yaml.safe_dump({"mis": {"url": "https://mis.test:8443/", "trust_domain": TD, "anchors": "ca.pem"}}),
        encoding="utf-8",
    )
    mis = Sut.from_file(path, environ={}).mis
    assert mis is not None
    assert (mis.url, mis.discovery_url) == (
        "https://mis.test:8443",
        "https://mis.test:8443/.well-known/margo",
    )
    assert mis.anchors == tmp_path / "ca.pem"


@pytest.mark.parametrize(
    "section",
    [
        {"url": "https://mis.test", "trust_domain": TD},  # no anchors
        {"url": "http://mis.test", "trust_domain": TD, "anchors": "ca.pem"},
        {"url": "https://mis.test/some/path", "trust_domain": TD, "anchors": "ca.pem"},
    ],
)
def test_an_incomplete_or_plain_http_mis_section_is_a_usage_error(
    tmp_path: Path, section: dict[str, Any]
) -> None:
    path = tmp_path / "sut.yaml"
    path.write_text(yaml.safe_dump({"mis": section}), encoding="utf-8")
    with pytest.raises(UsageError, match=r"\$\.mis"):
        Sut.from_file(path, environ={})


# -- a run against a vendor URL ---------------------------------------------------------------------


@pytest.mark.slow
def test_run_against_an_identity_service_at_a_url(tmp_path: Path) -> None:
    """A SUT file naming an identity service by URL, its anchors and a WFM of its domain: every MIS
    scenario runs against it and passes (the 'vendor' is the reference WFM in its own process)."""
    vendor = WfmSubject.start(WfmSubjectConfig(reference=True), tmp_path / "vendor")
    try:
        assert vendor.process is not None
        sut = tmp_path / "sut.yaml"
        section = {
            "url": vendor.process.endpoints["mis_url"],
            "trust_domain": vendor.pki.trust_domain,
            "anchors": str(vendor.pki.bundle_pem),
            "wfm_url": vendor.url,
        }
        sut.write_text(yaml.safe_dump({"declares": ["core"], "mis": section}), encoding="utf-8")
        outcome = run_suite(persona="mis", sut=sut, reports_root=tmp_path / "reports", echo=False)
    finally:
        vendor.close()
    results = yaml.safe_load(outcome.results.read_text(encoding="utf-8"))
    verdicts = {s["scenario"]: s["verdict"] for s in results["scenarios"]}
    assert len(verdicts) == 10 and set(verdicts.values()) == {"pass"}, verdicts
    assert outcome.conformant
