"""The reference WFM's domain logic, independent of HTTP: devices, deployments, manifests, status.

The HTTP layers (``southbound``, ``admin``, ``mis``) call into one ``Wfm``; all of it runs on the
server's event-loop thread.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ...pki import Pki, SpiffeId, SvidError
from ...schemas import SchemaSet
from . import appdeploy
from .documents import (
    Entry,
    bundle_archive,
    canonical_json,
    digest_of,
    manifest_document,
    set_digest,
)
from .faults import FaultSet
from .identity import AcceptedClients, Recognition, client_spiffe_id
from .problems import Problem
from .store import Deployment, PolicyEntry, Store

DEVICE_ID = re.compile(r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$")  # OA3 DeviceId
SHARED_SCOPE = "*"  # device scope of the fault cross-client-devices
EXTRA_MEMBER_ID = "00000000-0000-4000-8000-000000000000"  # the stray file of bundle-extra-yaml


@dataclass(frozen=True)
class ManifestView:
    """One manifest as served: the exact body and the digest of that body."""

    version: int
    body: bytes
    digest: str


@dataclass
class Overload:
    """The admin's overload switch: answer 429/503 to the next ``remaining`` requests (None: until off)."""

    status: int
    retry_after: int
    remaining: int | None


@dataclass
class RequestRecord:
    time: float
    client: str | None
    method: str
    path: str
    status: int | None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.time))
            + f".{int(self.time % 1 * 1000):03d}Z",
            "client": self.client,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            **({"note": self.note} if self.note else {}),
        }


@dataclass
class _Cached:
    generation: int
    view: ManifestView


@dataclass
class Wfm:
    """State and operations of one reference WFM."""

    pki: Pki
    store: Store
    faults: FaultSet
    log_size: int = 10_000
    requests: deque[RequestRecord] = field(init=False)
    overload: Overload | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.requests = deque(maxlen=self.log_size)
        self.store.check_identity(self.pki.trust_domain, self.pki.wfm_id)
        entries, retired = self.store.policy()
        self.accepted = AcceptedClients(self.pki.trust_domain, self.pki.wfm_id, entries, retired)
        self.recognition = Recognition(self.pki.trust_domain, self.pki.wfm_id, self.faults)
        self.schemas = SchemaSet.load()
        self._generation = 0
        self._cache: dict[str, _Cached] = {}
        self._reset_versions_if_faulted(previously=False)

    @property
    def trust_domain(self) -> str:
        return self.pki.trust_domain

    @property
    def wfm_id(self) -> str:
        return self.pki.wfm_id

    # -- faults and overload ----------------------------------------------------------------------

    def replace_faults(self, names: list[str]) -> frozenset[str]:
        previous = self.faults.replace(names)
        self._reset_versions_if_faulted(previously="version-reset-on-restart" in previous)
        self._changed()
        return previous

    def _reset_versions_if_faulted(self, *, previously: bool) -> None:
        """Fault version-reset-on-restart: at start, or when switched on at run time (as if restarted
        that moment), every client's manifestVersion sequence starts again."""
        if self.faults.active("version-reset-on-restart") and not previously:
            self.store.forget_manifest_versions()

    def take_overload(self) -> Overload | None:
        """The overload answer for this request, if the switch is on (counts the request)."""
        overload = self.overload
        if overload is None:
            return None
        if overload.remaining is not None:
            overload.remaining -= 1
            if overload.remaining <= 0:
                self.overload = None
        return overload

    def log(self, record: RequestRecord) -> None:
        self.requests.append(record)

    # -- authorisation ----------------------------------------------------------------------------

    @property
    def anonymous(self) -> SpiffeId:
        """Who a certificate-less caller is taken to be when the accepts-anonymous fault is on."""
        return SpiffeId.client(self.recognition.trust_domain, self.recognition.wfm_id, "anonymous")

    def authorise(self, caller: SpiffeId) -> None:
        """WIP-008 / API-SEC-007: listed and not retired, else 403 #not-authorized."""
        if caller == self.anonymous:  # only reachable with the accepts-anonymous fault
            return
        if self.accepted.is_retired(caller) and not self.faults.active("retired-still-accepted"):
            raise Problem.of("not-authorized", f"the relationship with {caller} is retired")
        if not self.accepted.listed(caller) and not self.faults.active("accepts-unlisted-client"):
            raise Problem.of("not-authorized", f"{caller} is not in this WFM's accepted-client policy")

    def accept(self, entry: PolicyEntry) -> None:
        self.store.accept(entry)
        self.accepted.add(entry)

    def retire(self, spiffe_id: str) -> None:
        self.store.retire(spiffe_id)
        self.accepted.retire(spiffe_id)

    # -- devices ----------------------------------------------------------------------------------

    def device_scope(self, caller: str) -> str:
        """API-SEC-005: a deviceId means something only within its client."""
        return SHARED_SCOPE if self.faults.active("cross-client-devices") else caller

    # -- deployments (provisioning) ---------------------------------------------------------------

    def deploy(
        self,
        *,
        client_id: str,
        device_id: str,
        description_text: str,
        parameters: dict[str, Any],
        deployment_id: str | None = None,
    ) -> Deployment:
        """Create (``deployment_id`` None) or replace a deployment; bumps the affected manifests."""
        try:
            client = client_spiffe_id(client_id, self.trust_domain, self.wfm_id)
        except SvidError as exc:
            raise Problem.of("semantic-error", f"client_id: {exc}") from None
        if not appdeploy.DEVICE_ID_WITH_ASTERISK.match(device_id):
            raise Problem.of("semantic-error", f"device_id {device_id!r} is not a Margo DeviceId")
        previous = self.store.deployment(deployment_id) if deployment_id else None
        if deployment_id and previous is None:
            raise Problem(status=404, detail=f"no deployment {deployment_id}")
        description = appdeploy.parse_description(description_text)
        target = device_id.removesuffix("/*")
        capabilities = self.store.device(self.device_scope(client), target)
        values = appdeploy.resolve_parameters(
            description, parameters, previous.parameters if previous else None, self.faults
        )
        new_id = deployment_id or str(uuid.uuid4())
        body = appdeploy.build_deployment(
            deployment_id=new_id,
            description=description,
            device_id=device_id,
            capabilities=capabilities,
            parameters=values,
            faults=self.faults,
        )
        deployment = Deployment(
            id=new_id,
            client=client,
            device_id=device_id,
            application_id=str(description["id"]),
            description=description_text,
            parameters=values,
            digest=digest_of(body),
            body=body,
        )
        with self.store.transaction():
            self.store.save_deployment(deployment)
            for affected in {client, previous.client if previous else client}:
                self._deployments_changed(affected)
        self._changed()
        return deployment

    def undeploy(self, deployment_id: str) -> None:
        existing = self.store.deployment(deployment_id)
        if existing is None:
            raise Problem(status=404, detail=f"no deployment {deployment_id}")
        with self.store.transaction():
            self.store.delete_deployment(deployment_id)
            self._deployments_changed(existing.client)
        self._changed()

    # -- the State Manifest -----------------------------------------------------------------------

    def manifest(self, client: str) -> ManifestView:
        """The client's current manifest; the version moves only when the deployment set moves."""
        bump_every_poll = self.faults.active("version-bumped-on-every-poll")  # DS-006 broken
        cached = self._cache.get(client)
        if cached is not None and cached.generation == self._generation and not bump_every_poll:
            return cached.view
        entries = self._entries(client)
        version = self._sync_version(client, entries, bump=bump_every_poll)
        bundle = self._bundle(entries)
        if bundle is not None:
            self.store.save_bundle(client, digest_of(bundle), bundle)
        document = manifest_document(
            version, entries, bundle, omit_null_bundle=self.faults.active("bundle-omitted")
        )
        if self.faults.active("url-digest-mismatch") and entries:
            first = document["deployments"][0]
            wrong = digest_of(entries[0].body + b"\n")
            first["url"] = f"/api/v1/deployments/{first['deploymentId']}/{wrong}"
        body = canonical_json(document)
        view = ManifestView(version=version, body=body, digest=digest_of(body))
        self._cache[client] = _Cached(self._generation, view)
        return view

    def _entries(self, client: str) -> list[Entry]:
        return [Entry(d.id, d.digest, d.body) for d in self.store.deployments(client)]

    def _bundle(self, entries: list[Entry]) -> bytes | None:
        """DS-012/DS-013: exactly one member per referenced deployment, and no archive without any."""
        members = [(f"{e.deployment_id}.yaml", e.body) for e in entries]
        if self.faults.active("bundle-missing-yaml") and members:
            members = sorted(members)[:-1]
        if self.faults.active("bundle-extra-yaml") and members:
            members.append((f"{EXTRA_MEMBER_ID}.yaml", b"id: " + EXTRA_MEMBER_ID.encode() + b"\n"))
        if not entries and not self.faults.active("empty-bundle-archive"):
            return None
        return bundle_archive(members)

    def _sync_version(self, client: str, entries: list[Entry], *, bump: bool = False) -> int:
        """DS-011: the first manifest a client sees is 1; each change of its deployment set (ids or
        digests) adds exactly 1; nothing else moves it (not polls, not restarts)."""
        current = set_digest(entries)
        state = self.store.manifest_state(client)
        if state is None:
            version = 0 if self.faults.active("version-starts-at-0") else 1
        else:
            version, seen = state
            changed = seen != current or bump
            if changed and not self.faults.active("version-not-bumped"):
                version += 1
        if state != (version, current):
            self.store.set_manifest_state(client, version, current)
        return version

    def _deployments_changed(self, client: str) -> None:
        """Bump at the moment of the change, so two changes between polls are two versions."""
        if self.store.manifest_state(client) is not None:
            self._sync_version(client, self._entries(client))

    def _changed(self) -> None:
        self._generation += 1
        self._cache.clear()

    # -- debugging --------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything the WFM holds, without key material (GET /admin/state)."""
        return {
            "trustDomain": self.trust_domain,
            "wfmId": self.wfm_id,
            "spiffeId": str(self.pki.wfm_spiffe_id),
            "faults": sorted(self.faults.names),
            "overload": None
            if self.overload is None
            else {
                "status": self.overload.status,
                "retryAfter": self.overload.retry_after,
                "remaining": self.overload.remaining,
            },
            "acceptedClients": self.accepted.as_dict(),
            "devices": self.store.devices(),
            "deployments": [
                {
                    "deploymentId": d.id,
                    "client": d.client,
                    "deviceId": d.device_id,
                    "applicationId": d.application_id,
                    "parameters": d.parameters,
                    "digest": d.digest,
                    "yaml": d.body.decode("utf-8"),
                }
                for d in self.store.deployments()
            ],
            "manifests": self.store.manifest_states(),
            "status": self.store.statuses(),
        }
