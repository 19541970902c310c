"""The identity toolkit: SPIFFE IDs, the operator's PKI, SVID policies, and mTLS contexts (MIAF)."""

from __future__ import annotations

from .bundle import jwk_of, spiffe_bundle, x509_anchors
from .ids import SpiffeId, SvidError, check_segment, check_trust_domain
from .issuance import Flaw, Pki, Svid, SvidFiles
from .policy import (
    AllOf,
    AllowedKey,
    AllowedSignature,
    ChainsToBundle,
    ClientShape,
    ExactSpiffeId,
    LeafNotCa,
    OneUriSan,
    SpiffeScheme,
    SvidPolicy,
    TrustDomainIs,
    Validity,
    client_policy,
    spiffe_id_of,
    wfm_policy,
)
from .tls import client_context, legacy_tls11_client_context, peer_chain, server_context

__all__ = [
    "AllOf",
    "AllowedKey",
    "AllowedSignature",
    "ChainsToBundle",
    "ClientShape",
    "ExactSpiffeId",
    "Flaw",
    "LeafNotCa",
    "OneUriSan",
    "Pki",
    "SpiffeId",
    "SpiffeScheme",
    "Svid",
    "SvidError",
    "SvidFiles",
    "SvidPolicy",
    "TrustDomainIs",
    "Validity",
    "check_segment",
    "check_trust_domain",
    "client_context",
    "client_policy",
    "jwk_of",
    "legacy_tls11_client_context",
    "peer_chain",
    "server_context",
    "spiffe_bundle",
    "spiffe_id_of",
    "wfm_policy",
    "x509_anchors",
]
