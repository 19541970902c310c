"""The reference device's signature verification (SUP-03, signing profile): its options, the launcher
facts that carry them, and the Compose runtime's verification path against a local OCI registry.

The runtime tests need no Docker engine: a refusal happens before anything is extracted or started, and
an accepted component is only pulled (``_pull``), not run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from test_cli import assert_usage_error, run_cli

from margo_conformance._internal.local_registry import LocalRegistry
from margo_conformance._internal.oci import OciClient
from margo_conformance.checks import Violation
from margo_conformance.checks import device as checks
from margo_conformance.device.apps import AppRequest, PublishedApp, publish_app
from margo_conformance.device.launchers import CommandLauncher, LaunchFacts, ReferenceLauncher
from margo_conformance.device.signing import DeviceSignatures, compose_archives
from margo_conformance.errors import UsageError
from margo_conformance.reference.device import runtime_compose
from margo_conformance.reference.device.faults import FaultSet
from margo_conformance.reference.device.runtime_compose import ComponentFailure, ComposeRuntime
from margo_conformance.reference.device.service import DeviceArgs, build_config, load_trust
from margo_conformance.signing.fixtures import SigningPki
from margo_conformance.signing.oci_signatures import attach_envelope, manifest_descriptor, sign_artifact
from margo_conformance.signing.package_check import Trust
from margo_conformance.signing.policy import policy_data
from margo_conformance.signing.subjects import STORE_NAME

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "fixtures" / "packages"


# -- options and launcher facts (no registry) ----------------------------------------------------------


def _args(tmp_path: Path, **options: Any) -> DeviceArgs:
    for name in ("cert.pem", "key.pem", "anchors.pem"):
        (tmp_path / name).write_text("-", encoding="utf-8")
    return DeviceArgs(
        wfm="https://127.0.0.1:1",
        cert=tmp_path / "cert.pem",
        key=tmp_path / "key.pem",
        anchors=tmp_path / "anchors.pem",
        state=tmp_path / "state",
        **options,
    )


def test_trust_options_come_together_or_not_at_all(tmp_path: Path) -> None:
    policy, store = tmp_path / "policy.json", tmp_path / "store"
    policy.write_text("{}", encoding="utf-8")
    store.mkdir()
    with pytest.raises(UsageError, match="--trust-policy needs --trust-store"):
        build_config(_args(tmp_path, trust_policy=policy))
    with pytest.raises(UsageError, match="--trust-store needs --trust-policy"):
        build_config(_args(tmp_path, trust_store=store))
    with pytest.raises(UsageError, match="no such file"):
        build_config(_args(tmp_path, trust_policy=tmp_path / "missing.json", trust_store=store))
    config = build_config(_args(tmp_path, trust_policy=policy, trust_store=store))
    assert (config.trust_policy, config.trust_store) == (policy, store)
    assert load_trust(_args(tmp_path)) is None  # no policy: nothing is verified (SUP-03 §6)


def test_the_cli_refuses_half_the_trust_options_in_one_line(tmp_path: Path) -> None:
    args = _args(tmp_path)
    common = ["--wfm", args.wfm, "--cert", str(args.cert), "--key", str(args.key)]
    common += ["--anchors", str(args.anchors), "--state", str(args.state)]
    result = run_cli("reference", "device", *common, "--trust-policy", str(tmp_path / "p.json"))
    assert_usage_error(result, "--trust-policy needs --trust-store")
    store = _store(tmp_path)
    policy = _policy(tmp_path, "strict", ["*"])
    result = run_cli(
        "reference", "device", *common, "--runtime", "memory", "--trust-policy", str(policy),
        "--trust-store", str(store),
    )  # fmt: skip
    assert_usage_error(result, "--runtime compose")


def _facts(tmp_path: Path, trust: bool) -> LaunchFacts:
    return LaunchFacts(
        wfm_url="https://127.0.0.1:1",
        client_cert=tmp_path / "c.pem",
        client_key=tmp_path / "k.pem",
        trust_anchors=tmp_path / "a.pem",
        state_dir=tmp_path / "state",
        device_id="d",
        poll_interval_s=0.5,
        trust_policy=tmp_path / "policy.json" if trust else None,
        trust_store=tmp_path / "store" if trust else None,
    )


def test_launchers_pass_the_trust_policy_only_when_the_scenario_has_one(tmp_path: Path) -> None:
    reference = ReferenceLauncher(tmp_path / "log")
    argv = list(reference.argv(_facts(tmp_path, True)))
    assert argv[argv.index("--trust-policy") + 1] == str(tmp_path / "policy.json")
    assert argv[argv.index("--trust-store") + 1] == str(tmp_path / "store")
    assert "--trust-policy" not in reference.argv(_facts(tmp_path, False))
    vendor = CommandLauncher(
        tmp_path / "log", start="agent --wfm {wfm_url} --trust-policy={trust_policy} --store {trust_store}"
    )
    assert vendor.argv(_facts(tmp_path, True))[3:] == [
        f"--trust-policy={tmp_path / 'policy.json'}",
        "--store",
        str(tmp_path / "store"),
    ]
    assert vendor.argv(_facts(tmp_path, False)) == ["agent", "--wfm", "https://127.0.0.1:1", "--store"]


def test_a_refusal_is_a_failed_report_in_any_words() -> None:
    """SUP-03 sets no wording (errata INC-141): the state is judged, and that nothing runs."""

    def report(state: str, message: str) -> dict[str, Any]:
        return {"status": {"state": state, "error": {"code": "x", "source": "a", "message": message}}}

    checks.ensure_state(report("failed", "notary verification failed: not trusted"), "failed", "SIGN-114")
    with pytest.raises(Violation, match="SIGN-114: the deployment was reported 'installed'"):
        checks.ensure_state(report("installed", "signature"), "failed", "SIGN-114")


# -- the runtime against a registry ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def signatures(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> DeviceSignatures:
    signed = DeviceSignatures(registry.host, PACKAGES, tmp_path_factory.mktemp("device-signing"))
    signed.apps()
    return signed


def _store(folder: Path) -> Path:
    return SigningPki("vendor-a").write_trust_store(folder / "store", STORE_NAME)


def _policy(folder: Path, level: str, scopes: list[str]) -> Path:
    path = folder / f"policy-{level}-{len(scopes)}.json"
    path.write_text(json.dumps(policy_data(level=level, scopes=scopes, trust_store=STORE_NAME)), "utf-8")
    return path


def _runtime(tmp_path: Path, signatures: DeviceSignatures, level: str, *faults: str) -> ComposeRuntime:
    trust = Trust.load(*signatures.trust(level))
    return ComposeRuntime(tmp_path / "runtime", faults=FaultSet(faults), trust=trust)


def _deployment(app: PublishedApp) -> dict[str, Any]:
    profile = yaml.safe_load(app.description)["deploymentProfiles"][0]
    return {"metadata": {"name": "signed"}, "spec": {"deploymentProfile": profile}}


def _pull(runtime: ComposeRuntime, app: PublishedApp) -> bytes:
    component = _deployment(app)["spec"]["deploymentProfile"]["components"][0]
    return runtime._pull(component["name"], component["properties"])


def _refusal(runtime: ComposeRuntime, app: PublishedApp) -> str:
    """Deploy; the one component must fail as signature-refused with nothing extracted: its message."""
    outcomes = runtime.deploy("dep-1", _deployment(app), b"")
    seen = [(o.state, o.error.code if o.error else None) for o in outcomes]
    assert seen == [("failed", "signature-refused")]
    assert not runtime.deployment_dir("dep-1").exists(), "extracted before the signature was verified"
    assert outcomes[0].error is not None
    return outcomes[0].error.message


def test_a_validly_signed_component_is_pulled_under_strict(
    tmp_path: Path, signatures: DeviceSignatures
) -> None:
    for fixture in ("valid", "valid-ps256"):
        assert _pull(_runtime(tmp_path, signatures, "strict"), signatures.app("vendor-a", fixture))


@pytest.mark.parametrize(
    ("fixture", "check"),
    [
        ("unsigned", "authenticity: no Notary signature"),
        ("tampered", "authenticity: no Notary signature"),
        ("untrusted-ca", "does not lead to a certificate in ca:publisher"),
        ("expired-no-timestamp", "authenticTimestamp"),
        ("rs256", "integrity"),
        ("forbidden-eku", "serverAuth"),
        ("other-digest", "not over this artifact's manifest"),
    ],
)
def test_each_bad_fixture_is_refused_under_strict_naming_the_check(
    tmp_path: Path, signatures: DeviceSignatures, fixture: str, check: str
) -> None:
    message = _refusal(_runtime(tmp_path, signatures, "strict"), signatures.app("vendor-a", fixture))
    assert "signature verification failed under trust policy 'margo' (strict)" in message
    assert check in message


def test_audit_logs_an_untrusted_signer_and_still_refuses_rs256(
    tmp_path: Path, signatures: DeviceSignatures, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = _runtime(tmp_path, signatures, "audit")
    with caplog.at_level(logging.WARNING, logger="margo_conformance.reference.device.security"):
        assert _pull(runtime, signatures.app("vendor-a", "untrusted-ca"))
    assert "signature accepted under trust policy 'margo' (audit); logged: authenticity" in caplog.text
    assert "integrity" in _refusal(runtime, signatures.app("vendor-a", "rs256"))


@pytest.mark.parametrize(
    ("fault", "fixture"),
    [
        ("skips-signature-verification", "unsigned"),
        ("accepts-untrusted-signer", "untrusted-ca"),
        ("accepts-expired-signing-certificate", "expired-no-timestamp"),
        ("accepts-rs256", "rs256"),
        ("ignores-signed-digest", "other-digest"),
    ],
)
def test_each_signing_fault_lets_exactly_its_fixture_through(
    tmp_path: Path, signatures: DeviceSignatures, fault: str, fixture: str
) -> None:
    mutant = _runtime(tmp_path, signatures, "strict", fault)
    assert _pull(mutant, signatures.app("vendor-a", fixture))
    others = {"unsigned", "untrusted-ca", "expired-no-timestamp", "rs256", "other-digest"} - {fixture}
    if fault != "skips-signature-verification":
        for other in sorted(others):
            _refusal(mutant, signatures.app("vendor-a", other))


def test_no_policy_for_the_scope_verifies_nothing(tmp_path: Path, signatures: DeviceSignatures) -> None:
    """SUP-03 §6: with no trust policy for a registry scope an unsigned artifact still deploys."""
    policy = _policy(tmp_path, "strict", ["registry.invalid/elsewhere/app"])
    runtime = ComposeRuntime(tmp_path / "runtime", trust=Trust.load(policy, _store(tmp_path)))
    assert _pull(runtime, signatures.app("vendor-a", "unsigned"))


# -- bad input: a clear component failure, never a crash ------------------------------------------------


@pytest.fixture
def crafted(registry: LocalRegistry, tmp_path: Path, request: pytest.FixtureRequest) -> PublishedApp:
    """vendor-a published unsigned in a namespace of the test's own (for hand-made signatures)."""
    namespace = "crafted-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:50]
    return publish_app(AppRequest("vendor-a"), PACKAGES, tmp_path / "packages", registry.host, namespace)


def _crafted_runtime(tmp_path: Path, app: PublishedApp) -> ComposeRuntime:
    archive = compose_archives(app)[0]
    policy = _policy(tmp_path, "strict", [f"{archive.registry}/{archive.repository}"])
    return ComposeRuntime(tmp_path / "runtime", trust=Trust.load(policy, _store(tmp_path)))


def test_a_malformed_envelope_is_a_refusal(
    registry: LocalRegistry, tmp_path: Path, crafted: PublishedApp
) -> None:
    archive = compose_archives(crafted)[0]
    with OciClient(registry.host) as client:
        subject = manifest_descriptor(client, archive.repository, archive.reference)
        attach_envelope(client, archive.repository, subject, b'{"payload": "not a JWS"')
    message = _refusal(_crafted_runtime(tmp_path, crafted), crafted)
    assert "integrity" in message


def test_a_referrers_listing_pointing_nowhere_is_a_refusal(
    registry: LocalRegistry, tmp_path: Path, crafted: PublishedApp
) -> None:
    """The tag-schema index lists a signature the registry no longer has (deleted after signing)."""
    archive = compose_archives(crafted)[0]
    signer = SigningPki("vendor-a").leaf("release-signer")
    with OciClient(registry.host) as client:
        digest = manifest_descriptor(client, archive.repository, archive.reference).digest
        signed = sign_artifact(client, archive.repository, digest, signer.key, signer.chain)
    url = f"{registry.url}/v2/{archive.repository}/manifests/{signed.signature_digest}"
    assert requests.delete(url, timeout=5).status_code == 202
    message = _refusal(_crafted_runtime(tmp_path, crafted), crafted)
    assert "authenticity: no Notary signature" in message


def test_a_registry_that_stops_answering_during_verification_is_a_refusal(
    tmp_path: Path, signatures: DeviceSignatures
) -> None:
    """The reference is in the policy's scope; the client talks to a port where nothing listens."""
    runtime = _runtime(tmp_path, signatures, "strict")
    reference = compose_archives(signatures.app("vendor-a", "valid"))[0].with_digest("sha256:" + "1" * 64)
    with OciClient("127.0.0.1:9", timeout=2.0) as client, pytest.raises(ComponentFailure) as failure:
        runtime._verify_signature(client, reference)
    assert failure.value.code == "signature-refused"
    assert "could not be completed" in failure.value.message


def test_an_unexpected_error_inside_verification_fails_closed(
    tmp_path: Path, signatures: DeviceSignatures, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise ValueError("unparsable extension")

    monkeypatch.setattr(runtime_compose, "verify_artifact", broken)
    message = _refusal(_runtime(tmp_path, signatures, "strict"), signatures.app("vendor-a", "valid"))
    assert "could not be completed: ValueError: unparsable extension" in message
