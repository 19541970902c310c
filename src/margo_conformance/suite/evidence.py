"""Signed evidence of a run: ``evidence.tar.gz`` (every file of the run's folder and a SHA-256 manifest of
them), its detached signature and the signer's certificate, and the offline check of all three.

A certifier gets the folder later, from someone else: the signature says who vouches for the bundle, the
manifest ties every file of the folder to it, and the cheap consistency checks catch a report rendered
from other results than results.yaml. The signing key is the lab's (``--sign-key``/``--sign-cert``) or one
generated for the run, which is kept in memory only and never written anywhere (least of all here).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from ..errors import UsageError
from .results import junit_tree

BUNDLE = "evidence.tar.gz"
SIGNATURE = "evidence.tar.gz.sig"
CERTIFICATE = "evidence.cert.pem"
MANIFEST = "MANIFEST.sha256"
SUT_FILE = "sut.yaml"
NOT_IN_BUNDLE = frozenset({BUNDLE, SIGNATURE, CERTIFICATE})
GENERATED = "self-signed by a key generated for this run (kept in memory only, never written)"
SigningKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
VERDICT_LINE = re.compile(r'<div class="big">(Conformant|Not conformant)</div>')


class NotAReport(UsageError):
    """The folder is not a run's report folder (exit 2, not a failed verification)."""


@dataclass(frozen=True)
class Signer:
    key: SigningKey
    certificate: x509.Certificate
    note: str


def sign(key: SigningKey, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def generated_signer(run_id: str) -> Signer:
    """An ECDSA P-256 key and a one-day self-signed certificate naming the run."""
    key = ec.generate_private_key(ec.SECP256R1())
    return Signer(key, self_signed(key, f"margo-conformance run {run_id}"), GENERATED)


def self_signed(key: SigningKey, common_name: str, days: int = 1) -> x509.Certificate:
    """A certificate naming ``common_name``, signed by its own key."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, algorithm)
    )


def lab_signer(key_path: Path, cert_path: Path) -> Signer:
    """The lab's key and certificate (PEM, key unencrypted); the certificate must carry the key's
    public key."""
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(f"--sign-key/--sign-cert: cannot load ({type(exc).__name__}: {exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise UsageError("--sign-key: expected an EC (e.g. P-256) or Ed25519 private key")
    if cert.public_key() != key.public_key():
        raise UsageError(f"--sign-cert {cert_path}: its public key is not the key of --sign-key")
    return Signer(key, cert, f"signed by {cert.subject.rfc4514_string()}")


def manifest_text(files: dict[str, bytes], note: str) -> str:
    lines = [f"# margo-conformance evidence; signer: {note}"]
    lines += [f"{hashlib.sha256(data).hexdigest()}  {name}" for name, data in sorted(files.items())]
    return "\n".join(lines) + "\n"


def parse_manifest(text: str) -> dict[str, str]:
    entries = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            digest, _, name = line.partition("  ")
            entries[name] = digest
    return entries


def folder_files(reports: Path) -> dict[str, bytes]:
    """Every regular file under the run's folder except the bundle, its signature and certificate."""
    return {
        path.relative_to(reports).as_posix(): path.read_bytes()
        for path in sorted(reports.rglob("*"))
        if path.is_file() and path.relative_to(reports).as_posix() not in NOT_IN_BUNDLE
    }


def tar_bytes(files: dict[str, bytes]) -> bytes:
    """A reproducible tar.gz: sorted members, no owners, no times (the same files give the same bytes)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as packed:
        packed.write(raw.getvalue())
    return out.getvalue()


def write_evidence(reports: Path, signer: Signer) -> None:
    """The redacted SUT as sut.yaml, then the bundle of the folder, its signature and the certificate."""
    results = yaml.safe_load((reports / "results.yaml").read_text(encoding="utf-8"))
    sut = yaml.safe_dump(results.get("sut") or {}, sort_keys=True, allow_unicode=True)
    (reports / SUT_FILE).write_text(sut, encoding="utf-8")
    files = folder_files(reports)
    files[MANIFEST] = manifest_text(files, signer.note).encode()
    bundle = tar_bytes(files)
    (reports / BUNDLE).write_bytes(bundle)
    (reports / SIGNATURE).write_bytes(sign(signer.key, bundle))
    (reports / CERTIFICATE).write_bytes(signer.certificate.public_bytes(serialization.Encoding.PEM))


def verify(reports: Path) -> list[str]:
    """Every problem found, each naming its file; empty when the folder is the evidence it claims to be."""
    if not reports.is_dir() or not ((reports / BUNDLE).is_file() or (reports / "results.yaml").is_file()):
        raise NotAReport(f"{reports}: not a report folder (no {BUNDLE}, no results.yaml)")
    missing = [name for name in (BUNDLE, SIGNATURE, CERTIFICATE) if not (reports / name).is_file()]
    if missing:
        return [f"{name}: missing" for name in missing]
    bundle = (reports / BUNDLE).read_bytes()
    problems = _signature_problems(bundle, (reports / SIGNATURE).read_bytes(), reports / CERTIFICATE)
    try:
        members = _members(bundle)
    except (tarfile.TarError, OSError, EOFError) as exc:
        return [*problems, f"{BUNDLE}: unreadable ({type(exc).__name__})"]
    if MANIFEST not in members:
        return [*problems, f"{BUNDLE}: has no {MANIFEST}"]
    manifest = parse_manifest(members.pop(MANIFEST).decode("utf-8", "replace"))
    problems += _digest_problems(manifest, members, f"{BUNDLE}:")
    problems += _digest_problems(manifest, folder_files(reports), "")
    if not problems:
        problems += consistency_problems(members)
    return problems


def _signature_problems(bundle: bytes, signature: bytes, cert_path: Path) -> list[str]:
    try:
        key = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_key()
    except ValueError:
        return [f"{CERTIFICATE}: not a PEM certificate"]
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, bundle)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, bundle, ec.ECDSA(hashes.SHA256()))
        else:
            return [f"{CERTIFICATE}: unsupported key type {type(key).__name__}"]
    except InvalidSignature:
        return [f"{SIGNATURE}: the signature does not verify over {BUNDLE} with {CERTIFICATE}'s key"]
    return []


def _members(bundle: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as tar:
        for info in tar.getmembers():
            handle = tar.extractfile(info) if info.isfile() else None
            if handle is not None:
                out[info.name] = handle.read()
    return out


def _digest_problems(manifest: dict[str, str], files: dict[str, bytes], where: str) -> list[str]:
    problems = [f"{where}{name}: missing (listed in {MANIFEST})" for name in manifest if name not in files]
    for name, data in files.items():
        if name not in manifest:
            problems.append(f"{where}{name}: not in {MANIFEST}")
        elif hashlib.sha256(data).hexdigest() != manifest[name]:
            problems.append(f"{where}{name}: SHA-256 differs from {MANIFEST} (changed)")
    return problems


def consistency_problems(files: dict[str, bytes]) -> list[str]:
    """Cheap agreement of each report with results.yaml: junit counts, report.html's verdict line."""
    try:
        data: dict[str, Any] = yaml.safe_load(files["results.yaml"])
        conformant = bool(data["summary"]["conformant"])
    except (KeyError, TypeError, yaml.YAMLError):
        return ["results.yaml: missing or not a results tree"]
    problems = []
    if "junit.xml" in files:
        expected = junit_tree(data).getroot().attrib
        try:
            found = ET.fromstring(files["junit.xml"]).attrib
        except ET.ParseError:
            found = {}
        if any(found.get(k) != expected[k] for k in ("tests", "failures", "errors", "skipped")):
            problems.append("junit.xml: its counts disagree with results.yaml")
    if "report.html" in files:
        line = VERDICT_LINE.search(files["report.html"].decode("utf-8", "replace"))
        if line is None or (line[1] == "Conformant") != conformant:
            problems.append("report.html: its verdict line disagrees with results.yaml")
    return problems
