"""Signature findings for an application package in a registry (SUP-03, signing profile).

A package is signed when its application package manifest and the manifests of its Compose archives
and Helm charts carry Notary signatures (SUP-03 §2). Each of those artifacts is verified under the
operator's trust policy (``oci_signatures.verify_artifact``); each failure becomes a finding stamped
with the requirement its ``Rule`` names:

* a failure the trust policy level *enforces* is a MUST finding (the package is refused);
* a failure it only *logs* is reported at SHOULD level: visible, never refusing (Notary's level table);
* a failure the suite cannot judge (COSE envelope, RFC 3161 timestamp, CRL/OCSP) is a note, and the
  requirement it would decide is left unchecked (inconclusive), never held against the package;
* ``skip`` and "no trust policy applies" (SUP-03 §6) verify nothing: a note, no requirement checked.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._internal import bounded
from .._internal.oci import DigestMismatch, OciClient, OciReference
from ..errors import InputError, MargoError, UsageError
from ..findings import Findings, Level
from ..package.check import PackageReport
from ..package.oci_source import DESCRIPTION_MEDIA_TYPE, iter_components
from ..registry import make_finding
from .certificates import TrustStore
from .envelope import PROFILE_ALGORITHMS
from .oci_signatures import verify_artifact
from .policy import Failure, Outcome, Rule, SignatureVerdict, TrustPolicyDocument

# SUP-03 §2: which artifact must be signed (by role), and the requirement each rule is about.
SIGNED_REQUIREMENT: Mapping[str, str] = {"package": "SIGN-101", "compose": "SIGN-102", "helm": "SIGN-103"}
RULE_REQUIREMENT: Mapping[Rule, str] = {
    Rule.ALGORITHM: "SIGN-106",
    Rule.BINDING: "SIGN-107",
    Rule.CHAIN: "SIGN-108",
    Rule.LEAF: "SIGN-109",
    Rule.VALIDITY: "SIGN-110",
}
MAX_DESCRIPTION_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Trust:
    """The operator's Notary trust policy and trust store, checked against each other."""

    policy: TrustPolicyDocument
    store: TrustStore

    @classmethod
    def load(cls, policy_file: Path, store_dir: Path) -> Trust:
        """Read both; every named store a policy uses must exist and hold a certificate."""
        return cls.of(TrustPolicyDocument.load(policy_file), store_dir)

    @classmethod
    def of(cls, policy: TrustPolicyDocument, store_dir: Path) -> Trust:
        """The policy with the store read from ``store_dir``, checked against each other."""
        if not store_dir.is_dir():
            raise UsageError(f"{store_dir}: the trust store is not a directory (expected x509/ca/<name>/)")
        store = TrustStore.load(store_dir)
        for statement in policy.policies:
            for name in statement.trust_stores:
                if not store.stores.get(name):
                    kind, _, named = name.partition(":")
                    raise UsageError(
                        f"trust policy {statement.name!r} uses trust store {name}, but "
                        f"{store_dir / 'x509' / kind / named} holds no certificate"
                    )
        return cls(policy, store)


@dataclass(frozen=True)
class ArtifactVerdict:
    role: str  # "package" | "compose" | "helm"
    verdict: SignatureVerdict


@dataclass
class SignatureCheck:
    """The signature verdicts of one package and what they mean as findings."""

    reference: str
    verdicts: list[ArtifactVerdict] = field(default_factory=list)
    findings: Findings = field(default_factory=Findings)
    notes: list[str] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)

    @property
    def examined(self) -> bool:
        """Whether any signature was looked at (False under skip or with no applicable policy)."""
        return any(v.verdict.outcome is not Outcome.SKIPPED for v in self.verdicts)

    def apply_to(self, report: PackageReport) -> None:
        """Add the findings, notes and checked requirements to a package check's report."""
        report.findings.extend(self.findings)
        report.notes.extend(self.notes)
        report.checked.update(self.checked)

    def report(self) -> PackageReport:
        """A report holding only the signature findings."""
        report = PackageReport(origin=self.reference)
        self.apply_to(report)
        return report


def check_signatures(
    reference: str, trust: Trust, *, timeout: float = 10.0, now: datetime.datetime | None = None
) -> SignatureCheck:
    """Verify the package at ``oci://…`` and its component manifests; judge each verdict."""
    ref = OciReference.parse(reference)
    if ref.tag is None and ref.digest is None:
        raise UsageError(f"{reference}: name a tag or a digest (oci://host/repo:tag)")
    result = SignatureCheck(str(ref))
    clients: dict[str, OciClient] = {}

    def client(registry: str) -> OciClient:
        if registry not in clients:
            clients[registry] = OciClient(registry, timeout=timeout)
        return clients[registry]

    try:
        for role, artifact in _signed_artifacts(client(ref.registry), ref, result.notes):
            verdict = verify_artifact(client(artifact.registry), artifact, trust.policy, trust.store, now=now)
            result.verdicts.append(ArtifactVerdict(role, verdict))
            _judge(result, role, verdict)
    finally:
        for opened in clients.values():
            opened.close()
    return result


def _signed_artifacts(
    client: OciClient, ref: OciReference, notes: list[str]
) -> Iterator[tuple[str, OciReference]]:
    """The package manifest, then each Compose/Helm component its description names (SUP-03 §2)."""
    yield "package", ref
    try:
        description = _description(client, ref)
    except (InputError, DigestMismatch) as exc:
        notes.append(f"components not verified: the package's description cannot be read: {exc}")
        return
    for component in iter_components(description):
        if component.deployment_type not in SIGNED_REQUIREMENT:
            continue  # SUP-03 §2 names no signing duty for custom artifacts
        try:
            base = OciReference.parse(str(component.repository))
            yield component.deployment_type, base.with_tag(str(component.revision))
        except MargoError:
            notes.append(f"component {component.name!r}: no oci:// repository and revision to verify")


def description_layer(client: OciClient, ref: OciReference) -> bytes:
    """The exact bytes of the package's description layer, read by ``ref`` (bounded, digest-checked);
    a consumer that verified ``ref@digest`` reads what it verified."""
    body, _, _ = client.get_manifest(ref.repository, ref.reference)
    try:
        layers = bounded.load_json(body, where=str(ref)).get("layers") or []
        layer = next(x for x in layers if x.get("mediaType") == DESCRIPTION_MEDIA_TYPE)
        digest = str(layer["digest"])
    except (bounded.UntrustedInput, AttributeError, TypeError, KeyError, StopIteration):
        raise InputError("no readable description layer") from None
    return client.get_blob(ref.repository, digest, max_bytes=MAX_DESCRIPTION_BYTES)


def _description(client: OciClient, ref: OciReference) -> Any:
    data = description_layer(client, ref)
    try:
        return bounded.load_yaml(data, where=str(ref), limits=bounded.Limits(str_keys=False))
    except bounded.UntrustedInput:
        raise InputError("no readable description layer") from None


def _judge(result: SignatureCheck, role: str, verdict: SignatureVerdict) -> None:
    where = verdict.reference
    if verdict.outcome is Outcome.SKIPPED:
        result.notes.append(f"{where}: signature not verified: {verdict.reason}")
        return
    result.notes.extend(f"{where}: {note}" for note in verdict.notes)
    checked = {SIGNED_REQUIREMENT[role], *(RULE_REQUIREMENT.values() if verdict.examined else ())}
    level = verdict.level.value if verdict.level else "-"
    for failure in verdict.enforced:
        checked -= _add(result, role, where, failure, None)
    for failure in verdict.logged:
        checked -= _add(result, role, where, failure, f"logged by trust policy level {level}: ")
    if verdict.enforced and all(not f.judged for f in verdict.enforced):
        result.notes.append(f"{where}: inconclusive: nothing this suite can verify decided the verdict")
        return
    result.checked |= checked
    if verdict.outcome is Outcome.VERIFIED and verdict.signature:
        result.notes.append(
            f"{where}: verified by signature {verdict.signature} ({verdict.algorithm}) under trust "
            f"policy {verdict.policy!r} ({level})"
        )
        if verdict.algorithm not in PROFILE_ALGORITHMS:
            result.findings.add(
                make_finding(
                    "SIGN-106",
                    where,
                    f"the only verifying signature uses {verdict.algorithm}; SUP-03 signers use "
                    f"{' or '.join(PROFILE_ALGORITHMS)}",
                )
            )


def _add(result: SignatureCheck, role: str, where: str, failure: Failure, logged: str | None) -> set[str]:
    """Record one failure; return the requirement it leaves undecided (unjudged), else nothing."""
    requirement = (
        SIGNED_REQUIREMENT[role] if failure.about is Rule.SIGNED else RULE_REQUIREMENT[failure.about]
    )
    if not failure.judged:
        result.notes.append(f"{where}: not judged ({requirement}): {failure}")
        return {requirement}
    message = f"{logged or ''}{failure}"
    level = Level.SHOULD if logged is not None else None
    result.findings.add(make_finding(requirement, where, message, level=level))
    return set()
