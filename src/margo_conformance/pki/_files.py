"""PEM files of the PKI: keys are created 0600 before a byte lands and every file is replaced atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ..errors import UsageError

SECRET_MODE, PUBLIC_MODE = 0o600, 0o644


def certificate_pem(*certificates: x509.Certificate) -> bytes:
    """Certificates as concatenated PEM, in the order given."""
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certificates)


def key_pem(key: PrivateKeyTypes) -> bytes:
    """PKCS8, unencrypted: only ever for a 0600 file."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def json_bytes(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode()


def write_secret(path: Path, data: bytes) -> None:
    """A private key file: mode 0600 from creation (mkstemp), then renamed into place."""
    _write(path, data, SECRET_MODE)


def write_public(path: Path, data: bytes) -> None:
    """A certificate, bundle or note: mode 0644, renamed into place."""
    _write(path, data, PUBLIC_MODE)


def _write(path: Path, data: bytes, mode: int) -> None:
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_certificates(path: Path) -> tuple[x509.Certificate, ...]:
    """Every PEM certificate in ``path``, in file order; UsageError when there is none."""
    try:
        certificates = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read PEM certificates ({exc})") from None
    return tuple(certificates)


def read_key(path: Path) -> PrivateKeyTypes:
    """An unencrypted PEM private key; the error names the file only, never its content."""
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        raise UsageError(f"{path}: cannot read an unencrypted PEM private key") from None
