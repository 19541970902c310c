"""The signing profile against a vendor's own packages: the publisher's trust material from the SUT file,
and the suite signing what it publishes for the vendor.

A vendor's signatures are judged at Notary's ``strict`` level whatever level the policy file names: the
level is the operator's choice of what to let through (Notary's level table), while SUP-03 §2 obliges
the developer to publish signatures that verify (erratum INC-155). The policy still decides scope, trust
stores and trusted identities.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509

from .._internal.oci import OciClient, OciReference
from ..errors import UsageError
from ..package.publish import PublishedPackage
from .certificates import CERTIFICATE_SUFFIXES, TrustStore
from .fixtures import UNSIGNED_COMPONENTS, Fixture, SigningPki, other_artifact, sign_as, sign_components
from .material import sign_reference
from .package_check import Trust
from .policy import Level, TrustPolicyDocument

REFERENCE_PUBLISHER = "vendor-a"  # the suite's test publisher: its root is fixtures/sut/signing's trust store


def reference_publisher() -> SigningPki:
    """The suite's test publisher, minting leaves under the root the built-in SUT file trusts."""
    from ..paths import suite_root

    root = (
        suite_root() / "fixtures" / "sut" / "signing" / "trust-store" / "x509" / "ca" / REFERENCE_PUBLISHER
    ) / "root.pem"
    return SigningPki(REFERENCE_PUBLISHER, root=x509.load_pem_x509_certificate(root.read_bytes()))


def publisher_trust(store: Sequence[Path], policy_file: Path, workdir: Path) -> Trust:
    """The publisher's trust policy (every verifying policy made ``strict``) and its trust store.

    ``store`` is one Notary trust-store folder (``x509/…``), or root certificates: PEM files and
    folders of them, which every ``ca:`` store the policy names then holds."""
    policy = TrustPolicyDocument.load(policy_file)
    strict = tuple(
        p if p.level is Level.SKIP else dataclasses.replace(p, level=Level.STRICT, overrides={})
        for p in policy.policies
    )
    policy = dataclasses.replace(policy, policies=strict)
    if len(store) == 1 and (store[0] / "x509").is_dir():
        folder = store[0]
    else:
        folder = _store_of(store, policy, Path(tempfile.mkdtemp(prefix="trust-store-", dir=workdir)))
    return Trust.of(policy, folder)


def _store_of(certificates: Sequence[Path], policy: TrustPolicyDocument, folder: Path) -> Path:
    """A Notary trust store whose every ``ca:`` store the policy names holds the given root certificates."""
    files = [
        file
        for given in certificates
        for file in (sorted(given.iterdir()) if given.is_dir() else [given])
        if file.is_file() and file.suffix.lower() in CERTIFICATE_SUFFIXES
    ]
    if not files:
        raise UsageError(
            f"package.signing.trust_store: no certificate file ({', '.join(CERTIFICATE_SUFFIXES)}) in "
            + ", ".join(map(str, certificates))
        )
    names = {
        name.partition(":")[2] for p in policy.policies for name in p.trust_stores if name.startswith("ca:")
    }
    for name in names:
        named = folder / "x509" / "ca" / name
        named.mkdir(parents=True, exist_ok=True)
        for index, file in enumerate(files):
            shutil.copyfile(file, named / f"{index:02d}-{file.name}")
    TrustStore.load(folder)  # unreadable certificates fail here, naming the file
    return folder


def sign_published(published: PublishedPackage, key: Path, chain: Path) -> None:
    """Sign the package manifest and each component manifest, as ``package sign`` would (SUP-03 §2)."""
    for reference in (published.reference, *(c.reference for c in published.components)):
        sign_reference(reference, key, chain)


def sign_published_as_test_publisher(published: PublishedPackage, workdir: Path) -> None:
    """Sign like ``sign_published`` as the suite's test publisher: its leaf key is minted now and lives
    only in a private folder of the run while the signatures are made."""
    folder = Path(tempfile.mkdtemp(prefix="publisher-", dir=workdir))  # mode 0700
    try:
        key, chain = reference_publisher().leaf("release-signer").write_pem(folder)
        sign_published(published, key, chain)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sign_published_as(published: PublishedPackage, kind: Fixture, publisher: SigningPki) -> None:
    """Sign like ``sign_published``, with the one signature fault ``kind`` (the signing profile's
    package faults): components unsigned for ``component-unsigned``/``helm-chart-unsigned``, else the
    package manifest's signature made as the signature fixture of that kind."""
    ref = OciReference.parse(published.reference)
    with OciClient(ref.registry) as client:
        if kind not in UNSIGNED_COMPONENTS:
            sign_components(client, published, publisher.leaf("release-signer"))
        sign_as(
            client,
            kind,
            ref.with_digest(published.manifest_digest),
            publisher,
            SigningPki("rogue-publisher"),
            other=lambda: other_artifact(client, published),
        )
