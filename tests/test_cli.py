"""The command line: `package check` on directories, archives, faults and registries; requirements; errors.

Most tests drive the Typer app in-process (CliRunner). The error tests run the installed console
script, because only ``main()`` turns a MargoError into one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from margo_conformance._internal.archive_builder import entries_from_directory, pack
from margo_conformance._internal.local_registry import LocalRegistry
from margo_conformance.cli import app
from margo_conformance.config import Sut
from margo_conformance.package.check import OCI_REQUIREMENTS
from margo_conformance.package.mutants import load_faults, materialize
from margo_conformance.package.publish import publish_package
from margo_conformance.package.subjects import PackageSubjects

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "fixtures" / "packages"
REFERENCES = ("vendor-a-compose", "vendor-b-compose", "helm-app")
CLI = Path(sys.executable).parent / "margo-conformance"
FAULTS = load_faults(PACKAGES / "faults.yaml")
LOCAL_FAULTS = sorted(name for name, fault in FAULTS.items() if not fault.needs_registry)
# Signature faults are judged only with a trust policy (tests/test_cli_signing.py, the signing scenarios).
OCI_FAULTS = sorted(
    name for name, fault in FAULTS.items() if fault.needs_registry and fault.signature is None
)
SHOULD_FAULTS = {
    "compose-folder-misnamed",
    "capacity-restated-in-property-selector",
    "resource-outside-resources-folder",  # PKG-002 is a SHOULD (INC-156)
}
# Requirements a fault breaks besides its own (its kill list names their scenarios too).
ALSO_BROKEN = {"oci-compose-docker-publish-shape": {"REG-011"}}
TAMPERING = {name for name in OCI_FAULTS if "tamper" in (FAULTS[name].publish or {})}


# -- helpers -----------------------------------------------------------------------------------------


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def check_json(target: str | Path) -> tuple[int, dict[str, Any]]:
    result = invoke("package", "check", str(target), "--json")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, json.loads(result.stdout)


def flat(text: str) -> str:
    """Rich wraps long lines to the terminal width; compare text with whitespace collapsed."""
    return " ".join(text.split())


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def assert_usage_error(result: subprocess.CompletedProcess[str], *fragments: str, lines: int = 1) -> None:
    """Exit 2, no traceback, the error on stderr in at most ``lines`` lines, naming every fragment."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    error = result.stderr.strip().splitlines()
    assert 1 <= len(error) <= lines, result.stderr
    assert error[0].startswith("margo-conformance: error: ")
    for fragment in fragments:
        assert fragment in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_registry() -> Iterator[str]:
    """host:port of a socket that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


# -- package check: local packages -------------------------------------------------------------------


@pytest.fixture(scope="module")
def vendor_a_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("archive") / "vendor-a.tar.gz"
    path.write_bytes(pack(entries_from_directory(PACKAGES / "vendor-a-compose", top="vendor-a")))
    return path


@pytest.mark.parametrize("reference", REFERENCES)
def test_reference_package_is_conformant(reference: str) -> None:
    result = invoke("package", "check", str(PACKAGES / reference))
    assert result.exit_code == 0, result.output
    assert re.search(r"^conformant: ", result.output, re.MULTILINE)
    assert "non-conformant" not in result.output


@pytest.mark.parametrize("reference", REFERENCES)
def test_reference_package_json(reference: str) -> None:
    exit_code, report = check_json(PACKAGES / reference)
    assert exit_code == 0
    assert report["verdict"] == "conformant"
    assert report["findings"] == []
    assert report["requirements"], "the report lists the requirements it checked"
    assert set(report["requirements"].values()) == {"pass"}


def test_package_archive_is_conformant(vendor_a_archive: Path) -> None:
    exit_code, report = check_json(vendor_a_archive)
    assert (exit_code, report["verdict"], report["subject"]) == (0, "conformant", str(vendor_a_archive))


@pytest.mark.parametrize("name", LOCAL_FAULTS)
def test_fault_is_reported_with_its_requirement(name: str, tmp_path: Path) -> None:
    fault = FAULTS[name]
    exit_code, report = check_json(materialize(fault, PACKAGES, tmp_path))
    assert fault.requirement in {f["requirement"] for f in report["findings"]}
    if name in SHOULD_FAULTS:
        assert (exit_code, report["verdict"]) == (0, "conformant")
        assert report["requirements"][fault.requirement] == "warn"
        assert {f["level"] for f in report["findings"]} == {"SHOULD"}
    else:
        assert (exit_code, report["verdict"]) == (1, "non-conformant")
        assert report["requirements"][fault.requirement] == "fail"


@pytest.mark.parametrize("name", sorted(SHOULD_FAULTS))
def test_should_fault_is_a_warning_in_the_text_report(name: str, tmp_path: Path) -> None:
    result = invoke("package", "check", str(materialize(FAULTS[name], PACKAGES, tmp_path)))
    assert result.exit_code == 0
    assert "SHOULD" in result.output
    assert "1 warnings" in flat(result.output)
    assert "non-conformant" not in result.output


def test_must_fault_is_non_conformant_in_the_text_report(tmp_path: Path) -> None:
    result = invoke(
        "package", "check", str(materialize(FAULTS["target-unknown-component"], PACKAGES, tmp_path))
    )
    assert result.exit_code == 1
    assert "APPD-107" in result.output
    assert "non-conformant:" in flat(result.output)


# -- package check: registries -----------------------------------------------------------------------


def fault_subjects(registry: LocalRegistry, workdir: Path) -> PackageSubjects:
    return PackageSubjects(Sut(), fixtures=PACKAGES, workdir=workdir, registry=lambda: registry)


@pytest.fixture(scope="module")
def subjects(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> PackageSubjects:
    return fault_subjects(registry, tmp_path_factory.mktemp("faults"))


def check_published_fault(name: str, subjects: PackageSubjects, workdir: Path) -> tuple[int, dict[str, Any]]:
    if name not in TAMPERING:
        return check_json(subjects.fault_target(name))
    # Tampering rewrites a blob in the registry's content-addressed store, shared by every repository
    # holding the same layer: in the shared registry it would break the other faults' packages too.
    with LocalRegistry() as own:
        return check_json(fault_subjects(own, workdir).fault_target(name))


def test_published_package_is_conformant(registry: LocalRegistry) -> None:
    published = publish_package(PACKAGES / "vendor-a-compose", registry.host, namespace="cli")
    result = invoke("package", "check", published.reference)
    assert result.exit_code == 0, result.output
    exit_code, report = check_json(published.reference)
    assert (exit_code, report["verdict"]) == (0, "conformant")
    assert set(OCI_REQUIREMENTS) <= set(report["requirements"])
    assert set(report["requirements"].values()) == {"pass"}


@pytest.mark.parametrize("name", OCI_FAULTS)
def test_published_fault_is_reported_with_its_requirement(
    name: str, subjects: PackageSubjects, tmp_path: Path
) -> None:
    fault = FAULTS[name]
    exit_code, report = check_published_fault(name, subjects, tmp_path)
    found = {f["requirement"] for f in report["findings"]}
    assert (exit_code, report["verdict"]) == (1, "non-conformant")
    assert fault.requirement in found
    assert found <= {fault.requirement} | ALSO_BROKEN.get(name, set())


# -- errors: exit 2, one line, no traceback -----------------------------------------------------------


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    assert_usage_error(run_cli("package", "check", str(tmp_path / "missing")), "no such file or directory")


@pytest.mark.parametrize("reference", ["oci://", "oci://host", "oci://127.0.0.1:5000/Upper/Case:1"])
def test_malformed_oci_reference_is_a_usage_error(reference: str) -> None:
    assert_usage_error(run_cli("package", "check", reference), reference)


def test_unreachable_registry_is_an_error_within_the_timeout() -> None:
    started = time.monotonic()
    result = run_cli("package", "check", f"oci://127.0.0.1:{free_port()}/x:1", "--timeout", "2")
    assert_usage_error(result, "unreachable")
    assert time.monotonic() - started < 20


def test_silent_registry_is_an_error_within_the_timeout(silent_registry: str) -> None:
    started = time.monotonic()
    result = run_cli("package", "check", f"oci://{silent_registry}/x:1", "--timeout", "2")
    assert_usage_error(result, silent_registry, "2 s")
    assert time.monotonic() - started < 20


def test_resolved_registry_that_refuses_is_one_line_naming_the_reference_and_address() -> None:
    port = free_port()
    reference = "oci://registry.example:5000/x:1"
    result = run_cli(
        "package", "check", reference, "--plain-http", "--resolve", f"registry.example:5000:127.0.0.1:{port}"
    )
    assert_usage_error(result, reference, f"resolved to 127.0.0.1:{port}", "connection refused")


@pytest.mark.parametrize("entry", ["registry.example:5000", "registry.example:x:127.0.0.1"])
def test_malformed_resolve_is_a_usage_error(entry: str) -> None:
    assert_usage_error(run_cli("package", "check", "oci://h/x:1", "--resolve", entry), entry, "HOST:PORT")


def test_as_an_unknown_kind_is_a_usage_error() -> None:
    assert_usage_error(run_cli("package", "check", ".", "--as", "bundle"), "bundle", "oci-component")


def test_unknown_persona_is_a_usage_error() -> None:
    assert_usage_error(run_cli("requirements", "--persona", "nope"), "--persona 'nope'", "package")


def test_malformed_sut_file_is_a_usage_error(tmp_path: Path) -> None:
    sut = tmp_path / "sut.yaml"
    sut.write_text("package:\n  targets: [unclosed\n")
    result = run_cli("run", "--sut", str(sut), "--reports-dir", str(tmp_path / "reports"))
    assert_usage_error(result, str(sut), "not valid YAML")


def test_sut_file_with_an_unknown_key_names_the_key(tmp_path: Path) -> None:
    sut = tmp_path / "sut.yaml"
    sut.write_text("package:\n  targets: [../packages/x]\n  publish_to_local_registy: true\n")
    result = run_cli("run", "--sut", str(sut), "--reports-dir", str(tmp_path / "reports"))
    # The validation message is a header plus one line per schema error.
    assert_usage_error(result, "$.package", "publish_to_local_registy", lines=2)


# -- requirements ------------------------------------------------------------------------------------


def test_no_uncovered_package_requirements() -> None:
    """A vendor's run covers every package MUST but the verifier's level table (SIGN-111), which only the
    checker's proof (@checker) shows, with its reason recorded."""
    result = invoke("requirements", "--uncovered", "--persona", "package", "--json")
    assert result.exit_code == 0, result.output
    uncovered = json.loads(result.stdout)
    assert [r["id"] for r in uncovered] == ["SIGN-111"] and uncovered[0]["deferred"]


def test_requirements_json_has_id_level_and_source() -> None:
    result = invoke("requirements", "--persona", "package", "--json")
    assert result.exit_code == 0
    entries = json.loads(result.stdout)
    assert entries
    for entry in entries:
        assert entry["id"] and entry["source"], entry
        assert entry["level"] in ("MUST", "SHOULD", "MAY"), entry
        assert "package" in entry["persona"], entry
    assert len({e["id"] for e in entries}) == len(entries)
