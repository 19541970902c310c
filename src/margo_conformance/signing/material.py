"""A developer's signing material from files, checked before anything is signed, and ``sign_reference``.

Notary validates the certificate requirements at signature generation too, and SUP-03 §3 narrows the
keys: EC P-256 (ES256) or RSA of at least 3072 bits (PS256). Files are read with a size bound; no
message ever quotes a key file's content.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .._internal.oci import OciClient, OciReference
from ..errors import InputError, UsageError
from .certificates import MAX_CHAIN_LENGTH, describe, signing_problems
from .envelope import MIN_RSA_BITS, PROFILE_ALGORITHMS, SigningKey
from .oci_signatures import SignedArtifact, manifest_descriptor, sign_artifact

MAX_KEY_BYTES = 64 * 1024
MAX_CHAIN_BYTES = 256 * 1024


def _read(path: Path, limit: int, what: str) -> bytes:
    try:
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > limit:
        raise InputError(f"{path}: larger than {limit} bytes; not a {what}")
    return data


def load_signing_key(path: Path) -> SigningKey:
    """An unencrypted PEM private key that SUP-03 allows: EC P-256, or RSA of at least 3072 bits."""
    data = _read(path, MAX_KEY_BYTES, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise UsageError(f"{path}: the private key is encrypted; give an unencrypted PEM key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise InputError(f"{path}: not a PEM private key") from None
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= MIN_RSA_BITS:
        return key
    raise UsageError(
        f"{path}: SUP-03 signers use ES256 (an EC P-256 key) or PS256 (RSA of at least {MIN_RSA_BITS} bits)"
    )


def load_chain(path: Path, key: SigningKey, *, now: datetime.datetime) -> tuple[x509.Certificate, ...]:
    """The PEM chain, leaf (the key's certificate) first, ending with its root, fit to sign now."""
    data = _read(path, MAX_CHAIN_BYTES, "certificate chain")
    try:
        chain = tuple(x509.load_pem_x509_certificates(data))
    except ValueError:
        raise InputError(f"{path}: not PEM certificates") from None
    if len(chain) > MAX_CHAIN_LENGTH:
        raise UsageError(f"{path}: {len(chain)} certificates; a signing chain has at most {MAX_CHAIN_LENGTH}")
    if chain[0].public_key() != key.public_key():
        raise UsageError(f"{path}: the first certificate ({describe(chain[0])}) is not the key's certificate")
    problems = signing_problems(chain, now=now)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UsageError(f"{path}: cannot sign with this chain: {problems[0].message}{more}")
    return chain


def choose_algorithm(key: SigningKey, requested: str | None) -> str:
    """ES256 for an EC key, PS256 for an RSA key; a request that does not fit the key is refused."""
    fitting = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "PS256"
    if requested is not None and requested not in PROFILE_ALGORITHMS:
        raise UsageError(f"--algorithm {requested!r}: SUP-03 signers use {' or '.join(PROFILE_ALGORITHMS)}")
    if requested is not None and requested != fitting:
        raise UsageError(f"--algorithm {requested} does not fit the key ({fitting} does)")
    return fitting


def sign_reference(
    reference: str,
    key_file: Path,
    chain_file: Path,
    *,
    algorithm: str | None = None,
    timeout: float = 10.0,
    now: datetime.datetime | None = None,
) -> tuple[SignedArtifact, str]:
    """Sign the manifest ``oci://…`` resolves to and attach the signature as its referrer; the alg used."""
    moment = now or datetime.datetime.now(datetime.UTC)
    ref = OciReference.parse(reference)
    key = load_signing_key(key_file)
    chain = load_chain(chain_file, key, now=moment)
    alg = choose_algorithm(key, algorithm)
    with OciClient(ref.registry, timeout=timeout) as client:
        subject = manifest_descriptor(client, ref.repository, ref.reference)
        signed = sign_artifact(
            client, ref.repository, subject.digest, key, chain, alg=alg, signing_time=moment
        )
    return signed, alg
