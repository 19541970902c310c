"""Faults as data (DESIGN.md §3): each fault is ONE named violation of ONE requirement of the WFM.

The reference WFM checks ``faults.active("<name>")`` at the one place where the faulty behaviour
differs from the correct one; there are no forked copies of handlers. The same catalogue makes the
instrument WFM that tests devices (faults served on purpose) and the mutants of the self-test.

Each fault names the registry requirement it breaks (``Registry.load()`` knows every one; a test keeps
it that way) and says in one line what the WFM then does wrong.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..faults import Fault as Fault
from ..faults import FaultSet as SharedFaultSet
from ..faults import catalogue, variant
from .mis_faults import MIS_FAULTS

FAULTS: dict[str, Fault] = catalogue(
    *MIS_FAULTS,  # the trust endpoints' faults and variants (area mis), fixtures/mis/faults.yaml
    # -- the State Manifest (GET /api/v1/deployments) --
    Fault("etag-weak", "DS-007", 'the manifest ETag is a weak validator (W/"sha256:…")', "manifest"),
    Fault(
        "etag-not-body-digest",
        "DS-007",
        "the manifest ETag is the digest of something other than the exact body sent",
        "manifest",
    ),
    Fault("manifest-cache-public", "DS-009", "the manifest is sent with Cache-Control: public", "manifest"),
    Fault(
        "manifest-immutable",
        "DS-009",
        "the manifest is sent with Cache-Control: private, max-age=31536000, immutable",
        "manifest",
    ),
    Fault(
        "accept-missing-406", "DS-004", "a manifest request without Accept is refused with 406", "manifest"
    ),
    Fault(
        "accept-unsupported-200",
        "DS-003",
        "a manifest request whose Accept lists only unsupported types still gets 200",
        "manifest",
    ),
    Fault(
        "if-none-match-ignored",
        "DS-006",
        "a matching If-None-Match on the manifest gets 200 with the body instead of 304",
        "manifest",
    ),
    Fault("not-modified-with-body", "DS-006", "the manifest 304 carries a body", "manifest"),
    Fault("version-starts-at-0", "DS-011", "a client's first manifestVersion is 0, not 1", "manifest"),
    Fault(
        "version-not-bumped",
        "DS-011",
        "a change of the client's deployments keeps the previous manifestVersion",
        "manifest",
    ),
    Fault(
        "version-not-bumped-on-update",
        "DS-011",
        "new content under the same deploymentId keeps the previous manifestVersion",
        "manifest",
    ),
    Fault(
        "version-not-bumped-on-removal",
        "DS-011",
        "removing a deployment keeps the previous manifestVersion",
        "manifest",
    ),
    Fault(
        "version-bumped-on-every-poll",
        "DS-006",
        "every poll bumps manifestVersion, so an unchanged manifest never matches If-None-Match (304)",
        "manifest",
    ),
    Fault(
        "version-reset-on-restart",
        "DS-011",
        "after a restart manifestVersion starts again at 1 (rollback of the sequence)",
        "manifest",
    ),
    Fault(
        "empty-bundle-archive",
        "DS-012",
        "a manifest without deployments references an empty bundle archive instead of bundle: null",
        "manifest",
    ),
    Fault(
        "bundle-omitted", "DS-012", "a manifest without deployments leaves out the bundle member", "manifest"
    ),
    Fault(
        "bundle-null-with-deployments",
        "DS-027",
        "a manifest with deployments says bundle: null, so a client cannot choose the bundle",
        "manifest",
    ),
    Fault(
        "cross-client-manifest",
        "API-SEC-004",
        "a client's manifest lists the deployments of every client, not only its own",
        "manifest",
    ),
    Fault(
        "url-digest-mismatch",
        "DS-101",
        "deployments[].url carries a digest other than deployments[].digest",
        "manifest",
    ),
    # -- digest-addressed resources --
    Fault(
        "yaml-trailing-newline",
        "DS-021",
        "the deployment YAML is served with an extra trailing newline, so its bytes miss the digest",
        "digest",
    ),
    Fault(
        "deployment-etag-unquoted",
        "DS-015",
        "the deployment YAML ETag is the bare, unquoted digest",
        "digest",
    ),
    Fault(
        "deployment-not-immutable",
        "DS-015",
        "the deployment YAML is sent with Cache-Control: private, no-cache (not immutable)",
        "digest",
    ),
    Fault(
        "bundle-extra-yaml",
        "DS-013",
        "the bundle archive holds one YAML more than the manifest references",
        "digest",
    ),
    Fault(
        "bundle-missing-yaml",
        "DS-013",
        "the bundle archive lacks one of the YAMLs the manifest references",
        "digest",
    ),
    Fault(
        "bundle-wrong-content-type",
        "DS-014",
        "the bundle is sent as application/gzip instead of the manifest's bundle.mediaType",
        "digest",
    ),
    Fault(
        "unknown-digest-200",
        "DS-018",
        "a deployment URL with an unknown digest gets the deployment's current bytes with 200",
        "digest",
    ),
    Fault(
        "cross-client-deployments",
        "API-SEC-004",
        "a deployment YAML of another client is served to whoever asks for its URL",
        "digest",
    ),
    # -- capabilities --
    Fault(
        "cross-client-devices",
        "API-SEC-005",
        "deviceIds are global: the same deviceId from two clients names one device record",
        "capabilities",
    ),
    Fault(
        "capabilities-create-200",
        "CAP-101",
        "the first capabilities PUT for a deviceId answers 200",
        "capabilities",
    ),
    Fault(
        "capabilities-update-201", "CAP-101", "a repeated capabilities PUT answers 201 again", "capabilities"
    ),
    Fault(
        "malformed-body-422",
        "CAP-102",
        "an unparseable capabilities body answers 422, not 400",
        "capabilities",
    ),
    Fault(
        "semantic-error-400",
        "CAP-102",
        "a schema-invalid capabilities body answers 400, not 422",
        "capabilities",
    ),
    Fault(
        "semantic-error-without-errors",
        "CAP-102",
        "the 422 of a schema-invalid capabilities body has no errors[] member",
        "capabilities",
    ),
    Fault(
        "child-before-gateway-accepted",
        "CAP-008",
        "a child deviceId reported before its gateway is accepted instead of 404 #gateway-not-found",
        "capabilities",
    ),
    Fault("delete-200", "CAP-103", "DELETE of a registered device answers 200, not 204", "capabilities"),
    Fault(
        "delete-unknown-204", "CAP-103", "DELETE of an unknown deviceId answers 204, not 404", "capabilities"
    ),
    # -- deployment status --
    Fault("status-create-200", "STAT-101", "the first status report of a deployment answers 200", "status"),
    Fault(
        "cross-client-status",
        "API-SEC-003",
        "a status report is stored for the deployment's owner, whoever posts it (the path names the caller)",
        "status",
    ),
    Fault(
        "status-mismatched-id-accepted",
        "STAT-101",
        "a status body whose deploymentId differs from the path is accepted",
        "status",
    ),
    # -- errors --
    Fault("problem-as-json", "API-ERR-001", "error bodies are sent as application/json", "errors"),
    Fault("problem-without-type", "API-ERR-002", "error bodies have no type member", "errors"),
    Fault(
        "problem-type-about-blank",
        "ERR-001",
        "every error body says type about:blank, never the registered Margo type of its category",
        "errors",
    ),
    Fault(
        "overload-without-retry-after",
        "API-RETRY-001",
        "a 429 overload answer has no Retry-After header",
        "errors",
    ),
    # -- identity (connection-level and policy) --
    Fault(
        "accepts-foreign-trust-domain",
        "SVID-006",
        "a client SVID from another trust domain is accepted",
        "identity",
    ),
    Fault(
        "accepts-wrong-path",
        "WIP-005",
        "a validly issued SVID whose SPIFFE ID is not …/margo/wfm/<wfm-id>/client/<id> is accepted",
        "identity",
    ),
    Fault("accepts-two-uri-sans", "SVID-006", "a client leaf with two URI SANs is accepted", "identity"),
    Fault("accepts-ca-leaf", "SVID-006", "a client leaf with cA=true is accepted", "identity"),
    Fault(
        "accepts-key-cert-sign-leaf",
        "SVID-006",
        "a client leaf with the keyCertSign (or cRLSign) key usage is accepted",
        "identity",
    ),
    Fault(
        "accepts-unlisted-client",
        "WIP-008",
        "a well-formed client that the accepted-client policy does not list is served",
        "identity",
    ),
    Fault("retired-still-accepted", "API-SEC-007", "a retired client is still served", "identity"),
    Fault(
        "accepts-anonymous",
        "API-SEC-002",
        "a request without a client certificate is served (as an anonymous client)",
        "tls",
    ),
    Fault(
        "accepts-expired",
        "TLS-008",
        "client certificates are not checked against their validity period",
        "tls",
    ),
    Fault(
        "accepts-unknown-issuer",
        "TLS-008",
        "a CA outside the trust bundle (the PKI's untrusted-ca) is trusted too",
        "tls",
    ),
    # -- TLS --
    Fault("tls11-accepted", "TLS-005", "the Management Interface negotiates TLS 1.1", "tls"),
    Fault("tls13-refused", "TLS-003", "the Management Interface offers at most TLS 1.2", "tls"),
    Fault(
        "wfm-wrong-spiffe-id",
        "WIP-004",
        "the WFM presents a validly issued SVID with another wfm-id",
        "tls",
    ),
    Fault(
        "omits-intermediate",
        "SVID-001",
        "the WFM presents its leaf without the intermediate needed to reach the trust anchor",
        "tls",
    ),
    # -- the ApplicationDeployment the WFM makes from a description --
    Fault(
        "application-id-wrong",
        "ADEP-101",
        "spec.applicationId is not the description's id",
        "deployment",
    ),
    Fault(
        "constraints-modified",
        "ADEP-001",
        "deviceConstraints are changed on the way from the description to the deployment",
        "deployment",
    ),
    Fault(
        "extensions-dropped",
        "ADEP-005",
        "profile- and component-level x-…-extensions of the description are not copied",
        "deployment",
    ),
    Fault(
        "root-extensions-forwarded",
        "APPD-007",
        "the description's root (WFM-targeted) extensions are forwarded to the device in spec",
        "deployment",
    ),
    Fault(
        "parameters-ignored",
        "APPD-001",
        "the operator's parameter values are ignored; the description's defaults are deployed",
        "deployment",
    ),
    # -- packages deployed from a registry under a trust policy (SUP-03) --
    Fault(
        "skips-signature-verification",
        "SIGN-113",
        "a package is deployed without any signature being verified, whatever the trust policy says",
        "signing",
    ),
    Fault(
        "accepts-untrusted-signer",
        "SIGN-113",
        "authenticity failures of the signing chain are ignored: a signer whose root is not in the trust "
        "store is accepted",
        "signing",
    ),
    Fault(
        "accepts-expired-signing-certificate",
        "SIGN-113",
        "authenticTimestamp failures are ignored: a signing certificate that expired, with no RFC 3161 "
        "timestamp, is accepted under strict",
        "signing",
    ),
    Fault(
        "verifies-tag-not-digest",
        "SIGN-113",
        "the tag is trusted, not the digest: if the repository holds signatures for an earlier target of "
        "the tag (a sha256-… referrers-tag index), those are verified instead of the digest the tag now "
        "resolves to, which is then deployed: a tag re-pushed after signing passes",
        "signing",
    ),
    Fault(
        "ignores-component-signatures",
        "SIGN-113",
        "only the application package manifest's signatures decide: a Compose archive or Helm chart "
        "manifest that fails verification (e.g. unsigned) is deployed",
        "signing",
    ),
    Fault(
        "rejects-es256",
        "SIGN-113",
        "a verified ES256 signature is refused (SUP-03 requires ES256)",
        "signing",
    ),
    # -- variants: behaviours the spec allows that the reference does not choose (each must pass) --
    variant(
        "refuses-unaccepted-at-handshake",
        "WIP-008",
        "a client the accepted-client policy does not list is refused at the connection, with no HTTP",
        "identity",
        allowed_by="WIP-005 'otherwise reject the connection'; API-SEC-008 is a SHOULD (errata INC-125)",
    ),
    variant(
        "refuses-retired-at-handshake",
        "API-SEC-007",
        "a retired client is refused at the connection, with no HTTP",
        "identity",
        allowed_by="API-SEC-007 MUST deny; the 403 form is API-SEC-008, a SHOULD (errata INC-125)",
    ),
    variant(
        "retired-problem-type",
        "API-SEC-008",
        "a retired client gets 403 with the prose's type …#wfm-client-relationship-retired",
        "identity",
        allowed_by="api-requirements-and-security names that type for a retired client (errata INC-001)",
    ),
    variant(
        "status-id-mismatch-400",
        "STAT-101",
        "a status body whose deploymentId differs from the path gets 400 #invalid-request, not 422",
        "status",
        allowed_by="errata INC-103: 400 #invalid-request or 422 #semantic-error",
    ),
    variant(
        "short-private-max-age",
        "DS-009",
        "the manifest is sent with Cache-Control: private, max-age=5",
        "manifest",
        allowed_by="DS-009 forbids only a long max-age; errata INC-126 reads long as over 60 seconds",
    ),
    variant(
        "version-bumped-on-restart",
        "DS-011",
        "after a restart every client's manifestVersion is one higher, although nothing changed",
        "manifest",
        allowed_by="DS-011 asks only for a strictly greater version per new manifest (errata INC-127)",
    ),
)

TLS_FAULTS = frozenset(name for name, fault in FAULTS.items() if fault.area == "tls")


class FaultSet(SharedFaultSet):
    """The faults switched on in one running WFM; replaced as a whole at run time."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        super().__init__(FAULTS, names, kind="fault")
