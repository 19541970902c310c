"""Served faults: the reference WFM as an *instrument* that tests a device by serving wrong things.

These are not mutants of the WFM (``faults.py`` holds those; the WFM self-test expects every one of them
to be killed by WFM scenarios). A served fault is a deliberate input for a device under test, switched on
for ONE resource through the admin interface, never through the southbound API:

  * ``client`` scope: everything the WFM serves to one client (its State Manifest, its bundles);
  * ``deployment`` scope: the bytes of one deployment (its YAML URL and its member in bundles);
  * ``listener`` scope: the Management Interface's TLS listener, for every handshake from then on.

Each entry names the device requirement it probes (``Registry.load()`` knows every one; a test keeps it
that way). The WFM asks ``ActiveServed`` at the one place where the served behaviour differs.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

Scope = Literal["client", "deployment", "listener"]
SCOPES: tuple[Scope, ...] = ("client", "deployment", "listener")
TAMPER = b"# tampered by the instrument WFM\n"  # appended to a deployment's YAML: same YAML, other digest
SIZE_SKEW = 17  # added to every sizeBytes by wrong-size-bytes


@dataclass(frozen=True)
class Served:
    """One kind of wrong answer the instrument WFM can serve on purpose."""

    name: str
    scope: Scope
    requirement: str  # the device requirement it probes
    summary: str

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def _catalogue(*entries: Served) -> dict[str, Served]:
    """The entries by name; a duplicate name is a programming error."""
    table = {entry.name: entry for entry in entries}
    if len(table) != len(entries):
        raise ValueError("two served faults share a name")
    return table


SERVED: dict[str, Served] = _catalogue(
    Served(
        "manifest-version-lower",
        "client",
        "DS-024",
        "every 200 manifest carries the highest manifestVersion served to the client so far minus 1, "
        "with the current content",
    ),
    Served(
        "manifest-version-equal",
        "client",
        "DS-024",
        "every 200 manifest carries the highest manifestVersion served to the client so far, with the "
        "current content",
    ),
    Served(
        "unsupported-digest-algorithm",
        "client",
        "DS-023",
        "every digest in the manifest is written sha512:<hex> (of the same bytes), its url names that "
        "digest and serves the same bytes; sizes unchanged",
    ),
    Served(
        "wrong-size-bytes",
        "client",
        "DS-104",
        f"every sizeBytes in the manifest is the true size + {SIZE_SKEW}; digests and bytes are right",
    ),
    Served(
        "deployment-digest-mismatch",
        "deployment",
        "DS-022",
        "the deployment's YAML (its URL and its bundle member) has a comment line appended, so its bytes "
        "miss the manifest's digest; the bundle digest matches the bundle served",
    ),
    Served(
        "bundle-digest-mismatch",
        "client",
        "DS-022",
        "the bundle is served re-gzipped with another header mtime: same archive, bytes that miss the "
        "listed digest",
    ),
    Served(
        "deployment-404",
        "deployment",
        "DS-019",
        "the deployment's YAML URL, and every bundle holding it, answers 404 problem+json",
    ),
    Served(
        "untrusted-chain",
        "listener",
        "TLS-008",
        "the Management Interface presents an SVID with the right SPIFFE ID from a CA outside the bundle",
    ),
    Served(
        "wrong-wfm-spiffe-id",
        "listener",
        "WIP-007",
        "the Management Interface presents a validly issued SVID with another wfm-id",
    ),
    Served(
        "tls11-only",
        "listener",
        "TLS-005",
        "the Management Interface negotiates TLS 1.1 and nothing else",
    ),
)


class ServedError(ValueError):
    """An admin request for served faults that is malformed (HTTP 400)."""


class UnknownDeployment(LookupError):
    """A deployment-scoped served fault names a deployment the WFM does not hold (HTTP 404)."""


@dataclass(frozen=True, order=True)
class Target:
    """One active served fault and what it applies to (client: a SPIFFE ID)."""

    name: str
    client: str | None = None
    deployment: str | None = None

    def as_dict(self) -> dict[str, str]:
        entry = {"name": self.name}
        if self.client is not None:
            entry["client"] = self.client
        if self.deployment is not None:
            entry["deployment"] = self.deployment
        return entry

    @property
    def key(self) -> tuple[str, str]:
        """What a lookup matches: (name, client | deployment | "")."""
        return self.name, self.deployment or self.client or ""


class ActiveServed:
    """The served faults switched on in one WFM; replaced as a whole at run time (thread-safe).

    Lookups cost one set membership test, so the WFM can ask on every request."""

    def __init__(self, targets: Iterable[Target] = ()) -> None:
        self._lock = threading.Lock()
        self._targets: tuple[Target, ...] = ()
        self._keys: frozenset[tuple[str, str]] = frozenset()
        self._clients: frozenset[str] = frozenset()
        self.replace(targets)

    def replace(self, targets: Iterable[Target]) -> tuple[Target, ...]:
        """Switch on exactly ``targets``; returns the previous ones."""
        wanted = tuple(sorted(set(targets)))
        keys = frozenset(t.key for t in wanted)
        clients = frozenset(t.client for t in wanted if t.client is not None)
        with self._lock:
            previous = self._targets
            self._targets, self._keys, self._clients = wanted, keys, clients
        return previous

    @property
    def targets(self) -> tuple[Target, ...]:
        return self._targets

    def as_list(self) -> list[dict[str, str]]:
        return [t.as_dict() for t in self._targets]

    def for_client(self, name: str, client: str) -> bool:
        """Whether client-scoped ``name`` is on for this client (a SPIFFE ID)."""
        return self._has(name, "client", client)

    def for_deployment(self, name: str, deployment_id: str) -> bool:
        """Whether deployment-scoped ``name`` is on for this deployment."""
        return self._has(name, "deployment", deployment_id)

    def on_listener(self, name: str) -> bool:
        """Whether listener-scoped ``name`` is on."""
        return self._has(name, "listener", "")

    def deployments(self, name: str) -> frozenset[str]:
        """The deployments a deployment-scoped fault is on for."""
        _scope_of(name, "deployment")
        return frozenset(t.deployment for t in self._targets if t.name == name and t.deployment)

    def touches(self, client: str) -> bool:
        """Whether any fault is on for this client (directly, or through one of its deployments)."""
        return client in self._clients

    def _has(self, name: str, scope: Scope, key: str) -> bool:
        _scope_of(name, scope)
        return bool(self._keys) and (name, key) in self._keys


def _scope_of(name: str, scope: Scope) -> None:
    """A lookup of an unknown name, or in the wrong scope, is a programming error."""
    served = SERVED.get(name)
    if served is None or served.scope != scope:
        raise KeyError(f"no {scope}-scoped served fault named {name!r} in the catalogue")


def parse_targets(
    body: Any, *, client_of: Callable[[str], str], owner_of: Callable[[str], str | None]
) -> list[Target]:
    """The targets of a ``POST /admin/served`` body ``{"faults": [{"name", "client"?, "deployment"?}]}``.

    ``client_of`` turns a SPIFFE ID or client-id into the SPIFFE ID (ValueError when it cannot);
    ``owner_of`` gives the client holding a deployment (None: unknown). ServedError for a malformed
    body, UnknownDeployment for a deployment the WFM does not hold."""
    items = body.get("faults") if isinstance(body, dict) and set(body) == {"faults"} else None
    if not isinstance(items, list):
        raise ServedError('expected {"faults": [{"name": …, "client": …, "deployment": …}, …]}')
    return [_target(item, i, client_of, owner_of) for i, item in enumerate(items)]


def _target(
    item: Any, index: int, client_of: Callable[[str], str], owner_of: Callable[[str], str | None]
) -> Target:
    where = f"faults[{index}]"
    if not isinstance(item, dict) or not set(item) <= {"name", "client", "deployment"}:
        raise ServedError(f'{where}: expected an object with "name" and "client" or "deployment"')
    if "name" not in item or not all(isinstance(value, str) and value for value in item.values()):
        raise ServedError(f'{where}: expected "name" and every member a non-empty string')
    served = SERVED.get(item["name"])
    if served is None:
        raise ServedError(
            f"{where}: unknown served fault {item.get('name')!r}; known: {', '.join(sorted(SERVED))}"
        )
    client, deployment = item.get("client"), item.get("deployment")
    if served.scope == "listener":
        if client is not None or deployment is not None:
            raise ServedError(f"{where}: {served.name} acts on the listener; give no client or deployment")
        return Target(served.name)
    if served.scope == "client":
        if client is None or deployment is not None:
            raise ServedError(f'{where}: {served.name} is client-scoped; give "client" (and no deployment)')
        return Target(served.name, client=_client(client_of, client, where))
    if deployment is None:
        raise ServedError(f'{where}: {served.name} is deployment-scoped; give "deployment"')
    owner = owner_of(deployment)
    if owner is None:
        raise UnknownDeployment(f"{where}: no deployment {deployment}")
    if client is not None and _client(client_of, client, where) != owner:
        raise ServedError(f"{where}: deployment {deployment} belongs to {owner}, not {client}")
    return Target(served.name, client=owner, deployment=deployment)


def _client(client_of: Callable[[str], str], value: str, where: str) -> str:
    try:
        return client_of(value)
    except ValueError as exc:
        raise ServedError(f"{where}: client {value!r}: {exc}") from None
