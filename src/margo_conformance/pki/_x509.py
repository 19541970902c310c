"""Certificate builders for the operator's CA and its leaves (RFC 5280 profile of SPIFFE X.509-SVIDs)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ORGANIZATION = "margo-conformance"
BACKDATE = datetime.timedelta(minutes=5)  # notBefore = now - 5 min: small clock skew never bites


def new_ec_key() -> ec.EllipticCurvePrivateKey:
    """SVID-003 / SVID-005: ECDSA P-256 from the OpenSSL CSPRNG."""
    return ec.generate_private_key(ec.SECP256R1())


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def name(common_name: str) -> x509.Name:
    """O=margo-conformance, CN=<label>; peers are identified by the URI SAN, never by this."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def ca_certificate(
    common_name: str,
    key: ec.EllipticCurvePrivateKey,
    *,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
    days: int,
    path_length: int,
) -> x509.Certificate:
    """A CA: cA=true with a path length, keyCertSign + cRLSign only; self-signed when ``issuer`` is None."""
    subject = name(common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_key_usage(digital_signature=False, key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(authority_key_id(issuer), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def leaf_certificate(
    *,
    common_name: str,
    public_key: CertificatePublicKeyTypes,
    sans: Sequence[x509.GeneralName],
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    ca: bool = False,
    key_cert_sign: bool = False,
) -> x509.Certificate:
    """An SVID leaf: cA=false, digitalSignature, serverAuth + clientAuth; ``ca``, ``key_cert_sign``: flaws."""
    return (
        x509.CertificateBuilder()
        .subject_name(name(common_name))
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            _key_usage(digital_signature=True, key_cert_sign=key_cert_sign, crl_sign=False), critical=True
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(authority_key_id(issuer), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _key_usage(*, digital_signature: bool, key_cert_sign: bool, crl_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )
