"""Notary Project trust policy (``version`` 1.0): which policy applies to an artifact, and what its
verification level does with each kind of failure.

The validations and the level table are Notary Project's (``trust-store-trust-policy.md``), which
SUP-03 adopts by reference:

==============  =========  ============  ===================  ========  ==========
level           integrity  authenticity  authenticTimestamp   expiry    revocation
==============  =========  ============  ===================  ========  ==========
strict          enforce    enforce       enforce              enforce   enforce
permissive      enforce    enforce       log                  log       log
audit           enforce    log           log                  log       log
skip            (no signature is fetched, nothing is verified)
==============  =========  ============  ===================  ========  ==========

An ``override`` map may change ``authenticity``, ``authenticTimestamp``, ``expiry`` (enforce|log)
and ``revocation`` (enforce|log|skip) of strict/permissive/audit; ``integrity`` cannot be overridden
and ``skip`` cannot be customised.

Where each failure kind comes from (our classification, following Notary's verification steps):

* integrity — the envelope cannot be parsed, its ``cty`` / signing scheme / critical headers are not
  understood, its algorithm is not allowed (RS256: SUP-03 forbids it), the signature does not
  verify, or the signed descriptor is not the artifact's manifest (digest, size or media type);
  also a signature manifest whose ``subject`` is another manifest;
* authenticity — no signature at all (Notary's audit level "only enforces integrity *if a signature
  is present*", so an unsigned artifact is logged under audit and refused under strict/permissive),
  a chain that does not meet the certificate requirements (keyUsage, forbidden EKUs, basic
  constraints, loops, length) or does not lead to the policy's trust store, or a subject that is
  not among ``trustedIdentities``;
* authenticTimestamp — a certificate of the chain not valid at verification time with no (usable)
  RFC 3161 timestamp, or a signing time outside the signing certificate's validity;
* expiry — the signer's ``io.cncf.notary.expiry`` has passed;
* revocation — a certificate names CRL/OCSP locations: this verifier cannot check them offline, so
  the status "cannot be determined", which Notary counts as a revocation failure.

Each ``Failure`` also names the SUP-03 obligation (``Rule``) it breaks, which the signing report maps to
a requirement ID, and whether this verifier could judge it at all (``judged``: COSE envelopes, RFC 3161
timestamps and CRL/OCSP are beyond it, errata INC-123).

Scope selection: an exact ``registry/repository`` match first, else the one global (``*``) policy.
With no applicable policy Notary fails verification; SUP-03 says that with no trust policy for a
registry scope unsigned artifacts still deploy. ``TrustPolicyDocument.decide_unmatched`` makes that
choice explicit (SUP-03's behaviour by default).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..errors import InputError, UsageError

MAX_POLICY_BYTES = 1024 * 1024


class Check(enum.StrEnum):
    INTEGRITY = "integrity"
    AUTHENTICITY = "authenticity"
    AUTHENTIC_TIMESTAMP = "authenticTimestamp"
    EXPIRY = "expiry"
    REVOCATION = "revocation"


class Level(enum.StrEnum):
    STRICT = "strict"
    PERMISSIVE = "permissive"
    AUDIT = "audit"
    SKIP = "skip"


class Action(enum.StrEnum):
    ENFORCE = "enforce"
    LOG = "log"
    SKIP = "skip"


E, L = Action.ENFORCE, Action.LOG
LEVEL_ACTIONS: Mapping[Level, Mapping[Check, Action]] = {
    Level.STRICT: dict.fromkeys(Check, E),
    Level.PERMISSIVE: {
        Check.INTEGRITY: E,
        Check.AUTHENTICITY: E,
        Check.AUTHENTIC_TIMESTAMP: L,
        Check.EXPIRY: L,
        Check.REVOCATION: L,
    },
    Level.AUDIT: {Check.INTEGRITY: E, **dict.fromkeys(list(Check)[1:], L)},
}
_OVERRIDABLE: Mapping[str, tuple[Action, ...]] = {
    Check.AUTHENTICITY: (E, L),
    Check.AUTHENTIC_TIMESTAMP: (E, L),
    Check.EXPIRY: (E, L),
    Check.REVOCATION: (E, L, Action.SKIP),
}


class Rule(enum.StrEnum):
    """Which SUP-03 obligation a failure is about; the signing report maps each to a requirement ID.

    Notary's validation kind (``Check``) decides enforcement; the rule says what the signer got wrong.
    """

    SIGNED = "signed"  # a well-formed Notary signature that verifies is attached (SUP-03 §2)
    ALGORITHM = "algorithm"  # ES256 or PS256 (RSA >= 3072), never RS256 (SUP-03 §3)
    BINDING = "binding"  # it signs this very manifest's descriptor (SUP-03 §4 items 1, 5)
    CHAIN = "chain"  # a valid chain to a trusted publisher root and identity (SUP-03 §4 item 3, §5)
    LEAF = "leaf"  # the signing certificate's key usages (SUP-03 §4 item 4)
    VALIDITY = "validity"  # certificates valid in time, or an RFC 3161 timestamp (SUP-03 §4 item 6)


_DEFAULT_RULE = {
    Check.INTEGRITY: Rule.SIGNED,
    Check.AUTHENTICITY: Rule.CHAIN,
    Check.AUTHENTIC_TIMESTAMP: Rule.VALIDITY,
    Check.EXPIRY: Rule.VALIDITY,
    Check.REVOCATION: Rule.VALIDITY,
}


@dataclass(frozen=True)
class Failure:
    """One failed validation: which kind, and why (one line).

    ``rule`` defaults from ``check``; ``judged`` is False where the verifier itself cannot decide
    (COSE envelopes, RFC 3161 timestamps, CRL/OCSP): the level still applies to the verdict, but a
    report must not hold it against the subject.
    """

    check: Check
    message: str
    rule: Rule | None = None
    judged: bool = True

    @property
    def about(self) -> Rule:
        return self.rule or _DEFAULT_RULE[self.check]

    def with_prefix(self, prefix: str) -> Failure:
        return replace(self, message=prefix + self.message)

    def __str__(self) -> str:
        return f"{self.check}: {self.message}"


class Outcome(enum.StrEnum):
    VERIFIED = "verified"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class SignatureVerdict:
    """What verification decided for one artifact, under one trust policy.

    ``enforced`` holds the failures that made it fail; ``logged`` the failures the level only logs
    (an artifact can be ``verified`` with logged failures under permissive/audit).
    """

    outcome: Outcome
    reference: str
    digest: str | None
    policy: str | None
    level: Level | None
    enforced: tuple[Failure, ...] = ()
    logged: tuple[Failure, ...] = ()
    signature: str | None = None  # digest of the signature manifest that verified
    algorithm: str | None = None  # its JWS alg
    examined: int = 0  # signatures read (0: none found, or verification skipped)
    notes: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        """True when the artifact may be used (verified, or verification skipped)."""
        return self.outcome is not Outcome.FAILED

    @property
    def reason(self) -> str:
        """One line: why it failed, or what was logged, or why it was skipped."""
        if self.enforced:
            return "; ".join(str(f) for f in self.enforced)
        if self.logged:
            return "logged: " + "; ".join(str(f) for f in self.logged)
        return "; ".join(self.notes)


# -- the policy document -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustPolicy:
    name: str
    registry_scopes: tuple[str, ...]
    level: Level
    overrides: Mapping[Check, Action] = field(default_factory=dict)
    trust_stores: tuple[str, ...] = ()  # "ca:<name>" (also "tsa:<name>", "signingAuthority:<name>")
    trusted_identities: tuple[str, ...] = ()

    def action(self, check: Check) -> Action:
        if self.level is Level.SKIP:
            return Action.SKIP
        if check in self.overrides:
            return self.overrides[check]
        return LEVEL_ACTIONS[self.level][check]

    def decide(self, failures: Iterable[Failure]) -> tuple[Outcome, tuple[Failure, ...], tuple[Failure, ...]]:
        """(outcome, enforced failures, logged failures) for one candidate signature."""
        if self.level is Level.SKIP:
            return Outcome.SKIPPED, (), ()
        enforced: list[Failure] = []
        logged: list[Failure] = []
        for failure in failures:
            action = self.action(failure.check)
            if action is Action.ENFORCE:
                enforced.append(failure)
            elif action is Action.LOG:
                logged.append(failure)
        return (Outcome.FAILED if enforced else Outcome.VERIFIED), tuple(enforced), tuple(logged)

    def ca_stores(self) -> tuple[str, ...]:
        """The policy's ``ca:<name>`` trust stores (full names, as ``TrustStore`` keys them)."""
        return tuple(s for s in self.trust_stores if s.startswith("ca:"))

    def identity_allowed(self, certificate: x509.Certificate) -> bool:
        """``*``, or a ``x509.subject:`` entry whose every RDN is in the leaf's subject."""
        if "*" in self.trusted_identities:
            return True
        subject = _subject_attributes(certificate)
        for identity in self.trusted_identities:
            wanted = parse_identity(identity)
            if all(subject.get(key) == value for key, value in wanted.items()):
                return True
        return False


@dataclass(frozen=True)
class TrustPolicyDocument:
    policies: tuple[TrustPolicy, ...]
    version: str = "1.0"

    @classmethod
    def load(cls, path: str | Path) -> TrustPolicyDocument:
        file = Path(path)
        try:
            with file.open("rb") as stream:
                text = stream.read(MAX_POLICY_BYTES + 1)  # never more, whatever the file's size
        except OSError as exc:
            raise InputError(f"{file}: cannot read the trust policy: {exc.strerror or exc}") from None
        if len(text) > MAX_POLICY_BYTES:
            raise InputError(f"{file}: trust policy larger than {MAX_POLICY_BYTES} bytes")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
            raise UsageError(f"{file}: trust policy is not JSON: {reason[:160]}") from None
        return cls.parse(data, where=str(file))

    @classmethod
    def parse(cls, data: Any, *, where: str = "trust policy") -> TrustPolicyDocument:
        """Validate the Notary trust-policy shape; ``UsageError`` naming the first problem."""
        if not isinstance(data, Mapping):
            raise UsageError(f"{where}: not a JSON object")
        if data.get("version") != "1.0":
            raise UsageError(f'{where}: version must be "1.0", not {data.get("version")!r}')
        entries = data.get("trustPolicies")
        if not isinstance(entries, list) or not entries:
            raise UsageError(f"{where}: trustPolicies must be a non-empty array")
        policies = [_parse_policy(entry, f"{where}: trustPolicies[{i}]") for i, entry in enumerate(entries)]
        names = [p.name for p in policies]
        if len(set(names)) != len(names):
            raise UsageError(f"{where}: policy names must be unique")
        seen: dict[str, str] = {}
        for policy in policies:
            for scope in policy.registry_scopes:
                if scope in seen:
                    raise UsageError(
                        f"{where}: registry scope {scope!r} is in both {seen[scope]!r} and {policy.name!r}"
                    )
                seen[scope] = policy.name
        return cls(tuple(policies))

    def select(self, scope: str) -> TrustPolicy | None:
        """The policy for ``registry/repository``: exact scope match, else the global one, else None."""
        for policy in self.policies:
            if scope in policy.registry_scopes:
                return policy
        for policy in self.policies:
            if policy.registry_scopes == ("*",):
                return policy
        return None


def _parse_policy(entry: Any, where: str) -> TrustPolicy:
    if not isinstance(entry, Mapping):
        raise UsageError(f"{where}: not a JSON object")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise UsageError(f"{where}: name is required")
    where = f"{where} ({name})"
    scopes = entry.get("registryScopes")
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) and s for s in scopes):
        raise UsageError(f"{where}: registryScopes must be a non-empty array of strings")
    if "*" in scopes and len(scopes) != 1:
        raise UsageError(f"{where}: the global scope '*' must be the only scope of its policy")
    for scope in scopes:
        if scope != "*" and ("*" in scope or "/" not in scope):
            raise UsageError(f"{where}: scope {scope!r} is not a fully qualified registry/repository")
    verification = entry.get("signatureVerification")
    if not isinstance(verification, Mapping):
        raise UsageError(f"{where}: signatureVerification is required")
    try:
        level = Level(str(verification.get("level")))
    except ValueError:
        raise UsageError(
            f"{where}: level {verification.get('level')!r} is not strict, permissive, audit or skip"
        ) from None
    overrides: dict[Check, Action] = {}
    raw_overrides = verification.get("override") or {}
    if not isinstance(raw_overrides, Mapping):
        raise UsageError(f"{where}: override must be a map")
    if raw_overrides and level is Level.SKIP:
        raise UsageError(f"{where}: the skip level cannot be customised")
    for key, value in raw_overrides.items():
        allowed = _OVERRIDABLE.get(key)
        if allowed is None:
            raise UsageError(f"{where}: {key!r} cannot be overridden")
        if value not in allowed:
            raise UsageError(f"{where}: override {key} must be one of {', '.join(allowed)}")
        overrides[Check(key)] = Action(value)
    if level is Level.SKIP:
        if scopes == ["*"]:
            raise UsageError(f"{where}: skip cannot be used with the global scope")
        return TrustPolicy(name, tuple(scopes), level)
    stores = entry.get("trustStores")
    if not isinstance(stores, list) or not stores or not all(isinstance(s, str) for s in stores):
        raise UsageError(f"{where}: trustStores must be a non-empty array")
    for store in stores:
        kind, _, store_name = store.partition(":")
        if kind not in ("ca", "tsa", "signingAuthority") or not store_name:
            raise UsageError(f"{where}: trust store {store!r} is not <ca|tsa|signingAuthority>:<name>")
    identities = entry.get("trustedIdentities")
    if not isinstance(identities, list) or not identities or not all(isinstance(i, str) for i in identities):
        raise UsageError(f"{where}: trustedIdentities must be a non-empty array")
    if "*" in identities and len(identities) != 1:
        raise UsageError(f"{where}: '*' must be the only trusted identity")
    for identity in identities:
        if identity != "*":
            parsed = parse_identity(identity, where=where)
            if not {"C", "ST", "O"} <= set(parsed):
                raise UsageError(f"{where}: identity {identity!r} must name at least C, ST and O")
    return TrustPolicy(name, tuple(scopes), level, overrides, tuple(stores), tuple(identities))


# -- trusted identities -------------------------------------------------------------------------------

_SHORT_NAMES = {
    NameOID.COUNTRY_NAME: "C",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.LOCALITY_NAME: "L",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COMMON_NAME: "CN",
}


def parse_identity(identity: str, *, where: str = "trusted identity") -> dict[str, str]:
    """``x509.subject: C=US, ST=WA, O=acme`` → {"C": "US", ...}; ``\\,`` ``\\;`` ``\\\\`` are escapes."""
    prefix = "x509.subject:"
    if not identity.startswith(prefix):
        raise UsageError(f"{where}: identity {identity!r} must start with {prefix!r} or be '*'")
    parts: list[str] = []
    current: list[str] = []
    text = identity[len(prefix) :]
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            current.append(text[index + 1])
            index += 2
            continue
        if char == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    result: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.strip().partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z]+", key.strip()):
            raise UsageError(f"{where}: {part.strip()!r} in {identity!r} is not an RDN (KEY=value)")
        if key.strip() in result:
            raise UsageError(f"{where}: {key.strip()} appears twice in {identity!r}")
        result[key.strip()] = value.strip()
    return result


def _subject_attributes(certificate: x509.Certificate) -> dict[str, str]:
    result: dict[str, str] = {}
    for attribute in certificate.subject:
        short = _SHORT_NAMES.get(attribute.oid)
        if short is not None and isinstance(attribute.value, str):
            result[short] = attribute.value
    return result


def policy_document(**options: Any) -> TrustPolicyDocument:
    """A one-policy document (for tests and fixtures), validated like a loaded one (``policy_data``)."""
    return TrustPolicyDocument.parse(policy_data(**options))


def policy_data(
    *,
    level: Level | str,
    scopes: Sequence[str],
    trust_store: str = "publisher",
    name: str = "margo",
    identities: Sequence[str] = ("*",),
    overrides: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON of a one-policy Notary trust policy (``trustpolicy.json``, version 1.0)."""
    entry: dict[str, Any] = {
        "name": name,
        "registryScopes": list(scopes),
        "signatureVerification": {"level": str(level)},
    }
    if overrides:
        entry["signatureVerification"]["override"] = dict(overrides)
    if str(level) != Level.SKIP:
        entry["trustStores"] = [f"ca:{trust_store}"]
        entry["trustedIdentities"] = list(identities)
    return {"version": "1.0", "trustPolicies": [entry]}
