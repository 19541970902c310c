"""Signing-certificate rules and chain validation to a trust store (Notary Project + SUP-03).

``cryptography.x509.verification`` (cryptography 50) only builds *server* and *client* verifiers:
its policies are TLS-shaped (EKU serverAuth/clientAuth required, SAN checks), which is the opposite
of what a code-signing leaf must look like. So this is a small explicit validator over the ordered
chain the envelope carries (Notary: leaf first, then intermediates, ending with the root):

* structure (authenticity): at most ``MAX_CHAIN_LENGTH`` certificates; no certificate twice (a
  chain loop); each certificate directly issued by the next (issuer name = subject and the
  signature verifies); the last one self-signed (the chain MUST contain its root); no SHA-1
  signatures;
* CA certificates: ``basicConstraints`` present, critical, ``cA=true``, ``pathLenConstraint``
  respected; ``keyUsage`` present, critical, ``keyCertSign``;
* the leaf: ``basicConstraints`` absent or ``cA=false``; ``keyUsage`` present, critical,
  ``digitalSignature``, none of keyEncipherment, dataEncipherment, keyAgreement, keyCertSign,
  cRLSign, encipherOnly, decipherOnly; ``extendedKeyUsage`` optional but never anyExtendedKeyUsage,
  serverAuth, clientAuth, emailProtection or timeStamping; RSA ≥ 2048 bits, EC ≥ 256 bits;
* trust (authenticity): some certificate of the chain is byte-identical to a certificate of one of
  the policy's ``ca:`` named stores;
* revocation: a certificate that names CRL distribution points or an OCSP responder cannot be
  checked offline (not implemented), which Notary counts as a failed revocation check;
* validity (authenticTimestamp): with no usable RFC 3161 timestamp every certificate must be valid
  at verification time, and the (unauthenticated) signing time must fall in the leaf's validity.
  RFC 3161 timestamps are NOT validated: an envelope that carries one is treated as having none,
  and the failure message says so.

Only basicConstraints, keyUsage and extendedKeyUsage are honoured (Notary: other extensions fail
open). The trust store is Notary's directory layout ``<dir>/x509/<ca|tsa|signingAuthority>/<name>/``
with ``.pem``/``.crt``/``.cer`` files; symlinks are refused, sub-directories ignored.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from ..errors import UsageError
from .policy import Check, Failure, Rule

MAX_CHAIN_LENGTH = 6
MAX_STORE_FILES = 100
MAX_STORE_FILE_BYTES = 1024 * 1024
STORE_TYPES = ("ca", "tsa", "signingAuthority")
CERTIFICATE_SUFFIXES = (".pem", ".crt", ".cer")

FORBIDDEN_EKUS: Mapping[x509.ObjectIdentifier, str] = {
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
}
_FORBIDDEN_LEAF_USAGES = (
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


def describe(certificate: x509.Certificate) -> str:
    """The subject as an RFC 4514 string, cut to 120 characters."""
    try:
        text = certificate.subject.rfc4514_string()
    except ValueError:
        text = "(unprintable subject)"
    return text[:120] or "(empty subject)"


# -- the trust store ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustStore:
    """Named stores of trusted certificates: ``{"ca:publisher": (root, ...), "tsa:x": (...)}``."""

    stores: Mapping[str, tuple[x509.Certificate, ...]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @classmethod
    def of(cls, **named: Sequence[x509.Certificate]) -> TrustStore:
        """``TrustStore.of(publisher=[root])``: CA named stores from certificates in memory."""
        return cls({f"ca:{name}": tuple(certs) for name, certs in named.items()})

    @classmethod
    def load(cls, directory: str | Path) -> TrustStore:
        """Read ``<directory>/x509/<type>/<name>/*.{pem,crt,cer}`` (PEM or DER)."""
        root = Path(directory)
        base = root / "x509"
        if not base.is_dir():
            raise UsageError(f"{root}: not a trust store (no x509/ directory)")
        stores: dict[str, tuple[x509.Certificate, ...]] = {}
        warnings: list[str] = []
        for kind in STORE_TYPES:
            kind_dir = base / kind
            if not kind_dir.is_dir():
                continue
            for named in sorted(kind_dir.iterdir()):
                if named.is_symlink():
                    raise UsageError(f"{named}: named trust stores must not be symlinks")
                if not named.is_dir():
                    continue
                certificates: list[x509.Certificate] = []
                files = sorted(named.iterdir())
                if len(files) > MAX_STORE_FILES:
                    raise UsageError(f"{named}: more than {MAX_STORE_FILES} entries")
                for file in files:
                    if file.is_symlink():
                        raise UsageError(f"{file}: trust store certificates must not be symlinks")
                    if file.is_dir():
                        warnings.append(f"{file}: sub-directory of a named store ignored")
                        continue
                    if file.suffix.lower() not in CERTIFICATE_SUFFIXES:
                        continue
                    certificates.extend(_read_certificates(file))
                stores[f"{kind}:{named.name}"] = tuple(certificates)
        return cls(stores, tuple(warnings))

    def certificates(self, names: Iterable[str]) -> tuple[x509.Certificate, ...]:
        """The certificates of the named stores (``ca:<name>``) that exist."""
        found: list[x509.Certificate] = []
        for name in names:
            found.extend(self.stores.get(name, ()))
        return tuple(found)


def _read_certificates(file: Path) -> list[x509.Certificate]:
    try:
        size = file.stat().st_size
        if size > MAX_STORE_FILE_BYTES:
            raise UsageError(f"{file}: larger than {MAX_STORE_FILE_BYTES} bytes")
        data = file.read_bytes()
    except OSError as exc:
        raise UsageError(f"{file}: cannot read: {exc.strerror or exc}") from None
    try:
        if b"-----BEGIN" in data:
            return list(x509.load_pem_x509_certificates(data))
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise UsageError(f"{file}: not a PEM or DER certificate: {exc}") from None


# -- validation ---------------------------------------------------------------------------------------


def validate_chain(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    *,
    now: datetime.datetime,
    signing_time: datetime.datetime | None = None,
    timestamp_present: bool = False,
    store_names: str = "the trust store",
) -> list[Failure]:
    """Every failure of the chain, each classified (authenticity, authenticTimestamp, revocation).

    An empty list means: a well-formed code-signing chain, trusted, valid now. Structural failures
    stop the validation early (nothing else is meaningful on a broken chain).
    """
    failures = _structure(chain)
    if failures:
        return failures
    failures.extend(_ca_rules(chain))
    failures.extend(leaf_rules(chain[0]))
    anchor_bytes = {cert.fingerprint(hashes.SHA256()) for cert in anchors}
    if not any(cert.fingerprint(hashes.SHA256()) in anchor_bytes for cert in chain):
        failures.append(
            Failure(
                Check.AUTHENTICITY,
                f"the chain (root {describe(chain[-1])}) does not lead to a certificate in {store_names}",
            )
        )
    failures.extend(_revocation(chain))
    failures.extend(_validity(chain, now=now, signing_time=signing_time, timestamp_present=timestamp_present))
    return failures


def signing_problems(chain: Sequence[x509.Certificate], *, now: datetime.datetime) -> list[Failure]:
    """What Notary validates at signature generation: a well-formed chain, leaf first, ending with its
    root, meeting the certificate requirements, every certificate valid now. Trust is not judged."""
    failures = _structure(chain)
    if failures:
        return failures
    failures = _ca_rules(chain) + leaf_rules(chain[0])
    for cert in chain:
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            failures.append(
                Failure(
                    Check.AUTHENTIC_TIMESTAMP,
                    f"{describe(cert)} is not valid now (valid {cert.not_valid_before_utc:%Y-%m-%d} to "
                    f"{cert.not_valid_after_utc:%Y-%m-%d})",
                )
            )
    return failures


def _structure(chain: Sequence[x509.Certificate]) -> list[Failure]:
    if not chain:
        return [Failure(Check.AUTHENTICITY, "no certificate chain")]
    if len(chain) > MAX_CHAIN_LENGTH:
        return [
            Failure(Check.AUTHENTICITY, f"chain of {len(chain)} certificates; at most {MAX_CHAIN_LENGTH}")
        ]
    seen: dict[bytes, int] = {}
    for index, cert in enumerate(chain):
        fingerprint = cert.fingerprint(hashes.SHA256())
        if fingerprint in seen:
            return [
                Failure(
                    Check.AUTHENTICITY,
                    f"certificate chain loop: {describe(cert)} is at positions {seen[fingerprint]} "
                    f"and {index}",
                )
            ]
        seen[fingerprint] = index
    for index, cert in enumerate(chain):
        algorithm = _hash_of(cert)
        if algorithm is None or isinstance(algorithm, hashes.SHA1 | hashes.MD5):
            return [
                Failure(Check.AUTHENTICITY, f"{describe(cert)} is signed with SHA-1/MD5 or an unknown hash")
            ]
        issuer = chain[index + 1] if index + 1 < len(chain) else cert
        problem = _issued_by(cert, issuer)
        if problem:
            where = "is not self-signed: the chain must end with its root" if issuer is cert else problem
            return [Failure(Check.AUTHENTICITY, f"chain position {index} ({describe(cert)}) {where}")]
    return []


def _hash_of(cert: x509.Certificate) -> hashes.HashAlgorithm | None:
    try:
        return cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> str:
    try:
        cert.verify_directly_issued_by(issuer)
    except ValueError:
        return f"is not issued by the next certificate ({describe(issuer)}): names differ"
    except InvalidSignature:
        return f"does not carry a valid signature of the next certificate ({describe(issuer)})"
    except (TypeError, UnsupportedAlgorithm) as exc:
        return f"has a signature this verifier cannot check: {exc}"
    return ""


def _extension(
    cert: x509.Certificate, kind: type[x509.ExtensionType]
) -> x509.Extension[x509.ExtensionType] | None:
    try:
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None
    except (ValueError, x509.DuplicateExtension):
        return None


def _ca_rules(chain: Sequence[x509.Certificate]) -> list[Failure]:
    failures: list[Failure] = []
    if len(chain) == 1:
        return failures  # a lone root follows the leaf rules (Notary)
    for index, cert in enumerate(chain[1:], start=1):
        name = describe(cert)
        constraints = _extension(cert, x509.BasicConstraints)
        if constraints is None or not constraints.critical:
            failures.append(
                Failure(Check.AUTHENTICITY, f"CA {name}: basicConstraints missing or not critical")
            )
        else:
            value = constraints.value
            assert isinstance(value, x509.BasicConstraints)
            if not value.ca:
                failures.append(Failure(Check.AUTHENTICITY, f"CA {name}: basicConstraints cA is false"))
            elif value.path_length is not None and index - 1 > value.path_length:
                failures.append(
                    Failure(
                        Check.AUTHENTICITY,
                        f"CA {name}: pathLenConstraint {value.path_length} exceeded by "
                        f"{index - 1} CA certificate(s) below it",
                    )
                )
        usage = _extension(cert, x509.KeyUsage)
        usage_value = usage.value if usage is not None else None
        if (
            usage is None
            or not usage.critical
            or not isinstance(usage_value, x509.KeyUsage)
            or not usage_value.key_cert_sign
        ):
            failures.append(
                Failure(
                    Check.AUTHENTICITY, f"CA {name}: keyUsage missing, not critical or without keyCertSign"
                )
            )
    return failures


def _leaf_failure(message: str) -> Failure:
    return Failure(Check.AUTHENTICITY, message, Rule.LEAF)


def leaf_rules(cert: x509.Certificate) -> list[Failure]:
    """The code-signing leaf requirements (Notary signature specification, SUP-03)."""
    failures: list[Failure] = []
    name = describe(cert)
    constraints = _extension(cert, x509.BasicConstraints)
    value_bc = constraints.value if constraints is not None else None
    if isinstance(value_bc, x509.BasicConstraints) and value_bc.ca:
        failures.append(_leaf_failure(f"signing certificate {name} is a CA (cA=true)"))
    usage = _extension(cert, x509.KeyUsage)
    value = usage.value if usage is not None else None
    if usage is None or not isinstance(value, x509.KeyUsage):
        failures.append(_leaf_failure(f"signing certificate {name} has no keyUsage extension"))
    else:
        if not usage.critical:
            failures.append(_leaf_failure(f"signing certificate {name}: keyUsage not critical"))
        if not value.digital_signature:
            failures.append(_leaf_failure(f"signing certificate {name}: keyUsage lacks digitalSignature"))
        bad = [usage_name for usage_name in _FORBIDDEN_LEAF_USAGES if getattr(value, usage_name)]
        if value.key_agreement and (value.encipher_only or value.decipher_only):
            bad.append("encipher_only/decipher_only")
        if bad:
            failures.append(_leaf_failure(f"signing certificate {name}: keyUsage sets {', '.join(bad)}"))
    ekus = _extension(cert, x509.ExtendedKeyUsage)
    if ekus is not None and isinstance(ekus.value, x509.ExtendedKeyUsage):
        forbidden = [FORBIDDEN_EKUS[oid] for oid in ekus.value if oid in FORBIDDEN_EKUS]
        if forbidden:
            failures.append(
                _leaf_failure(
                    f"signing certificate {name}: extendedKeyUsage {', '.join(forbidden)} is forbidden "
                    "for code signing",
                )
            )
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        failures.append(_leaf_failure(f"signing certificate {name}: RSA key below 2048 bits"))
    elif isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < 256:
        failures.append(_leaf_failure(f"signing certificate {name}: EC key below 256 bits"))
    elif not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        failures.append(_leaf_failure(f"signing certificate {name}: key type not allowed"))
    return failures


def _revocation(chain: Sequence[x509.Certificate]) -> list[Failure]:
    failures: list[Failure] = []
    for cert in chain:
        has_crl = _extension(cert, x509.CRLDistributionPoints) is not None
        aia = _extension(cert, x509.AuthorityInformationAccess)
        has_ocsp = (
            aia is not None
            and isinstance(aia.value, x509.AuthorityInformationAccess)
            and any(d.access_method == AuthorityInformationAccessOID.OCSP for d in aia.value)
        )
        if has_crl or has_ocsp:
            failures.append(
                Failure(
                    Check.REVOCATION,
                    f"{describe(cert)} names CRL/OCSP locations; its revocation status cannot be "
                    "determined (this verifier does not fetch CRLs or OCSP)",
                    judged=False,
                )
            )
    return failures


def _validity(
    chain: Sequence[x509.Certificate],
    *,
    now: datetime.datetime,
    signing_time: datetime.datetime | None,
    timestamp_present: bool,
) -> list[Failure]:
    failures: list[Failure] = []
    why = (
        "; the envelope's RFC 3161 timestamp is not validated by this verifier"
        if timestamp_present
        else " and the signature has no RFC 3161 timestamp"
    )
    for cert in chain:
        if now > cert.not_valid_after_utc:
            failures.append(
                Failure(
                    Check.AUTHENTIC_TIMESTAMP,
                    f"{describe(cert)} expired at {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}{why}",
                    judged=not timestamp_present,  # a timestamp might save it: not ours to say
                )
            )
        elif now < cert.not_valid_before_utc:
            failures.append(
                Failure(
                    Check.AUTHENTIC_TIMESTAMP,
                    f"{describe(cert)} is not valid before {cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}",
                )
            )
    leaf = chain[0]
    if signing_time is not None and not leaf.not_valid_before_utc <= signing_time <= leaf.not_valid_after_utc:
        failures.append(
            Failure(
                Check.AUTHENTIC_TIMESTAMP,
                f"signing time {signing_time:%Y-%m-%dT%H:%M:%SZ} is outside the signing certificate's "
                "validity",
            )
        )
    return failures
