"""One WFM scenario's conversation: its clients, what the operator provisioned, what the WFM answered.

Steps stay thin by calling these methods; every exchange is kept, so a failing check can show the
whole transcript. Each scenario has its own identities, devices and deployments, removed afterwards.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import Blocked
from ..pki import Flaw, SpiffeId
from ..pki.tls import legacy_tls11_client_context
from .client import Exchange, VirtualClient
from .subject import WfmSubject


def served(exchange: Exchange | None) -> bool:
    """The WFM answered with a success (2xx)."""
    return exchange is not None and exchange.status is not None and 200 <= exchange.status < 300


@dataclass
class Deployed:
    package: str
    description: Path
    parameters: dict[str, Any]
    deployment_id: str
    device_id: str
    client: SpiffeId

    def description_document(self) -> dict[str, Any]:
        document: dict[str, Any] = yaml.safe_load(self.description.read_text(encoding="utf-8"))
        return document


@dataclass
class Party:
    """One virtual client and everything it received."""

    client: VirtualClient
    spiffe_id: SpiffeId
    manifests: list[dict[str, Any]] = field(default_factory=list)
    deployments: dict[str, bytes] = field(default_factory=dict)  # deploymentId -> YAML bytes as served
    fetches: list[Exchange] = field(default_factory=list)
    trusted: bool = False  # accepted, unflawed, ordinary TLS: its being served is a positive control

    @property
    def manifest(self) -> dict[str, Any]:
        if not self.manifests:
            raise Blocked("the client has not received a State Manifest yet")
        return self.manifests[-1]


@dataclass
class Conversation:
    subject: WfmSubject
    packages: Path  # fixtures/packages
    parties: dict[str, Party] = field(default_factory=dict)  # "client" / "other client"
    exchanges: list[Exchange] = field(default_factory=list)
    deployed: list[Deployed] = field(default_factory=list)
    # The positive control: a trusted party's request served in this scenario (else the last tried).
    # Refusal checks count a refusal only when this was served (issue 15).
    control: Exchange | None = None

    # -- who talks -------------------------------------------------------------------------------
    def add_client(
        self, role: str, *, flaw: Flaw | None = None, accepted: bool = True, impersonating: str | None = None
    ) -> Party:
        """A client in ``role``; with ``impersonating`` its SVID names that party's client-id (same
        SPIFFE path; a flaw such as foreign-trust-domain moves it exactly as far as the flaw says)."""
        victim = self.party(impersonating).spiffe_id.client_id if impersonating else None
        client, spiffe_id = self.subject.client(
            flaw=flaw,
            accepted=accepted,
            client_id=victim,
            name=f"{victim}-{flaw or 'good'}-{role.replace(' ', '-')}" if victim else None,
        )
        client.log = self.exchanges
        self.parties[role] = Party(client, spiffe_id, trusted=accepted and flaw is None)
        return self.parties[role]

    def add_anonymous_client(self) -> Party:
        client = self.subject.anonymous_client()
        client.log = self.exchanges
        if "client" in self.parties:  # the positive control's client, done with
            self.parties["client"].client.close()
        self.parties["client"] = Party(
            client, SpiffeId.client(self.subject.pki.trust_domain, self.subject.pki.wfm_id, "anonymous")
        )
        return self.parties["client"]

    def offer_only_tls11(self, role: str = "client") -> None:
        """Replace the party's connection by one that offers nothing newer than TLS 1.1."""
        party = self.party(role)
        files = party.client.svid
        context = legacy_tls11_client_context(files, self.subject.pki.bundle_pem)
        party.client.close()
        party.trusted = False
        party.client = type(party.client)(
            self.subject.url,
            files,
            self.subject.pki.bundle_pem,
            context=context,
            timeout_s=self.subject.timeout_s,
            log=self.exchanges,
        )

    def party(self, role: str) -> Party:
        try:
            return self.parties[role]
        except KeyError:
            raise Blocked(f"the scenario has no '{role}'") from None

    @property
    def last(self) -> Exchange:
        if not self.exchanges:
            raise Blocked("no request was made")
        return self.exchanges[-1]

    # -- operator actions ------------------------------------------------------------------------
    def retire(self, role: str) -> None:
        """The operator retires the party's client; it is no longer a positive control."""
        party = self.party(role)
        self.subject.provisioner.retire_client(party.spiffe_id)
        party.trusted = False

    def deploy(
        self, package: str, device_id: str, *, role: str = "client", parameters: dict[str, Any] | None = None
    ) -> Deployed:
        description = self.packages / package / "margo.yaml"
        if not description.is_file():
            raise Blocked(f"no bundled package {package!r}")
        party = self.party(role)
        values = dict(parameters or {})
        deployment_id = self.subject.provisioner.deploy(
            client=party.spiffe_id, device_id=device_id, description=description, parameters=values
        )
        deployed = Deployed(package, description, values, deployment_id, device_id, party.spiffe_id)
        self.deployed.append(deployed)
        return deployed

    def update_last(self, parameters: dict[str, Any]) -> Deployed:
        """The operator gives the last deployment new content (same deploymentId) with ``parameters``."""
        if not self.deployed:
            raise Blocked("the operator has made no deployment to update")
        last = self.deployed[-1]
        self.subject.provisioner.update(
            last.deployment_id, description=last.description, parameters=parameters
        )
        last.parameters = dict(parameters)
        return last

    def undeploy_last(self) -> None:
        """The operator removes the last deployment."""
        if not self.deployed:
            raise Blocked("the operator has made no deployment to remove")
        self.subject.provisioner.undeploy(self.deployed[-1].deployment_id)
        self.deployed.pop()

    def deploy_package(
        self,
        reference: str,
        device_id: str,
        *,
        source: Path,
        role: str = "client",
        parameters: dict[str, Any] | None = None,
    ) -> Deployed:
        """The operator deploys a package from a registry; ``Refused`` propagates (a scenario may expect
        it). ``source`` is the folder the package was published from: what its deployment is checked
        against."""
        party = self.party(role)
        values = dict(parameters or {})
        deployment_id = self.subject.provisioner.deploy_package(
            client=party.spiffe_id, device_id=device_id, package_ref=reference, parameters=values
        )
        description = source / "margo.yaml"
        deployed = Deployed(reference, description, values, deployment_id, device_id, party.spiffe_id)
        self.deployed.append(deployed)
        return deployed

    # -- client requests -------------------------------------------------------------------------
    def ask_for_desired_state(
        self, role: str = "client", *, accept: str | None = "default", if_none_match: str | None = None
    ) -> Exchange:
        party = self.party(role)
        exchange = (
            party.client.get_manifest(if_none_match=if_none_match)
            if accept == "default"
            else party.client.get_manifest(accept=accept, if_none_match=if_none_match)
        )
        if exchange.status == 200:
            with contextlib.suppress(AssertionError):  # the checks report an unparseable body
                party.manifests.append(exchange.json())
        if party.trusted and not served(self.control):
            self.control = exchange
        return exchange

    def serve_control(self, role: str = "client") -> Exchange:
        """The positive control of a negative scenario: an accepted, unflawed client (the scenario's own,
        or a new one) is served its desired state over the default connection set-up. Not served, the
        scenario is Blocked: a refusal that follows would prove nothing (issue 15)."""
        if role not in self.parties:
            self.add_client(role)
        exchange = self.ask_for_desired_state(role)
        if not self.party(role).manifests:
            raise Blocked(
                "the positive control failed: the WFM did not serve an accepted client its desired "
                f"state:\n{exchange.transcript()}"
            )
        return self.establish(exchange, "the positive control failed")

    def establish(self, exchange: Exchange, reason: str) -> Exchange:
        """A precondition exchange of a trusted client: served (2xx), it is the scenario's positive
        control (if none was yet); not served, the scenario is Blocked with ``reason``."""
        if not served(exchange):
            raise Blocked(f"{reason}:\n{exchange.transcript()}")
        if not served(self.control):
            self.control = exchange
        return exchange

    def fresh_manifest(self, role: str = "client") -> dict[str, Any]:
        """Ask now and return the State Manifest served; blocked when none is (nothing to judge by)."""
        party = self.party(role)
        received = len(party.manifests)
        exchange = self.ask_for_desired_state(role)
        if len(party.manifests) == received:
            raise Blocked(f"the WFM served no State Manifest to compare:\n{exchange.transcript()}")
        return party.manifest

    def fetch_deployments(self, role: str = "client") -> None:
        party = self.party(role)
        for reference in party.manifest.get("deployments") or []:
            exchange = party.client.fetch(str(reference["url"]))
            party.fetches.append(exchange)
            if exchange.status == 200:
                party.deployments[str(reference["deploymentId"])] = exchange.decoded_body()

    def first_deployment(self, role: str = "client") -> dict[str, Any]:
        deployments = self.party(role).manifest.get("deployments") or []
        if not deployments:
            raise Blocked("the manifest lists no deployment (was it provisioned?)")
        first: dict[str, Any] = deployments[0]
        return first

    def close(self) -> None:
        """Undo what the scenario provisioned (best effort) and close connections."""
        for deployed in reversed(self.deployed):
            with contextlib.suppress(Blocked):
                self.subject.provisioner.undeploy(deployed.deployment_id)
        for party in self.parties.values():
            party.client.close()
