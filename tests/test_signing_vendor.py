"""The signing profile against a vendor's packages: the publisher's trust material from the SUT file (a
Notary trust store or bare root certificates, any level read as strict, INC-155) and the suite's test
publisher, whose root is the built-in SUT file's trust store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from margo_conformance.errors import UsageError
from margo_conformance.signing.fixtures import SigningPki
from margo_conformance.signing.policy import Level, policy_data
from margo_conformance.signing.vendor import publisher_trust, reference_publisher
from margo_conformance.suite.runner import run_suite

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_STORE = ROOT / "fixtures" / "sut" / "signing" / "trust-store"


def _policy(tmp_path: Path, level: str, store: str = "publisher", scope: str = "*") -> Path:
    path = tmp_path / f"policy-{level}.json"
    path.write_text(json.dumps(policy_data(level=level, scopes=[scope], trust_store=store)), encoding="utf-8")
    return path


def _root_pem(tmp_path: Path, name: str = "root.pem") -> Path:
    path = tmp_path / "roots" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(SigningPki("vendor-a").root.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.mark.parametrize("level", ["strict", "permissive", "audit"])
def test_a_publishers_policy_is_read_at_strict_whatever_level_it_names(tmp_path: Path, level: str) -> None:
    trust = publisher_trust((REFERENCE_STORE,), _policy(tmp_path, level, "vendor-a"), tmp_path)
    assert [p.level for p in trust.policy.policies] == [Level.STRICT]


def test_a_skip_policy_stays_skip_so_nothing_is_verified_and_nothing_passes(tmp_path: Path) -> None:
    policy = _policy(tmp_path, "skip", scope="registry.example/app")
    trust = publisher_trust((REFERENCE_STORE,), policy, tmp_path)
    assert [p.level for p in trust.policy.policies] == [Level.SKIP]


def test_bare_root_certificates_fill_every_ca_store_the_policy_names(tmp_path: Path) -> None:
    pem = _root_pem(tmp_path)
    for given in ((pem,), (pem.parent,)):
        trust = publisher_trust(given, _policy(tmp_path, "strict", "acme"), tmp_path)
        assert [c.subject for c in trust.store.stores["ca:acme"]] == [SigningPki("vendor-a").root.subject]


def test_a_trust_store_without_certificates_is_named(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="package.signing.trust_store: no certificate file"):
        publisher_trust((tmp_path / "empty",), _policy(tmp_path, "strict"), tmp_path)


def test_the_test_publishers_chains_lead_to_the_reference_trust_store() -> None:
    committed = (REFERENCE_STORE / "x509" / "ca" / "vendor-a" / "root.pem").read_bytes()
    leaf = reference_publisher().leaf("release-signer")
    assert leaf.chain[-1].public_bytes(serialization.Encoding.PEM) == committed
    assert leaf.chain[1].issuer == leaf.chain[-1].subject


def test_a_root_of_another_key_is_refused() -> None:
    with pytest.raises(ValueError, match="seeded root key"):
        SigningPki("rogue-publisher", root=SigningPki("vendor-a").root)


def _vendor_run(tmp_path: Path, *, signed: bool) -> dict[str, str]:
    signing: dict[str, object] = {
        "trust_store": str(REFERENCE_STORE),
        "trust_policy": str(REFERENCE_STORE.parent / "trustpolicy.json"),
    }
    if signed:  # a vendor's own key and chain files (minted here: no private key is kept in the repository)
        key, chain = reference_publisher().leaf("release-signer").write_pem(tmp_path / "publisher")
        signing["sign_published"] = {"key": str(key), "chain": str(chain)}
    packages = ROOT / "fixtures" / "packages"
    sut = tmp_path / "sut.yaml"
    sut.write_text(
        yaml.safe_dump(
            {
                "declares": ["core", "compose", "helm", "signing"],
                "package": {
                    "targets": [str(packages / "vendor-a-compose"), str(packages / "helm-app")],
                    "publish_to_local_registry": True,
                    "signing": signing,
                },
            }
        ),
        encoding="utf-8",
    )
    outcome = run_suite(
        persona="package",
        sut=sut,
        reports_root=tmp_path / "reports",
        echo=False,
        pytest_args=("--margo-feature", "signing"),
    )
    results = yaml.safe_load(outcome.results.read_text(encoding="utf-8"))
    return {s["scenario"]: s["verdict"] for s in results["scenarios"]}


def test_declaring_signing_for_unsigned_packages_fails(tmp_path: Path) -> None:
    """Issue 9: a vendor that declares signing and ships unsigned packages fails every signed-artifact
    scenario; the certificate rules cannot be judged without a signature (blocked, never passed)."""
    verdicts = _vendor_run(tmp_path, signed=False)
    failed = {name for name, verdict in verdicts.items() if verdict == "fail"}
    assert failed == {
        "Every application package manifest carries a signature that verifies",
        "Every Compose archive manifest carries a signature that verifies",
        "Every Helm chart manifest carries a signature that verifies",
    }
    assert set(verdicts.values()) == {"fail", "blocked"}


def test_the_same_packages_signed_by_their_publisher_pass(tmp_path: Path) -> None:
    verdicts = _vendor_run(tmp_path, signed=True)
    assert len(verdicts) == 8 and set(verdicts.values()) == {"pass"}
