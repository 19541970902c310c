"""The device persona's library on its own: SUT device section, launchers, checks and the apps it
publishes (no device, no Docker needed except where marked)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from margo_conformance.checks import Violation
from margo_conformance.checks import device as checks
from margo_conformance.config import Sut
from margo_conformance.device.apps import UNMET_LABEL, AppRequest, publish_app
from margo_conformance.device.instrument import Record
from margo_conformance.device.launchers import (
    CommandLauncher,
    DeviceDied,
    LaunchFacts,
    ManualLauncher,
    ReferenceLauncher,
    make_launcher,
)
from margo_conformance.device.observer import Workload
from margo_conformance.errors import UsageError
from margo_conformance.findings import Level

ROOT = Path(__file__).resolve().parents[1]


def facts(tmp_path: Path) -> LaunchFacts:
    return LaunchFacts(
        wfm_url="https://127.0.0.1:8443",
        client_cert=tmp_path / "client.crt",
        client_key=tmp_path / "client.key",
        trust_anchors=tmp_path / "bundle.pem",
        state_dir=tmp_path / "state",
        device_id="edge 1",
        poll_interval_s=0.5,
    )


def workload(name: str, **security: Any) -> Workload:
    return Workload(
        id=name,
        name=name,
        project="p",
        running=True,
        started_at="t",
        security={"mounts": [], **security},
        env={},
        image_env={"PATH": "/bin"},
        addresses={},
    )


# -- the SUT file's device section --------------------------------------------------------------------


def write_sut(tmp_path: Path, device: Any) -> Path:
    path = tmp_path / "sut.yaml"
    path.write_text(yaml.safe_dump({"pin": "margo-1.0.0-rc.3", "device": device}), encoding="utf-8")
    return path


def test_device_section_defaults_and_environment(tmp_path: Path) -> None:
    sut = Sut.from_file(write_sut(tmp_path, {}), environ={"MARGO_DEVICE_POLL_INTERVAL_S": "2"})
    assert sut.device is not None
    assert sut.device.reference and sut.device.poll_interval_s == 2.0
    assert sut.device.observer == {"type": "docker"}


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ({"launcher": {"type": "ssh"}}, "launcher.type"),
        ({"launcher": {"type": "command"}}, "'start' is a required property"),
        ({"poll_interval_s": 0}, "poll_interval_s"),
        ({"observer": {"type": "docker", "socket": "x"}}, "socket"),
    ],
)
def test_bad_device_sections_are_named(tmp_path: Path, device: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        Sut.from_file(write_sut(tmp_path, device), environ={})


def test_reference_sut_declares_the_reference_device() -> None:
    sut = Sut.from_file(ROOT / "fixtures" / "sut" / "reference.yaml", environ={})
    assert sut.device is not None and sut.device.reference and "isolation" in sut.declares


# -- launchers ---------------------------------------------------------------------------------------------


def test_command_templates_fill_each_word_without_resplitting(tmp_path: Path) -> None:
    record = tmp_path / "argv.txt"
    script = f"import sys, time; open({str(record)!r}, 'w').write(repr(sys.argv[1:])); time.sleep(60)"
    launcher = CommandLauncher(
        tmp_path / "device.log",
        start=f"{sys.executable} -c {script!r} --wfm {{wfm_url}} --id {{device_id}} "
        "--poll {poll_interval_s}",
    )
    launcher.start(facts(tmp_path))
    try:
        launcher.check_alive()
        for _ in range(200):
            if record.exists() and record.read_text():
                break
            import time

            time.sleep(0.05)
        assert record.read_text() == repr(
            ["--wfm", "https://127.0.0.1:8443", "--id", "edge 1", "--poll", "0.5"]
        )
    finally:
        launcher.stop()
    launcher.check_alive()  # stopped on purpose: not a death


def test_a_device_that_dies_is_reported_with_its_log(tmp_path: Path) -> None:
    launcher = CommandLauncher(
        tmp_path / "device.log", start=f"{sys.executable} -c \"print('boom'); exit(3)\""
    )
    launcher.start(facts(tmp_path))
    assert launcher._process is not None
    launcher._process.wait(timeout=20)
    with pytest.raises(DeviceDied, match=r"status 3(.|\n)*boom"):
        launcher.check_alive()


def test_secrets_come_from_the_environment_at_launch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    launcher = CommandLauncher(tmp_path / "log", start="agent --token={env:AGENT_TOKEN} --wfm {wfm_url}")
    with pytest.raises(UsageError, match="AGENT_TOKEN is not set") as refused:
        launcher.argv(facts(tmp_path))
    monkeypatch.setenv("AGENT_TOKEN", "s3cret")
    assert list(launcher.argv(facts(tmp_path)))[:2] == ["agent", "--token=s3cret"]
    assert "s3cret" not in str(refused.value)


def test_unknown_placeholders_and_bad_types_are_usage_errors(tmp_path: Path) -> None:
    launcher = CommandLauncher(tmp_path / "log", start="agent --token {secret}")
    with pytest.raises(UsageError, match="placeholders"):
        launcher.argv(facts(tmp_path))
    with pytest.raises(UsageError, match="reference launcher"):
        make_launcher({"type": "command", "start": "x"}, tmp_path / "log", faults=("no-persist",))
    with pytest.raises(UsageError, match="expected reference"):
        make_launcher({"type": "ssh"}, tmp_path / "log")


def test_a_command_that_cannot_start_blocks(tmp_path: Path) -> None:
    from margo_conformance.errors import Blocked

    launcher = CommandLauncher(tmp_path / "log", start="/nonexistent/agent")
    with pytest.raises(Blocked, match="could not be started"):
        launcher.start(facts(tmp_path))


def test_reference_launcher_passes_faults_and_the_compose_runtime(tmp_path: Path) -> None:
    argv = list(ReferenceLauncher(tmp_path / "log", faults=("no-persist",)).argv(facts(tmp_path)))
    assert argv[argv.index("--runtime") + 1] == "compose"
    assert argv[argv.index("--fault") + 1] == "no-persist"
    assert argv[argv.index("--device-id") + 1] == "edge 1"


def test_manual_launcher_says_what_to_run(tmp_path: Path) -> None:
    said: list[str] = []
    launcher = ManualLauncher(tmp_path / "device.log", say=said.append)
    launcher.start(facts(tmp_path))
    assert "wfm_url: https://127.0.0.1:8443" in said[0]
    assert "client_key" in (tmp_path / "device.log").read_text()


# -- checks ------------------------------------------------------------------------------------------


def _violates(requirement: str, check: Callable[..., object], *args: object) -> str:
    with pytest.raises(Violation) as caught:
        check(*args)
    assert caught.value.requirement == requirement
    return str(caught.value)


def test_hosting_and_compose_runtime() -> None:
    good = {
        "properties": {
            "otelCollector": True,
            "supportedRuntimes": ["oci"],
            "supportedDeploymentTypes": ["compose"],
        }
    }
    checks.ensure_hosting(good)
    checks.ensure_compose_runtime(good, "compose", "oci")
    bad = {"properties": {"otelCollector": False, "supportedDeploymentTypes": ["helm"]}}
    assert "otelCollector is False" in _violates("CAP-004", checks.ensure_hosting, bad)
    bare = {"properties": {"otelCollector": True}}
    assert "no supportedRuntimes; no supportedDeploymentTypes" in _violates(
        "CAP-004", checks.ensure_hosting, bare
    )
    message = _violates("DEV-007", checks.ensure_compose_runtime, bad, "compose", "oci")
    assert "lacks 'compose'" in message and "lacks 'oci'" in message


def test_error_messages_overall_or_per_component() -> None:
    overall = {"status": {"state": "failed", "error": {"message": "no"}}, "components": []}
    per_component = {"status": {"state": "failed"}, "components": [{"name": "a", "error": {"message": "x"}}]}
    assert checks.error_messages(overall) == ["no"]
    assert checks.error_messages(per_component) == ["x"]
    checks.ensure_error_message(per_component)
    _violates(
        "STAT-005",
        checks.ensure_error_message,
        {"status": {"state": "failed"}, "components": [{"name": "a"}]},
    )


def test_error_sources_overall_optional() -> None:
    component = {"name": "c", "state": "failed", "error": {"source": "c", "message": "m"}}
    checks.ensure_error_sources({"status": {"state": "failed"}, "components": [component]}, "app")
    named = {"status": {"state": "failed", "error": {"source": "app"}}, "components": [component]}
    checks.ensure_error_sources(named, "app")
    _violates("STAT-005", checks.ensure_error_sources, named, "other")
    unnamed = {"status": {"state": "failed"}, "components": [{**component, "error": {"source": "x"}}]}
    _violates("STAT-005", checks.ensure_error_sources, unnamed, "app")


def test_obs_011_variables_are_no_leak() -> None:
    other = {"HTTP_OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "SECRET": "s"}
    live = {**other, "PATH": "/bin"}
    assert checks.leaked_environment(live, other, [], {}) == ["SECRET=s"]


def _record(**data: object) -> Record:
    return Record({"time": "2026-01-01T00:00:00+00:00", **data})


def test_weak_tls_and_stored_etag() -> None:
    hello = _record(kind="connection", connection=3, tls_version="TLSv1.1")
    checks.ensure_no_weak_tls([_record(kind="connection", tls_version="TLSv1.3")])
    assert "connection 3 negotiated TLSv1.1" in _violates("TLS-005", checks.ensure_no_weak_tls, [hello])
    given = _record(method="GET", path="/api/v1/deployments", status=200, response_headers={"etag": '"e1"'})
    good = _record(method="GET", path="/api/v1/deployments", request_headers={"if-none-match": '"e1"'})
    checks.ensure_stored_etag([given], good)
    _violates("DS-025", checks.ensure_stored_etag, [given], _record(method="GET", path="/api/v1/deployments"))
    _violates("DS-025", checks.ensure_stored_etag, [], good)


def test_first_exchange() -> None:
    put = _record(method="PUT", path="/api/v1/capabilities/gw", status=201)
    child = _record(method="PUT", path="/api/v1/capabilities/gw/child", status=201)
    poll = _record(method="GET", path="/api/v1/deployments", status=200)
    checks.ensure_capabilities_first([put, child, poll])
    checks.ensure_manifest_after_capabilities([put, child, poll])
    _violates("CAP-001", checks.ensure_capabilities_first, [poll, put])
    _violates(
        "ONB-004", checks.ensure_manifest_after_capabilities, [put, _record(method="GET", path="/x"), poll]
    )


def test_retry_gap_is_the_retried_request() -> None:
    def request(second: int, path: str, status: int = 200) -> Record:
        return Record(
            {"time": f"2026-01-01T00:00:0{second}+00:00", "method": "GET", "path": path, "status": status}
        )

    records = [
        request(0, "/api/v1/deployments", 429),
        request(1, "/other"),
        request(5, "/api/v1/deployments"),
    ]
    gap = checks.retry_gap(records, 429)
    assert gap == (records[0].time, records[2].time)
    checks.ensure_retry_after_honoured(gap, 4)
    _violates("API-RETRY-005", checks.ensure_retry_after_honoured, gap, 6)
    assert checks.retry_gap(records[:2], 429) is None


def test_privilege_and_shared_mounts() -> None:
    message = _violates(
        "ISO-103", checks.ensure_unprivileged, [workload("a", privileged=True, pid_mode="host")]
    )
    assert "a is privileged" in message and "a uses the host's PID namespace" in message
    mount = {"name": "", "source": "/srv/shared", "destination": "/shared"}
    a = workload("a", mounts=[mount])
    b = workload("b", mounts=[{**mount, "destination": "/x"}])
    assert "a:/shared and b:/x share /srv/shared" in _violates(
        "ISO-102", checks.ensure_no_shared_mounts, [a], [b]
    )
    checks.ensure_no_shared_mounts([a], [workload("c")])


def test_leaked_environment_ignores_own_package_and_image_variables() -> None:
    other = {"SITE_NAME": "plant-1", "PATH": "/bin", "VENDOR": "vendor-a"}
    live = {"SITE_NAME": "plant-1", "PATH": "/bin", "VENDOR": "vendor-a", "ALERT": "75"}
    assert checks.leaked_environment(live, other, {"VENDOR", "ALERT"}, {"PATH": "/bin"}) == [
        "SITE_NAME=plant-1"
    ]


def test_components_and_states() -> None:
    reports = [{"components": [{"name": "a"}]}, {"components": [{"name": "a"}, {"name": "b"}]}]
    message = _violates("STAT-004", checks.ensure_components_listed, reports, ["a", "b"])
    assert "report 1 lists components ['a'], the deployment has ['a', 'b']" in message
    seen = [{"status": {"state": "installing"}}, {"status": {"state": "installed"}}]
    checks.ensure_states_in_order(seen, "installing", "installed")
    _violates("DS-002", checks.ensure_states_in_order, seen[1:], "installing", "installed")
    checks.ensure_not_reported([{"status": {"state": "failed"}}], ("installing", "installed"))
    _violates("ADEP-003", checks.ensure_not_reported, seen, ("installing", "installed"))


def test_status_envelope_is_a_should_finding_only() -> None:
    """STAT-102 stays open as OA3 has it; the legacy envelope is STAT-103's warning (errata INC-008)."""
    report = {
        "deploymentId": "3f1c1a8e-0b6d-4f8e-9a51-2d7c9d1e0b11",
        "adoptedManifestVersion": 3,
        "status": {"state": "installed"},
        "components": [{"name": "a", "state": "installed"}],
    }
    legacy = {"apiVersion": "deployment.margo/v1", "kind": "DeploymentStatus", **report}
    checks.ensure_valid(legacy, "DeploymentStatusManifest")
    checks.ensure_valid(report, "DeploymentStatusManifest", Level.SHOULD)
    message = _violates("STAT-103", checks.ensure_valid, legacy, "DeploymentStatusManifest", Level.SHOULD)
    assert "$.apiVersion" in message and "$.kind" in message
    _violates(
        "STAT-102", checks.ensure_valid, {**report, "adoptedManifestVersion": 1.5}, "DeploymentStatusManifest"
    )


def _state(name: str, instance: str = "c1 t0", running: bool = True, **env: str) -> checks.WorkloadState:
    return checks.WorkloadState(name, instance, running, tuple(sorted(env.items())))


def test_untouched_and_same_configuration() -> None:
    before = [_state("a", PORT="1"), _state("b")]
    checks.ensure_untouched(before, list(before))
    restarted = [_state("a", "c1 t1", PORT="1"), _state("b")]
    message = _violates("", checks.ensure_untouched, before, restarted)
    assert "container a was restarted, recreated or reconfigured" in message
    assert "container b is gone" in _violates("", checks.ensure_untouched, before, before[:1])
    checks.ensure_same_configuration(before, restarted)  # a restart of the same configuration
    reconfigured = [_state("a", PORT="2"), _state("b")]
    message = _violates("DS-024", checks.ensure_same_configuration, before, reconfigured)
    assert "container a is gone, new, stopped or configured otherwise" in message
    stopped = [_state("a", PORT="1"), _state("b", running=False)]
    _violates("DS-024", checks.ensure_same_configuration, before, stopped)


def test_reachability_users_and_environment() -> None:
    quiet = checks.NetworkProbe("net-a", "10.0.0.2", True)
    checks.ensure_unreachable([quiet], 8080)
    reached = checks.NetworkProbe("net-a", "10.0.0.2", True, ("10.0.1.3",))
    assert "10.0.1.3:8080 of the other vendor" in _violates(
        "ISO-101", checks.ensure_unreachable, [reached], 8080
    )
    blind = checks.NetworkProbe("net-a", "10.0.0.2", False)
    assert "proves nothing" in _violates("ISO-101", checks.ensure_unreachable, [blind], 8080)
    checks.ensure_runs_as({"a": "1000"}, 1000)
    assert "a runs as uid 0" in _violates("ISO-104", checks.ensure_runs_as, {"a": "0"}, 1000)
    assert "no running container" in _violates("ISO-104", checks.ensure_runs_as, {}, 1000)
    other = {"SITE_NAME": "plant-1", "VENDOR": "vendor-b"}
    own = checks.SeenEnvironment("a", {"VENDOR": "vendor-a"}, other, frozenset({"VENDOR"}))
    checks.ensure_no_leaked_environment([own])
    leak = checks.SeenEnvironment("a", {"SITE_NAME": "plant-1"}, other)
    assert "a sees SITE_NAME=plant-1" in _violates("ISO-106", checks.ensure_no_leaked_environment, [leak])


# -- the apps the scenarios deploy (a real registry) --------------------------------------------------


@pytest.fixture(scope="module")
def registry_host() -> Any:
    from margo_conformance._internal.local_registry import LocalRegistry

    with LocalRegistry() as registry:
        yield registry.host


def test_published_apps(tmp_path: Path, registry_host: str) -> None:
    packages = ROOT / "fixtures" / "packages"
    plain = publish_app(AppRequest("vendor-a", host_port=18123), packages, tmp_path, registry_host, "n1")
    document = yaml.safe_load(plain.description)
    profile = document["deploymentProfiles"][0]
    assert [p["type"] for p in document["deploymentProfiles"]] == ["compose"]
    assert profile["deviceConstraints"]["eligibilityRules"][0]["propertySelector"]
    assert "x-vendor-a-extensions" not in str(profile)
    assert f"{registry_host}/n1/" in plain.description
    assert {"LISTEN_PORT", "SITE_NAME", "VENDOR", "READINGS_PATH"} <= plain.declared_env
    compose = (tmp_path / "vendor-a-n1" / "components" / "sensor-hub" / "compose.yaml").read_text()
    assert "127.0.0.1:18123:8080" in compose

    special = AppRequest("vendor-a", eligibility="unmet", failing_component=True, extensions=True)
    other = yaml.safe_load(publish_app(special, packages, tmp_path, registry_host, "n2").description)
    profile = other["deploymentProfiles"][0]
    assert UNMET_LABEL in str(profile["deviceConstraints"]["eligibilityRules"])
    assert [c["name"] for c in profile["components"]] == ["sensor-hub", "exits-at-once"]
    assert "x-vendor-a-extensions" in str(profile)
    with pytest.raises(ValueError, match="eligibility"):
        publish_app(AppRequest("vendor-b", eligibility="sometimes"), packages, tmp_path, registry_host, "n3")
