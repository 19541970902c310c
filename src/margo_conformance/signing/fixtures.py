"""The signing profile's signature fixtures, generated at test time into a registry.

``SigningPki`` mints a publisher PKI (root → intermediate → code-signing leaves) with
``cryptography``; EC keys are derived from fixed seeds, so the same names always get the same keys
(RSA-3072 keys are generated once per process). ``generate_fixtures`` publishes a package (vendor-a's
Compose application by default; helm-app for ``helm-chart-unsigned``) once per fixture, each in its
own namespace, and makes it (one violation each: every component manifest is validly signed by the
publisher unless the fixture says otherwise):

==========================  ================================================================
``valid``                   signed (ES256) by a leaf of the trusted publisher root
``valid-ps256``             signed (PS256, RSA-3072) by a trusted leaf
``unsigned``                no signature on the application package manifest
``tampered``                signed, then the tag re-pushed with a changed manifest (the old
                            signature stays attached to the old digest)
``untrusted-ca``            signed by a leaf of a root that is not in the trust store
``expired-no-timestamp``    signed while the leaf was valid (claimed signing time), leaf expired
                            since, no RFC 3161 timestamp
``rs256``                   signed with RS256 (RSA-3072), which SUP-03 forbids
``forbidden-eku``           signing leaf whose extendedKeyUsage is serverAuth
``other-digest``            a valid signature over another artifact's descriptor, attached as a
                            referrer of this one
``component-unsigned``      package manifest signed, its Compose archive manifest not
``helm-chart-unsigned``     helm-app: package manifest signed, its Helm chart manifest not
==========================  ================================================================

``EXPECTED`` gives each fixture's verdict per level for the whole package (its manifest and its
component manifests; see ``policy`` for the level table). ``MANIFEST_FIXTURES`` are the fixtures
whose fault is on the package manifest itself.
"""

from __future__ import annotations

import datetime
import enum
import functools
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .._internal.oci import OciClient, OciReference
from ..package.publish import PublishedPackage, publish_package
from .envelope import Descriptor, SigningKey
from .oci_signatures import SignedArtifact, manifest_descriptor, sign_artifact
from .policy import Level, Outcome

COUNTRY, STATE = "DE", "Berlin"
BACKDATE = datetime.timedelta(minutes=5)


class Fixture(enum.StrEnum):
    VALID = "valid"
    VALID_PS256 = "valid-ps256"
    UNSIGNED = "unsigned"
    TAMPERED = "tampered"
    UNTRUSTED_CA = "untrusted-ca"
    EXPIRED_NO_TIMESTAMP = "expired-no-timestamp"
    RS256 = "rs256"
    FORBIDDEN_EKU = "forbidden-eku"
    OTHER_DIGEST = "other-digest"
    COMPONENT_UNSIGNED = "component-unsigned"
    HELM_UNSIGNED = "helm-chart-unsigned"


UNSIGNED_COMPONENTS = (Fixture.COMPONENT_UNSIGNED, Fixture.HELM_UNSIGNED)
MANIFEST_FIXTURES = tuple(kind for kind in Fixture if kind not in UNSIGNED_COMPONENTS)


_V, _F = Outcome.VERIFIED, Outcome.FAILED
EXPECTED: Mapping[Fixture, Mapping[Level, Outcome]] = {
    Fixture.VALID: {Level.STRICT: _V, Level.PERMISSIVE: _V, Level.AUDIT: _V},
    Fixture.VALID_PS256: {Level.STRICT: _V, Level.PERMISSIVE: _V, Level.AUDIT: _V},
    # authenticity (no signature / untrusted / certificate rules): audit only logs
    Fixture.UNSIGNED: {Level.STRICT: _F, Level.PERMISSIVE: _F, Level.AUDIT: _V},
    Fixture.TAMPERED: {Level.STRICT: _F, Level.PERMISSIVE: _F, Level.AUDIT: _V},
    Fixture.UNTRUSTED_CA: {Level.STRICT: _F, Level.PERMISSIVE: _F, Level.AUDIT: _V},
    Fixture.FORBIDDEN_EKU: {Level.STRICT: _F, Level.PERMISSIVE: _F, Level.AUDIT: _V},
    Fixture.COMPONENT_UNSIGNED: {Level.STRICT: _F, Level.PERMISSIVE: _F, Level.AUDIT: _V},
    Fixture.HELM_UNSIGNED: {Level.STRICT: _F, Level.PERMISSIVE: _F, Level.AUDIT: _V},
    # authentic timestamp: permissive and audit log
    Fixture.EXPIRED_NO_TIMESTAMP: {Level.STRICT: _F, Level.PERMISSIVE: _V, Level.AUDIT: _V},
    # integrity (forbidden algorithm, signed descriptor is another artifact): enforced at every level
    Fixture.RS256: {Level.STRICT: _F, Level.PERMISSIVE: _F, Level.AUDIT: _F},
    Fixture.OTHER_DIGEST: {Level.STRICT: _F, Level.PERMISSIVE: _F, Level.AUDIT: _F},
}


# -- the publisher PKI --------------------------------------------------------------------------------


def _seeded_ec_key(seed: str) -> ec.EllipticCurvePrivateKey:
    curve = ec.SECP256R1()
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    value = int.from_bytes(hashlib.sha256(f"margo-conformance/{seed}".encode()).digest(), "big")
    return ec.derive_private_key(value % (order - 1) + 1, curve)


@functools.cache
def _rsa_key(label: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def _name(organization: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, STATE),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def _usage(*, signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signing,
        crl_sign=not signing,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class Signer:
    key: SigningKey
    chain: tuple[x509.Certificate, ...]  # leaf, intermediate, root

    def write_pem(self, directory: Path, name: str = "signer") -> tuple[Path, Path]:
        """``<name>.key`` (unencrypted PKCS#8, owner-only) and ``<name>.chain.pem`` (leaf first)."""
        directory.mkdir(parents=True, exist_ok=True)
        key_file, chain_file = directory / f"{name}.key", directory / f"{name}.chain.pem"
        key_file.touch(mode=0o600)
        key_file.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        chain_file.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain))
        return key_file, chain_file


class SigningPki:
    """A publisher's root and intermediate CA, minting code-signing leaves."""

    def __init__(
        self, organization: str, *, now: datetime.datetime | None = None, root: x509.Certificate | None = None
    ) -> None:
        """``root``: a root this organization's seeded key minted before (a trust store the operator holds
        as a file, e.g. fixtures/sut/signing), kept byte-identical so that chains lead to it."""
        self.organization = organization
        self.now = (now or datetime.datetime.now(datetime.UTC)).replace(microsecond=0)
        self.root_key = _seeded_ec_key(f"{organization}/root")
        if root is not None and root.public_key() != self.root_key.public_key():
            raise ValueError(f"the given root certificate is not {organization}'s seeded root key's")
        self.root = root or self._ca(
            f"{organization} root", self.root_key, None, self.root_key, path_length=1
        )
        self.intermediate_key = _seeded_ec_key(f"{organization}/intermediate")
        self.intermediate = self._ca(
            f"{organization} signing CA", self.intermediate_key, self.root, self.root_key, path_length=0
        )

    def _ca(
        self,
        common_name: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Certificate | None,
        issuer_key: ec.EllipticCurvePrivateKey,
        *,
        path_length: int,
    ) -> x509.Certificate:
        subject = _name(self.organization, common_name)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject if issuer is not None else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - datetime.timedelta(days=400))
            .not_valid_after(self.now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(_usage(signing=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        return builder.sign(issuer_key, hashes.SHA256())

    def leaf(
        self,
        label: str,
        *,
        rsa_key: bool = False,
        ekus: Sequence[x509.ObjectIdentifier] = (ExtendedKeyUsageOID.CODE_SIGNING,),
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
        extra: Sequence[x509.ExtensionType] = (),
    ) -> Signer:
        key: SigningKey = _rsa_key(label) if rsa_key else _seeded_ec_key(f"{self.organization}/{label}")
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(self.organization, label))
            .issuer_name(self.intermediate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or self.now - BACKDATE)
            .not_valid_after(not_after or self.now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(signing=True), critical=True)
        )
        if ekus:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
        for extension in extra:
            builder = builder.add_extension(extension, critical=False)
        leaf = builder.sign(self.intermediate_key, hashes.SHA256())
        return Signer(key, (leaf, self.intermediate, self.root))

    def write_trust_store(self, directory: Path, name: str = "publisher") -> Path:
        """``<directory>/x509/ca/<name>/root.pem``: the root as the operator distributes it."""
        store = directory / "x509" / "ca" / name
        store.mkdir(parents=True, exist_ok=True)
        (store / "root.pem").write_bytes(self.root.public_bytes(serialization.Encoding.PEM))
        return directory


# -- generation ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureFixture:
    kind: Fixture
    reference: str  # oci://host/ns/repo:tag — what a consumer is asked to deploy
    digest: str  # what the tag points to now
    published: PublishedPackage
    signature: SignedArtifact | None

    def scopes(self) -> list[str]:
        """The trust-policy registry scopes (``registry/repository``) of the package and its components."""
        references = [self.reference, *(c.reference for c in self.published.components)]
        return [f"{ref.registry}/{ref.repository}" for ref in map(OciReference.parse, references)]


def default_package(name: str = "vendor-a-compose") -> Path:
    from ..paths import suite_root

    return suite_root() / "fixtures" / "packages" / name


def generate_fixtures(
    registry_host: str,
    *,
    package_dir: Path | None = None,
    publisher: SigningPki | None = None,
    rogue: SigningPki | None = None,
    kinds: Sequence[Fixture] = tuple(Fixture),
    prefix: str = "sig",
    helm_package_dir: Path | None = None,
) -> dict[Fixture, SignatureFixture]:
    """Publish the package once per fixture kind (namespace ``<prefix>-<kind>``) and sign it so."""
    publisher = publisher or SigningPki("vendor-a")
    result: dict[Fixture, SignatureFixture] = {}
    with OciClient(registry_host) as client:
        for kind in kinds:
            if kind is Fixture.HELM_UNSIGNED:
                package = helm_package_dir or default_package("helm-app")
            else:
                package = package_dir or default_package()
            published = publish_package(package, registry_host, namespace=f"{prefix}-{kind}")
            if kind not in UNSIGNED_COMPONENTS:
                sign_components(client, published, publisher.leaf("release-signer"))
            result[kind] = _make(client, kind, published, publisher, rogue)
    return result


def sign_components(client: OciClient, published: PublishedPackage, signer: Signer) -> None:
    """Sign every component manifest of the published package with ``signer``."""
    for component in published.components:
        repository = OciReference.parse(component.reference).repository
        sign_artifact(client, repository, component.manifest_digest, signer.key, signer.chain)


def _make(
    client: OciClient,
    kind: Fixture,
    published: PublishedPackage,
    publisher: SigningPki,
    rogue: SigningPki | None,
) -> SignatureFixture:
    ref = OciReference.parse(published.reference)
    digest, signature = sign_as(
        client,
        kind,
        ref.with_digest(published.manifest_digest),
        publisher,
        rogue,
        other=lambda: other_artifact(client, published),
    )
    return SignatureFixture(kind, published.reference, digest, published, signature)


def sign_as(
    client: OciClient,
    kind: Fixture,
    artifact: OciReference,
    publisher: SigningPki,
    rogue: SigningPki | None = None,
    *,
    other: Callable[[], Descriptor],
) -> tuple[str, SignedArtifact | None]:
    """Sign the manifest ``artifact`` (its digest; ``tampered`` re-pushes its tag) as fixture ``kind``
    says; ``other`` gives the descriptor an ``other-digest`` signature is over. Returns the digest the
    artifact's tag points to afterwards and the signature attached, if any.

    ``unsigned`` leaves it unsigned; ``component-unsigned`` and ``helm-chart-unsigned`` sign it validly
    (their fault is on another artifact). The device persona puts each fault on a Compose archive.
    """
    repository, digest = artifact.repository, str(artifact.digest)
    now = publisher.now

    def sign(signer: Signer, **options: object) -> SignedArtifact:
        return sign_artifact(client, repository, digest, signer.key, signer.chain, **options)  # type: ignore[arg-type]

    signature: SignedArtifact | None = None
    if kind in (Fixture.VALID, *UNSIGNED_COMPONENTS):
        signature = sign(publisher.leaf("release-signer"))
    elif kind is Fixture.VALID_PS256:
        signature = sign(publisher.leaf("release-signer-rsa", rsa_key=True), alg="PS256")
    elif kind is Fixture.TAMPERED:
        signature = sign(publisher.leaf("release-signer"))
        body, _, _ = client.get_manifest(repository, digest)
        manifest = json.loads(body)
        manifest.setdefault("annotations", {})["org.example.tampered"] = "layer swapped after signing"
        digest = client.push_manifest(repository, str(artifact.tag), manifest)
    elif kind is Fixture.UNTRUSTED_CA:
        signer = (rogue or SigningPki("rogue-publisher")).leaf("release-signer")
        signature = sign(signer)
    elif kind is Fixture.EXPIRED_NO_TIMESTAMP:
        signer = publisher.leaf(
            "old-signer",
            not_before=now - datetime.timedelta(days=60),
            not_after=now - datetime.timedelta(days=1),
        )
        signature = sign(signer, signing_time=now - datetime.timedelta(days=10))
    elif kind is Fixture.RS256:
        signature = sign(publisher.leaf("legacy-signer-rsa", rsa_key=True), alg="RS256", allow_forbidden=True)
    elif kind is Fixture.FORBIDDEN_EKU:
        signature = sign(publisher.leaf("tls-server", ekus=(ExtendedKeyUsageOID.SERVER_AUTH,)))
    elif kind is Fixture.OTHER_DIGEST:
        signature = sign(publisher.leaf("release-signer"), target=other())
    return digest, signature


def other_artifact(client: OciClient, published: PublishedPackage) -> Descriptor:
    """Another artifact of the same publisher: its first component's manifest if it has one."""
    for component in published.components:
        ref = OciReference.parse(component.reference)
        return manifest_descriptor(client, ref.repository, component.manifest_digest)
    return Descriptor("application/vnd.oci.image.manifest.v1+json", published.description_digest, 1)
