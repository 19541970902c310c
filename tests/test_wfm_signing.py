"""Packages deployed from a registry under a trust policy (SUP-03, SIGN-113): the reference WFM's admin
path, its signing faults, and the provisioner contract (a refusal is ``Refused``, anything else is
``Blocked``) for the reference, command and manual provisioners.

One registry with the signature fixtures and two in-process reference WFMs serve the whole module: one
verifying under a global strict policy trusting vendor-a's root, one with no trust policy at all.
"""

from __future__ import annotations

import builtins
import json
import shlex
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_cli import assert_usage_error, run_cli

from margo_conformance._internal.local_registry import LocalRegistry
from margo_conformance._internal.oci import OciClient, OciReference
from margo_conformance.errors import Blocked
from margo_conformance.package.publish import publish_package
from margo_conformance.pki import Pki, SpiffeId
from margo_conformance.reference.wfm import FAULTS, AdminClient, BackgroundWfm, WfmConfig
from margo_conformance.reference.wfm.admin_client import PACKAGE_UNAVAILABLE, SIGNATURE_REFUSED
from margo_conformance.signing.fixtures import SignatureFixture, default_package
from margo_conformance.signing.oci_signatures import attach_envelope, manifest_descriptor
from margo_conformance.signing.policy import policy_data
from margo_conformance.signing.subjects import SignatureSubjects
from margo_conformance.wfm.provisioners import (
    CommandProvisioner,
    ManualProvisioner,
    ReferenceProvisioner,
    Refused,
)
from margo_conformance.wfm.subject import ReferenceWfmProcess

ROOT = Path(__file__).resolve().parents[1]
VENDORCTL = ROOT / "fixtures" / "wfm" / "vendorctl.py"
TD, WFM_ID = "factory.example", "wfm-1"
CLIENT = SpiffeId.client(TD, WFM_ID, "c-1")
UUID = "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b"
UNREACHABLE = "oci://127.0.0.1:9/acme/app:1.0.0"  # the discard port: nothing listens
BAD = ("unsigned", "tampered", "untrusted-ca", "expired-no-timestamp", "component-unsigned")
SHOWN = ("valid", *BAD)
# signing fault -> the fixtures a strict WFM with it switched on deploys (without faults: valid only)
LETS_THROUGH: dict[str | None, set[str]] = {
    None: {"valid"},
    "skips-signature-verification": set(SHOWN),
    "accepts-untrusted-signer": {"valid", "untrusted-ca"},
    "accepts-expired-signing-certificate": {"valid", "expired-no-timestamp"},
    "verifies-tag-not-digest": {"valid", "tampered"},
    "ignores-component-signatures": {"valid", "component-unsigned"},
    "rejects-es256": set(),
}


@dataclass
class World:
    registry: LocalRegistry
    fixtures: dict[str, SignatureFixture]
    strict: AdminClient  # a WFM verifying under a global strict policy, trusting vendor-a
    open: AdminClient  # a WFM with no trust policy
    policy: Path
    store: Path

    def reference(self, name: str) -> str:
        return self.fixtures[name].reference


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("wfm-signing")
    pki = Pki.init(workdir / "pki", trust_domain=TD, wfm_id=WFM_ID)
    with LocalRegistry() as registry:
        subjects = SignatureSubjects(lambda: registry, workdir, prefix="unit-sig")
        fixtures = {str(kind): fixture for kind, fixture in subjects.fixtures().items()}
        policy = workdir / "trustpolicy.json"
        policy.write_text(json.dumps(policy_data(level="strict", scopes=["*"])), encoding="utf-8")
        store = subjects.trust_store("vendor-a")
        strict = WfmConfig(pki.directory, workdir / "strict", trust_policy=policy, trust_store=store)
        with (
            BackgroundWfm(strict) as verifying,
            BackgroundWfm(WfmConfig(pki.directory, workdir / "open")) as bare,
        ):
            assert verifying.admin_url and bare.admin_url
            yield World(
                registry,
                fixtures,
                AdminClient(verifying.admin_url),
                AdminClient(bare.admin_url),
                policy,
                store,
            )


def post(admin: AdminClient, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /admin/deployments as it is, for the answer's status and whole JSON body."""
    request = urllib.request.Request(
        f"{admin.admin_url}/admin/deployments",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        assert exc.headers.get("Content-Type") == "application/problem+json"
        return exc.code, json.loads(exc.read())


def package_body(reference: Any, **extra: Any) -> dict[str, Any]:
    return {"client_id": "c-1", "device_id": "edge-1", "package": reference, "parameters": {}, **extra}


def deployment_ids(admin: AdminClient) -> set[str]:
    return {d["deploymentId"] for d in admin.state()["deployments"]}


# -- the admin path -----------------------------------------------------------------------------------


def test_a_validly_signed_package_is_deployed_from_the_digest_its_tag_resolved_to(world: World) -> None:
    status, answer = post(world.strict, package_body(world.reference("valid")))
    assert status == 201, answer
    fixture = world.fixtures["valid"]
    assert answer["package"] == f"{fixture.reference}@{fixture.digest}", "verified and read by digest"
    (held,) = [d for d in world.strict.state()["deployments"] if d["deploymentId"] == answer["deploymentId"]]
    source = yaml.safe_load((default_package() / "margo.yaml").read_text(encoding="utf-8"))
    assert yaml.safe_load(held["yaml"])["spec"]["applicationId"] == source["id"]
    assert world.strict.state()["trustPolicies"][0]["level"] == "strict"


def test_a_package_named_by_digest_is_deployed_too(world: World) -> None:
    fixture = world.fixtures["valid"]
    pinned = str(OciReference.parse(fixture.reference).with_digest(fixture.digest))
    status, answer = post(world.strict, package_body(pinned))
    assert status == 201 and answer["package"] == pinned, answer


@pytest.mark.parametrize(
    ("fixture", "check", "fragment"),
    [
        ("unsigned", "authenticity", "no Notary signature"),
        ("tampered", "authenticity", "no Notary signature"),
        ("untrusted-ca", "authenticity", "does not lead to a certificate in ca:publisher"),
        ("expired-no-timestamp", "authenticTimestamp", "expired"),
        ("component-unsigned", "authenticity", "no Notary signature"),
    ],
)
def test_a_badly_signed_package_is_refused_naming_the_failed_check(
    world: World, fixture: str, check: str, fragment: str
) -> None:
    before = deployment_ids(world.strict)
    status, problem = post(world.strict, package_body(world.reference(fixture)))
    assert (status, problem["type"], problem["status"]) == (422, SIGNATURE_REFUSED, 422), problem
    assert any(f": {check}: " in line and fragment in line for line in problem["failures"]), problem
    assert problem["detail"].startswith(world.fixtures[fixture].reference), problem["detail"]
    where = "compose" if fixture == "component-unsigned" else "package manifest"
    assert all(line.startswith(where) for line in problem["failures"]), problem["failures"]
    assert deployment_ids(world.strict) == before, "a refused package must not be deployed"


def test_without_a_trust_policy_nothing_is_verified(world: World) -> None:
    for name in SHOWN:
        status, answer = post(world.open, package_body(world.reference(name)))
        assert status == 201, (name, answer)
    assert world.open.state()["trustPolicies"] is None


def test_a_malformed_signature_envelope_is_a_refusal_not_a_crash(world: World) -> None:
    published = publish_package(default_package(), world.registry.host, namespace="unit-malformed")
    ref = OciReference.parse(published.reference)
    with OciClient(ref.registry) as client:
        subject = manifest_descriptor(client, ref.repository, published.manifest_digest)
        attach_envelope(client, ref.repository, subject, b"{not a JWS envelope")
    status, problem = post(world.strict, package_body(published.reference))
    assert (status, problem["type"]) == (422, SIGNATURE_REFUSED), problem
    assert any(line.startswith("package manifest: integrity: ") for line in problem["failures"]), problem


@pytest.mark.parametrize(
    ("body", "status", "kind", "fragment"),
    [
        (package_body(UNREACHABLE), 502, PACKAGE_UNAVAILABLE, "unreachable"),
        (package_body("docker.io/acme/app:1"), 400, "invalid-request", "malformed OCI reference"),
        (package_body("oci://127.0.0.1:9/acme/app"), 400, "invalid-request", "name a tag or a digest"),
        (package_body(["oci://x/y:1"]), 422, "semantic-error", "package"),
        (package_body("oci://x/y:1", application_description="id: x"), 422, "semantic-error", "exactly one"),
    ],
    ids=["unreachable-registry", "not-oci", "no-tag", "not-a-string", "both-sources"],
)
def test_bad_package_input_is_a_clear_problem(
    world: World, body: dict[str, Any], status: int, kind: str, fragment: str
) -> None:
    answered, problem = post(world.strict, body)
    assert (answered, problem["type"].rsplit("#", 1)[-1]) == (status, kind), problem
    assert fragment in problem["detail"], problem


def test_a_package_the_registry_does_not_hold_is_unavailable(world: World) -> None:
    status, problem = post(world.strict, package_body(f"oci://{world.registry.host}/nope/app:1.0.0"))
    assert (status, problem["type"]) == (422, PACKAGE_UNAVAILABLE), problem
    assert "404" in problem["detail"]


# -- faults -------------------------------------------------------------------------------------------


def test_every_signing_fault_has_a_probe() -> None:
    signing = {name for name, fault in FAULTS.items() if fault.area == "signing"}
    assert signing == {name for name in LETS_THROUGH if name is not None}
    assert all(FAULTS[name].requirement == "SIGN-113" for name in signing)


@pytest.mark.parametrize("fault", list(LETS_THROUGH), ids=str)
def test_each_signing_fault_lets_through_exactly_its_fixtures(world: World, fault: str | None) -> None:
    world.strict.set_faults([fault] if fault else [])
    try:
        deployed = {
            name for name in SHOWN if post(world.strict, package_body(world.reference(name)))[0] == 201
        }
    finally:
        world.strict.set_faults([])
    assert deployed == LETS_THROUGH[fault]


# -- the provisioner contract ------------------------------------------------------------------------


def test_the_reference_provisioner_reports_a_refusal_as_refused(world: World) -> None:
    provisioner = ReferenceProvisioner(world.strict.admin_url)
    deployment_id = provisioner.deploy_package(
        client=CLIENT, device_id="edge-1", package_ref=world.reference("valid"), parameters={}
    )
    assert deployment_id in deployment_ids(world.strict)
    with pytest.raises(Refused, match="does not lead to a certificate") as refused:
        provisioner.deploy_package(
            client=CLIENT, device_id="edge-1", package_ref=world.reference("untrusted-ca"), parameters={}
        )
    assert "authenticity" in refused.value.reason
    for reference, match in ((UNREACHABLE, "unreachable"), ("not a reference", "malformed OCI reference")):
        with pytest.raises(Blocked, match=match):
            provisioner.deploy_package(
                client=CLIENT, device_id="edge-1", package_ref=reference, parameters={}
            )
    with pytest.raises(Blocked, match="cannot reach"):
        ReferenceProvisioner("http://127.0.0.1:9").deploy_package(
            client=CLIENT, device_id="edge-1", package_ref=world.reference("valid"), parameters={}
        )
    with pytest.raises(Blocked, match="--trust-policy"):
        provisioner.install_trust(trust_policy=world.policy, trust_store=world.store)


def test_the_command_provisioner_reads_exit_3_as_a_refusal(world: World) -> None:
    vendorctl = f"{shlex.quote(sys.executable)} {VENDORCTL} --admin {world.strict.admin_url}"
    template = f"{vendorctl} deploy-package {{spiffe_id}} {{device_id}} {{package_ref}} {{parameters_file}}"
    provisioner = CommandProvisioner({"deploy_package": template, "timeout_s": 60})

    def deploy(reference: str) -> str:
        return provisioner.deploy_package(
            client=CLIENT, device_id="edge-1", package_ref=reference, parameters={}
        )

    assert deploy(world.reference("valid")) in deployment_ids(world.strict)
    with pytest.raises(Refused, match="no Notary signature"):
        deploy(world.reference("unsigned"))
    with pytest.raises(Blocked, match=r"(?s)exit 1\).*unreachable"):
        deploy(UNREACHABLE)


@pytest.mark.parametrize(
    ("templates", "outcome", "match"),
    [
        ({"deploy_package": "sh -c 'echo chain untrusted >&2; exit 3'"}, Refused, "chain untrusted"),
        ({"deploy_package": "sh -c 'exit 3'"}, Refused, "no reason on stderr"),
        ({"deploy_package": "sh -c 'echo registry down >&2; exit 2'"}, Blocked, "(?s)exit 2.*registry down"),
        ({}, Blocked, "no 'deploy_package' command"),
    ],
    ids=["refused", "refused-silently", "failed", "missing"],
)
def test_only_exit_3_of_deploy_package_is_a_refusal(
    templates: dict[str, Any], outcome: type[Exception], match: str
) -> None:
    with pytest.raises(outcome, match=match):
        CommandProvisioner(templates).deploy_package(
            client=CLIENT, device_id="edge-1", package_ref="oci://r.example/a:1", parameters={}
        )


def test_the_command_provisioner_passes_the_trust_material(tmp_path: Path) -> None:
    record = tmp_path / "record"
    script = f"import sys; open({str(record)!r}, 'w').write(' '.join(sys.argv[1:]))"
    template = f"{shlex.quote(sys.executable)} -c {shlex.quote(script)} {{trust_policy}} {{trust_store}}"
    CommandProvisioner({"install_trust": template}).install_trust(
        trust_policy=tmp_path / "policy.json", trust_store=tmp_path / "store"
    )
    assert record.read_text(encoding="utf-8") == f"{tmp_path / 'policy.json'} {tmp_path / 'store'}"


@pytest.mark.parametrize(("reply", "outcome"), [("refused: chain untrusted", Refused), (UUID, str)])
def test_the_operator_reports_a_deployment_or_a_refusal(
    monkeypatch: pytest.MonkeyPatch, reply: str, outcome: type[Any]
) -> None:
    monkeypatch.setattr(ManualProvisioner, "_ask", lambda self, instruction, **_: reply)
    provisioner = ManualProvisioner(timeout_s=1)
    if outcome is Refused:
        with pytest.raises(Refused, match="chain untrusted"):
            provisioner.deploy_package(
                client=CLIENT, device_id="d", package_ref="oci://r.example/a:1", parameters={}
            )
    else:
        assert (
            provisioner.deploy_package(
                client=CLIENT, device_id="d", package_ref="oci://r.example/a:1", parameters={}
            )
            == UUID
        )


def test_manual_package_deployment_without_a_terminal_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = builtins.open

    def no_tty(file: Any, *args: Any, **kwargs: Any) -> Any:
        if file == "/dev/tty":
            raise OSError("no terminal")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_tty)
    with pytest.raises(Blocked, match="operator at a terminal"):
        ManualProvisioner(timeout_s=1).deploy_package(
            client=CLIENT, device_id="d", package_ref="oci://r.example/a:1", parameters={}
        )


# -- starting the reference WFM with trust material ---------------------------------------------------


def test_the_reference_wfm_process_restarts_with_trust_material_once(world: World, tmp_path: Path) -> None:
    pki = Pki.init(tmp_path / "pki", trust_domain=TD, wfm_id=WFM_ID)
    (tmp_path / "state").mkdir()
    process = ReferenceWfmProcess(pki, tmp_path / "state")
    process.start()
    try:
        before = dict(process.endpoints)
        admin = AdminClient(before["admin_url"])
        assert admin.state()["trustPolicies"] is None
        process.use_trust(world.policy, world.store)
        after = dict(process.endpoints)
        assert {k: after[k] for k in ("url", "mis_url", "admin_url")} == {
            k: before[k] for k in ("url", "mis_url", "admin_url")
        }
        assert after["pid"] != before["pid"] and admin.state()["trustPolicies"][0]["level"] == "strict"
        process.use_trust(world.policy, world.store)
        assert process.endpoints["pid"] == after["pid"], "the same trust material needs no restart"
        status, problem = post(admin, package_body(world.reference("unsigned")))
        assert (status, problem["type"]) == (422, SIGNATURE_REFUSED)
    finally:
        process.stop()


def test_trust_options_go_together_and_bad_trust_material_is_a_usage_error(tmp_path: Path) -> None:
    pki = Pki.init(tmp_path / "pki", trust_domain=TD, wfm_id=WFM_ID)
    base = ["reference", "wfm", "--pki", str(pki.directory), "--state", str(tmp_path / "state")]
    assert_usage_error(run_cli(*base, "--trust-policy", str(tmp_path / "p.json")), "--trust-store")
    assert_usage_error(run_cli(*base, "--trust-store", str(tmp_path)), "--trust-policy")
    (tmp_path / "p.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "store" / "x509" / "ca" / "publisher").mkdir(parents=True)
    result = run_cli(
        *base, "--trust-policy", str(tmp_path / "p.json"), "--trust-store", str(tmp_path / "store")
    )
    assert_usage_error(result, "trust policy is not JSON")
