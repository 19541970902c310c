"""The reference device agent against an in-process reference WFM (real mTLS), with an in-memory runtime.

Every test drives ``sync_once()`` directly: no fixed sleeps, no wall-clock assertions (retry timing is
judged on the agent's computed ``not_before`` with a fake clock). Each test mints its own client
identity, so tests share no devices or deployments; WFM faults and overload are reset after each test.

The device fault table (``KILLS``) says which scenario observation each device fault must change; the
matrix test runs every scenario against every fault and asserts that exactly those observations move.
Wrong inputs come from the WFM playing instrument: served faults switched on through its admin
interface for one client or deployment (``reference/wfm/instrument.py``).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from margo_conformance.errors import UsageError
from margo_conformance.findings import Level
from margo_conformance.pki import Pki
from margo_conformance.pki.policy import uri_sans
from margo_conformance.reference.device import (
    FAULTS,
    DeviceAgent,
    DeviceArgs,
    DeviceConfig,
    FaultSet,
    InMemoryRuntime,
    build_config,
    host_capabilities,
    run_device,
)
from margo_conformance.reference.device import agent as agent_module
from margo_conformance.reference.device.eligibility import evaluate, quantity_bytes
from margo_conformance.reference.device.state import StateStore
from margo_conformance.reference.device.transport import Response
from margo_conformance.reference.wfm import AdminClient, BackgroundWfm, Endpoints, WfmConfig
from margo_conformance.registry import Registry
from margo_conformance.schemas import SchemaSet

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "fixtures" / "packages"
TD, WFM_ID = "factory.example", "wfm-1"
SCHEMAS = SchemaSet.load()
_COUNTER = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_COUNTER)}"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def description(name: str = "vendor-a-compose") -> str:
    return (PACKAGES / name / "margo.yaml").read_text(encoding="utf-8")


def two_components() -> str:
    """vendor-a with a second component and a profile-level extension."""
    document = yaml.safe_load(description())
    profile = document["deploymentProfiles"][0]
    profile["components"].append(
        {
            "name": "sidecar",
            "properties": {"repository": "oci://registry.invalid/a/sidecar", "revision": "1.0.0"},
        }
    )
    profile["x-vendor-a-extensions"] = {"tier": "edge"}
    return str(yaml.safe_dump(document, sort_keys=False))


def capabilities(device_id: str, *, firmware: int = 3) -> dict[str, Any]:
    """A hosting device that vendor-a's eligibility rules accept (firmware generation > 2)."""
    return {
        "properties": {
            "id": device_id,
            "vendor": "Vendor A",
            "modelNumber": "M-1",
            "serialNumber": "S-1",
            "cpus": [{"cores": 4, "architecture": "amd64"}],
            "memory": "4Gi",
            "storage": "64Gi",
            "peripherals": [],
            "interfaces": [{"type": "ethernet"}],
            "otelCollector": True,
            "supportedRuntimes": ["oci"],
            "supportedDeploymentTypes": ["compose"],
        },
        "labels": {"vendor-a.example/firmware-generation": firmware},
    }


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the harness -------------------------------------------------------------------------------------


@dataclass
class Harness:
    pki: Pki
    endpoints: Endpoints
    workdir: Path
    admin: AdminClient

    def set_faults(self, names: list[str]) -> None:
        self.admin.set_faults(names)

    def serve(self, name: str, *, client: str | None = None, deployments: tuple[str, ...] = ()) -> None:
        """Switch on one served fault, for a client or for some deployments (instrument WFM)."""
        single = {"name": name} | ({"client": client} if client else {})
        self.admin.set_served([{"name": name, "deployment": d} for d in deployments] or [single])

    def deploy(
        self, device: Device, text: str | None = None, parameters: dict[str, Any] | None = None
    ) -> str:
        deployment_id, _ = self.admin.deploy(
            device.spiffe_id, device.agent.device_id, text or description(), parameters or {}
        )
        return deployment_id

    def update(
        self, device: Device, deployment_id: str, parameters: dict[str, Any], text: str | None = None
    ) -> str:
        return self.admin.update(
            deployment_id, device.spiffe_id, device.agent.device_id, text or description(), parameters
        )

    def undeploy(self, deployment_id: str) -> None:
        self.admin.undeploy(deployment_id)

    def status_of(self, deployment_id: str) -> dict[str, Any] | None:
        state = self.admin.state()
        return next((s for s in state["status"] if s["deploymentId"] == deployment_id), None)

    def requests_of(self, spiffe_id: str) -> list[dict[str, Any]]:
        """The HTTP requests of one client (connection records left out)."""
        records, _ = self.admin.requests()
        return [r for r in records if r["kind"] == "request" and r["client"] == spiffe_id]

    def reset(self) -> None:
        self.admin.set_faults([])
        self.admin.set_served([])
        self.admin.overload(None)

    def device(
        self,
        *,
        faults: tuple[str, ...] = (),
        firmware: int = 3,
        runtime: InMemoryRuntime | None = None,
        clock: Callable[[], float] = time.monotonic,
        name: str | None = None,
    ) -> Device:
        name = name or unique("device")
        files_dir = self.workdir / "clients"
        svid = self.pki.mint_client(name)
        files = svid.write(files_dir, name)
        spiffe_id = uri_sans(svid.certificate)[0]
        self.admin.accept_client(spiffe_id)
        config = DeviceConfig(
            wfm_url=self.endpoints.url,
            svid=files,
            anchors=self.pki.bundle_pem,
            state_dir=self.workdir / "state" / name,
            capabilities=capabilities(name, firmware=firmware),
            poll_interval_s=30.0,
            faults=faults,
            timeout_s=10.0,
        )
        runtime = runtime if runtime is not None else InMemoryRuntime()
        return Device(self, config, spiffe_id, runtime, DeviceAgent(config, runtime=runtime, clock=clock))


@dataclass
class Device:
    harness: Harness
    config: DeviceConfig
    spiffe_id: str
    runtime: InMemoryRuntime
    agent: DeviceAgent

    def restart(self, *, faults: tuple[str, ...] | None = None) -> None:
        """A new agent process over the same state folder and the same (surviving) runtime."""
        self.agent.close()
        config = self.config if faults is None else DeviceConfig(**{**self.config.__dict__, "faults": faults})
        self.agent = DeviceAgent(config, runtime=self.runtime, clock=self.agent.clock)

    def sync(self) -> agent_module.SyncResult:
        return self.agent.sync_once()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    pki = Pki.init(tmp_path_factory.mktemp("pki") / "pki", trust_domain=TD, wfm_id=WFM_ID)
    workdir = tmp_path_factory.mktemp("device")
    server = BackgroundWfm(WfmConfig(pki_dir=pki.directory, state_dir=workdir / "wfm", read_timeout=2.0))
    endpoints = server.start()
    assert endpoints.admin_url is not None
    try:
        yield Harness(pki, endpoints, workdir, AdminClient(endpoints.admin_url))
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "harness" in request.fixturenames:
        h: Harness = request.getfixturevalue("harness")
        h.reset()


def states(result: agent_module.SyncResult) -> list[str]:
    return [r["status"]["state"] for r in result.reports]


def valid_status(report: dict[str, Any]) -> bool:
    return not [f for f in SCHEMAS.validate(report, "DeploymentStatusManifest") if f.level is Level.MUST]


# -- scenarios: each returns plain observations; baseline = conformant ---------------------------------


def scenario_capabilities_first(h: Harness, faults: tuple[str, ...]) -> dict[str, Any]:
    d = h.device(faults=faults)
    result = d.sync()
    requests = h.requests_of(d.spiffe_id)
    return {
        "outcome": result.outcome,
        "first": (requests[0]["method"], requests[0]["path"], requests[0]["status"]),
        "then_manifest": requests[1]["path"],
    }


def scenario_install_update_remove(h: Harness, faults: tuple[str, ...]) -> dict[str, Any]:
    d = h.device(faults=faults)
    assert d.sync().outcome == "applied"  # empty manifest, version 1
    dep = h.deploy(d)
    first = d.sync()
    wfm_status = h.status_of(dep)
    used_bundle = any("/api/v1/bundles/" in r["path"] for r in h.requests_of(d.spiffe_id))
    second = d.sync()
    new_digest = h.update(d, dep, {"listenPort": 9090})
    updated = d.sync()
    yaml_bytes = d.runtime.yaml_of(dep) or b""
    h.undeploy(dep)
    removed = d.sync()
    assert wfm_status is not None
    return {
        "install": (first.outcome, states(first), first.manifest_version),
        "install_adopted": [r["adoptedManifestVersion"] for r in first.reports],
        "install_components": [r["components"] for r in first.reports][-1],
        "wfm_recorded": (wfm_status["report"]["status"]["state"], wfm_status["reports"]),
        "reports_valid": all(valid_status(r) for r in first.reports + updated.reports + removed.reports),
        "used_bundle": used_bundle,
        "then": second.outcome,
        "update": (updated.outcome, states(updated)),
        "update_adopted": [r["adoptedManifestVersion"] - updated.manifest_version for r in updated.reports],
        "runtime_has_update": sha256(yaml_bytes) == new_digest,
        "remove": (removed.outcome, states(removed), dep in d.runtime.running()),
        "remove_adopted": [r["adoptedManifestVersion"] - removed.manifest_version for r in removed.reports],
    }


def scenario_restart_and_rollback(h: Harness, faults: tuple[str, ...]) -> dict[str, Any]:
    d = h.device(faults=faults)
    d.sync()
    dep = h.deploy(d)
    d.sync()
    before = list(d.runtime.history)
    d.restart()
    after_restart = d.sync()
    churn = d.runtime.history[len(before) :]
    d.restart()  # a second restart, then the WFM's sequence starts again at 1 before the first poll
    h.set_faults(["version-reset-on-restart"])
    rolled = d.sync()
    return {
        "after_restart": after_restart.outcome,
        "churn": churn,
        "rollback": rolled.outcome,
        "event": bool(rolled.events),
        "kept": dep in d.runtime.running(),
    }


def scenario_equal_version(h: Harness, faults: tuple[str, ...]) -> dict[str, Any]:
    d = h.device(faults=faults)
    d.sync()
    h.deploy(d)  # new content ...
    h.serve("manifest-version-equal", client=d.spiffe_id)  # ... under the version the device holds
    result = d.sync()
    return {"outcome": result.outcome, "event": bool(result.events)}


def scenario_digest_mismatch(h: Harness, faults: tuple[str, ...]) -> dict[str, Any]:
    d = h.device(faults=faults)
    d.sync()
    dep = h.deploy(d)
    d.sync()
    old = d.runtime.yaml_of(dep)
    version = d.agent.state.manifest_version
    h.update(d, dep, {"listenPort": 9091})
    other = h.deploy(d, description("vendor-b-compose"))
    h.serve("deployment-digest-mismatch", deployments=(dep, other))
    result = d.sync()
    return {
        "outcome": result.outcome,
        "old_kept": d.runtime.yaml_of(dep) == old,
        "other_deployed": other in d.runtime.running(),
        "version_kept": d.agent.state.manifest_version == version,
        "reports": len(result.reports),
    }


def scenario_url_404(h: Harness, faults: tuple[str, ...]) -> dict[str, Any]:
    d = h.device(faults=faults)
    d.sync()
    dep = h.deploy(d)
    d.sync()
    h.serve("deployment-404", deployments=(dep,))
    h.update(d, dep, {"listenPort": 9092})
    result = d.sync()
    return {"outcome": result.outcome, "kept": dep in d.runtime.running(), "reports": states(result)}


def scenario_unknown_algorithm(h: Harness, faults: tuple[str, ...]) -> dict[str, Any]:
    d = h.device(faults=faults)
    d.sync()
    dep = h.deploy(d)
    d.sync()
    h.update(d, dep, {"listenPort": 9093})
    h.serve("unsupported-digest-algorithm", client=d.spiffe_id)
    result = d.sync()
    # the urls name the sha512 digests and answer: a device ignoring the algorithm fetches them (DS-023 alone)
    fetched = sorted(r["status"] for r in h.requests_of(d.spiffe_id) if "/sha512:" in r["path"])
    return {"outcome": result.outcome, "version": d.agent.state.manifest_version, "sha512_fetches": fetched}


def scenario_wrong_size_bytes(h: Harness, faults: tuple[str, ...]) -> dict[str, Any]:
    d = h.device(faults=faults)
    d.sync()
    dep = h.deploy(d)
    h.serve("wrong-size-bytes", client=d.spiffe_id)
    result = d.sync()
    return {"outcome": result.outcome, "deployed": dep in d.runtime.running()}


def scenario_ineligible(h: Harness, faults: tuple[str, ...]) -> dict[str, Any]:
    d = h.device(faults=faults, firmware=2)  # vendor-a needs firmware generation > 2
    d.sync()
    dep = h.deploy(d)
    result = d.sync()
    last = result.reports[-1] if result.reports else {}
    error = last.get("status", {}).get("error", {})
    return {
        "deployed": dep in d.runtime.running(),
        "states": states(result),
        "error_code": error.get("code"),
        "names_rule": "eligibilityRules[0]" in str(error.get("message")),
        "source": error.get("source"),
    }


def scenario_extensions_and_rollup(h: Harness, faults: tuple[str, ...]) -> dict[str, Any]:
    d = h.device(faults=faults, runtime=InMemoryRuntime(fail_components={"sidecar"}))
    d.sync()
    dep = h.deploy(d, two_components())
    result = d.sync()
    final = result.reports[-1]
    return {
        "states": states(result),
        "components": [(c["name"], c["state"]) for c in final["components"]],
        "error_sources": (
            final["status"].get("error", {}).get("source"),
            [c.get("error", {}).get("source") for c in final["components"]],
        ),
        "code": final["status"].get("error", {}).get("code"),
        "in_runtime": dep in d.runtime.running(),
    }


def scenario_plain_extension(h: Harness, faults: tuple[str, ...]) -> dict[str, Any]:
    """vendor-a as packaged: a component-level x-vendor-a-extensions the device does not know."""
    d = h.device(faults=faults)
    d.sync()
    dep = h.deploy(d)
    result = d.sync()
    return {"states": states(result), "deployed": dep in d.runtime.running()}


def scenario_wrong_wfm(h: Harness, faults: tuple[str, ...]) -> dict[str, Any]:
    d = h.device(faults=faults)
    h.serve("wrong-wfm-spiffe-id")
    result = d.sync()
    return {
        "outcome": result.outcome,
        "requests": len(h.requests_of(d.spiffe_id)),
        "event": bool(result.events),
    }


def scenario_retry_after(h: Harness, faults: tuple[str, ...]) -> dict[str, Any]:
    clock = FakeClock()
    d = h.device(faults=faults, clock=clock)
    d.sync()
    h.admin.overload(429, 7, requests=1)
    refused = d.sync()
    seen = len(h.requests_of(d.spiffe_id))
    early = d.sync()  # before the retry time: nothing may be sent
    sent_early = len(h.requests_of(d.spiffe_id)) - seen
    assert refused.not_before is not None
    clock.now = refused.not_before
    again = d.sync()
    return {
        "refused": (refused.outcome, refused.retry_after_s),
        "delay_at_least_retry_after": refused.not_before - 1000.0 >= 7,
        "early": (early.outcome, sent_early),
        "again": again.outcome,
    }


SCENARIOS: dict[str, Callable[[Harness, tuple[str, ...]], dict[str, Any]]] = {
    "capabilities_first": scenario_capabilities_first,
    "install_update_remove": scenario_install_update_remove,
    "restart_and_rollback": scenario_restart_and_rollback,
    "equal_version": scenario_equal_version,
    "digest_mismatch": scenario_digest_mismatch,
    "url_404": scenario_url_404,
    "unknown_algorithm": scenario_unknown_algorithm,
    "wrong_size_bytes": scenario_wrong_size_bytes,
    "ineligible": scenario_ineligible,
    "extensions_and_rollup": scenario_extensions_and_rollup,
    "plain_extension": scenario_plain_extension,
    "wrong_wfm": scenario_wrong_wfm,
    "retry_after": scenario_retry_after,
}

# The conformant observations (what the reference device must do).
CONFORMANT: dict[str, dict[str, Any]] = {
    "capabilities_first": {
        "outcome": "applied",
        "first": ("PUT", "/api/v1/capabilities/{device}", 201),
        "then_manifest": "/api/v1/deployments",
    },
    "install_update_remove": {
        "install": ("applied", ["installing", "installed"], 2),
        "install_adopted": [2, 2],
        "install_components": [{"name": "sensor-hub", "state": "installed"}],
        "wfm_recorded": ("installed", 2),
        "reports_valid": True,
        "used_bundle": True,
        "then": "not-modified",
        "update": ("applied", ["installing", "installed"]),
        "update_adopted": [0, 0],
        "runtime_has_update": True,
        "remove": ("applied", ["removing", "removed"], False),
        "remove_adopted": [0, 0],
    },
    "restart_and_rollback": {
        "after_restart": "not-modified",
        "churn": [],
        "rollback": "rejected-version",
        "event": True,
        "kept": True,
    },
    "equal_version": {"outcome": "rejected-version", "event": True},
    "digest_mismatch": {
        "outcome": "aborted",
        "old_kept": True,
        "other_deployed": False,
        "version_kept": True,
        "reports": 0,
    },
    "url_404": {"outcome": "aborted", "kept": True, "reports": []},
    "unknown_algorithm": {"outcome": "rejected-algorithm", "version": 2, "sha512_fetches": []},
    "wrong_size_bytes": {"outcome": "applied", "deployed": True},
    "ineligible": {
        "deployed": False,
        "states": ["failed"],
        "error_code": "ineligible",
        "names_rule": True,
        "source": "vendor-a-sensor-hub",
    },
    "extensions_and_rollup": {
        "states": ["installing", "failed"],
        "components": [("sensor-hub", "installed"), ("sidecar", "failed")],
        "error_sources": ("vendor-a-sensor-hub", [None, "sidecar"]),
        "code": "install-failed",
        "in_runtime": True,
    },
    "plain_extension": {"states": ["installing", "installed"], "deployed": True},
    "wrong_wfm": {"outcome": "wfm-refused", "requests": 0, "event": True},
    "retry_after": {
        "refused": ("retry", 7.0),
        "delay_at_least_retry_after": True,
        "early": ("backing-off", 0),
        "again": "not-modified",
    },
}

# Which scenario observations each device fault must change (and no other).
KILLS: dict[str, set[tuple[str, str]]] = {
    "accepts-rollback": {("restart_and_rollback", "rollback"), ("restart_and_rollback", "event")},
    "accepts-equal-version": {("equal_version", "outcome"), ("equal_version", "event")},
    "accepts-unknown-algorithm": {
        ("unknown_algorithm", "outcome"),
        ("unknown_algorithm", "version"),
        ("unknown_algorithm", "sha512_fetches"),
    },
    "skips-digest-check": {
        ("digest_mismatch", "outcome"),
        ("digest_mismatch", "old_kept"),
        ("digest_mismatch", "other_deployed"),
        ("digest_mismatch", "version_kept"),
        ("digest_mismatch", "reports"),
    },
    "partial-update-on-mismatch": {("digest_mismatch", "outcome"), ("digest_mismatch", "version_kept")},
    "trusts-size-bytes": {("wrong_size_bytes", "outcome"), ("wrong_size_bytes", "deployed")},
    "deletes-on-404": {("url_404", "outcome"), ("url_404", "kept"), ("url_404", "reports")},
    "no-persist": {
        ("restart_and_rollback", "after_restart"),
        ("restart_and_rollback", "churn"),
        ("restart_and_rollback", "rollback"),
        ("restart_and_rollback", "event"),
    },
    "ignores-eligibility": {
        ("ineligible", "deployed"),
        ("ineligible", "states"),
        ("ineligible", "error_code"),
        ("ineligible", "names_rule"),
        ("ineligible", "source"),
    },
    # vendor-a's component carries x-vendor-a-extensions, so every scenario deploying it is affected
    "fails-on-unknown-extension": {
        ("extensions_and_rollup", "states"),
        ("extensions_and_rollup", "components"),
        ("extensions_and_rollup", "error_sources"),
        ("extensions_and_rollup", "code"),
        ("extensions_and_rollup", "in_runtime"),
        ("plain_extension", "states"),
        ("plain_extension", "deployed"),
        ("install_update_remove", "install"),
        ("install_update_remove", "install_adopted"),
        ("install_update_remove", "install_components"),
        ("install_update_remove", "wfm_recorded"),
        ("install_update_remove", "update"),
        ("install_update_remove", "update_adopted"),
        ("install_update_remove", "runtime_has_update"),
        ("restart_and_rollback", "kept"),
        ("ineligible", "error_code"),
        ("ineligible", "names_rule"),
        ("url_404", "kept"),
        ("wrong_size_bytes", "deployed"),
    },
    "no-status-on-change": {("install_update_remove", "update"), ("install_update_remove", "update_adopted")},
    "wrong-rollup": {
        ("extensions_and_rollup", "states"),
        ("extensions_and_rollup", "error_sources"),
        ("extensions_and_rollup", "code"),
    },
    "adopted-version-wrong": {
        ("install_update_remove", "install_adopted"),
        ("install_update_remove", "update_adopted"),
        ("install_update_remove", "remove_adopted"),
    },
    "ignores-retry-after": {
        ("retry_after", "delay_at_least_retry_after"),
    },
    "wrong-wfm-id-accepted": {
        ("wrong_wfm", "outcome"),
        ("wrong_wfm", "requests"),
        ("wrong_wfm", "event"),
    },
    "no-installing-report": {
        ("install_update_remove", "install"),
        ("install_update_remove", "install_adopted"),
        ("install_update_remove", "wfm_recorded"),
        ("install_update_remove", "update"),
        ("install_update_remove", "update_adopted"),
        ("extensions_and_rollup", "states"),
        ("plain_extension", "states"),
    },
    "no-removed-report": {("install_update_remove", "remove"), ("install_update_remove", "remove_adopted")},
    # variants (allowed behaviours): what each changes, and nothing else
    "component-errors-only": {
        ("extensions_and_rollup", "code"),
        ("extensions_and_rollup", "error_sources"),
        ("ineligible", "error_code"),
        ("ineligible", "names_rule"),
        ("ineligible", "source"),
    },
    "ineligible-not-reported": {
        ("ineligible", "error_code"),
        ("ineligible", "names_rule"),
        ("ineligible", "source"),
        ("ineligible", "states"),
    },
}


def _normalise(name: str, observed: dict[str, Any]) -> dict[str, Any]:
    if name == "capabilities_first":
        method, path, status = observed["first"]
        observed = {
            **observed,
            "first": (method, "/api/v1/capabilities/{device}" if "/capabilities/" in path else path, status),
        }
    return observed


# -- the conformant device ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_conformant(harness: Harness, name: str) -> None:
    observed = _normalise(name, SCENARIOS[name](harness, ()))
    assert observed == CONFORMANT[name]


# -- every device fault changes exactly what it names ------------------------------------------------


# Faults these in-memory scenarios cannot run or see: the runtime's (no containers here), TLS settings,
# the polling tempo and the capabilities document (the WFM refuses it, so nothing else happens).
BLIND = {"capabilities-after-manifest", "omits-otel-collector", "polls-too-rarely", "accepts-untrusted-chain"}
BLIND |= {"accepts-tls11", "negotiates-tls11-then-hangs-up"} | {
    f.name for f in FAULTS.values() if f.area in ("runtime", "signing")
}


@pytest.mark.parametrize("fault", sorted(set(FAULTS) - BLIND))
def test_fault_changes_exactly_its_observations(harness: Harness, fault: str) -> None:
    changed: set[tuple[str, str]] = set()
    for name, scenario in SCENARIOS.items():
        harness.reset()
        observed = _normalise(name, scenario(harness, (fault,)))
        changed |= {(name, key) for key, value in observed.items() if CONFORMANT[name].get(key) != value}
    assert changed == KILLS.get(fault, set()), sorted(changed)


def test_every_fault_names_a_device_requirement_and_is_killed() -> None:
    """Faults these in-memory scenarios cannot see (the runtime's, TLS and polling tempo) are killed by
    the device persona's scenarios on a real engine (fixtures/device/faults.yaml, the self-test)."""
    registry = Registry.load()
    persona = yaml.safe_load((ROOT / "fixtures" / "device" / "faults.yaml").read_text(encoding="utf-8"))
    killed_by_scenarios = {entry["name"] for entry in persona["faults"] if entry.get("kills")}
    variants = {entry["name"] for entry in persona["faults"] if entry.get("kind") == "variant"}
    assert set(KILLS) <= set(FAULTS)
    assert variants == {f.name for f in FAULTS.values() if f.kind == "variant"}
    for fault in FAULTS.values():
        assert fault.requirement in registry, fault
        assert "device" in registry.get(fault.requirement).personas, fault
        assert fault.kind == "variant" or KILLS.get(fault.name) or fault.name in killed_by_scenarios, fault
    with pytest.raises(UsageError):
        FaultSet(["no-such-fault"])


# -- more behaviour ------------------------------------------------------------------------------------


def test_sha512_is_the_one_flaw_of_the_unsupported_algorithm_manifest(harness: Harness) -> None:
    """D9: the urls name the same sha512 digests and serve the bytes, so a device that ignores the
    algorithm gets everything it needs; only DS-023 can make it refuse."""
    observed = scenario_unknown_algorithm(harness, ("accepts-unknown-algorithm",))
    assert observed["outcome"] == "applied" and observed["sha512_fetches"], observed
    assert set(observed["sha512_fetches"]) == {200}, observed


def test_non_retryable_error_is_not_retried(harness: Harness) -> None:
    clock = FakeClock()
    d = harness.device(clock=clock)
    d.sync()
    harness.admin.retire_client(d.spiffe_id)
    result = d.sync()
    assert result.outcome == "error" and "403" in result.detail
    assert result.not_before is None and result.next_attempt_at == clock.now + 30.0


def test_state_is_durable_and_readable(harness: Harness) -> None:
    d = harness.device()
    d.sync()
    dep = harness.deploy(d)
    d.sync()
    stored = StateStore(d.config.state_dir).load()
    assert stored.manifest_version == 2 and stored.etag is not None
    assert stored.deployments[dep].state == "installed" and stored.deployments[dep].adopted_version == 2
    assert stored.pending_reports == []
    assert d.agent.transport.tls_version == "TLSv1.3"  # TLS-003: 1.3 whenever the WFM offers it
    digest = stored.deployments[dep].digest
    assert sha256(StateStore(d.config.state_dir).load_yaml(digest) or b"") == digest
    (d.config.state_dir / "state.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UsageError, match="rollback protection"):
        StateStore(d.config.state_dir).load()


def test_status_reports_are_retried_after_retry_after(harness: Harness) -> None:
    clock = FakeClock()
    d = harness.device(clock=clock)
    d.sync()
    dep = harness.deploy(d)
    # the manifest, the bundle, then the first status POST are answered; the second POST gets 503
    d.sync()  # installs and reports
    harness.update(d, dep, {"listenPort": 9094})
    original = d.agent.transport.send_json
    calls: list[str] = []

    def flaky(method: str, path: str, document: Any) -> Response:
        calls.append(path)
        if len(calls) == 2:
            body = b'{"type":"about:blank","title":"Service Unavailable","status":503,"retryable":true}'
            headers = (("Content-Type", "application/problem+json"), ("Retry-After", "5"))
            return Response(503, headers, body)
        return original(method, path, document)

    d.agent.transport.send_json = flaky  # type: ignore[method-assign]
    result = d.sync()
    assert result.outcome == "applied" and result.not_before == clock.now + 5
    assert [r["status"]["state"] for r in d.agent.state.pending_reports] == ["installed"]
    assert StateStore(d.config.state_dir).load().pending_reports  # queued durably
    assert d.sync().outcome == "backing-off"
    clock.now += 5
    assert d.sync().outcome == "not-modified"
    assert d.agent.state.pending_reports == []
    assert StateStore(d.config.state_dir).load().pending_reports == []  # the queue is persisted as it moves
    status = harness.status_of(dep)
    assert status is not None and status["report"]["status"]["state"] == "installed"


def test_run_polls_until_stopped(harness: Harness) -> None:
    d = harness.device()
    agent = DeviceAgent(DeviceConfig(**{**d.config.__dict__, "poll_interval_s": 0.05}), runtime=d.runtime)
    dep = harness.deploy(d)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    try:
        while dep not in d.runtime.running() and time.monotonic() < deadline:
            stop.wait(0.02)
    finally:
        stop.set()
        thread.join(5)
    assert dep in d.runtime.running()
    assert not thread.is_alive()


def test_run_device_entry_point(harness: Harness, tmp_path: Path) -> None:
    d = harness.device()
    stop = threading.Event()
    stop.set()  # one cycle at most, then return
    args = DeviceArgs(
        wfm=harness.endpoints.url,
        cert=d.config.svid.certificate,
        key=d.config.svid.key,
        anchors=d.config.anchors,
        state=tmp_path / "state",
        poll_interval=1.0,
        faults=("no-persist",),
    )
    assert build_config(args).faults == ("no-persist",)
    assert run_device(args, runtime=InMemoryRuntime(), stop_event=stop) == 0
    with pytest.raises(UsageError):
        build_config(DeviceArgs(**{**args.__dict__, "cert": tmp_path / "missing.crt"}))
    with pytest.raises(UsageError):  # fault names are checked when the agent starts
        DeviceAgent(build_config(DeviceArgs(**{**args.__dict__, "faults": ("nope",)})))


def test_host_capabilities_are_a_valid_hosting_document() -> None:
    document = host_capabilities("edge-1")
    assert not [f for f in SCHEMAS.validate(document, "DeviceCapabilitiesManifest") if f.level is Level.MUST]
    assert document["properties"]["cpus"][0]["cores"] >= 1
    assert quantity_bytes(document["properties"]["memory"]) is not None


# -- eligibility unit tests ----------------------------------------------------------------------------

CAPS = capabilities("dev-x")
CAPS["labels"] |= {"site": "plant-1", "zones": ["a", "b"], "flag": True}


def rule(*expressions: dict[str, Any], label: bool = False) -> dict[str, Any]:
    return {"labelSelector" if label else "propertySelector": {"matchExpressions": list(expressions)}}


@pytest.mark.parametrize(
    ("constraints", "eligible"),
    [
        (None, True),
        ({"eligibilityRules": [rule({"key": "/vendor", "operator": "In", "values": ["Vendor A"]})]}, True),
        ({"eligibilityRules": [rule({"key": "/vendor", "operator": "In", "values": ["vendor a"]})]}, False),
        ({"eligibilityRules": [rule({"key": "/vendor", "operator": "NotIn", "values": ["B"]})]}, True),
        ({"eligibilityRules": [rule({"key": "/nothing", "operator": "NotIn", "values": ["B"]})]}, False),
        ({"eligibilityRules": [rule({"key": "/otelCollector", "operator": "In", "values": [True]})]}, True),
        ({"eligibilityRules": [rule({"key": "/otelCollector", "operator": "In", "values": [1]})]}, False),
        (
            {
                "eligibilityRules": [
                    rule({"key": "/otelCollector", "operator": "In", "values": [True, False]})
                ]
            },
            False,
        ),
        ({"eligibilityRules": [rule({"key": "/gpu", "operator": "DoesNotExist"})]}, True),
        ({"eligibilityRules": [rule({"key": "/vendor", "operator": "Exists", "values": ["x"]})]}, False),
        ({"eligibilityRules": [rule({"key": "/cpus/0/cores", "operator": "Gt", "values": [3]})]}, True),
        ({"eligibilityRules": [rule({"key": "/cpus/0/cores", "operator": "Lt", "values": [3]})]}, False),
        ({"eligibilityRules": [rule({"key": "/cpus/0/cores", "operator": "Gt", "values": [1, 2]})]}, False),
        ({"eligibilityRules": [rule({"key": "/cpus", "operator": "In", "values": [4]})]}, False),  # objects
        (
            {
                "eligibilityRules": [
                    rule(
                        {
                            "key": "/cpus",
                            "operator": "ContainsAll",
                            "itemSelector": {
                                "matchExpressions": [
                                    {"key": "/architecture", "operator": "In", "values": ["amd64"]},
                                    {"key": "/cores", "operator": "Gt", "values": [2]},
                                ]
                            },
                        }
                    )
                ]
            },
            True,
        ),
        (
            {
                "eligibilityRules": [
                    rule(
                        {
                            "key": "/cpus",
                            "operator": "ContainsAll",
                            "itemSelector": {
                                "matchExpressions": [
                                    {"key": "/architecture", "operator": "In", "values": ["arm64"]},
                                    {"key": "/cores", "operator": "Gt", "values": [2]},
                                ]
                            },
                        }
                    )
                ]
            },
            False,
        ),
        (
            {
                "eligibilityRules": [
                    rule(
                        {
                            "key": "/cpus",
                            "operator": "ContainsAny",
                            "itemSelector": {
                                "matchExpressions": [
                                    {"key": "/architecture", "operator": "In", "values": ["arm64"]},
                                    {"key": "/cores", "operator": "Gt", "values": [2]},
                                ]
                            },
                        }
                    )
                ]
            },
            True,
        ),
        ({"eligibilityRules": [rule({"key": "zones", "operator": "In", "values": ["b"]}, label=True)]}, True),
        (
            {"eligibilityRules": [rule({"key": "/site", "operator": "Exists"}, label=True)]},
            False,
        ),  # exact key
        (
            {"eligibilityRules": [rule({"key": "site", "operator": "Bogus", "values": ["x"]}, label=True)]},
            False,
        ),
        (  # rules OR-ed
            {
                "eligibilityRules": [
                    rule({"key": "site", "operator": "In", "values": ["plant-2"]}, label=True),
                    rule({"key": "flag", "operator": "In", "values": [True]}, label=True),
                ]
            },
            True,
        ),
        (  # property and label selector AND-ed in one rule
            {
                "eligibilityRules": [
                    {
                        "propertySelector": {"matchExpressions": [{"key": "/vendor", "operator": "Exists"}]},
                        "labelSelector": {"matchExpressions": [{"key": "nope", "operator": "Exists"}]},
                    }
                ]
            },
            False,
        ),
        ({"capacityRequirements": {"cpu": {"cores": 4, "architectures": ["amd64"]}, "memory": "4Gi"}}, True),
        ({"capacityRequirements": {"cpu": {"cores": 4, "architectures": ["arm64"]}}}, False),
        ({"capacityRequirements": {"cpu": {"cores": 5}}}, False),
        ({"capacityRequirements": {"memory": "4097Mi"}}, False),
        ({"capacityRequirements": {"storage": "64Gi"}}, True),
        ({"capacityRequirements": {"storage": "1Ti"}}, False),
    ],
)
def test_eligibility(constraints: Any, eligible: bool) -> None:
    verdict = evaluate(constraints, CAPS)
    assert verdict.eligible is eligible, verdict.reasons
    assert bool(verdict.reasons) is not eligible


def test_cores_are_never_summed_over_cpu_entries() -> None:
    caps = {
        "properties": {"cpus": [{"cores": 2, "architecture": "amd64"}, {"cores": 2, "architecture": "amd64"}]}
    }
    verdict = evaluate({"capacityRequirements": {"cpu": {"cores": 3}}}, caps)
    assert not verdict.eligible and "CAP-005" in verdict.message
    assert quantity_bytes("59 Gi") == 59 * 1024**3  # errata INC-015


def test_the_cli_refuses_unknown_device_faults_and_missing_files(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from margo_conformance.cli import app

    runner = CliRunner()
    common = ["reference", "device", "--wfm", "https://127.0.0.1:1", "--state", str(tmp_path / "s")]
    missing = runner.invoke(app, [*common, "--cert", "/nope", "--key", "/nope", "--anchors", "/nope"])
    assert missing.exit_code != 0 and "--cert /nope: no such file" in str(missing.exception)
    unknown = runner.invoke(
        app, [*common, "--cert", "x", "--key", "x", "--anchors", "x", "--fault", "no-such"]
    )
    assert unknown.exit_code != 0 and "no-such" in str(unknown.exception)
