"""The device persona's library on its own: SUT device section, launchers, checks and the apps it
publishes (no device, no Docker needed except where marked)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from margo_conformance.config import Sut
from margo_conformance.device import checks
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


def test_hosting_problems() -> None:
    good = {
        "properties": {
            "otelCollector": True,
            "supportedRuntimes": ["oci"],
            "supportedDeploymentTypes": ["compose"],
        }
    }
    assert checks.hosting_problems(good) == []
    assert checks.runtime_problems(good, "compose", "oci") == []
    bad = {"properties": {"otelCollector": False, "supportedDeploymentTypes": ["helm"]}}
    assert len(checks.hosting_problems(bad)) == 2  # otelCollector, no runtime
    assert checks.hosting_problems({"properties": {"otelCollector": True}}) == [
        "no supportedRuntimes",
        "no supportedDeploymentTypes",
    ]
    assert len(checks.runtime_problems(bad, "compose", "oci")) == 2  # helm only, no runtime


def test_error_messages_overall_or_per_component() -> None:
    overall = {"status": {"state": "failed", "error": {"message": "no"}}, "components": []}
    per_component = {"status": {"state": "failed"}, "components": [{"name": "a", "error": {"message": "x"}}]}
    assert checks.error_messages(overall) == ["no"]
    assert checks.error_messages(per_component) == ["x"]
    assert checks.error_messages({"status": {"state": "failed"}, "components": [{"name": "a"}]}) == []


def test_obs_011_variables_are_no_leak() -> None:
    other = {"HTTP_OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "SECRET": "s"}
    live = {**other, "PATH": "/bin"}
    assert checks.leaked_environment(live, other, [], {}) == ["SECRET=s"]


def test_weak_tls_and_stored_etag() -> None:
    def record(**data: object) -> Record:
        return Record({"time": "2026-01-01T00:00:00+00:00", **data})

    hello = record(kind="connection", connection=3, tls_version="TLSv1.1")
    assert checks.weak_tls_problems([hello, record(kind="connection", tls_version="TLSv1.3")]) == [
        "connection 3 negotiated TLSv1.1"
    ]
    given = record(method="GET", path="/api/v1/deployments", status=200, response_headers={"etag": '"e1"'})
    good = record(method="GET", path="/api/v1/deployments", request_headers={"if-none-match": '"e1"'})
    assert checks.stored_etag_problems([given], good) == []
    assert checks.stored_etag_problems([given], record(method="GET", path="/api/v1/deployments")) != []
    assert checks.stored_etag_problems([], good) != []


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
    assert checks.retry_gap(records, 429) == (records[0].time, records[2].time)


def test_privilege_and_shared_mounts() -> None:
    assert checks.privilege_problems([workload("a", privileged=True, pid_mode="host")]) == [
        "a is privileged",
        "a uses the host's PID namespace",
    ]
    mount = {"name": "", "source": "/srv/shared", "destination": "/shared"}
    a = workload("a", mounts=[mount])
    b = workload("b", mounts=[{**mount, "destination": "/x"}])
    assert checks.shared_mounts([a], [b]) == ["a:/shared and b:/x share /srv/shared"]
    assert checks.shared_mounts([a], [workload("c")]) == []


def test_leaked_environment_ignores_own_package_and_image_variables() -> None:
    other = {"SITE_NAME": "plant-1", "PATH": "/bin", "VENDOR": "vendor-a"}
    live = {"SITE_NAME": "plant-1", "PATH": "/bin", "VENDOR": "vendor-a", "ALERT": "75"}
    assert checks.leaked_environment(live, other, {"VENDOR", "ALERT"}, {"PATH": "/bin"}) == [
        "SITE_NAME=plant-1"
    ]


def test_retry_gap_and_components() -> None:
    records = [
        Record({"kind": "request", "status": 200, "time": "2026-01-01T00:00:00.000Z"}),
        Record({"kind": "request", "status": 429, "time": "2026-01-01T00:00:01.000Z"}),
        Record({"kind": "connection", "outcome": "requests", "time": "2026-01-01T00:00:02.000Z"}),
        Record({"kind": "request", "status": 200, "time": "2026-01-01T00:00:05.500Z"}),
    ]
    answered, following = checks.retry_gap(records, 429) or (0.0, 0.0)
    assert following - answered == pytest.approx(4.5)
    assert checks.retry_gap(records[:2], 429) is None
    reports = [{"components": [{"name": "a"}]}, {"components": [{"name": "a"}, {"name": "b"}]}]
    assert checks.component_problems(reports, ["a", "b"]) == [
        "report 1 lists components ['a'], the deployment has ['a', 'b']"
    ]


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
