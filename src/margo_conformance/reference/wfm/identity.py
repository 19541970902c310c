"""Who is calling: recognition of the client SVID (WIP-005) and the accepted-client policy (WIP-008).

Two separate decisions, as the WFM Identity Profile separates them:
  * recognition — after the handshake (OpenSSL has already chained the leaf to the bundle, SVID-006(b)),
    ``client_policy(td, wfm_id)`` checks SVID-006 (a)/(c), SVID-002 and the exact client shape. A peer
    that fails is not a client at all: the WFM rejects the connection (no HTTP answer);
  * authorisation — a recognised client is served only when the accepted-client policy admits it
    (exact SPIFFE ID, wfm-client-id, or a namespace wildcard) and it is not retired; otherwise 403
    ``#not-authorized`` (API-SEC-007/008). Evaluated on every request (TLS-010, WIP-006).

The caller is the SPIFFE ID and nothing else (API-SEC-003).
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509

from ...pki import SpiffeId, SvidError
from ...pki.policy import (
    AllOf,
    AllowedKey,
    AllowedSignature,
    SvidPolicy,
    Validity,
    client_policy,
    leaf_of,
    spiffe_id_of,
    uri_sans,
)
from .faults import FaultSet
from .store import PolicyEntry

IDENTITY_FAULTS = (
    "accepts-expired",
    "accepts-foreign-trust-domain",
    "accepts-wrong-path",
    "accepts-two-uri-sans",
    "accepts-ca-leaf",
    "accepts-key-cert-sign-leaf",
)


class Recognition:
    """WIP-005 for one WFM: ``recognise(chain)`` returns the caller's SPIFFE ID or raises SvidError."""

    def __init__(self, trust_domain: str, wfm_id: str, faults: FaultSet) -> None:
        self.trust_domain = trust_domain
        self.wfm_id = wfm_id
        self.faults = faults
        self.policy = client_policy(trust_domain, wfm_id)

    def recognise(self, chain: Sequence[x509.Certificate]) -> SpiffeId:
        if any(self.faults.active(name) for name in IDENTITY_FAULTS):
            return self._recognise_with_faults(chain)
        self.policy.check(chain)
        return spiffe_id_of(chain[0])

    def _recognise_with_faults(self, chain: Sequence[x509.Certificate]) -> SpiffeId:
        """The same checks in the same order (SVID-006 (a)-(c), SVID-002, WIP-005), each identity
        fault switching off exactly its one check."""
        leaf = leaf_of(chain)
        uris = uri_sans(leaf)
        if len(uris) != 1 and not (uris and self.faults.active("accepts-two-uri-sans")):
            raise SvidError(f"SVID-006(c): leaf has {len(uris)} URI SANs; exactly one URI SAN is required")
        spiffe_id = SpiffeId.parse(uris[0])  # (c) spiffe scheme, non-root path
        if spiffe_id.trust_domain != self.trust_domain and not self.faults.active(
            "accepts-foreign-trust-domain"
        ):
            raise SvidError(
                f"SVID-006(a): trust domain {spiffe_id.trust_domain!r} is not {self.trust_domain!r}"
            )
        checks: list[SvidPolicy] = [
            _LeafConstraints(
                allow_ca=self.faults.active("accepts-ca-leaf"),
                allow_cert_sign=self.faults.active("accepts-key-cert-sign-leaf"),
            )
        ]
        if not self.faults.active("accepts-expired"):
            checks.insert(0, Validity())
        checks += [AllowedKey(), AllowedSignature()]
        AllOf(checks).check(chain)
        parts = spiffe_id.segments
        shaped = len(parts) == 5 and parts[:4] == ("margo", "wfm", self.wfm_id, "client")
        if not shaped and not self.faults.active("accepts-wrong-path"):
            raise SvidError(f"WIP-005: {spiffe_id} is not a client of this WFM")
        return spiffe_id


class _LeafConstraints:
    """SVID-006(c) leaf rules; ``allow_ca`` (fault accepts-ca-leaf) skips only the cA=false rule."""

    def __init__(self, *, allow_ca: bool, allow_cert_sign: bool = False) -> None:
        self.allow_ca = allow_ca
        self.allow_cert_sign = allow_cert_sign

    def check(self, chain: Sequence[x509.Certificate]) -> None:
        leaf = leaf_of(chain)
        try:
            ca = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            ca = False
        if ca and not self.allow_ca:
            raise SvidError("SVID-006(c): leaf has cA=true")
        try:
            usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            return
        if (usage.key_cert_sign or usage.crl_sign) and not self.allow_cert_sign:
            raise SvidError("SVID-006(c): leaf has keyCertSign or cRLSign key usage")


class AcceptedClients:
    """WIP-008: the accepted-client policy, kept in memory and mirrored in the store."""

    def __init__(
        self, trust_domain: str, wfm_id: str, entries: Sequence[PolicyEntry], retired: set[str]
    ) -> None:
        self.namespace = f"spiffe://{trust_domain}/margo/wfm/{wfm_id}/client/"
        self.exact: set[str] = set()
        self.client_ids: set[str] = set()
        self.patterns: set[str] = set()
        self.retired: set[str] = set(retired)
        for entry in entries:
            self.add(entry)

    def add(self, entry: PolicyEntry) -> None:
        if entry.kind == "spiffe_id":
            self.exact.add(entry.value)
            self.retired.discard(entry.value)
        elif entry.kind == "client_id":
            self.client_ids.add(entry.value)
        else:
            self.patterns.add(entry.value)

    def retire(self, spiffe_id: str) -> None:
        self.retired.add(spiffe_id)

    def listed(self, spiffe_id: SpiffeId) -> bool:
        text = str(spiffe_id)
        if text in self.exact:
            return True
        if text.startswith(self.namespace) and spiffe_id.client_id in self.client_ids:
            return True
        return any(_matches(pattern, text) for pattern in self.patterns)

    def is_retired(self, spiffe_id: SpiffeId) -> bool:
        return str(spiffe_id) in self.retired

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "spiffe_ids": sorted(self.exact),
            "client_ids": sorted(self.client_ids),
            "patterns": sorted(self.patterns),
            "retired": sorted(self.retired),
        }


def _matches(pattern: str, spiffe_id: str) -> bool:
    """``…/client/*`` admits every single-segment name under that prefix (exact, case-sensitive)."""
    prefix = pattern[:-1]
    rest = spiffe_id[len(prefix) :]
    return spiffe_id.startswith(prefix) and bool(rest) and "/" not in rest


def policy_entry(body: object, trust_domain: str, wfm_id: str) -> PolicyEntry:
    """Parse an admin ``{"spiffe_id"|"client_id"|"pattern"}`` body; ValueError with a reason otherwise."""
    if not isinstance(body, dict) or len(body) != 1:
        raise ValueError('expected exactly one of {"spiffe_id"}, {"client_id"} or {"pattern"}')
    ((kind, value),) = body.items()
    if kind not in ("spiffe_id", "client_id", "pattern") or not isinstance(value, str) or not value:
        raise ValueError(
            'expected exactly one of {"spiffe_id"}, {"client_id"} or {"pattern"} (a non-empty string)'
        )
    if kind == "spiffe_id":
        SpiffeId.parse(value)
    elif kind == "client_id":
        SpiffeId.client(trust_domain, wfm_id, value)
    else:
        if not value.endswith("/*"):
            raise ValueError("a pattern ends with /* (e.g. spiffe://td/margo/wfm/<wfm-id>/client/*)")
        SpiffeId.parse(value[:-2])
    return PolicyEntry(kind, value)


def client_spiffe_id(value: str, trust_domain: str, wfm_id: str) -> str:
    """An admin ``client_id``: a full SPIFFE ID, or a wfm-client-id under this WFM."""
    if value.startswith("spiffe://"):
        return str(SpiffeId.parse(value))
    return str(SpiffeId.client(trust_domain, wfm_id, value))
