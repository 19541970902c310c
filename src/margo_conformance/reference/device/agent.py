"""The reference device agent: a real WFM client that polls, verifies, reconciles and reports.

One cycle (``sync_once``) follows the client workflow of the protocol digest §9:

  0. first exchange of a started agent: PUT its capabilities (CAP-001); queued status reports of
     earlier cycles are sent before anything else;
  1. GET /api/v1/deployments with If-None-Match of the stored ETag; 304 -> done (DS-006);
  2. a 200 whose manifestVersion is not strictly above the stored one is rejected, state kept, and a
     security event logged (DS-024); a digest with another algorithm than sha256 makes the whole
     manifest invalid (DS-023);
  3. fetch what changed: the bundle on an initial sync (DS-027, members matched by digest since the
     archive layout is unspecified, errata INC-104), otherwise the individual YAMLs;
  4. verify EVERY digest over the exact decoded bytes; any mismatch, or a 404 on a digest URL, aborts
     the whole update with the previous state kept (DS-021, DS-022, DS-019); ``sizeBytes`` is never
     looked at (DS-104);
  5. reconcile: new or changed deployments are checked against capacity and eligibility rules BEFORE
     deploying (ADEP-003, ELIG-006..015), then deployed; deployments absent from the manifest are
     removed (DS-026); unknown ``x-…-extensions`` are ignored (ADEP-006);
  6. a status report for every change (DS-002, STAT-001..008);
  7. the new manifestVersion and ETag persisted durably (DS-025).

Retry semantics (API-RETRY-005): after a problem answer marked retryable, no request is sent before
``Retry-After`` (header authoritative, ``retryAfterSeconds`` otherwise) has elapsed, and successive
failures are spaced by ``backoffStrategy``; a non-retryable failure is not retried (a dropped status
report, or simply the next periodic poll). ``sync_once`` itself refuses to send before ``not_before``.

Identity (WIP-007) lives in ``transport``: the WFM must be exactly spiffe://<own td>/margo/wfm/<own
wfm-id> from the agent's own SVID, or the connection is closed before any request.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..._internal.tar_safety import open_tar_gz
from ...errors import InputError
from ...pki import SvidFiles
from .capabilities import host_capabilities
from .eligibility import evaluate
from .faults import FaultSet
from .runtime import ComponentOutcome, InMemoryRuntime, Runtime, StatusError, component_names
from .state import DeviceState, HeldDeployment, StateStore
from .transport import MANIFEST_TYPE, Response, TransportError, WfmIdentityError, WfmTransport

LOG = logging.getLogger("margo_conformance.reference.device")
SECURITY = logging.getLogger("margo_conformance.reference.device.security")

BUNDLE_TYPE = "application/vnd.margo.bundle.v1+tar+gzip"
YAML_TYPE = "application/yaml"
EXTENSION = re.compile(r"^x-[a-z][a-z0-9-]*-extensions$")
# errata INC-006: the garbled precedence read as failed > removing > installing > pending > removed >
# installed (most severe first).
SEVERITY = ("failed", "removing", "installing", "pending", "removed", "installed")
RETRYABLE_STATUSES = frozenset({429, 500, 503})  # API-REQ retry table, when a body says nothing
DIGEST_GRAMMAR = re.compile(r"^([a-z0-9_-]+):([0-9a-f]+)$")  # DS-020 / SUP-DS grammar
SUPPORTED = {"sha256": re.compile(r"^sha256:[0-9a-f]{64}$")}  # the one required algorithm


@dataclass(frozen=True)
class DeviceConfig:
    """Everything one device agent needs."""

    wfm_url: str
    svid: SvidFiles
    anchors: Path  # trust bundle PEM (the operator's anchors)
    state_dir: Path
    device_id: str | None = None  # default: the wfm-client-id of the SVID
    capabilities: Mapping[str, Any] | None = None  # default: host_capabilities(device_id)
    poll_interval_s: float = 30.0
    faults: tuple[str, ...] = ()
    trust_policy: Path | None = None  # Notary trust policy (SUP-03): the Compose runtime verifies under it
    trust_store: Path | None = None  # its trust store (x509/ca/<name>/…); both or neither
    timeout_s: float = 10.0
    backoff_base_s: float = 1.0
    max_backoff_s: float = 300.0
    prefer_bundle: bool = True  # on an initial sync (DS-027 SHOULD)


@dataclass
class SyncResult:
    """What one cycle did. ``next_attempt_at`` is on the agent's clock (``time.monotonic`` unless a
    clock was given); ``not_before`` is set when a retryable error forbids any request until then."""

    outcome: str
    detail: str = ""
    manifest_version: int | None = None
    reports: list[dict[str, Any]] = field(default_factory=list)
    deployed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    retry_after_s: float | None = None
    next_delay_s: float = 0.0
    next_attempt_at: float = 0.0
    not_before: float | None = None


# Outcomes of a cycle.
NOT_MODIFIED = "not-modified"
APPLIED = "applied"
UNCHANGED = "unchanged"
REJECTED_VERSION = "rejected-version"
REJECTED_ALGORITHM = "rejected-algorithm"
INVALID_MANIFEST = "invalid-manifest"
ABORTED = "aborted"  # digest mismatch, 404 on a digest URL, unreadable bundle: previous state kept
RETRY = "retry"  # a retryable error: nothing is sent before not_before
ERROR = "error"  # a non-retryable error answer
UNREACHABLE = "unreachable"  # no HTTP answer at all
WFM_REFUSED = "wfm-refused"  # WIP-007
BACKING_OFF = "backing-off"  # called before not_before: nothing was sent


class _Stop(Exception):
    """Ends a cycle early with an outcome."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome, self.detail = outcome, detail


@dataclass(frozen=True)
class _Ref:
    """One deployments[] entry of a manifest."""

    deployment_id: str
    digest: str
    url: str
    size_bytes: int | None


class DeviceAgent:
    """A device's WFM client. ``sync_once`` runs one cycle; ``run`` polls until told to stop."""

    def __init__(
        self,
        config: DeviceConfig,
        *,
        runtime: Runtime | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.faults = FaultSet(config.faults)
        self.runtime: Runtime = runtime if runtime is not None else InMemoryRuntime()
        self.clock = clock
        self.transport = WfmTransport(
            config.wfm_url,
            config.svid,
            config.anchors,
            timeout_s=config.timeout_s,
            exact_wfm_id=not self.faults.active("wrong-wfm-id-accepted"),  # WIP-007
            verify_chain=not self.faults.active("accepts-untrusted-chain"),  # TLS-008
            allow_tls11=self.faults.active("accepts-tls11"),  # TLS-005
            tls11_then_hang_up=self.faults.active("negotiates-tls11-then-hangs-up"),  # TLS-005
        )
        self.device_id = config.device_id or self.transport.device_default
        self.capabilities: dict[str, Any] = dict(
            config.capabilities
            if config.capabilities is not None
            else host_capabilities(self.device_id, storage_path=config.state_dir.parent)
        )
        self.store = StateStore(config.state_dir)
        self.state: DeviceState = self.store.load()
        restart = getattr(self.runtime, "restart", None)
        if restart is not None and self.faults.active("restarts-workloads-on-restart"):  # variant
            for deployment_id in self.state.deployments:
                restart(deployment_id)
        if self.faults.active("omits-otel-collector"):  # CAP-004 broken
            self.capabilities.setdefault("properties", {})["otelCollector"] = False
        if self.faults.active("reports-custom-runtime"):  # DEV-007 broken
            self.capabilities.setdefault("properties", {})["supportedRuntimes"] = ["custom"]
            self.capabilities["labels"] = {
                **self.capabilities.get("labels", {}),
                "runtime": "acme-containers",
            }
        self.capabilities_reported = False
        self.cycles = 0
        self.failures = 0  # consecutive retryable failures (backoff exponent)
        self.not_before: float | None = None
        self.events: list[str] = []
        self.sent_reports: list[dict[str, Any]] = []  # every status body the WFM accepted, in order
        self._yaml: dict[str, bytes] = {}
        self._result = SyncResult("")
        self._refused: _Stop | None = None
        self._queue_changed = False

    # -- the cycle --------------------------------------------------------------------------------

    def sync_once(self) -> SyncResult:
        """One poll / verify / reconcile / report cycle."""
        now = self.clock()
        if self.not_before is not None and now < self.not_before:
            result = SyncResult(BACKING_OFF, f"no request before {self.not_before - now:.3f} s from now")
            result.not_before = self.not_before
            result.next_attempt_at = self.not_before
            result.next_delay_s = self.not_before - now
            return result
        self.not_before = None
        self._result = result = SyncResult("")
        self._refused = None
        self._queue_changed = False
        try:
            result.outcome = self._cycle()
        except _Stop as stop:
            result.outcome, result.detail = stop.outcome, stop.detail
        if self._queue_changed and result.outcome != APPLIED:
            self._persist()  # only the report queue moved; the rest of the stored state is unchanged
        self.not_before = result.not_before
        if result.not_before is None:  # answered (or refused): back to the polling period
            self.failures = 0
            rarely = 10 if self.faults.active("polls-too-rarely") else 1  # DS-001 broken
            result.next_delay_s = self.config.poll_interval_s * rarely
            result.next_attempt_at = self.clock() + result.next_delay_s
        else:
            result.next_attempt_at = result.not_before
        return result

    def run(self, stop_event: threading.Event) -> None:
        """Poll every ``poll_interval_s`` (DS-001), honouring the retry rules, until ``stop_event``."""
        try:
            while not stop_event.is_set():
                try:
                    result = self.sync_once()
                except Exception:  # a bug must not end the device's polling
                    LOG.exception("sync cycle failed")
                    result = SyncResult(ERROR, next_attempt_at=self.clock() + self.config.poll_interval_s)
                LOG.info("sync: %s %s", result.outcome, result.detail)
                stop_event.wait(max(result.next_attempt_at - self.clock(), 0.0))
        finally:
            self.transport.close()

    def close(self) -> None:
        self.transport.close()

    def _cycle(self) -> str:
        self.cycles += 1
        late = self.faults.active("capabilities-after-manifest") and self.cycles == 1  # ONB-004 broken
        if not self.capabilities_reported and not late:
            self.report_capabilities()
        interrupted = self._flush_reports()
        if interrupted is not None:
            raise interrupted
        # Step 1.
        headers = {"Accept": MANIFEST_TYPE}
        if self.state.etag is not None:
            headers["If-None-Match"] = self.state.etag
        response = self._send("GET", self.transport.prefix + "/api/v1/deployments", headers=headers)
        if response.status == 304:
            return NOT_MODIFIED
        if response.status != 200:
            self._failure(response, "GET /api/v1/deployments")
        etag = response.header("ETag")
        manifest = self._parse_manifest(response.body)
        version = int(manifest["manifestVersion"])
        self._result.manifest_version = version
        # Step 2.
        stored = self.state.manifest_version
        if stored is not None:
            if version == stored and etag is not None and etag == self.state.etag:
                return UNCHANGED  # the same manifest again (a WFM that ignored If-None-Match)
            if not self._version_acceptable(version, stored):
                event = (
                    f"security-event manifest-version-rejected received={version} stored={stored} "
                    f"wfm={self.transport.peer} (DS-024)"
                )
                self._security(event)
                raise _Stop(REJECTED_VERSION, event)
        refs, bundle = self._references(manifest)
        # Steps 3 and 4: everything fetched and verified before anything changes.
        changed = [r for r in refs if self._held_digest(r.deployment_id) != r.digest]
        fetched, skipped, gone = self._fetch(changed, bundle)
        # Step 5 and 6.
        previous = self.state.manifest_version
        wanted = {r.deployment_id for r in refs}
        for ref in changed:
            if ref.deployment_id in fetched:
                self._apply(ref, fetched[ref.deployment_id], version, previous)
        for deployment_id in [d for d in self.state.deployments if d not in wanted or d in gone]:
            self._remove(deployment_id, version, previous)
        # Step 7.
        self.state.manifest_version, self.state.etag = version, etag
        self._persist()
        self._flush_reports()
        if self._queue_changed:
            self._persist()
        if skipped:
            self._result.detail = f"skipped {', '.join(skipped)}"
        return APPLIED

    def _version_acceptable(self, version: int, stored: int) -> bool:
        """DS-024: strictly greater than the stored version."""
        if version < stored:
            return self.faults.active("accepts-rollback")
        if version == stored:
            return self.faults.active("accepts-equal-version")
        return True

    # -- step 0: capabilities ---------------------------------------------------------------------

    def report_capabilities(self) -> None:
        """PUT the capabilities document (CAP-001); once per start, before anything else."""
        response = self._send_json("PUT", self.transport.capabilities_path(self.device_id), self.capabilities)
        if response.status not in (200, 201):
            self._failure(response, "PUT capabilities")
        self.capabilities_reported = True

    # -- step 2: the manifest ---------------------------------------------------------------------

    def _parse_manifest(self, body: bytes) -> dict[str, Any]:
        try:
            manifest = json.loads(body)
        except ValueError as exc:
            raise _Stop(INVALID_MANIFEST, f"the manifest is not JSON: {exc}") from None
        if not isinstance(manifest, dict):
            raise _Stop(INVALID_MANIFEST, "the manifest is not a JSON object")
        version = manifest.get("manifestVersion")
        if (
            isinstance(version, bool)
            or not isinstance(version, int | float)
            or not math.isfinite(version)
            or version != int(version)
            or not 1 <= version <= 2**64 - 1
        ):
            raise _Stop(INVALID_MANIFEST, f"manifestVersion {version!r} is not an integer in [1, 2^64-1]")
        manifest["manifestVersion"] = int(version)
        return manifest

    def _references(self, manifest: Mapping[str, Any]) -> tuple[list[_Ref], _Ref | None]:
        """The deployments[] and bundle of a manifest; _Stop when malformed or an algorithm is unknown."""
        entries = manifest.get("deployments")
        if not isinstance(entries, list):
            raise _Stop(INVALID_MANIFEST, "deployments is not a list")
        refs = [self._ref(entry, f"deployments[{i}]") for i, entry in enumerate(entries)]
        ids = [r.deployment_id for r in refs]
        if len(set(ids)) != len(ids):
            raise _Stop(INVALID_MANIFEST, "a deploymentId appears twice")
        raw_bundle = manifest.get("bundle")
        bundle = None if raw_bundle is None else self._ref(raw_bundle, "bundle", bundle=True)
        return refs, bundle

    def _ref(self, entry: Any, where: str, *, bundle: bool = False) -> _Ref:
        if not isinstance(entry, Mapping):
            raise _Stop(INVALID_MANIFEST, f"{where} is not an object")
        deployment_id = "" if bundle else entry.get("deploymentId")
        digest, url, size = entry.get("digest"), entry.get("url"), entry.get("sizeBytes")
        if not isinstance(deployment_id, str) or not isinstance(digest, str) or not isinstance(url, str):
            raise _Stop(INVALID_MANIFEST, f"{where} lacks deploymentId, digest or url")
        if not bundle and not deployment_id:
            raise _Stop(INVALID_MANIFEST, f"{where}.deploymentId is empty")
        match = DIGEST_GRAMMAR.match(digest)
        if match is None:
            raise _Stop(INVALID_MANIFEST, f"{where}.digest {digest!r} is not algorithm:encoded (DS-020)")
        algorithm = match.group(1)
        if algorithm in SUPPORTED and not SUPPORTED[algorithm].match(digest):
            raise _Stop(
                INVALID_MANIFEST, f"{where}.digest {digest!r} is not a well-formed {algorithm} digest"
            )
        if algorithm not in SUPPORTED and not self.faults.active("accepts-unknown-algorithm"):
            raise _Stop(
                REJECTED_ALGORITHM,
                f"{where}.digest uses {algorithm!r}, which this device does not support: the whole "
                "manifest is invalid (DS-023)",
            )
        return _Ref(deployment_id, digest, url, size if isinstance(size, int) else None)

    # -- steps 3 and 4: fetch and verify ----------------------------------------------------------

    def _fetch(
        self, changed: list[_Ref], bundle: _Ref | None
    ) -> tuple[dict[str, bytes], list[str], set[str]]:
        """The exact bytes of every changed deployment, each verified; (fetched, skipped, gone)."""
        fetched: dict[str, bytes] = {}
        skipped: list[str] = []
        gone: set[str] = set()
        if not changed:
            return fetched, skipped, gone
        initial = self.state.manifest_version is None or not self.state.deployments
        always = self.faults.active("fetches-through-bundle")  # variant: DS-027 lets a client always use it
        if bundle is not None and (initial or always) and self.config.prefer_bundle:
            fetched.update(self._from_bundle(changed, bundle))
            missing = [r.deployment_id for r in changed if r.deployment_id not in fetched]
            if always and missing:
                raise _Stop(
                    ABORTED,
                    f"the verified bundle holds no member with the digest of {', '.join(missing)}; the whole "
                    "update is aborted, previous state kept (DS-022)",
                )
        for ref in changed:
            if ref.deployment_id in fetched:
                continue
            response = self._get(ref.url, YAML_TYPE)
            if response.status == 404:
                if self.faults.active("deletes-on-404"):  # DS-019 broken
                    gone.add(ref.deployment_id)
                    continue
                raise _Stop(
                    ABORTED,
                    f"{ref.url} answered 404: that digest is unavailable; the update is aborted and the "
                    "previous state kept (DS-019)",
                )
            if response.status != 200:
                self._failure(response, f"GET {ref.url}", abort=True)
            problem = self._integrity(ref, response.body)
            if problem is not None:
                if self.faults.active("partial-update-on-mismatch"):  # DS-022 broken
                    skipped.append(ref.deployment_id)
                    continue
                raise _Stop(ABORTED, f"{problem}; the whole update is aborted, previous state kept (DS-022)")
            fetched[ref.deployment_id] = response.body
        return fetched, skipped, gone

    def _from_bundle(self, changed: list[_Ref], bundle: _Ref) -> dict[str, bytes]:
        """Members of a verified bundle, matched to the wanted deployments by digest."""
        response = self._get(bundle.url, BUNDLE_TYPE)
        if response.status == 404:
            raise _Stop(ABORTED, f"{bundle.url} answered 404: bundle unavailable, update aborted (DS-019)")
        if response.status != 200:
            self._failure(response, f"GET {bundle.url}", abort=True)
        problem = self._integrity(bundle, response.body)
        if problem is not None:
            raise _Stop(ABORTED, f"{problem}; the whole update is aborted, previous state kept (DS-022)")
        try:
            tar = open_tar_gz(response.body)
        except InputError as exc:
            raise _Stop(ABORTED, f"the bundle is not a readable tar.gz: {exc}") from None
        by_digest: dict[str, bytes] = {}
        with tar:
            for member in tar.getmembers():
                if not member.isfile():
                    continue
                handle = tar.extractfile(member)
                if handle is not None:
                    data = handle.read()
                    by_digest[_sha256(data)] = data
        wanted = {r.digest: r.deployment_id for r in changed}
        return {wanted[d]: data for d, data in by_digest.items() if d in wanted}

    def _integrity(self, ref: _Ref, data: bytes) -> str | None:
        """Why ``data`` is not the artifact ``ref`` names (None when it is): DS-021/DS-022, DS-104."""
        what = f"deployment {ref.deployment_id}" if ref.deployment_id else "the bundle"
        size = ref.size_bytes
        if (
            self.faults.active("trusts-size-bytes") and size is not None and len(data) != size
        ):  # DS-104 broken
            return f"{what}: {len(data)} bytes where sizeBytes says {ref.size_bytes}"
        if self.faults.active("skips-digest-check"):  # DS-022 broken
            return None
        algorithm, _, _ = ref.digest.partition(":")
        if algorithm != "sha256":
            return None  # reachable only with accepts-unknown-algorithm: nothing to check it with
        found = _sha256(data)
        if found != ref.digest:
            return f"{what}: the bytes hash to {found}, the manifest says {ref.digest}"
        return None

    # -- steps 5 and 6: reconcile and report ------------------------------------------------------

    def _apply(self, ref: _Ref, data: bytes, version: int, previous: int | None) -> None:
        prior = self.state.deployments.get(ref.deployment_id)
        silent = prior is not None and self.faults.active("no-status-on-change")  # DS-002 broken
        adopted = self._adopted(version, previous)
        document, problem = _parse_deployment(data, ref.deployment_id)
        name = str(_get(document, "metadata", "name") or ref.deployment_id)
        components = component_names(document)
        self._yaml[ref.digest] = data
        held = HeldDeployment(ref.deployment_id, ref.digest, adopted, "failed", name, components)
        self.state.deployments[ref.deployment_id] = held
        if problem is None and self.faults.active("fails-on-unknown-extension"):  # ADEP-006 broken
            found = _extensions(document)
            if found:
                problem = ("unknown-extension", f"unknown extension {found[0]}")
        if problem is None and not self.faults.active("ignores-eligibility"):  # ADEP-003
            verdict = evaluate(
                _get(document, "spec", "deploymentProfile", "deviceConstraints"), self.capabilities
            )
            if not verdict.eligible:
                problem = ("ineligible", f"not eligible for this device: {verdict.message}")
                if self.faults.active("ineligible-not-reported"):  # variant: no report form is specified
                    silent = True
        if problem is not None:
            # Not deployed. A revision this deployment had before keeps running (our reading: refusing
            # an update is not an instruction to remove; removal follows only from the manifest).
            code, message = problem
            outcomes = [ComponentOutcome(c, "failed") for c in components]
            held.state = self._report(
                ref.deployment_id, adopted, name, outcomes, StatusError(code, name, message), silent
            )
            self._result.failed.append(ref.deployment_id)
            return
        self._report(
            ref.deployment_id,
            adopted,
            name,
            [ComponentOutcome(c, "installing") for c in components],
            None,
            silent or self.faults.active("no-installing-report"),  # DS-002 broken
        )
        try:
            outcomes = self.runtime.deploy(ref.deployment_id, document, data)
        except Exception as exc:  # the runtime's failure is the deployment's failure, reported
            LOG.exception("runtime deploy of %s failed", ref.deployment_id)
            error = StatusError("runtime-error", name, f"{type(exc).__name__}: {exc}")
            outcomes = [ComponentOutcome(c, "failed", error) for c in components]
        held.state = self._report(ref.deployment_id, adopted, name, outcomes, None, silent)
        (self._result.failed if held.state == "failed" else self._result.deployed).append(ref.deployment_id)

    def _remove(self, deployment_id: str, version: int, previous: int | None) -> None:
        held = self.state.deployments[deployment_id]
        adopted = self._adopted(version, previous)
        self._report(
            deployment_id,
            adopted,
            held.name,
            [ComponentOutcome(c, "removing") for c in held.components],
            None,
        )
        error = None
        try:
            self.runtime.remove(deployment_id)
            state = "removed"
        except Exception as exc:
            LOG.exception("runtime remove of %s failed", deployment_id)
            state = "failed"
            error = StatusError("runtime-error", held.name or deployment_id, f"{type(exc).__name__}: {exc}")
        outcomes = [ComponentOutcome(c, state, error if error else None) for c in held.components]
        silent = self.faults.active("no-removed-report")  # DS-002 broken
        final = self._report(deployment_id, adopted, held.name, outcomes, None, silent)
        if final == "failed":
            held.state = final
            self._result.failed.append(deployment_id)
        else:
            del self.state.deployments[deployment_id]
            self._result.removed.append(deployment_id)

    def _adopted(self, version: int, previous: int | None) -> int:
        """STAT-008: the manifestVersion whose revision of the deployment is being applied."""
        if self.faults.active("adopted-version-wrong") and previous is not None:
            return previous
        return version

    def _report(
        self,
        deployment_id: str,
        adopted: int,
        name: str,
        outcomes: list[ComponentOutcome],
        error: StatusError | None,
        silent: bool = False,
    ) -> str:
        """Queue (and try to send) one DeploymentStatusManifest; returns the overall state."""
        overall = (
            self.rollup([o.state for o in outcomes]) if outcomes else ("failed" if error else "installed")
        )
        if overall == "failed" and error is None:
            first = next((o for o in outcomes if o.error is not None), None)
            if first is not None and first.error is not None:
                error = StatusError(first.error.code, name, f"component {first.name}: {first.error.message}")
            else:
                error = StatusError("failed", name, "the deployment failed")
        status: dict[str, Any] = {"state": overall}
        only_components = self.faults.active("component-errors-only")  # variant: status.error is optional
        if error is not None and not only_components:
            status["error"] = StatusError(error.code, name, error.message).as_dict()  # STAT-005
        if only_components and error is not None:
            outcomes = [
                o if o.error or o.state != "failed" else ComponentOutcome(o.name, o.state, error)
                for o in outcomes
            ]
        components = []
        for outcome in outcomes:
            entry: dict[str, Any] = {"name": outcome.name, "state": outcome.state}
            if outcome.error is not None:
                entry["error"] = StatusError(
                    outcome.error.code, outcome.name, outcome.error.message
                ).as_dict()
            components.append(entry)
        body = {
            "deploymentId": deployment_id,
            "adoptedManifestVersion": adopted,
            "status": status,
            "components": components,
        }
        if self.faults.active("sends-legacy-envelope"):  # STAT-103 broken: the pre-rc.3 envelope
            body = {"apiVersion": "deployment.margo/v1", "kind": "DeploymentStatus", **body}
        if not silent:
            self._result.reports.append(body)
            self.state.pending_reports.append(body)
            self._flush_reports()
        return overall

    def rollup(self, states: list[str]) -> str:
        """STAT-003: the most severe component state (errata INC-006 order)."""
        ranked = sorted(states, key=SEVERITY.index)
        if self.faults.active("wrong-rollup"):  # STAT-003 broken
            return ranked[-1]
        return ranked[0]

    def _flush_reports(self) -> _Stop | None:
        """Send queued reports in order. A retryable failure keeps them queued and stops all sending
        until ``not_before``; a non-retryable one drops that report. Never raises (reconciliation must
        not stop half-way); returns what interrupted the sending, if anything."""
        while self.state.pending_reports:
            if self._result.not_before is not None or self._refused is not None:
                return self._refused or _Stop(RETRY, "status reports wait for the retry time")
            body = self.state.pending_reports[0]
            try:
                response = self._send_json("POST", self.transport.status_path(body["deploymentId"]), body)
            except _Stop as stop:
                if stop.outcome == WFM_REFUSED:
                    self._refused = stop
                return stop
            if response.status in (200, 201):
                self.sent_reports.append(body)
                self.state.pending_reports.pop(0)
                self._queue_changed = True
                continue
            try:
                self._failure(response, f"POST status of {body['deploymentId']}")
            except _Stop as stop:
                if stop.outcome == RETRY:
                    return stop
                LOG.warning("status report dropped (not retryable): %s", stop.detail)
                self.state.pending_reports.pop(0)
                self._queue_changed = True
        return None

    # -- step 7 -----------------------------------------------------------------------------------

    def _persist(self) -> None:
        """DS-025: durably, after a successful reconciliation."""
        if self.faults.active("no-persist"):  # DS-025 broken
            return
        held = {d.digest for d in self.state.deployments.values()}
        for digest in held:
            data = self._yaml.get(digest)
            if data is not None:
                self.store.save_yaml(digest, data)
        self.store.save(self.state)
        self.store.prune_yaml(held)
        self._yaml = {d: b for d, b in self._yaml.items() if d in held}

    # -- HTTP and retry ---------------------------------------------------------------------------

    def _send(self, method: str, target: str, *, headers: Mapping[str, str] | None = None) -> Response:
        try:
            return self.transport.request(method, target, headers=headers)
        except WfmIdentityError as exc:
            self._security(f"security-event wfm-identity-refused {exc} (WIP-007)")
            raise _Stop(WFM_REFUSED, str(exc)) from None
        except TransportError as exc:
            self._backoff(str(exc), None, "exponential")
            raise _Stop(UNREACHABLE, str(exc)) from None

    def _send_json(self, method: str, path: str, document: Mapping[str, Any]) -> Response:
        try:
            return self.transport.send_json(method, path, document)
        except WfmIdentityError as exc:
            self._security(f"security-event wfm-identity-refused {exc} (WIP-007)")
            raise _Stop(WFM_REFUSED, str(exc)) from None
        except TransportError as exc:
            self._backoff(str(exc), None, "exponential")
            raise _Stop(UNREACHABLE, str(exc)) from None

    def _get(self, url: str, accept: str) -> Response:
        try:
            target = self.transport.resolve(url)
        except ValueError as exc:
            raise _Stop(INVALID_MANIFEST, str(exc)) from None
        return self._send("GET", target, headers={"Accept": accept})

    def _failure(self, response: Response, what: str, *, abort: bool = False) -> None:
        """An error answer: schedule a retry if it is retryable, else give up on it. Always raises."""
        problem = _problem(response)
        retryable = problem.get("retryable")
        if not isinstance(retryable, bool):
            retryable = response.status in RETRYABLE_STATUSES
        strategy = problem.get("backoffStrategy")
        if strategy not in ("none", "fixed", "exponential"):
            strategy = "exponential" if retryable else "none"
        title = problem.get("type") or problem.get("title") or ""
        detail = f"{what}: {response.status} {title} {problem.get('detail') or ''}".strip()
        if not retryable:
            raise _Stop(ABORTED if abort else ERROR, detail)
        retry_after = _retry_after(response.header("Retry-After"))
        if retry_after is None and isinstance(problem.get("retryAfterSeconds"), int):
            retry_after = float(problem["retryAfterSeconds"])
        self._backoff(detail, retry_after, str(strategy))
        raise _Stop(RETRY, detail)

    def _backoff(self, detail: str, retry_after: float | None, strategy: str) -> None:
        """API-RETRY-005: never before Retry-After; successive failures spaced by the strategy."""
        self.failures += 1
        base, cap = self.config.backoff_base_s, self.config.max_backoff_s
        spacing = {
            "none": 0.0,
            "fixed": base,
            "exponential": min(base * 2 ** (self.failures - 1), cap),
        }[strategy]
        if self.faults.active("ignores-retry-after"):  # API-RETRY-005 broken
            delay = spacing or base
        else:
            delay = max(retry_after or 0.0, spacing)
        result = self._result
        result.retry_after_s = retry_after
        result.next_delay_s = delay
        result.not_before = self.clock() + delay
        LOG.info("retry in %.3f s: %s", delay, detail)

    def _security(self, event: str) -> None:
        SECURITY.warning(event)
        self.events.append(event)
        self._result.events.append(event)

    def _held_digest(self, deployment_id: str) -> str | None:
        held = self.state.deployments.get(deployment_id)
        return held.digest if held is not None else None


# -- helpers ------------------------------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _get(document: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(document, Mapping):
            return None
        document = document.get(key)
    return document


def _parse_deployment(data: bytes, deployment_id: str) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """The ApplicationDeployment mapping, or a problem (code, message) that fails the deployment."""
    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        return {}, ("invalid-deployment", f"the deployment YAML does not parse: {exc}")
    if not isinstance(document, dict):
        return {}, ("invalid-deployment", "the deployment YAML is not a mapping")
    if document.get("id") != deployment_id:
        return document, (
            "invalid-deployment",
            f"top-level id {document.get('id')!r} is not the deploymentId {deployment_id} (DS-102)",
        )
    return document, None


def _extensions(document: Any, path: str = "") -> list[str]:
    """Every ``x-…-extensions`` member under ``spec`` (where extensions for the device live)."""
    found: list[str] = []
    node = _get(document, "spec") if not path else document
    here = path or "spec"
    if isinstance(node, Mapping):
        for key, value in node.items():
            if isinstance(key, str) and EXTENSION.match(key):
                found.append(f"{here}.{key}")
            else:
                found += _extensions(value, f"{here}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found += _extensions(item, f"{here}[{index}]")
    return found


def _problem(response: Response) -> dict[str, Any]:
    """The problem+json members (ERR-001); {} when the body is none."""
    content_type = (response.header("Content-Type") or "").split(";")[0].strip().lower()
    if not content_type.endswith("json"):
        return {}
    try:
        document = response.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _retry_after(value: str | None) -> float | None:
    """RFC 9110 §10.2.3: delay-seconds or an HTTP-date."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
