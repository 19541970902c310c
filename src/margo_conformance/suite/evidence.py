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
import zlib
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
CERT_LINE = "# certificate sha256: "
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
    """A certificate naming ``common_name`` (cut to X.509's 64 characters: a run id may be longer),
    signed by its own key."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
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


def manifest_text(files: dict[str, bytes], signer: Signer) -> str:
    """``sha256  name`` per file; the header names the signer and its certificate's digest, so that a
    failed signature can be blamed on the file that changed."""
    lines = [
        f"# margo-conformance evidence; signer: {signer.note}",
        f"{CERT_LINE}{cert_digest(signer.certificate)}",
    ]
    lines += [f"{hashlib.sha256(data).hexdigest()}  {name}" for name, data in sorted(files.items())]
    return "\n".join(lines) + "\n"


def cert_digest(certificate: x509.Certificate) -> str:
    """The SHA-256 of the certificate file as written (evidence.cert.pem's bytes)."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.PEM)).hexdigest()


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
    files[MANIFEST] = manifest_text(files, signer).encode()
    bundle = tar_bytes(files)
    (reports / BUNDLE).write_bytes(bundle)
    (reports / SIGNATURE).write_bytes(sign(signer.key, bundle))
    (reports / CERTIFICATE).write_bytes(signer.certificate.public_bytes(serialization.Encoding.PEM))


def verify(reports: Path) -> list[str]:
    """The problems found, each naming its file; empty when the folder is the evidence it claims to be."""
    if not reports.is_dir() or not ((reports / BUNDLE).is_file() or (reports / "results.yaml").is_file()):
        raise NotAReport(f"{reports}: not a report folder (no {BUNDLE}, no results.yaml)")
    missing = [name for name in (BUNDLE, SIGNATURE, CERTIFICATE) if not (reports / name).is_file()]
    if missing:
        return [f"{name}: missing" for name in missing]
    bundle = (reports / BUNDLE).read_bytes()
    try:
        members = _members(bundle)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        return [f"{BUNDLE}: changed or corrupt ({type(exc).__name__}); the signature cannot hold"]
    manifest_bytes = members.pop(MANIFEST, b"")
    listing = manifest_bytes.decode("utf-8", "replace")
    if not _signature_holds(bundle, (reports / SIGNATURE).read_bytes(), reports / CERTIFICATE):
        return [_blame(listing, reports / CERTIFICATE)]
    if _recorded_cert(listing) != hashlib.sha256((reports / CERTIFICATE).read_bytes()).hexdigest():
        return [f"{CERTIFICATE}: changed (not byte for byte the certificate {MANIFEST} names)"]
    if not manifest_bytes:
        return [f"{BUNDLE}: has no {MANIFEST}"]
    manifest = parse_manifest(listing)
    problems = _digest_problems(manifest, members, f"{BUNDLE}:")
    problems += _digest_problems(manifest, folder_files(reports), "")
    return problems or consistency_problems(members)


def _recorded_cert(manifest: str) -> str:
    lines = manifest.splitlines()
    return next((line.removeprefix(CERT_LINE) for line in lines if line.startswith(CERT_LINE)), "")


def _blame(manifest: str, cert_path: Path) -> str:
    """The bundle read intact (its gzip CRC holds), so a failed signature is the certificate's fault when
    it is not the one the signed manifest names, else the signature's."""
    if hashlib.sha256(cert_path.read_bytes()).hexdigest() != _recorded_cert(manifest):
        return f"{CERTIFICATE}: changed (not the certificate {MANIFEST} names); the signature does not verify"
    return f"{SIGNATURE}: the signature does not verify over {BUNDLE} with {CERTIFICATE}'s key (changed)"


def _signature_holds(bundle: bytes, signature: bytes, cert_path: Path) -> bool:
    try:
        key = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_key()
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, bundle)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, bundle, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except (ValueError, InvalidSignature):
        return False
    return True


def _members(bundle: bytes) -> dict[str, bytes]:
    out = {}
    raw = gzip.decompress(bundle)  # the whole stream, so its CRC is checked: a changed byte shows here
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
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
