"""The MIS faults and variants (DESIGN.md §3): one named violation (or allowed choice) of the Trust Bundle
API each, switched on like every WFM fault (``--fault NAME``; the self-test's ``--margo-wfm-fault``).

They sit in the WFM's one catalogue (``faults.FAULTS``) with area ``mis`` because the reference WFM
process serves the trust endpoints; ``mis.TrustEndpoints`` asks ``faults.active(name)`` where each
differs. This module imports nothing but the shared fault machinery, so the catalogue loads without the
server."""

from __future__ import annotations

from ..faults import Fault, variant

AREA = "mis"

MIS_FAULTS: tuple[Fault, ...] = (
    # -- the discovery document (TB-102) --
    Fault("mis-bundle-uri-http", "TB-102", "trustBundleUri is an http:// URL", AREA),
    Fault("mis-bundle-uri-relative", "TB-102", "trustBundleUri is a relative reference, not absolute", AREA),
    Fault("mis-wrong-trust-domain", "TB-102", "trustDomain names another trust domain", AREA),
    Fault("mis-discovery-text-plain", "TB-102", "the discovery document is sent as text/plain", AREA),
    Fault(
        "mis-client-cert-required",
        "TB-102",
        "the trust endpoints demand a client certificate, which a bootstrapping client cannot have",
        AREA,
    ),
    # -- the SPIFFE bundle (TB-104) --
    Fault("mis-zero-anchors", "TB-104", "the bundle's keys array holds no x509-svid key", AREA),
    Fault("mis-jwt-only", "TB-104", "the bundle's only key is a jwt-svid key (no X.509 anchor)", AREA),
    Fault("mis-anchor-not-ca", "TB-104", "the x509-svid key's x5c holds the WFM's leaf, not a CA", AREA),
    Fault(
        "mis-foreign-anchor",
        "TB-104",
        "the bundle's anchor is another PKI's root, so it validates no SVID of the trust domain",
        AREA,
    ),
    Fault(
        "mis-sequence-backwards",
        "TB-104",
        "every bundle response carries a spiffe_sequence lower than the one before",
        AREA,
    ),
    Fault("mis-refresh-hint-string", "TB-104", 'spiffe_refresh_hint is a string ("3600")', AREA),
    # -- caching (TB-103, SHOULD) --
    Fault("mis-no-etag", "TB-103", "discovery and bundle answers carry no ETag", AREA),
    Fault("mis-etag-ignored", "TB-103", "a matching If-None-Match gets 200 with the body again", AREA),
    # -- errors (TB-106) --
    Fault(
        "mis-404-html", "TB-106", "an unknown path under the trust endpoints is a 404 text/html page", AREA
    ),
    # -- TLS --
    Fault("mis-tls11-accepted", "TLS-005", "the trust endpoints negotiate TLS 1.1", AREA),
    Fault("mis-tls13-refused", "TLS-003", "the trust endpoints offer at most TLS 1.2", AREA),
    # -- variants: what the spec leaves open --
    variant(
        "mis-bundle-elsewhere",
        "TB-102",
        "the bundle is served at /trust/bundle.json, not at the illustrative /.well-known/spiffe path",
        AREA,
        allowed_by="TBAPI /.well-known/spiffe/bundle.json: 'The path shown here is illustrative; the "
        "authoritative location is the trustBundleUri value'",
    ),
    variant(
        "mis-extra-fields",
        "TB-102",
        "the discovery document and the bundle carry members the spec does not define",
        AREA,
        allowed_by="TBAPI DiscoveryDocument and SpiffeBundle: additionalProperties: true; 'Clients MUST "
        "ignore unknown fields'",
    ),
    variant(
        "mis-jwt-key-too",
        "TB-104",
        "the bundle carries a jwt-svid key beside the x509-svid anchor",
        AREA,
        allowed_by="TBAPI SpiffeBundle: 'The JWK Set MAY also carry jwt-svid signing keys'",
    ),
    variant(
        "mis-no-sequence-or-hint",
        "TB-104",
        "the bundle carries neither spiffe_sequence nor spiffe_refresh_hint",
        AREA,
        allowed_by="SPIFFE Trust Domain and Bundle §4.1: both parameters are OPTIONAL (errata INC-197)",
    ),
    variant(
        "mis-weak-etag",
        "TB-103",
        'the ETag is a weak validator (W/"…")',
        AREA,
        allowed_by="TBAPI: the ETag header is a plain string; RFC 9110 §13.1.2: If-None-Match uses weak "
        "comparison",
    ),
    variant(
        "mis-tls12-fallback",
        "TLS-004",
        "the trust endpoints also accept TLS 1.2 (RFC 9325 ciphers) as a non-default fallback",
        AREA,
        allowed_by="P-TLS Minimum TLS Baseline: TLS 1.2 MAY be offered as a non-default fallback",
    ),
)
