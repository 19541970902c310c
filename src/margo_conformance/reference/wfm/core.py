"""The reference WFM's domain logic, independent of HTTP: devices, deployments, manifests, status.

The HTTP layers (``southbound``, ``admin``, ``mis``) call into one ``Wfm``; all of it runs on the
server's event-loop thread.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
    sha512_digest,
)
from .faults import FaultSet
from .identity import AcceptedClients, Recognition, client_spiffe_id
from .instrument import SIZE_SKEW, TAMPER, ActiveServed, Target
from .problems import Problem
from .store import Deployment, PolicyEntry, Store

if TYPE_CHECKING:
    from ...signing.package_check import Trust

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


# Outcomes of a connection record (GET /admin/requests).
HANDSHAKE_FAILED = "handshake-failed"  # the TLS handshake did not complete (the reason, when known)
REJECTED = "rejected"  # handshake done, but the peer is not a client of this WFM (WIP-005): no HTTP
NO_REQUEST = "no-request"  # handshake done, the peer went away without sending a request
REQUESTS = "requests"  # it sent at least one request


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment % 1 * 1000):03d}Z"


@dataclass
class RequestRecord:
    """One HTTP request on the Management Interface, as the transcript shows it."""

    time: float
    client: str | None
    method: str
    path: str
    status: int | None
    note: str = ""
    request_headers: dict[str, str] = field(default_factory=dict)  # accept, if-none-match, content-type
    response_headers: dict[str, str] = field(default_factory=dict)  # etag, retry-after
    body: Any = None  # the parsed JSON request body of capabilities and status reports
    has_body: bool = False
    connection: int | None = None
    index: int = -1  # set by the transcript

    def as_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "kind": "request",
            "index": self.index,
            "time": _iso(self.time),
            "connection": self.connection,
            "client": self.client,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "request_headers": self.request_headers,
            "response_headers": self.response_headers,
        }
        if self.has_body:
            document["body"] = self.body
        if self.note:
            document["note"] = self.note
        return document


@dataclass
class Connection:
    """One TCP connection accepted on the Management Interface; a transcript record once it ends, so a
    test sees a device that connected and refused the WFM without sending any HTTP."""

    number: int
    time: float  # accepted (before the TLS handshake)
    peer: str
    client: str | None = None  # the recognised client, once the handshake is done
    tls_version: str | None = None
    requests: int = 0
    received_bytes: int = 0  # application bytes after the handshake
    outcome: str | None = None  # None while open
    ended: float | None = None
    note: str = ""
    index: int = -1  # set by the transcript

    def as_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "kind": "connection",
            "index": self.index,
            "connection": self.number,
            "time": _iso(self.time),
            "ended": None if self.ended is None else _iso(self.ended),
            "peer": self.peer,
            "client": self.client,
            "outcome": self.outcome,
            "tls_version": self.tls_version,
            "requests": self.requests,
            "received_bytes": self.received_bytes,
        }
        if self.note:
            document["note"] = self.note
        return document


Record = RequestRecord | Connection


class Transcript:
    """Everything the Management Interface saw, newest last, bounded (oldest records drop out).

    Records are numbered by a monotonic ``index`` that survives dropping and clearing, so ``since``
    paging never skips or repeats a record. Runs on the server's loop thread only."""

    def __init__(self, size: int) -> None:
        self._records: deque[Record] = deque(maxlen=size)
        self._next = 0
        self._numbers = itertools.count(1)
        self._live: dict[object, Connection] = {}  # app transport -> its open connection

    def append(self, record: Record) -> None:
        record.index = self._next
        self._next += 1
        self._records.append(record)

    def since(self, index: int) -> tuple[list[Record], int]:
        """Records with ``index`` or above, and the index to ask for next time."""
        first = self._next - len(self._records)  # indexes in the deque are contiguous
        records = list(itertools.islice(self._records, max(index - first, 0), None))
        return records, (records[-1].index + 1 if records else self._next)

    def clear(self) -> None:
        self._records.clear()

    def __iter__(self) -> Iterator[Record]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    # -- connections ----------------------------------------------------------------------------

    def opened(self, peer: str) -> Connection:
        """A connection just accepted (recorded when it ends)."""
        return Connection(next(self._numbers), time.time(), peer)

    def attach(self, transport: object, connection: Connection) -> None:
        """The connection's requests arrive on ``transport`` (its TLS transport)."""
        self._live[transport] = connection

    def drop_live(self) -> None:
        """Close every open connection, so that each client's next request needs a new handshake
        (the TLS settings just changed; a kept-alive connection would go on with the old ones)."""
        for transport in list(self._live):
            close = getattr(transport, "close", None)
            if callable(close):
                close()

    def request(self, record: RequestRecord, transport: object | None) -> None:
        """Record a request, counted on the connection it came on."""
        connection = self._live.get(transport) if transport is not None else None
        if connection is not None:
            connection.requests += 1
            record.connection = connection.number
        self.append(record)

    def closed(
        self, connection: Connection, outcome: str, note: str = "", *, transport: object | None = None
    ) -> None:
        """The connection ended with ``outcome``; only the first call for a connection counts."""
        if transport is not None:
            self._live.pop(transport, None)
        if connection.outcome is not None:
            return
        connection.outcome, connection.ended = outcome, time.time()
        connection.note = note or connection.note
        self.append(connection)


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
    trust: Trust | None = None  # the operator's Notary trust policy and store; None: packages unverified
    requests: Transcript = field(init=False)
    overload: Overload | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.requests = Transcript(self.log_size)
        self.served = ActiveServed()  # the instrument WFM's served faults (instrument.py)
        self._highest: dict[str, int] = {}  # client -> highest manifestVersion served with 200
        self._aliases: dict[tuple[str, str], str] = {}  # (client, sha512 digest) -> stored sha256 digest
        self.store.check_identity(self.pki.trust_domain, self.pki.wfm_id)
        entries, retired = self.store.policy()
        self.accepted = AcceptedClients(self.pki.trust_domain, self.pki.wfm_id, entries, retired)
        self.recognition = Recognition(self.pki.trust_domain, self.pki.wfm_id, self.faults)
        self.schemas = SchemaSet.load()
        self._generation = 0
        self._cache: dict[str, _Cached] = {}
        self._restart_versions()

    @property
    def trust_domain(self) -> str:
        return self.pki.trust_domain

    @property
    def wfm_id(self) -> str:
        return self.pki.wfm_id

    # -- faults and overload ----------------------------------------------------------------------

    def replace_faults(self, names: list[str]) -> frozenset[str]:
        previous = self.faults.replace(names)
        self._restart_versions(previously=previous)
        self._changed()
        return previous

    def _restart_versions(self, *, previously: frozenset[str] = frozenset()) -> None:
        """At start, or when switched on at run time (as if restarted that moment): the fault
        version-reset-on-restart starts every client's manifestVersion sequence again; the variant
        version-bumped-on-restart moves each on by one, which DS-011 allows (errata INC-127)."""
        if self.faults.active("version-reset-on-restart") and "version-reset-on-restart" not in previously:
            self.store.forget_manifest_versions()
        if self.faults.active("version-bumped-on-restart") and "version-bumped-on-restart" not in previously:
            self.store.bump_manifest_versions()

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

    def log(self, record: RequestRecord, transport: object | None = None) -> None:
        self.requests.request(record, transport)

    # -- served faults (the instrument WFM) -------------------------------------------------------

    def replace_served(self, targets: Iterable[Target]) -> tuple[Target, ...]:
        previous = self.served.replace(targets)
        self._changed()
        return previous

    def owner_of(self, deployment_id: str) -> str | None:
        """The client (SPIFFE ID) a deployment belongs to; None for an unknown deployment."""
        deployment = self.store.deployment(deployment_id)
        return deployment.client if deployment is not None else None

    def served_manifest(self, client: str, version: int) -> None:
        """A 200 manifest went to ``client``: remember the highest version it was served."""
        if version > self._highest.get(client, 0):
            self._highest[client] = version

    def stored_digest(self, client: str, digest: str) -> str:
        """The sha256 digest a URL's digest stands for: itself, or the one an unsupported-digest-algorithm
        manifest renamed for this client (so the sha512 URL it served answers with the same bytes)."""
        return self._aliases.get((client, digest), digest)

    def served_yaml(self, deployment_id: str, body: bytes) -> bytes:
        """The bytes served for a deployment's YAML, at its URL and in bundles."""
        if self.served.for_deployment("deployment-digest-mismatch", deployment_id):  # DS-022 probe
            return body + TAMPER
        return body

    # -- authorisation ----------------------------------------------------------------------------

    @property
    def anonymous(self) -> SpiffeId:
        """Who a certificate-less caller is taken to be when the accepts-anonymous fault is on."""
        return SpiffeId.client(self.recognition.trust_domain, self.recognition.wfm_id, "anonymous")

    def authorise(self, caller: SpiffeId) -> None:
        """WIP-008 / API-SEC-007: listed and not retired, else 403 #not-authorized."""
        if caller == self.anonymous:  # only reachable with the accepts-anonymous fault
            return
        denial = self.policy_denial(caller)
        if denial == "retired":
            kind = "wfm-client-relationship-retired" if self.faults.active("retired-problem-type") else None
            raise Problem.of(kind or "not-authorized", f"the relationship with {caller} is retired")
        if denial == "unlisted":
            raise Problem.of("not-authorized", f"{caller} is not in this WFM's accepted-client policy")

    def policy_denial(self, caller: SpiffeId) -> str | None:
        """Why the accepted-client policy denies ``caller`` ("retired", "unlisted"), or None."""
        if self.accepted.is_retired(caller) and not self.faults.active("retired-still-accepted"):
            return "retired"
        if not self.accepted.listed(caller) and not self.faults.active("accepts-unlisted-client"):
            return "unlisted"
        return None

    def refuses_at_handshake(self, caller: SpiffeId) -> str | None:
        """Variants refuses-*-at-handshake: WIP-005 lets a WFM reject the connection of a caller its
        policy denies instead of answering 403 (errata INC-125); returns the reason, or None."""
        if caller == self.anonymous:
            return None
        denial = self.policy_denial(caller)
        if denial is not None and self.faults.active(
            "refuses-retired-at-handshake" if denial == "retired" else "refuses-unaccepted-at-handshake"
        ):
            return f"WIP-008: {caller} is {denial} (refused at the handshake)"
        return None

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
        unnoticed = previous is not None and self.faults.active("version-not-bumped-on-update")
        with self.store.transaction():
            self.store.save_deployment(deployment)
            for affected in {client, previous.client if previous else client}:
                self._deployments_changed(affected, bump=not unnoticed)
        self._changed()
        return deployment

    def fetch_package(self, reference: str) -> appdeploy.Package:
        """A package's description, verified under the trust policy. Safe off the loop thread: it reads
        only the immutable trust material and the thread-safe fault set, and blocks on the registry."""
        return appdeploy.fetch_package(reference, self.trust, self.faults)

    def undeploy(self, deployment_id: str) -> None:
        existing = self.store.deployment(deployment_id)
        if existing is None:
            raise Problem(status=404, detail=f"no deployment {deployment_id}")
        with self.store.transaction():
            self.store.delete_deployment(deployment_id)
            self._deployments_changed(
                existing.client, bump=not self.faults.active("version-not-bumped-on-removal")
            )
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
        if self.served.touches(client):
            self._serve_wrong(client, document, entries, bundle)
        body = canonical_json(document)
        view = ManifestView(version=int(document["manifestVersion"]), body=body, digest=digest_of(body))
        self._cache[client] = _Cached(self._generation, view)
        return view

    def _serve_wrong(
        self, client: str, document: dict[str, Any], entries: list[Entry], bundle: bytes | None
    ) -> None:
        """The client-scoped served faults of the manifest (instrument WFM only)."""
        served = self.served
        lower = served.for_client("manifest-version-lower", client)
        if lower or served.for_client("manifest-version-equal", client):  # DS-024 probes
            highest = self._highest.get(client, document["manifestVersion"])
            document["manifestVersion"] = highest - 1 if lower else highest
        references = [(ref, e.body) for ref, e in zip(document["deployments"], entries, strict=True)]
        if isinstance(document.get("bundle"), dict) and bundle is not None:
            references.append((document["bundle"], bundle))
        sha512 = served.for_client("unsupported-digest-algorithm", client)  # DS-023 probe
        skew = served.for_client("wrong-size-bytes", client)  # DS-104 probe
        for reference, data in references:
            if sha512:  # the URL names the same digest, and is served: the algorithm is the one flaw
                alias = sha512_digest(data)
                self._aliases[(client, alias)] = reference["digest"]
                reference["url"] = reference["url"].replace(reference["digest"], alias)
                reference["digest"] = alias
            if skew:
                reference["sizeBytes"] += SIZE_SKEW

    def _entries(self, client: str) -> list[Entry]:
        owner = None if self.faults.active("cross-client-manifest") else client  # API-SEC-004 broken
        return [Entry(d.id, d.digest, d.body) for d in self.store.deployments(owner)]

    def _bundle(self, entries: list[Entry]) -> bytes | None:
        """DS-012/DS-013: exactly one member per referenced deployment, and no archive without any."""
        members = [(f"{e.deployment_id}.yaml", self.served_yaml(e.deployment_id, e.body)) for e in entries]
        if self.faults.active("bundle-missing-yaml") and members:
            members = sorted(members)[:-1]
        if self.faults.active("bundle-extra-yaml") and members:
            members.append((f"{EXTRA_MEMBER_ID}.yaml", b"id: " + EXTRA_MEMBER_ID.encode() + b"\n"))
        if not entries and not self.faults.active("empty-bundle-archive"):
            return None
        if self.faults.active("bundle-null-with-deployments"):  # DS-027 broken (errata INC-129)
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

    def _deployments_changed(self, client: str, *, bump: bool = True) -> None:
        """Bump at the moment of the change, so two changes between polls are two versions. Without
        ``bump`` (faults version-not-bumped-on-update/-removal) the new set is recorded as already seen."""
        state = self.store.manifest_state(client)
        if state is None:
            return
        if bump:
            self._sync_version(client, self._entries(client))
        else:
            self.store.set_manifest_state(client, state[0], set_digest(self._entries(client)))

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
            "trustPolicies": None
            if self.trust is None
            else [
                {"name": p.name, "level": str(p.level), "registryScopes": list(p.registry_scopes)}
                for p in self.trust.policy.policies
            ],
            "served": self.served.as_list(),
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
