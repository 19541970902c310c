"""One device scenario: a fresh identity and state folder, the device started through its launcher,
deployments made through the instrument WFM, and everything removed again at the end — on failure
too (stop the device, remove its workloads, forget its deployments and the served faults).

Waits are budgets (``DeviceSubjectConfig``): the device's polling period times a small factor for
protocol steps, plus ``status_timeout_s`` for work (pulls, container starts). Every wait also fails
at once when the device's process has died.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .._internal.images import build_test_images
from .._internal.local_registry import free_port as free_port
from .._internal.runtime_docker import wait_until
from ..checks.device import NetworkProbe, SeenEnvironment, WorkloadState
from ..config import DeviceSubjectConfig
from ..errors import Blocked
from ..instrument import AdminError, StartWfm
from .apps import AppRequest, PublishedApp, publish_app
from .instrument import AwaitTimeout, DeviceIdentity, InstrumentWfm, Record
from .launchers import Launcher, LaunchFacts, make_launcher
from .observer import DockerObserver, NoObserver, Workload, make_observer

LOG = logging.getLogger("margo_conformance.device")
SETTLE_S = 10.0  # the longest the suite waits for a stopped device's own helpers (compose) to end


def _remove_until_settled(observer: DockerObserver, deployment_ids: list[str], state: Path) -> None:
    """Remove the deployments' containers once no process of the device (its state folder in the command
    line, e.g. a `docker compose up` it started) is still running: a device stopped in the middle of an
    install would otherwise have the engine create a container after the clean-up looked."""
    wait_until(lambda: not _processes_naming(state), timeout=SETTLE_S, interval=0.2)
    observer.remove(deployment_ids)


def _processes_naming(path: Path) -> bool:
    needle = str(path).encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if needle in cmdline.read_bytes():
                return True
    return False


MANIFEST_PATH = "/api/v1/deployments"
CAPABILITIES_PATH = "/api/v1/capabilities/"
SERVICE_PORT = 8080  # where the suite's http-server workloads listen inside their containers
SERVED_MARK = "margo-test http-server"  # what the suite's http-server workloads answer with
TERMINAL_STATES = frozenset({"installed", "failed", "removed"})  # where a change ends (STAT-002)
EVIDENCE_RECORDS = 15  # transcript lines a failure message shows
POLLS_PER_STEP = 3  # a protocol step (a poll, a retry) must happen within this many polling periods
_NAMES = itertools.count(1)


@dataclass(frozen=True)
class DeviceRun:
    """What all device scenarios of one run share."""

    config: DeviceSubjectConfig
    workdir: Path
    instrument: InstrumentWfm
    registry_host: str
    observer: DockerObserver | NoObserver
    packages: Path
    faults: tuple[str, ...] = ()

    @property
    def step_budget_s(self) -> float:
        return self.config.poll_interval_s * POLLS_PER_STEP + 5.0

    @property
    def work_budget_s(self) -> float:
        return self.config.status_timeout_s + self.step_budget_s


@dataclass
class Deployment:
    """A deployment the scenario made, and what the device ran for it when it was last installed."""

    id: str
    app: PublishedApp
    parameters: dict[str, Any]
    manifest_version: int = 0  # the client's manifestVersion right after the operator's change
    snapshot: list[WorkloadState] = field(default_factory=list)


@contextlib.contextmanager
def start_device_run(
    config: DeviceSubjectConfig,
    workdir: Path,
    *,
    registry_host: str,
    packages: Path,
    start_wfm: StartWfm,
    faults: tuple[str, ...] = (),
) -> Iterator[DeviceRun]:
    """Build the test images and start the instrument WFM with ``start_wfm`` (the driver's wiring);
    each scenario removes what it made."""
    observer = make_observer(config.observer)
    if isinstance(observer, DockerObserver) and (
        config.reference or config.launcher.get("type") == "command"
    ):
        build_test_images()  # the device pulls nothing: its workloads' images must be on its engine
    instrument = InstrumentWfm(workdir / "instrument", start_wfm, host=config.wfm_host)
    try:
        yield DeviceRun(config, workdir, instrument, registry_host, observer, packages, faults)
    finally:
        instrument.close()


class DeviceScenario:
    """The device under test during one scenario, with the operator's and the observer's hands."""

    def __init__(self, run: DeviceRun) -> None:
        self.run = run
        self.name = f"device-{next(_NAMES)}"
        self.folder = run.workdir / self.name
        self.identity: DeviceIdentity | None = None
        self.launcher: Launcher | None = None
        self.device_id = ""
        self.deployments: dict[str, Deployment] = {}
        self.mark = 0  # transcript position before the last operator action
        self.records_at_connect: list[Record] = []
        self.trust: tuple[Path, Path] | None = None  # (trust policy, trust store) the device verifies with

    # -- the device ----------------------------------------------------------------------------------

    @property
    def spiffe_id(self) -> str:
        assert self.identity is not None, "connect() first"
        return self.identity.spiffe_id

    def connect(self, *, trust: tuple[Path, Path] | None = None) -> None:
        """Start the device (with a Notary trust policy and store, for the signing profile) and wait
        until it has reported its capabilities and fetched a manifest."""
        self.trust = trust
        start = self.run.instrument.mark()
        self.identity = self.run.instrument.enrol(self.name)
        self.launcher = make_launcher(
            self.run.config.launcher, self.folder / "device.log", faults=self.run.faults
        )
        self.launcher.start(self._facts())
        self.await_(
            "the device reports its capabilities (PUT /api/v1/capabilities/…) and fetches its desired state",
            lambda: self._manifest_fetched(start),
            budget_s=self.run.work_budget_s,
        )
        self.records_at_connect = self.records(start)
        self.device_id = self.run.instrument.device_id_of(self.spiffe_id) or ""

    def _facts(self) -> LaunchFacts:
        assert self.identity is not None
        return LaunchFacts(
            wfm_url=self.run.instrument.url,
            client_cert=self.identity.svid.certificate,
            client_key=self.identity.svid.key,
            trust_anchors=self.identity.anchors,
            state_dir=self.folder / "state",
            device_id=self.name,
            poll_interval_s=self.run.config.poll_interval_s,
            trust_policy=self.trust[0] if self.trust else None,
            trust_store=self.trust[1] if self.trust else None,
        )

    def _manifest_fetched(self, since: int) -> Record | None:
        records = self.records(since)
        refused = next(
            (r for r in records if r.path.startswith(CAPABILITIES_PATH) and (r.status or 0) >= 400), None
        )
        if refused is not None:
            raise AssertionError(
                f"the instrument WFM refused the device's capabilities report ({refused.brief()}): "
                f"{refused.body if refused.body is not None else ''}"
            )
        return next(
            (
                r
                for r in self.records(since)
                if r.method == "GET" and r.path == MANIFEST_PATH and r.status == 200
            ),
            None,
        )

    def restart(self) -> None:
        """Stop the device and start it again over the same state folder and identity."""
        self.stop()
        self.mark = self.run.instrument.mark()
        self.start_again()

    def stop(self) -> None:
        assert self.launcher is not None, "connect() first"
        self.launcher.stop()

    def start_again(self) -> None:
        """Start the stopped device over its state folder (the last operator action's mark stays)."""
        assert self.launcher is not None, "connect() first"
        self.launcher.start(self._facts())

    def close(self) -> None:
        """Stop the device and remove everything the scenario made; never raises."""
        steps: list[tuple[str, Callable[[], object]]] = []
        if self.launcher is not None:
            steps.append(("stop the device", self.launcher.stop))
        steps.append(("reset served faults", lambda: self.run.instrument.admin.set_served([])))
        steps.append(("reset overload", lambda: self.run.instrument.admin.overload(None)))
        for deployment_id in self.deployments:
            steps.append((f"forget {deployment_id}", functools.partial(self._forget, deployment_id)))
        if isinstance(self.run.observer, DockerObserver) and self.deployments:
            observer, ids = self.run.observer, list(self.deployments)
            state = self.folder / "state"
            steps.append(("remove workloads", lambda: _remove_until_settled(observer, ids, state)))
        if self.identity is not None:
            steps.append(
                ("retire the client", lambda: self.run.instrument.admin.retire_client(self.spiffe_id))
            )
        for what, step in steps:
            try:
                step()
            except Exception as exc:  # clean-up goes on; the scenario's own verdict stands
                LOG.warning("clean-up of %s: %s failed: %s", self.name, what, exc)

    def _forget(self, deployment_id: str) -> None:
        with contextlib.suppress(AdminError):
            self.run.instrument.admin.undeploy(deployment_id)

    # -- the operator ----------------------------------------------------------------------------------

    def publish(self, request: AppRequest) -> PublishedApp:
        return publish_app(
            request,
            self.run.packages,
            self.folder / "packages",
            self.run.registry_host,
            namespace=f"{self.name}-{len(self.deployments) + 1}",
        )

    def deploy(self, request: AppRequest, parameters: Mapping[str, Any] | None = None) -> Deployment:
        app = self.publish(request)
        self.mark = self.run.instrument.mark()
        deployment_id, _ = self.run.instrument.admin.deploy(
            self.spiffe_id, self.device_id, app.description, dict(parameters or {})
        )
        deployment = Deployment(deployment_id, app, dict(parameters or {}))
        self._changed(deployment)
        self.deployments[deployment_id] = deployment
        return deployment

    def update(self, deployment: Deployment, parameters: Mapping[str, Any]) -> None:
        deployment.parameters = {**deployment.parameters, **parameters}
        self.mark = self.run.instrument.mark()
        self.run.instrument.admin.update(
            deployment.id, self.spiffe_id, self.device_id, deployment.app.description, deployment.parameters
        )
        self._changed(deployment)

    def undeploy(self, deployment: Deployment) -> None:
        self.mark = self.run.instrument.mark()
        self.run.instrument.admin.undeploy(deployment.id)
        self._changed(deployment)

    def _changed(self, deployment: Deployment) -> None:
        """Right after an operator change: the manifestVersion it made (``mark`` was taken before the
        change, so that nothing the device does about it can be missed)."""
        deployment.manifest_version = self.client_manifest_version()

    def client_manifest_version(self) -> int:
        states = self.run.instrument.admin.state().get("manifests", {})
        return int((states.get(self.spiffe_id) or {}).get("manifestVersion", 0))

    def deployment_yaml(self, deployment: Deployment) -> dict[str, Any]:
        for entry in self.run.instrument.admin.state().get("deployments", []):
            if entry.get("deploymentId") == deployment.id:
                document: dict[str, Any] = yaml.safe_load(entry["yaml"])
                return document
        raise AssertionError(f"the instrument WFM holds no deployment {deployment.id}")

    def serve(self, name: str, deployment: Deployment | None) -> None:
        """Switch one served fault on (for this device, or for the deployment when it is per resource)."""
        admin = self.run.instrument.admin
        scopes = {entry["name"]: entry["scope"] for entry in admin.served()["catalogue"]}
        entry: dict[str, str] = {"name": name}
        if scopes.get(name) == "client":
            entry["client"] = self.spiffe_id
        elif scopes.get(name) == "deployment":
            if deployment is None:
                raise Blocked(f"the served fault {name} needs a deployment")
            entry["deployment"] = deployment.id
        active = [dict(item) for item in admin.served()["active"]]
        admin.set_served([*active, entry])
        self.mark = self.run.instrument.mark()

    # -- what the device said --------------------------------------------------------------------------

    def records(self, since: int = 0) -> list[Record]:
        return self.run.instrument.records(self.spiffe_id, since)

    def reports(self, deployment: Deployment, since: int = 0) -> list[dict[str, Any]]:
        return self.run.instrument.reports(self.spiffe_id, deployment.id, since)

    def await_(self, what: str, probe: Callable[[], Any], *, budget_s: float) -> Any:
        """``probe`` until truthy; a timeout says what the device did meanwhile and where its log is."""
        check = self.launcher.check_alive if self.launcher is not None else (lambda: None)
        try:
            return self.run.instrument.await_(what, probe, budget_s=budget_s, alive=check)
        except AwaitTimeout as timeout:
            raise AwaitTimeout(f"{timeout}\n{self.evidence()}") from None

    def evidence(self) -> str:
        """The device's transcript since the last operator action (all of it kept in the scenario's
        folder) and the end of its log: what a failure message shows."""
        records = self.records(0) if self.identity is not None else []
        self.folder.mkdir(parents=True, exist_ok=True)
        transcript = self.folder / "transcript.yaml"
        transcript.write_text(
            yaml.safe_dump([dict(r.data) for r in records], sort_keys=False), encoding="utf-8"
        )
        recent = [r for r in records if int(r.data.get("index", 0)) >= self.mark][-EVIDENCE_RECORDS:]
        lines = [f"  {r.data.get('time', '')} {r.brief()}" for r in recent] or ["  (nothing)"]
        tail = self.launcher.log_tail() if self.launcher is not None else "(not started)"
        return (
            f"transcript since the last operator action ({transcript}):\n"
            + "\n".join(lines)
            + f"\nend of the device's log:\n{tail}"
        )

    def await_report(self, deployment: Deployment, state: str, *, since: int | None = None) -> dict[str, Any]:
        """The first report with this overall state since the last operator action."""
        start = self.mark if since is None else since

        def found() -> dict[str, Any] | None:
            for report in self.reports(deployment, start):
                reported = (report.get("status") or {}).get("state")
                if reported == state:
                    return report
                if state in TERMINAL_STATES and reported in TERMINAL_STATES:
                    raise AssertionError(f'the device reported "{reported}", not "{state}": {report}')
            return None

        report: dict[str, Any] = self.await_(
            f'the device reports deployment {deployment.id} "{state}"', found, budget_s=self.run.work_budget_s
        )
        return report

    def await_poll(self) -> Record:
        """The device's first GET /api/v1/deployments since the last mark."""
        record: Record = self.await_(
            "the device polls GET /api/v1/deployments",
            lambda: next(
                (r for r in self.records(self.mark) if r.method == "GET" and r.path == MANIFEST_PATH), None
            ),
            budget_s=self.run.work_budget_s,
        )
        return record

    def await_cycle_after(self, what: str, event: Callable[[Record], bool]) -> Record:
        """Wait for ``event`` in a cycle that saw the last operator action (from the first manifest
        the device received after it: a fast device may act before the change's own call returns),
        then for the next poll after it: the device has then finished that cycle."""
        since = self.mark

        def seen() -> Record | None:
            records = self.records(since)
            start = next((r for r in records if _is_manifest(r) and r.status == 200), None)
            if start is None:
                return None
            return next((r for r in records if r.index >= start.index and event(r)), None)

        first: Record = self.await_(what, seen, budget_s=self.run.work_budget_s)

        def next_poll() -> Record | None:
            later = [r for r in self.records(since) if r.time > first.time]
            return next((r for r in later if _is_manifest(r)), None)

        self.await_("the device polls again after that", next_poll, budget_s=self.run.work_budget_s)
        return first

    # -- what the runtime runs -------------------------------------------------------------------------

    def workloads(self, deployment: Deployment) -> list[Workload]:
        return self.run.observer.workloads(deployment.id)

    def remember_workloads(self, deployment: Deployment) -> None:
        deployment.snapshot = _snapshot(self.workloads(deployment))

    def fetch_page(self, port: int) -> str:
        """The page a published port serves on this host (awaited: a container may still be binding)."""

        def get() -> str | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:  # noqa: S310
                    return bytes(page.read(4096)).decode("utf-8", errors="replace")
            except OSError:
                return None

        text: str = self.await_(f"127.0.0.1:{port} serves a page", get, budget_s=self.run.step_budget_s)
        return text

    def reachability(self, own: Deployment, other: Deployment) -> list[NetworkProbe]:
        """ISO-101's observation: from every network of ``own``'s workloads, a probe of ``own``'s
        service (the control) and of every address of ``other``'s workloads."""
        observer = self._docker()
        mine, theirs = self.workloads(own), self.workloads(other)
        targets = sorted({address for w in theirs for address in w.addresses.values() if address})
        if not mine or not targets:
            raise Blocked("both deployments need running containers with addresses")
        probes = []
        for network in sorted({n for w in mine for n in w.addresses}):
            controls = [a for w in mine for n, a in w.addresses.items() if n == network and a]
            report = observer.probe(network, [f"tcp:{a}:{SERVICE_PORT}" for a in controls[:1] + targets])
            control = controls[0] if controls else None
            probes.append(
                NetworkProbe(
                    network,
                    control,
                    bool(control and report.tcp.get(f"{control}:{SERVICE_PORT}")),
                    tuple(a for a in targets if report.tcp.get(f"{a}:{SERVICE_PORT}")),
                )
            )
        return probes

    def users(self, deployment: Deployment) -> dict[str, str]:
        """ISO-104's observation: ``id -u`` in each running container of the deployment."""
        observer = self._docker()
        return {
            w.name: observer.exec(w, ["id", "-u"]).strip() for w in self.workloads(deployment) if w.running
        }

    def environments(self, first: Deployment, second: Deployment) -> list[SeenEnvironment]:
        """ISO-106's observation: the environment each running container really has, beside what the
        other deployment's containers are configured with."""
        observer = self._docker()
        seen = []
        for own, other in ((first, second), (second, first)):
            other_env = {k: v for w in self.workloads(other) for k, v in w.env.items()}
            for w in (w for w in self.workloads(own) if w.running):
                live = dict(line.partition("=")[::2] for line in observer.exec(w, ["env"]).splitlines())
                seen.append(
                    SeenEnvironment(w.name, live, other_env, frozenset(own.app.declared_env), w.image_env)
                )
        return seen

    def _docker(self) -> DockerObserver:
        if not isinstance(self.run.observer, DockerObserver):
            raise Blocked("the SUT file gives no observer for the device's runtime (observer.type: none)")
        return self.run.observer

    def workload_states(self, deployment: Deployment) -> list[WorkloadState]:
        """The deployment's workloads as they are now (to compare with ``deployment.snapshot``)."""
        return _snapshot(self.workloads(deployment))


def _is_manifest(record: Record) -> bool:
    return record.method == "GET" and record.path == MANIFEST_PATH


def _snapshot(workloads: list[Workload]) -> list[WorkloadState]:
    """Each workload's name, instance (container id + start time), running and environment."""
    return [
        WorkloadState(w.name, f"{w.id} {w.started_at}", w.running, tuple(sorted(w.env.items())))
        for w in workloads
    ]
