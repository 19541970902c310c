"""Steps of the device persona: thin; the instrument WFM, launchers, observer, apps and checks live in
margo_conformance.device."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from margo_conformance.checks import device as checks
from margo_conformance.device.apps import AppRequest
from margo_conformance.device.session import (
    MANIFEST_PATH,
    SERVED_MARK,
    SERVICE_PORT,
    Deployment,
    DeviceRun,
    DeviceScenario,
    free_port,
)
from margo_conformance.errors import Blocked
from margo_conformance.findings import Level

DEVICE_FEATURES = Path(__file__).resolve().parents[1] / "features" / "device"
# signing.feature is bound beside its own steps, in test_device_signing.py
scenarios(*(str(f) for f in sorted(DEVICE_FEATURES.rglob("*.feature")) if f.name != "signing.feature"))

CAPABILITIES_PREFIX = "/api/v1/capabilities/"
BUNDLES_PREFIX = "/api/v1/bundles/"
SERVED = {
    "serves the deployment's YAML with bytes that miss its digest": "deployment-digest-mismatch",
    "answers 404 for the deployment's YAML": "deployment-404",
    "serves a bundle whose bytes miss its digest": "bundle-digest-mismatch",
    "serves a manifestVersion lower than the device holds": "manifest-version-lower",
    "serves a manifestVersion equal to the one the device holds": "manifest-version-equal",
    "writes the manifest's digests with the algorithm sha512": "unsupported-digest-algorithm",
    "advertises sizes that differ from the bytes it serves": "wrong-size-bytes",
    "presents an SVID of another wfm-id in the same trust domain": "wrong-wfm-spiffe-id",
    "presents a chain from a CA outside the trust bundle": "untrusted-chain",
    "offers only TLS 1.1": "tls11-only",
}


class Story:
    """The deployments of one scenario, by the names the feature text gives them."""

    def __init__(self, device: DeviceScenario) -> None:
        self.device = device
        self.by_name: dict[str, Deployment] = {}
        self.current: Deployment | None = None

    def add(self, name: str, deployment: Deployment) -> Deployment:
        self.by_name[name] = self.current = deployment
        return deployment

    def get(self, name: str | None = None) -> Deployment:
        deployment = self.current if name is None else self.by_name.get(name)
        if deployment is None:
            raise Blocked(f"the scenario has no deployment {name or ''}".strip())
        return deployment


@pytest.fixture
def device(device_run: DeviceRun) -> Iterator[DeviceScenario]:
    scenario = DeviceScenario(device_run)
    yield scenario
    scenario.close()


@pytest.fixture
def story(device: DeviceScenario) -> Story:
    return Story(device)


def _deploy(story: Story, name: str, request: AppRequest) -> Deployment:
    return story.add(name, story.device.deploy(request))


def _vendor(vendor: str, **options: object) -> AppRequest:
    port = free_port() if vendor == "vendor-a" else None
    return AppRequest(vendor, host_port=port, **options)  # type: ignore[arg-type]


# -- the device -----------------------------------------------------------------------------------------


@given("a device connected to the instrument WFM")
def connected(device: DeviceScenario) -> None:
    device.connect()


@when("the device restarts")
def restarts(device: DeviceScenario) -> None:
    device.restart()


@when("the device stops")
def stops(device: DeviceScenario) -> None:
    device.stop()


@when("the device starts again")
def starts_again(device: DeviceScenario) -> None:
    device.start_again()


@then("the device's first request was a PUT of its capabilities, answered 201")
def first_is_capabilities(device: DeviceScenario) -> None:
    checks.ensure_capabilities_first(device.records_at_connect)


@then("the device then asked for its desired state")
def then_manifest(device: DeviceScenario) -> None:
    checks.ensure_manifest_after_capabilities(device.records_at_connect)


@then("the capabilities report validates against the rc.3 DeviceCapabilitiesManifest")
def capabilities_valid(device: DeviceScenario) -> None:
    checks.ensure_valid(_capabilities(device), "DeviceCapabilitiesManifest")


@then("it reports otelCollector true, at least one runtime and at least one deployment type")
def capabilities_hosting(device: DeviceScenario) -> None:
    checks.ensure_hosting(_capabilities(device))


@then(parsers.parse('it reports the deployment type "{kind}" and the runtime "{runtime}"'))
def capabilities_compose(device: DeviceScenario, kind: str, runtime: str) -> None:
    checks.ensure_compose_runtime(_capabilities(device), kind, runtime)


def _capabilities(device: DeviceScenario) -> dict[str, object]:
    report = next(
        (
            r
            for r in device.records_at_connect
            if r.method == "PUT" and r.path.startswith(CAPABILITIES_PREFIX)
        ),
        None,
    )
    if report is None or not isinstance(report.body, dict):
        raise Blocked("the transcript holds no capabilities body")
    return report.body


@then("the device asks for its desired state again within three polling periods")
def polls_again(device: DeviceScenario) -> None:
    since = device.run.instrument.mark()
    device.await_(
        "another GET /api/v1/deployments",
        lambda: any(r.method == "GET" and r.path == MANIFEST_PATH for r in device.records(since)),
        budget_s=device.run.config.poll_interval_s * 3 + 1.0,
    )


@then("the device asks for its desired state again")
def asks_again(device: DeviceScenario) -> None:
    since = device.mark
    device.await_(
        "the device polls GET /api/v1/deployments",
        lambda: any(
            r.method == "GET" and r.path == MANIFEST_PATH and r.status is not None
            for r in device.records(since)
        ),
        budget_s=device.run.work_budget_s,
    )


# -- the operator ---------------------------------------------------------------------------------------


@when(parsers.parse("the operator deploys {vendor}'s application to the device"))
def deploys(story: Story, vendor: str) -> None:
    _deploy(story, vendor, _vendor(vendor))


@given(parsers.parse("{vendor}'s application installed on the device"))
def installed(story: Story, vendor: str) -> None:
    deployment = _deploy(story, vendor, _vendor(vendor))
    story.device.await_report(deployment, "installed")
    story.device.remember_workloads(deployment)


@given(parsers.parse("{first}'s and {second}'s applications installed on the device"))
def both_installed(story: Story, first: str, second: str) -> None:
    """Both in one desired-state change: the device installs them in one cycle."""
    since = story.device.run.instrument.mark()
    deployments = [_deploy(story, vendor, _vendor(vendor)) for vendor in (first, second)]
    for deployment in deployments:
        story.device.await_report(deployment, "installed", since=since)
        story.device.remember_workloads(deployment)


@when("the operator deploys vendor-a's application with a second component that exits at once")
def deploys_failing(story: Story) -> None:
    _deploy(story, "vendor-a", _vendor("vendor-a", failing_component=True))


@when("the operator deploys vendor-a's application with an eligibility rule the device does not meet")
def deploys_ineligible(story: Story) -> None:
    _deploy(story, "vendor-a", _vendor("vendor-a", eligibility="unmet"))


@when("the operator deploys vendor-a's application, whose deployment carries x-vendor-a-extensions")
def deploys_with_extensions(story: Story) -> None:
    deployment = _deploy(story, "vendor-a", _vendor("vendor-a", extensions=True))
    if "x-vendor-a-extensions" not in str(story.device.deployment_yaml(deployment)):
        raise Blocked("the instrument WFM's deployment does not carry x-vendor-a-extensions")


@when("the operator deploys a third application that publishes vendor-a's host port")
def deploys_port_clash(story: Story) -> None:
    port = story.get("vendor-a").app.host_port
    _deploy(story, "third", AppRequest("vendor-a", host_port=port))


@when(parsers.parse('the operator sets the deployment\'s parameter "{name}" to {value:d}'))
def sets_parameter(story: Story, name: str, value: int) -> None:
    story.device.update(story.get("vendor-a"), {name: value})


@when(
    parsers.parse(
        'the operator sets the deployment\'s parameter "{name}" to {value:d} '
        "and deploys {vendor}'s application"
    )
)
def sets_parameter_and_deploys(story: Story, name: str, value: int, vendor: str) -> None:
    """The cycle judged is one that saw both changes (the last one's mark)."""
    first = story.get("vendor-a")
    story.device.update(first, {name: value})
    _deploy(story, vendor, _vendor(vendor))
    story.current = first


@when("the operator removes the deployment")
def removes(story: Story) -> None:
    story.device.undeploy(story.get())


@when(parsers.parse("the operator removes {vendor}'s deployment"))
def removes_vendor(story: Story, vendor: str) -> None:
    story.device.undeploy(story.get(vendor))


# -- the instrument WFM ---------------------------------------------------------------------------------


@given(parsers.parse("the instrument WFM {behaviour}"))
@when(parsers.parse("the instrument WFM {behaviour}"))
def instrument_serves(story: Story, behaviour: str) -> None:
    if behaviour.startswith("answers the device's next request with"):
        return _overload(story.device, behaviour)
    name = SERVED.get(behaviour)
    if name is None:
        raise Blocked(f"no served fault for {behaviour!r}")
    story.device.serve(name, story.current)


def _overload(device: DeviceScenario, behaviour: str) -> None:
    parsed = parsers.parse(
        "answers the device's next request with {status:d} and Retry-After {seconds:d}"
    ).parser.parse(behaviour)
    if parsed is None:
        raise Blocked(f"cannot read {behaviour!r}")
    device.mark = device.run.instrument.mark()
    device.run.instrument.admin.overload(parsed["status"], parsed["seconds"], requests=1)


# -- status reports -------------------------------------------------------------------------------------


@then(parsers.parse('the device reports the deployment "{state}"'))
def reports_state(story: Story, state: str) -> None:
    story.device.await_report(story.get(), state)


@then(parsers.parse('the device reports {vendor}\'s deployment "{state}"'))
def reports_vendor_state(story: Story, vendor: str, state: str) -> None:
    story.device.await_report(story.get(vendor), state)


@then(parsers.parse('the device reports the deployment "{state}" with an error that says why'))
@then(parsers.parse('the device reports the third deployment "{state}" with an error that says why'))
def reports_with_error(story: Story, state: str) -> None:
    """The message may be the overall one or a component's (status.error is optional, OA3 616-624)."""
    checks.ensure_error_message(story.device.await_report(story.get(), state))


@then(parsers.parse('the device reports the deployment "{state}" for the new manifestVersion'))
def reports_state_adopted(story: Story, state: str) -> None:
    deployment = story.get()
    checks.ensure_adopted([story.device.await_report(deployment, state)], deployment.manifest_version)


@then(parsers.parse('the reports of the deployment went through "{first}" before "{last}"'))
def went_through(story: Story, first: str, last: str) -> None:
    checks.ensure_states_in_order(story.device.reports(story.get()), first, last)


@then("every report of the deployment validates against the rc.3 DeploymentStatusManifest")
def reports_valid(story: Story) -> None:
    for report in story.device.reports(story.get()):
        checks.ensure_valid(report, "DeploymentStatusManifest")


@then("no report of the deployment carries the legacy apiVersion or kind")
def reports_without_envelope(story: Story) -> None:
    for report in story.device.reports(story.get()):
        checks.ensure_valid(report, "DeploymentStatusManifest", Level.SHOULD)


@then("every report lists exactly the deployment's components")
def reports_components(story: Story) -> None:
    deployment = story.get()
    expected = checks.component_names(story.device.deployment_yaml(deployment))
    checks.ensure_components_listed(story.device.reports(deployment), expected)


@then("every report adopts the manifestVersion that brought the deployment")
def reports_adopted(story: Story) -> None:
    deployment = story.get()
    checks.ensure_adopted(story.device.reports(deployment), deployment.manifest_version)


@then(parsers.parse('the last report shows component "{a}" "{a_state}" and component "{b}" "{b_state}"'))
def last_report_components(story: Story, a: str, a_state: str, b: str, b_state: str) -> None:
    checks.ensure_component_states(story.device.reports(story.get())[-1], {a: a_state, b: b_state})


@then("the overall error names the application as its source and the component error names the component")
def error_sources(story: Story) -> None:
    deployment = story.get()
    name = (story.device.deployment_yaml(deployment).get("metadata") or {}).get("name")
    checks.ensure_error_sources(story.device.reports(deployment)[-1], name)


# -- the cycle after a refusal --------------------------------------------------------------------------


@then("the device fetches the changed deployment and finishes its cycle")
@then("the device fetches the deployment and finishes its cycle")
def fetched_changed(story: Story) -> None:
    """Through its YAML URL or the bundle: DS-027 lets the client choose."""
    deployment = story.get()
    story.device.await_cycle_after(
        f"the device fetches deployment {deployment.id}'s new YAML or the bundle",
        lambda r: (
            r.method == "GET"
            and (r.path.startswith(f"{MANIFEST_PATH}/{deployment.id}/") or r.path.startswith(BUNDLES_PREFIX))
        ),
    )


@then(parsers.parse('the device reports the deployment neither "{first}" nor "{second}"'))
def never_reported(story: Story, first: str, second: str) -> None:
    """ADEP-003 fixes no report for a refused deployment (errata INC-141): failed, or none at all."""
    checks.ensure_not_reported(story.device.reports(story.get(), story.device.mark), (first, second))


@then("the device fetches the bundle and finishes its cycle")
def fetched_bundle(story: Story) -> None:
    deployment = story.get()
    first = story.device.await_cycle_after(
        "the device fetches the bundle or the deployment's YAML",
        lambda r: r.method == "GET" and (r.path.startswith(BUNDLES_PREFIX) or deployment.id in r.path),
    )
    if not first.path.startswith(BUNDLES_PREFIX):
        raise Blocked(
            "the device fetched the YAML, not the bundle (DS-027 only prefers it): nothing to judge"
        )


@then("the device's first poll after the restart carries the ETag it was last given in If-None-Match")
def polls_with_stored_etag(device: DeviceScenario) -> None:
    """DS-025: the stored ETag survives the restart (the device's workloads may restart with it)."""
    since = device.mark
    before = [r for r in device.records(0) if int(r.data.get("index", 0)) < since]
    checks.ensure_stored_etag(before, device.await_poll())


@then("the device receives the manifest and finishes its cycle")
def received_manifest(story: Story) -> None:
    story.device.await_cycle_after(
        "the device receives the changed manifest (200)",
        lambda r: r.method == "GET" and r.path == MANIFEST_PATH and r.status == 200,
    )


@then("the device connects again and sends no request")
def connects_without_request(device: DeviceScenario) -> None:
    since = device.mark

    def refused_twice() -> bool:
        attempts = [
            r for r in device.records(since) if r.kind == "connection" and r.data.get("outcome") != "requests"
        ]
        return len(attempts) >= 2

    device.await_("the device tries to connect (twice)", refused_twice, budget_s=device.run.work_budget_s)
    records = device.records(since)
    checks.ensure_no_request(records, "")
    checks.ensure_no_weak_tls(records)


@then(parsers.parse("the device sends no request until {seconds:d} seconds after that answer"))
def honours_retry_after(device: DeviceScenario, seconds: int) -> None:
    since = device.mark
    gap = device.await_(
        "a 429 answer and the device's next request after it",
        lambda: checks.retry_gap(device.records(since), 429),  # the retried request (errata INC-140)
        budget_s=device.run.work_budget_s + seconds,
    )
    checks.ensure_retry_after_honoured(gap, seconds)


# -- the runtime ----------------------------------------------------------------------------------------


@then(parsers.parse("{vendor}'s application is untouched"))
def untouched(story: Story, vendor: str) -> None:
    deployment = story.get(vendor)
    checks.ensure_untouched(deployment.snapshot, story.device.workload_states(deployment))


@then(parsers.parse("{vendor}'s application still runs as installed"))
def still_as_installed(story: Story, vendor: str) -> None:
    """The same containers with the same configuration; a restart of them is allowed (DS-025 binds the
    stored state, not the workloads' uptime)."""
    deployment = story.get(vendor)
    checks.ensure_same_configuration(deployment.snapshot, story.device.workload_states(deployment), "DS-024")


@then(parsers.parse("{vendor}'s application is not deployed"))
def not_deployed(story: Story, vendor: str) -> None:
    checks.ensure_not_running(story.device.workloads(story.get(vendor)))


@then(parsers.parse("{vendor}'s application runs on the device and serves on its published port"))
def runs_and_serves(story: Story, vendor: str) -> None:
    deployment = story.get(vendor)
    if deployment.app.host_port is None:
        raise Blocked(f"{vendor}'s application publishes no port")
    port = deployment.app.host_port
    checks.ensure_serves(
        story.device.workloads(deployment), lambda: story.device.fetch_page(port), SERVED_MARK
    )


@then(parsers.parse('{vendor}\'s application runs with {name} "{value}"'))
def runs_with(story: Story, vendor: str, name: str, value: str) -> None:
    deployment = story.get(vendor)
    checks.ensure_runs_with(story.device.workloads(deployment), name, value)


@then("nothing of the deployment is left on the device")
def nothing_left(story: Story) -> None:
    deployment = story.get()
    left = story.device.await_(
        "the deployment's containers are gone",
        lambda: not story.device.workloads(deployment) or None,
        budget_s=story.device.run.work_budget_s,
    )
    assert left


# -- isolation ------------------------------------------------------------------------------------------


@then("from vendor-a's network, vendor-a's own service answers and vendor-b's service cannot be reached")
def cannot_reach(story: Story) -> None:
    probes = story.device.reachability(story.get("vendor-a"), story.get("vendor-b"))
    checks.ensure_unreachable(probes, SERVICE_PORT)


@then("no mount of vendor-a's containers shares a source with a mount of vendor-b's containers")
def no_shared_mounts(story: Story) -> None:
    a, b = (story.device.workloads(story.get(v)) for v in ("vendor-a", "vendor-b"))
    checks.ensure_no_shared_mounts(a, b)


@then("no container of either application is privileged or uses the host's network, PID or IPC namespace")
def no_privilege(story: Story) -> None:
    workloads = [w for v in ("vendor-a", "vendor-b") for w in story.device.workloads(story.get(v))]
    checks.ensure_unprivileged(workloads)


@then(parsers.parse("vendor-a's container runs as user {uid:d}, as its package asks"))
def runs_as(story: Story, uid: int) -> None:
    checks.ensure_runs_as(story.device.users(story.get("vendor-a")), uid)


@then(
    parsers.parse(
        "vendor-b's container is limited to {cpus:g} CPUs and {mib:d} MiB of memory, as its package asks"
    )
)
def limited(story: Story, cpus: float, mib: int) -> None:
    checks.ensure_limits(story.device.workloads(story.get("vendor-b")), cpus, mib * 1024 * 1024)


@then("vendor-a's container sees none of vendor-b's environment and vendor-b's none of vendor-a's")
def environment_separate(story: Story) -> None:
    checks.ensure_no_leaked_environment(
        story.device.environments(story.get("vendor-a"), story.get("vendor-b"))
    )
