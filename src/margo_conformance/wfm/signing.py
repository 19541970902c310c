"""The WFM persona's signing scenarios (SUP-03 §4 and §6, SIGN-113): a WFM that verifies packages
under the operator's trust policy deploys a validly signed package and refuses a badly signed one.

The packages are the signing profile's signature fixtures (``signing.subjects``), generated into the
suite's registry under namespaces of their own (``wfm-sig-<kind>``), so that the package persona's
fixtures in the same run stay untouched. The suite is the operator: it writes the trust policy and
trust store and hands them to the WFM (``WfmSubject.use_trust``). The checks of what the WFM did with
each package are in ``margo_conformance.checks.wfm.signing``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._internal.local_registry import LocalRegistry
from ..signing.fixtures import Fixture, default_package
from ..signing.subjects import SignatureSubjects
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
