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
from ..faults import catalogue

FAULTS: dict[str, Fault] = catalogue(
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
        "wrong-rollup",
        "STAT-003",
        "the overall state is the least severe component state instead of the most severe",
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
)


class FaultSet(SharedFaultSet):
    """The faults switched on in one device agent (fixed at start, like a mutant build)."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        super().__init__(FAULTS, names, kind="device fault")
