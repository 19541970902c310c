"""A vendor's first run (issue 15): SUT mistakes found when the file is loaded, secrets in command
templates, the README's examples as written, and the CLI started from a vendor's own project."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from margo_conformance.config import Sut
from margo_conformance.errors import Blocked, UsageError
from margo_conformance.pki import Pki, SpiffeId
from margo_conformance.suite import runner
from margo_conformance.templates import render
from margo_conformance.wfm.provisioners import CommandProvisioner

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).parent / "margo-conformance"
PACKAGE = str(ROOT / "fixtures" / "packages" / "vendor-a-compose")
CLIENT = SpiffeId.client("factory.example", "wfm-1", "c-1")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.init(tmp_path_factory.mktemp("pki") / "pki", trust_domain="factory.example", wfm_id="wfm-1")


def wfm_section(minted: Pki, **changes: Any) -> dict[str, Any]:
    """A WFM section that loads; each test changes one thing about it."""
    provisioner = {"type": "command", "accept_client": "vendorctl clients accept {spiffe_id}"}
    section = {
        "url": "https://wfm.example:8443",
        "wfm_id": "wfm-1",
        "trust_domain": "factory.example",
        "pki": str(minted.directory),
        "provisioner": provisioner,
    }
    return section | changes


def load(tmp_path: Path, content: dict[str, Any] | str, environ: dict[str, str] | None = None) -> Sut:
    path = tmp_path / "sut.yaml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content), encoding="utf-8")
    return Sut.from_file(path, environ=environ or {})


def load_error(tmp_path: Path, content: dict[str, Any] | str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(UsageError) as raised:
        load(tmp_path, content, environ)
    return str(raised.value)


# -- SUT mistakes are found when the file is loaded -----------------------------------------------------


def test_the_valid_wfm_section_loads(tmp_path: Path, pki: Pki) -> None:
    sut = load(tmp_path, {"wfm": wfm_section(pki)})
    assert sut.wfm is not None and sut.wfm.pki == pki.directory


@pytest.mark.parametrize("content", ["", "pin: margo-1.0.0-rc.3\n", "declares: [core]\n"])
def test_an_sut_without_a_subject_is_an_error_not_a_run(tmp_path: Path, content: str) -> None:
    message = load_error(tmp_path, content)
    assert "declares no subject under test" in message and str(tmp_path / "sut.yaml") in message


@pytest.mark.parametrize(
    ("target", "fragments"),
    [
        ("missing-folder", ("$.package.targets[0]", "does not exist")),
        ("oci://", ("$.package.targets[0]", "malformed OCI reference")),
        ("oci://registry.example", ("$.package.targets[0]", "malformed OCI reference")),
        ("oci://registry.example/acme/app", ("$.package.targets[0]", "neither a tag nor a digest")),
    ],
    ids=["missing-folder", "oci-empty", "oci-no-repository", "oci-no-tag"],
)
def test_a_bad_package_target_is_named(tmp_path: Path, target: str, fragments: tuple[str, ...]) -> None:
    message = load_error(tmp_path, {"package": {"targets": [PACKAGE, target]}}).replace("[1]", "[0]")
    assert all(fragment in message for fragment in fragments), message


def test_an_archive_target_is_refused_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "my-app.tar.gz").write_bytes(b"\x1f\x8b")
    message = load_error(tmp_path, {"package": {"targets": ["my-app.tar.gz"]}})
    assert "$.package.targets[0]" in message and "is an archive" in message and "package check" in message


def test_a_package_folder_target_and_an_oci_target_load(tmp_path: Path) -> None:
    sut = load(tmp_path, {"package": {"targets": [PACKAGE, "oci://registry.example/acme/app:1.2.0"]}})
    assert sut.package is not None and len(sut.package.targets) == 2


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"url": "https://"}, ("$.wfm.url", "names no host")),
        ({"url": "https://wfm.example:99999"}, ("$.wfm.url", "Port out of range")),
        ({"pki": "no-such-pki"}, ("$.wfm.pki", "does not exist")),
        ({"trust_domain": "other.example"}, ("$.wfm.trust_domain", "'other.example' does not match the PKI")),
        ({"wfm_id": "wfm-2"}, ("$.wfm.wfm_id", "minted for wfm_id 'wfm-1'")),
        ({"provisioner": {"type": "reference"}}, ("$.wfm.provisioner.type", "'command' or 'manual'")),
    ],
    ids=[
        "url-without-host",
        "url-bad-port",
        "pki-missing",
        "pki-other-trust-domain",
        "pki-other-wfm-id",
        "reference-provisioner-for-an-external-wfm",
    ],
)
def test_a_bad_wfm_section_is_one_message_naming_the_key(
    tmp_path: Path, pki: Pki, changes: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    message = load_error(tmp_path, {"wfm": wfm_section(pki, **changes)})
    assert all(fragment in message for fragment in fragments), message
    assert len(message.splitlines()) == 1


def test_a_pki_that_is_a_file_or_not_a_pki_is_named(tmp_path: Path, pki: Pki) -> None:
    (tmp_path / "pki-file").write_text("x")
    (tmp_path / "empty").mkdir()
    assert "is not a folder" in load_error(tmp_path, {"wfm": wfm_section(pki, pki="pki-file")})
    assert "not a PKI directory" in load_error(tmp_path, {"wfm": wfm_section(pki, pki="empty")})


@pytest.mark.parametrize(
    ("operation", "template", "fragment"),
    [
        ("accept_client", "vendorctl accept {nope}", "unknown placeholder {nope}"),
        ("accept_client", "vendorctl accept {deployment_id}", "unknown placeholder {deployment_id}"),
        ("deploy", "vendorctl deploy {app_description", "malformed template"),
        ("undeploy", "vendorctl undeploy 'unclosed {deployment_id}", "malformed template"),
        ("restart", "vendorctl restart --token {env:NOT_SET_ANYWHERE}", "NOT_SET_ANYWHERE, which is not set"),
    ],
    ids=["unknown", "other-operation", "unbalanced-brace", "unbalanced-quote", "env-not-set"],
)
def test_a_bad_provisioner_template_is_named(
    tmp_path: Path, pki: Pki, operation: str, template: str, fragment: str
) -> None:
    provisioner = {"type": "command", operation: template}
    message = load_error(tmp_path, {"wfm": wfm_section(pki, provisioner=provisioner)})
    assert f"$.wfm.provisioner.{operation}" in message and fragment in message, message


def test_a_bad_launcher_template_is_named(tmp_path: Path) -> None:
    launcher = {"type": "command", "start": "agent --wfm {wfm_url} --id {client_id}"}
    message = load_error(tmp_path, {"device": {"launcher": launcher}})
    assert "$.device.launcher.start" in message and "unknown placeholder {client_id}" in message


# -- environment overrides are named as such --------------------------------------------------------------


@pytest.mark.parametrize("value", ["maybe", "", "2"])
def test_a_boolean_override_that_is_not_a_boolean_is_an_error(tmp_path: Path, value: str) -> None:
    message = load_error(
        tmp_path, {"package": {"targets": [PACKAGE]}}, {"MARGO_PACKAGE_PUBLISH_TO_LOCAL_REGISTRY": value}
    )
    assert "MARGO_PACKAGE_PUBLISH_TO_LOCAL_REGISTRY (environment override)" in message
    assert "not a boolean" in message and str(tmp_path) not in message


def test_an_override_with_a_bad_value_is_blamed_on_the_variable(tmp_path: Path, pki: Pki) -> None:
    content = {"wfm": wfm_section(pki)}
    assert "MARGO_WFM_TIMEOUT_S (environment override of $.wfm.timeout_s)" in load_error(
        tmp_path, content, {"MARGO_WFM_TIMEOUT_S": "soon"}
    )
    message = load_error(tmp_path, content, {"MARGO_WFM_PKI": str(tmp_path / "elsewhere")})
    assert message.startswith("MARGO_WFM_PKI (environment override of $.wfm.pki)"), message
    assert "MARGO_PACKAGE_TARGETS" in load_error(
        tmp_path, {"device": {}}, {"MARGO_PACKAGE_TARGETS": "missing-folder"}
    )


def test_a_value_from_the_file_is_blamed_on_the_file(tmp_path: Path, pki: Pki) -> None:
    message = load_error(tmp_path, {"wfm": wfm_section(pki, timeout_s="soon")})
    assert message.startswith(f"{tmp_path / 'sut.yaml'}: invalid SUT file") and "$.wfm.timeout_s" in message


# -- secrets in command templates ---------------------------------------------------------------------------


def test_env_and_secret_keys_work_in_provisioner_templates_and_are_redacted(tmp_path: Path, pki: Pki) -> None:
    provisioner = {
        "type": "command",
        "api_token": "t0ken-from-the-file",
        "accept_client": "false --token {api_token} --password={env:VENDOR_PASSWORD} {spiffe_id}",
    }
    environ = {"VENDOR_PASSWORD": "pa55-from-env"}
    sut = load(tmp_path, {"wfm": wfm_section(pki, provisioner=provisioner)}, environ)
    assert sut.redacted()["wfm"]["provisioner"]["api_token"] == "***"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VENDOR_PASSWORD", "pa55-from-env")
        with pytest.raises(Blocked) as blocked:
            assert sut.wfm is not None
            CommandProvisioner(sut.wfm.provisioner).accept_client(CLIENT)
    message = str(blocked.value)
    assert "failed (exit 1)" in message and str(CLIENT) in message
    assert "t0ken-from-the-file" not in message and "pa55-from-env" not in message
    assert "{api_token}" in message and "--password={env:VENDOR_PASSWORD}" in message


def test_a_secret_written_into_a_command_is_hidden_in_reports(tmp_path: Path, pki: Pki) -> None:
    provisioner = {
        "type": "command",
        "accept_client": "env API_TOKEN=tok-SECRET-4f9a false --password=hunter2",
    }
    sut = load(tmp_path, {"wfm": wfm_section(pki, provisioner=provisioner)})
    assert "tok-SECRET" not in yaml.safe_dump(sut.redacted()) and "hunter2" not in yaml.safe_dump(
        sut.redacted()
    )
    assert sut.wfm is not None
    with pytest.raises(Blocked) as blocked:
        CommandProvisioner(sut.wfm.provisioner).accept_client(CLIENT)
    assert "API_TOKEN=***" in str(blocked.value) and "tok-SECRET" not in str(blocked.value)
    assert "--password=***" in str(blocked.value) and "hunter2" not in str(blocked.value)


def test_render_fills_every_word_but_shows_secret_bearing_words_unfilled() -> None:
    command = render(
        "tool --id={spiffe_id} --key {secret_key} --pw={env:PW}",
        {"spiffe_id": "spiffe://td/x"},
        secrets={"secret_key": "k3y"},
        environ={"PW": "pw!"},
    )
    assert command.argv == ["tool", "--id=spiffe://td/x", "--key", "k3y", "--pw=pw!"]
    assert command.shown == "tool --id=spiffe://td/x --key '{secret_key}' '--pw={env:PW}'"


# -- the CLI a person expects ----------------------------------------------------------------------------


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MARGO_")}
    return subprocess.run(
        [str(CLI), *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def vendor_project(tmp_path: Path) -> Path:
    """A vendor's own BDD project: features/, steps/ and a pyproject.toml the suite must not read."""
    for folder in ("features", "steps"):
        (tmp_path / folder).mkdir()
    (tmp_path / "features" / "mine.feature").write_text("Feature: not the suite's\n", encoding="utf-8")
    (tmp_path / "steps" / "test_mine.py").write_text("raise SystemExit('not the suite')\n", encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "--nope"\n')
    return tmp_path


def test_a_run_from_a_vendor_project_uses_the_suites_scenarios_and_writes_to_its_cwd(
    vendor_project: Path,
) -> None:
    sut = vendor_project / "sut.yaml"
    sut.write_text(
        yaml.safe_dump({"declares": ["core"], "package": {"targets": [PACKAGE]}}), encoding="utf-8"
    )
    result = run_cli(
        "run",
        "--persona",
        "package",
        "--sut",
        "sut.yaml",
        "--run-id",
        "first",
        "-k",
        "root_holds_exactly",
        cwd=vendor_project,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (vendor_project / "reports" / "first" / "results.yaml").is_file()
    assert "... [package] The package root holds exactly one Application Description" in result.stdout
    assert (
        "PASS           [package] The package root holds exactly one Application Description" in result.stdout
    )
    assert not (ROOT / "reports" / "first").exists()


def test_an_empty_sut_file_is_a_usage_error_before_any_scenario(tmp_path: Path) -> None:
    (tmp_path / "sut.yaml").write_text("", encoding="utf-8")
    result = run_cli("run", "--sut", "sut.yaml", "--run-id", "empty", cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("margo-conformance: error: ") and len(result.stderr.splitlines()) == 1
    assert "declares no subject under test" in result.stderr
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("where", ["a-file", "/proc/margo-reports"])
def test_a_reports_dir_that_cannot_be_made_is_a_usage_error(tmp_path: Path, where: str) -> None:
    (tmp_path / "a-file").write_text("x")
    result = run_cli("run", "--persona", "package", "--reports-dir", where, cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("margo-conformance: error: --reports-dir: cannot create")
    assert "Traceback" not in result.stderr


def test_output_is_forwarded_as_it_comes_not_a_line_at_a_time(tmp_path: Path) -> None:
    sink = io.StringIO()
    stream = runner._Stream(sink, echo=False)
    read, write = os.pipe()
    try:
        os.write(write, "... [wfm] A slow scenario\npartial, no newline yet é".encode())
        assert runner._pump(read, stream)
    finally:
        os.close(read)
        os.close(write)
    assert sink.getvalue().endswith("partial, no newline yet é")
    assert stream.running == ("wfm", "A slow scenario")


def test_a_long_silence_says_which_scenario_waits_and_for_what() -> None:
    sink = io.StringIO()
    stream = runner._Stream(sink, echo=False)
    stream.received("... [device] The device installs an application\n")
    stream.quiet()
    assert "waiting" not in sink.getvalue()  # no silence yet
    stream.quiet_since -= runner.QUIET_NOTE_S + 1
    stream.quiet()
    note = sink.getvalue().splitlines()[-1]
    assert "[device] The device installs an application: waiting" in note and "status_timeout_s" in note


# -- the README's examples, as written -------------------------------------------------------------------

EXAMPLES = (
    "fixtures/sut/package-example.yaml",
    "fixtures/sut/wfm-example.yaml",
    "fixtures/sut/device-example.yaml",
)


def readme_blocks(language: str) -> list[str]:
    """The README's fenced blocks of one language, dedented as a reader would copy them."""
    blocks: list[str] = []
    current: list[str] | None = None
    indent = ""
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        stripped = line.lstrip()
        if current is None and stripped == f"```{language}":
            current, indent = [], line[: len(line) - len(stripped)]
        elif current is not None and stripped == "```":
            blocks.append("".join(current))
            current = None
        elif current is not None:
            current.append(line.removeprefix(indent) + "\n")
    return blocks


def readme_command(fragment: str) -> str:
    return next(block for block in readme_blocks("sh") if fragment in block)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A folder laid out like the checkout the README's commands start in (its .venv and fixtures)."""
    folder = tmp_path / "checkout"
    folder.mkdir()
    for name in (".venv", "fixtures"):
        (folder / name).symlink_to(ROOT / name)
    return folder


def run_readme(command: str, cwd: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MARGO_", "VENDORCTL_"))}
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=clean | environ, capture_output=True, text=True, timeout=900
    )


def conformant(reports: Path) -> bool:
    (results,) = reports.glob("*/results.yaml")
    return bool(yaml.safe_load(results.read_text(encoding="utf-8"))["summary"]["conformant"])


def test_every_sut_example_of_the_readme_is_a_shipped_file() -> None:
    examples = {
        block.split()[1]: block for block in readme_blocks("yaml") if block.startswith("# fixtures/sut/")
    }
    assert sorted(examples) == sorted(EXAMPLES)
    for path, text in examples.items():
        assert (ROOT / path).read_text(encoding="utf-8") == text, f"README.md and {path} differ"


def test_the_device_example_loads_and_launches_a_program_on_the_documented_path() -> None:
    sut = Sut.from_file(ROOT / "fixtures" / "sut" / "device-example.yaml", environ={})
    assert sut.device is not None and sut.device.launcher["type"] == "command"
    program = str(sut.device.launcher["start"]).split()[0]
    assert shutil.which(program, path=str(ROOT / ".venv" / "bin")), "README: export PATH=$PWD/.venv/bin:$PATH"


def test_the_package_example_runs_as_documented_and_is_conformant(checkout: Path) -> None:
    result = run_readme(readme_command("package-example.yaml"), checkout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert conformant(checkout / "reports")


def test_the_wfm_example_runs_as_documented_and_is_conformant(checkout: Path) -> None:
    """The README's steps verbatim; only the ports differ (free ones, through the documented overrides)."""
    listen, admin = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    ports = {"VENDORCTL_LISTEN": listen, "VENDORCTL_ADMIN": admin, "MARGO_WFM_URL": f"https://{listen}"}
    try:
        result = run_readme(readme_command("wfm-example.yaml"), checkout, **ports)
    finally:
        run_readme("PATH=$PWD/fixtures/sut:$PATH vendorctl stop", checkout, **ports)  # if the run broke off
    assert "Traceback" not in result.stderr, result.stderr
    assert conformant(checkout / "wfm-trial" / "reports"), result.stdout[-3000:] + result.stderr


def test_the_device_example_runs_as_documented(checkout: Path) -> None:
    """The README's commands verbatim, narrowed to the capabilities scenarios (the selftest runs all)."""
    command = readme_command("device-example.yaml").rstrip() + " -k capabilities\n"
    result = run_readme(command, checkout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "PASS           [device] The capabilities report is the device's first exchange" in result.stdout
    assert conformant(checkout / "reports")
