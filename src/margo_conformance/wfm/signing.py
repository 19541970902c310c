"""The WFM persona's signing scenarios (SUP-03 §4 and §6, SIGN-113): a WFM that verifies packages
under the operator's trust policy deploys a validly signed package and refuses a badly signed one.

The packages are the signing profile's signature fixtures (``signing.subjects``), generated into the
suite's registry under namespaces of their own (``wfm-sig-<kind>``), so that the package persona's
fixtures in the same run stay untouched. The suite is the operator: it writes the trust policy and
trust store and hands them to the WFM (``WfmSubject.use_trust``). Checks raise ``AssertionError``
saying what the WFM did instead, so a wrong verdict explains itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._internal.local_registry import LocalRegistry
from ..signing.fixtures import Fixture, default_package
from ..signing.subjects import SignatureSubjects
from .client import Exchange
from .conversation import Conversation, Deployed
from .provisioners import Refused
from .subject import WfmSubject

FIXTURE_PREFIX = "wfm-sig"


@dataclass
class PackageAttempt:
    """What became of one request to deploy a package: a deployment, or the WFM's refusal."""

    fixture: str
    reference: str
    deployed: Deployed | None = None
    refusal: str | None = None

    def describe(self) -> str:
        if self.deployed is not None:
            return f"the WFM deployed it as {self.deployed.deployment_id}"
        return f"the WFM refused it: {self.refusal}"


class WfmSigning:
    """One run's signed packages and the trust the WFM is given for them."""

    def __init__(self, subjects: SignatureSubjects, wfm: WfmSubject) -> None:
        self.subjects = subjects
        self.wfm = wfm

    @classmethod
    def for_run(
        cls,
        registry: Callable[[], LocalRegistry],
        wfm: WfmSubject,
        workdir: Path,
        *,
        faults_off: bool = False,
    ) -> WfmSigning:
        subjects = SignatureSubjects(registry, workdir, faults_off=faults_off, prefix=FIXTURE_PREFIX)
        return cls(subjects, wfm)

    def publish(self) -> None:
        """Generate the signature fixtures (once per run)."""
        self.subjects.fixtures()

    def trust_publisher(self, level: str, publisher: str) -> None:
        """The WFM verifies under a policy of ``level`` for every fixture repository, trusting only the
        root of ``publisher``."""
        self.wfm.use_trust(self.subjects.trust_policy(level), self.subjects.trust_store(publisher))

    def deploy(
        self,
        conversation: Conversation,
        fixture: str,
        device_id: str,
        parameters: Mapping[str, Any] | None = None,
    ) -> PackageAttempt:
        """Ask the WFM, through its provisioner, to deploy the fixture's package by its tag."""
        signed = self.subjects.fixture(fixture)
        attempt = PackageAttempt(fixture, signed.reference)
        source = default_package("helm-app" if signed.kind is Fixture.HELM_UNSIGNED else "vendor-a-compose")
        try:
            attempt.deployed = conversation.deploy_package(
                signed.reference, device_id, source=source, parameters=dict(parameters or {})
            )
        except Refused as exc:
            attempt.refusal = exc.reason
        return attempt


def ensure_deployed(attempt: PackageAttempt) -> Deployed:
    """The WFM took the package: it answered with a deploymentId."""
    if attempt.deployed is None:
        raise AssertionError(
            f"expected the WFM to deploy {attempt.reference} ({attempt.fixture}), whose signatures verify "
            f"under its trust policy; {attempt.describe()}"
        )
    return attempt.deployed


def ensure_refused(attempt: PackageAttempt) -> None:
    """The WFM refused the package (SIGN-113: it does not dispatch what fails verification)."""
    if attempt.refusal is not None:
        return
    raise AssertionError(
        f"expected the WFM to refuse {attempt.reference} ({attempt.fixture}), whose signatures fail "
        f"verification under its strict trust policy; {attempt.describe()}"
    )


def deployment_ids(manifest: Mapping[str, Any]) -> list[str]:
    return [str(d.get("deploymentId")) for d in manifest.get("deployments") or [] if isinstance(d, Mapping)]


def ensure_listed(manifest: Mapping[str, Any], deployed: Deployed) -> None:
    """The deployment the WFM made from the package is in the client's State Manifest."""
    listed = deployment_ids(manifest)
    if deployed.deployment_id not in listed:
        raise AssertionError(
            f"the WFM deployed {deployed.package} as {deployed.deployment_id}, but the client's State "
            f"Manifest (version {manifest.get('manifestVersion')}) lists {listed or 'no deployment'}"
        )


def ensure_served(served: Mapping[str, bytes], deployed: Deployed, fetches: Sequence[Exchange]) -> bytes:
    """The YAML the client fetched for the deployment (the WFM listed it, so it must serve it)."""
    if deployed.deployment_id in served:
        return served[deployed.deployment_id]
    transcript = fetches[-1].transcript() if fetches else "(nothing was fetched)"
    raise AssertionError(
        f"the manifest lists {deployed.deployment_id}, but its YAML was not served:\n{transcript}"
    )


def ensure_no_new_deployment(before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    """Nothing was dispatched: the client's State Manifest lists no deployment it did not list before."""
    new = sorted(set(deployment_ids(after)) - set(deployment_ids(before)))
    if new:
        raise AssertionError(
            f"a refused package must not reach the client, but its State Manifest now lists {new} "
            f"(version {before.get('manifestVersion')} → {after.get('manifestVersion')})"
        )
