"""Signed evidence: a real (one-scenario) run writes a bundle that `report verify` accepts offline, and any
changed byte of any file fails naming that file; no private key ever lands in the reports folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from typer.testing import CliRunner, Result

from margo_conformance.cli import app
from margo_conformance.suite.evidence import (
    BUNDLE,
    CERTIFICATE,
    GENERATED,
    SIGNATURE,
    consistency_problems,
    folder_files,
    generated_signer,
    self_signed,
    tar_bytes,
    verify,
    write_evidence,
)
from margo_conformance.suite.runner import run_suite

CLI = Path(sys.executable).parent / "margo-conformance"
ONE_SCENARIO = ("-k", "exactly and one and Application")  # a package scenario: seconds, no Docker


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reports")
    outcome = run_suite(persona="package", sut=None, reports_root=root, pytest_args=ONE_SCENARIO, echo=False)
    assert outcome.signer == GENERATED
    return outcome.reports


@pytest.fixture
def folder(run_folder: Path, tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "run"
    shutil.copytree(run_folder, copy)
    yield copy


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def flip(path: Path, at: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    index = len(data) // 2 if at is None else at
    data[index] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_run_writes_the_bundle_and_verify_passes(folder: Path) -> None:
    for name in (BUNDLE, SIGNATURE, CERTIFICATE, "report.html", "results.yaml", "sut.yaml"):
        assert (folder / name).is_file(), name
    result = invoke("report", "verify", str(folder))
    assert result.exit_code == 0, result.stdout
    assert "verified" in result.stdout


def test_no_private_key_anywhere_in_the_reports(run_folder: Path) -> None:
    for path in run_folder.rglob("*"):
        assert b"PRIVATE KEY" not in path.read_bytes(), path
    with tarfile.open(run_folder / BUNDLE) as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            assert handle is not None and b"PRIVATE KEY" not in handle.read(), member.name


@pytest.mark.parametrize(
    "name", [BUNDLE, SIGNATURE, CERTIFICATE, "report.html", "results.yaml", "run.log", "junit.xml"]
)
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_changed_byte_fails_naming_the_file(folder: Path, name: str, where: str) -> None:
    size = (folder / name).stat().st_size
    flip(folder / name, {"first": 0, "middle": size // 2, "last": size - 1}[where])
    result = invoke("report", "verify", str(folder))
    assert result.exit_code == 1, result.stdout
    assert f"FAILED {name}: " in result.stdout, result.stdout


def test_an_added_or_removed_file_fails(folder: Path) -> None:
    (folder / "extra.txt").write_text("x", encoding="utf-8")
    (folder / "cucumber.json").unlink()
    problems = verify(folder)
    assert any(p.startswith("extra.txt: not in") for p in problems), problems
    assert any(p.startswith("cucumber.json: missing") for p in problems), problems


def test_a_report_disagreeing_with_the_results_fails_even_when_re_signed(folder: Path) -> None:
    html = folder / "report.html"
    html.write_text(
        html.read_text(encoding="utf-8").replace(">Conformant</div>", ">Not conformant</div>"), "utf-8"
    )
    for name in (BUNDLE, SIGNATURE, CERTIFICATE, "sut.yaml"):
        (folder / name).unlink()
    write_evidence(folder, generated_signer("again"))
    assert verify(folder) == ["report.html: its verdict line disagrees with results.yaml"]


def test_junit_counts_must_agree_with_the_results() -> None:
    results = b"summary: {conformant: true}\nstarted: x\nscenarios: []\n"
    junit = b'<testsuites tests="3" failures="0" errors="0" skipped="0"/>'
    assert consistency_problems({"results.yaml": results, "junit.xml": junit}) == [
        "junit.xml: its counts disagree with results.yaml"
    ]


def test_a_folder_that_is_not_a_report_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(CLI), "report", "verify", str(tmp_path)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 2, result.stdout
    assert "not a report folder" in result.stderr
    assert "Traceback" not in result.stderr


def _ed25519_lab(tmp_path: Path, stem: str = "lab") -> tuple[Path, Path]:
    """A lab's Ed25519 key and its self-signed certificate, as PEM files."""
    key = ed25519.Ed25519PrivateKey.generate()
    cert = self_signed(key, "Test Lab")
    key_path, cert_path = tmp_path / f"{stem}.key", tmp_path / f"{stem}.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def test_the_labs_key_signs_and_its_certificate_goes_beside(tmp_path: Path) -> None:
    key_path, cert_path = _ed25519_lab(tmp_path)
    result = invoke(
        "run", "--persona", "package", *ONE_SCENARIO, "--reports-dir", str(tmp_path / "reports"),
        "--run-id", "lab", "--sign-key", str(key_path), "--sign-cert", str(cert_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.stdout
    assert "signed by CN=Test Lab" in result.stdout
    folder = tmp_path / "reports" / "lab"
    assert verify(folder) == []
    assert (folder / CERTIFICATE).read_bytes() == cert_path.read_bytes()
    assert not any(b"PRIVATE KEY" in path.read_bytes() for path in folder.iterdir())


def test_a_certificate_of_another_key_is_refused(tmp_path: Path) -> None:
    key_path, _ = _ed25519_lab(tmp_path, "lab")
    _, other_cert = _ed25519_lab(tmp_path, "other")
    result = invoke(
        "run", "--persona", "package", "--sign-key", str(key_path), "--sign-cert", str(other_cert)
    )
    assert result.exit_code != 0
    assert "is not the key of --sign-key" in str(result.exception)


def test_the_bundle_is_reproducible(run_folder: Path) -> None:
    files = folder_files(run_folder)
    assert tar_bytes(files) == tar_bytes(dict(reversed(list(files.items()))))


def test_a_long_run_id_still_gets_a_certificate() -> None:
    """Self-test run ids name every variant switched on together: far longer than a CN may be."""
    from margo_conformance.suite.evidence import generated_signer

    signer = generated_signer("variant-" + "+".join(["fetches-through-bundle"] * 8))
    assert signer is not None
