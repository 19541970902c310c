"""The signing profile's subjects for the device persona: signed applications to deploy, and the trust
material a device is started with.

A device verifies what it pulls: the manifest of each Compose archive (SUP-03 §2, §4). So each fixture
of ``signing.fixtures`` is vendor-a's application, adapted for a device like every device scenario's
(``apps.publish_app``), published once per run in the namespace ``devsig-<fixture>``: its package
manifest validly signed, the fixture's fault on its Compose archive manifest (``fixtures.sign_as``).
For a device, ``unsigned`` is what ``component-unsigned`` is for a package, and ``helm-chart-unsigned``
needs a Helm device: neither is a device fixture. vendor-b's application, validly signed, is what a
refusal scenario installs first.

Everything is published before the first device starts: a Notary trust policy names exact repositories
and a device gets its policy when it starts (one file per level, covering every fixture's repositories,
with a trust store holding the root of the publisher vendor-a).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .._internal.oci import OciClient, OciReference
from ..errors import Blocked
from ..signing.fixtures import UNSIGNED_COMPONENTS, Fixture, SigningPki, sign_as
from ..signing.oci_signatures import manifest_descriptor
from ..signing.policy import Level, policy_data
from ..signing.subjects import PUBLISHERS, STORE_NAME
from .apps import AppRequest, PublishedApp, publish_app
from .session import Deployment, DeviceRun, DeviceScenario, free_port

DEVICE_FIXTURES = tuple(kind for kind in Fixture if kind not in UNSIGNED_COMPONENTS)
EARLIER_VENDOR = "vendor-b"  # validly signed only
PREFIX = "devsig"
FINAL_STATES = ("installed", "failed")


class DeviceSignatures:
    """The run's signed applications (published on first use) and the trust material for them."""

    def __init__(self, registry_host: str, packages: Path, workdir: Path) -> None:
        self._registry_host = registry_host
        self._packages = packages
        self._workdir = workdir
        self._pkis = {name: SigningPki(name) for name in PUBLISHERS}
        self._apps: dict[tuple[str, Fixture], PublishedApp] = {}

    def apps(self) -> dict[tuple[str, Fixture], PublishedApp]:
        if not self._apps:
            wanted = [("vendor-a", kind) for kind in DEVICE_FIXTURES] + [(EARLIER_VENDOR, Fixture.VALID)]
            self._apps = {(vendor, kind): self._publish(vendor, kind) for vendor, kind in wanted}
        return self._apps

    def app(self, vendor: str, name: str) -> PublishedApp:
        try:
            return self.apps()[(vendor, Fixture(name))]
        except (ValueError, KeyError):
            known = ", ".join(f"{v} {k}" for v, k in self.apps())
            raise Blocked(f"no signed application {vendor} {name!r} for the device; known: {known}") from None

    def trust(self, level: str) -> tuple[Path, Path]:
        """(trust policy, trust store): one policy at ``level`` for every repository of the signed
        applications, and a store holding vendor-a's root."""
        try:
            chosen = Level(level)
        except ValueError:
            raise Blocked(f"no trust policy level {level!r}; known: {', '.join(Level)}") from None
        scopes = sorted({scope for app in self.apps().values() for scope in _scopes(app)})
        policy = self._workdir / f"trustpolicy-{chosen}.json"
        policy.write_text(
            json.dumps(policy_data(level=chosen, scopes=scopes, trust_store=STORE_NAME), indent=2),
            encoding="utf-8",
        )
        store = self._pkis["vendor-a"].write_trust_store(self._workdir / "store-vendor-a", STORE_NAME)
        return policy, store

    def _publish(self, vendor: str, kind: Fixture) -> PublishedApp:
        namespace = f"{PREFIX}-{kind}" if vendor == "vendor-a" else f"{PREFIX}-{vendor}"
        request = AppRequest(vendor, host_port=free_port() if vendor == "vendor-a" else None)
        app = publish_app(request, self._packages, self._workdir / "packages", self._registry_host, namespace)
        publisher, rogue = self._pkis["vendor-a"], self._pkis["rogue-publisher"]
        package = OciReference.parse(app.reference)
        with OciClient(package.registry) as client:
            own = manifest_descriptor(client, package.repository, package.reference)
            sign_as(client, Fixture.VALID, package.with_digest(own.digest), publisher, other=lambda: own)
            for component in compose_archives(app):  # other-digest: a signature over the package manifest
                digest = manifest_descriptor(client, component.repository, component.reference).digest
                sign_as(client, kind, component.with_digest(digest), publisher, rogue, other=lambda: own)
        return app


def compose_archives(app: PublishedApp) -> list[OciReference]:
    """The Compose archives the application's description names, by tag (its revision)."""
    document: Any = yaml.safe_load(app.description)
    found = []
    for profile in document.get("deploymentProfiles") or []:
        for component in profile.get("components") or []:
            properties = component.get("properties") or {}
            base = OciReference.parse(str(properties["repository"]))
            found.append(base.with_tag(str(properties["revision"]).replace("+", "_")))
    return found


def _scopes(app: PublishedApp) -> list[str]:
    references = [OciReference.parse(app.reference), *compose_archives(app)]
    return [f"{ref.registry}/{ref.repository}" for ref in references]


class SigningScenario(DeviceScenario):
    """A device scenario that deploys the run's signed applications instead of fresh publications."""

    def __init__(self, run: DeviceRun, signatures: DeviceSignatures) -> None:
        super().__init__(run)
        self.signatures = signatures
        self._chosen: PublishedApp | None = None

    def connect_with_policy(self, level: str) -> None:
        self.connect(trust=self.signatures.trust(level))

    def deploy_signed(self, vendor: str, fixture: str) -> Deployment:
        self._chosen = self.signatures.app(vendor, fixture)
        try:
            return self.deploy(AppRequest(vendor))
        finally:
            self._chosen = None

    def publish(self, request: AppRequest) -> PublishedApp:
        return self._chosen if self._chosen is not None else super().publish(request)

    def await_outcome(self, deployment: Deployment) -> dict[str, Any]:
        """The first report since the last operator action that is installed or failed (so a device
        that deploys what it should refuse is caught at once, not at the end of the budget)."""

        def final() -> dict[str, Any] | None:
            return next((r for r in self.reports(deployment, self.mark) if _state(r) in FINAL_STATES), None)

        report: dict[str, Any] = self.await_(
            f"the device reports deployment {deployment.id} installed or failed",
            final,
            budget_s=self.run.work_budget_s,
        )
        return report


def _state(report: dict[str, Any]) -> str:
    return str((report.get("status") or {}).get("state") or "")
