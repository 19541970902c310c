"""Faults as data for the reference device (DESIGN.md §3): each fault is ONE named violation of ONE
requirement of a device's WFM client.

The agent asks ``faults.active("<name>")`` at the one place where the faulty behaviour differs from the
correct one. With a fault switched on the reference device is a *mutant* for the self-test: the device
scenarios that cover the named requirement must fail against it, and only those.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..faults import Fault as Fault
from ..faults import FaultSet as SharedFaultSet
from ..faults import catalogue, variant

FAULTS: dict[str, Fault] = catalogue(
    # -- introduction and polling --
    Fault(
        "capabilities-after-manifest",
        "ONB-004",
        "the first cycle asks for the desired state before the capabilities are reported",
        "capabilities",
    ),
    Fault("omits-otel-collector", "CAP-004", "a hosting device reports otelCollector false", "capabilities"),
    Fault(
        "reports-custom-runtime",
        "DEV-007",
        "the Compose device reports supportedRuntimes [custom] (with a label saying which), not oci",
        "capabilities",
    ),
    Fault(
        "polls-too-rarely",
        "DS-001",
        "after an answered poll the next one waits ten polling periods, not one",
        "polling",
    ),
    # -- manifest acceptance (protocol digest §9 step 2) --
    Fault(
        "accepts-rollback",
        "DS-024",
        "a manifest whose manifestVersion is lower than the stored one is accepted",
        "manifest",
    ),
    Fault(
        "accepts-equal-version",
        "DS-024",
        "a manifest whose manifestVersion equals the stored one (with a new ETag) is accepted",
        "manifest",
    ),
    Fault(
        "accepts-unknown-algorithm",
        "DS-023",
        "a manifest naming a digest algorithm other than sha256 is processed; such digests go unchecked",
        "manifest",
    ),
    # -- digests (step 4) --
    Fault(
        "skips-digest-check",
        "DS-022",
        "fetched YAMLs and bundles are used without comparing their digest",
        "digest",
    ),
    Fault(
        "partial-update-on-mismatch",
        "DS-022",
        "a deployment whose YAML misses its digest is skipped, the rest of the update is applied",
        "digest",
    ),
    Fault(
        "trusts-size-bytes",
        "DS-104",
        "an artifact whose length differs from the advertised sizeBytes is refused as corrupt",
        "digest",
    ),
    Fault(
        "deletes-on-404",
        "DS-019",
        "a 404 on a deployment URL is taken as a deletion: the workload is removed",
        "digest",
    ),
    # -- state (step 7) --
    Fault(
        "no-persist",
        "DS-025",
        "manifestVersion, ETag and held deployments live in memory only and are lost on restart",
        "state",
    ),
    # -- reconciliation (step 5) --
    Fault(
        "ignores-eligibility",
        "ADEP-003",
        "a deployment is deployed without evaluating its eligibility rules and capacity",
        "deployment",
    ),
    Fault(
        "fails-on-unknown-extension",
        "ADEP-006",
        "a deployment carrying an x-…-extensions member the device does not know is failed",
        "deployment",
    ),
    # -- status (step 6) --
    Fault(
        "no-status-on-change",
        "DS-002",
        "an update (same deploymentId, new digest) is applied without any status report",
        "status",
    ),
    Fault(
        "no-installing-report",
        "DS-002",
        "a new deployment is reported only when installed (or failed), never while installing",
        "status",
    ),
    Fault(
        "no-removed-report",
        "DS-002",
        "a removal is reported as removing, but its end (removed) never is",
        "status",
    ),
    Fault(
        "wrong-rollup",
        "STAT-003",
        "the overall state is the least severe component state instead of the most severe",
        "status",
    ),
    Fault(
        "sends-legacy-envelope",
        "STAT-103",
        "every status report also carries the older sources' apiVersion and kind envelope (INC-008)",
        "status",
    ),
    Fault(
        "adopted-version-wrong",
        "STAT-008",
        "adoptedManifestVersion is the version held before the update, not the one being applied",
        "status",
    ),
    # -- transport --
    Fault(
        "ignores-retry-after",
        "API-RETRY-005",
        "after a retryable error the next attempt follows the device's own backoff, not Retry-After",
        "retry",
    ),
    Fault(
        "wrong-wfm-id-accepted",
        "WIP-007",
        "a WFM whose SVID carries another wfm-id (same trust domain, valid chain) is talked to",
        "identity",
    ),
    Fault(
        "accepts-untrusted-chain",
        "TLS-008",
        "the WFM's chain is not validated against the trust anchors; only its SPIFFE ID is checked",
        "identity",
    ),
    Fault("accepts-tls11", "TLS-005", "the client also negotiates TLS 1.1", "identity"),
    Fault(
        "negotiates-tls11-then-hangs-up",
        "TLS-005",
        "the client completes a TLS 1.1 handshake, then closes the connection without a request",
        "identity",
    ),
    # -- the Docker Compose runtime (isolation profile; no effect on the in-memory runtime) --
    Fault(
        "shared-network",
        "ISO-101",
        "every service of every deployment also joins one network that all deployments share",
        "runtime",
    ),
    Fault(
        "shared-volume",
        "ISO-102",
        "every service of every deployment mounts one host folder that all deployments share",
        "runtime",
    ),
    Fault("privileged-workloads", "ISO-103", "every service runs privileged", "runtime"),
    Fault("runs-as-root", "ISO-104", "every service runs as root (0:0), whatever its user: says", "runtime"),
    Fault(
        "drops-resource-limits",
        "ISO-105",
        "deploy.resources of the package's Compose file are cut out before it is started",
        "runtime",
    ),
    Fault(
        "shares-environment",
        "ISO-106",
        "every service gets the parameter variables of every deployment the device holds",
        "runtime",
    ),
    Fault(
        "removes-every-deployment",
        "ISO-107",
        "removing one deployment takes the workloads of every other deployment down too",
        "runtime",
    ),
    Fault(
        "ignores-compose-failure",
        "DS-002",
        "a component whose docker compose up fails is reported installed",
        "runtime",
    ),
    # -- signature verification (signing profile; only with a trust policy, in the Compose runtime) --
    Fault(
        "skips-signature-verification",
        "SIGN-114",
        "a component's manifest is deployed without its signature being verified, whatever the policy",
        "signing",
    ),
    Fault(
        "accepts-untrusted-signer",
        "SIGN-116",
        "a signing chain is accepted without leading to the trust store: any self-signed root will do",
        "signing",
    ),
    Fault(
        "accepts-expired-signing-certificate",
        "SIGN-116",
        "a refusal for certificate validity alone is ignored, so an expired signer passes without an "
        "RFC 3161 timestamp",
        "signing",
    ),
    Fault("accepts-rs256", "SIGN-114", "a refusal for the RS256 algorithm alone is ignored", "signing"),
    Fault(
        "ignores-signed-digest",
        "SIGN-116",
        "a valid signature is accepted whatever descriptor it signs, even another artifact's manifest",
        "signing",
    ),
    Fault(
        "rejects-es256",
        "SIGN-114",
        "a verified ES256 signature is refused (SUP-03 requires ES256)",
        "signing",
    ),
    Fault(
        "rejects-ps256",
        "SIGN-114",
        "a verified PS256 signature is refused (SUP-03 requires PS256)",
        "signing",
    ),
    Fault(
        "enforces-logged-failures",
        "SIGN-116",
        "a failure the policy level only logs (audit, permissive) refuses the component as strict would",
        "signing",
    ),
    # -- variants: behaviours the spec allows that the reference does not choose (every device scenario
    # must pass with each, and with all of them on together) --
    variant(
        "fetches-through-bundle",
        "DS-022",
        "every update is fetched through the manifest's bundle, never through a deployment's YAML URL; a "
        "wanted deployment absent from the verified bundle aborts the update",
        "digest",
        allowed_by="DS-027 (the client may use the bundle; digest:420), DS-022",
    ),
    variant(
        "component-errors-only",
        "STAT-005",
        "a failed deployment's report carries its errors on the components only, never status.error",
        "status",
        allowed_by="OA3 DeploymentStatusManifest: status.error is optional (OA3 616-624)",
    ),
    variant(
        "injects-otel-env",
        "OBS-011",
        "every container gets HTTP_OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_PROTOCOL of the device",
        "runtime",
        allowed_by="OBS-011 (the device owner injects them into each container; digest:738), INC-142",
    ),
    variant(
        "own-refusal-words",
        "SIGN-114",
        "a refused component's error says 'notary verification failed', never signature/signed",
        "signing",
        allowed_by="SUP-03 §4 (verify, do not deploy) sets no wording; INC-141",
    ),
    variant(
        "restarts-workloads-on-restart",
        "DS-025",
        "a started agent restarts the containers of every deployment it holds (same configuration)",
        "runtime",
        allowed_by="DS-025 binds the stored manifestVersion and ETag, not the workloads' uptime",
    ),
    variant(
        "ineligible-not-reported",
        "ADEP-003",
        "a deployment whose eligibility rules the device does not meet is neither deployed nor reported",
        "deployment",
        allowed_by="ADEP-003 (evaluate before deploying) sets no report; INC-141",
    ),
)

# The faults only the Docker Compose runtime acts on (the agent never asks for them).
RUNTIME_FAULTS = frozenset(f.name for f in FAULTS.values() if f.area == "runtime")


class FaultSet(SharedFaultSet):
    """The faults switched on in one device agent (fixed at start, like a mutant build)."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        super().__init__(FAULTS, names, kind="device fault")
