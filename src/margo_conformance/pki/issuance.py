"""The operator's trust domain: a root CA, one intermediate, the WFM's SVID, the bundle, and minted SVIDs.

The suite plays the operator (DESIGN §2): it mints good SVIDs and, on purpose, SVIDs with exactly one
defect (``Flaw``) so that scenarios can prove a subject refuses them. Every key comes from the
cryptography CSPRNG (SVID-005); ECDSA P-256/SHA-256 is the default everywhere (SVID-003).
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..errors import UsageError
from ._files import (
    certificate_pem,
    json_bytes,
    key_pem,
    read_certificates,
    read_key,
    write_public,
    write_secret,
)
from ._x509 import BACKDATE, ca_certificate, leaf_certificate, new_ec_key, utc_now
from .bundle import spiffe_bundle
from .ids import SpiffeId, SvidError, check_segment, check_trust_domain

SvidKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

ROOT_DAYS, INTERMEDIATE_DAYS = 3650, 1825
FLAW_OFFSET = datetime.timedelta(days=1)  # how far outside its validity an EXPIRED / NOT_YET_VALID leaf is
PKI_FILES = ("pki.yaml", "root.crt", "intermediate.crt", "intermediate.key", "wfm.crt", "wfm.key")


class Flaw(enum.StrEnum):
    """One deliberate defect of a minted SVID; each breaks exactly one rule."""

    FOREIGN_TRUST_DOMAIN = "foreign-trust-domain"  # signed by our CA, URI SAN in another trust domain
    WRONG_PATH = "wrong-path"  # spiffe://td/margo/device/<id>, not the client shape
    TWO_URI_SANS = "two-uri-sans"
    CA_TRUE = "ca-true"  # leaf with BasicConstraints cA=true
    KEY_CERT_SIGN = "key-cert-sign"  # leaf with keyCertSign key usage
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    UNKNOWN_ISSUER = "unknown-issuer"  # chains to a root that is NOT in the bundle
    RSA_2048 = "rsa-2048"  # SVID-002 requires RSA >= 3072
    WITHOUT_INTERMEDIATE = "without-intermediate"  # chain file holds the leaf only


@dataclass(frozen=True)
class SvidFiles:
    """Where an SVID lives on disk: the chain PEM (leaf + intermediates) and its key (0600)."""

    certificate: Path
    key: Path


@dataclass(frozen=True)
class Svid:
    """An X.509-SVID with the chain its holder presents (SVID-001: leaf + intermediates, never the root)."""

    spiffe_id: SpiffeId
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key: SvidKey

    @classmethod
    def load(cls, files: SvidFiles) -> Svid:
        """Read an SVID written by ``write`` (or by other tooling); UsageError when unusable."""
        from .policy import spiffe_id_of  # policy imports ids only; the local import keeps layers one-way

        chain = read_certificates(files.certificate)
        key = read_key(files.key)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise UsageError(f"{files.key}: unsupported key type {type(key).__name__}")
        if chain[0].public_key() != key.public_key():
            raise UsageError(f"{files.key} does not belong to the leaf certificate in {files.certificate}")
        try:
            spiffe_id = spiffe_id_of(chain[0])
        except SvidError as exc:
            raise UsageError(f"{files.certificate}: {exc}") from None
        return cls(spiffe_id, chain[0], chain, key)

    def chain_pem(self) -> bytes:
        """The presented chain as PEM, leaf first."""
        return certificate_pem(*self.chain)

    def key_pem(self) -> bytes:
        """The private key, PKCS8, unencrypted: for 0600 files only."""
        return key_pem(self.key)

    def write(self, directory: Path, name: str) -> SvidFiles:
        """``<name>.crt`` (chain PEM) and ``<name>.key`` (0600) in ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        files = SvidFiles(directory / f"{name}.crt", directory / f"{name}.key")
        write_secret(files.key, self.key_pem())
        write_public(files.certificate, self.chain_pem())
        return files

    def __repr__(self) -> str:  # never show key material
        return f"Svid({self.spiffe_id}, serial={self.certificate.serial_number:x})"


class _Issuer:
    """The intermediate CA of one trust domain: the only thing that signs leaves."""

    def __init__(
        self, trust_domain: str, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey
    ) -> None:
        self.trust_domain = trust_domain
        self.certificate = certificate
        self._key = key

    def mint(
        self,
        spiffe_id: SpiffeId,
        flaw: Flaw | None,
        validity_days: int,
        *,
        extra_sans: Sequence[x509.GeneralName] = (),
    ) -> Svid:
        """Issue one leaf; ``flaw`` changes exactly one property (UNKNOWN_ISSUER is the caller's business)."""
        if validity_days < 1:
            raise UsageError(f"validity must be at least one day, not {validity_days}")
        if spiffe_id.trust_domain != self.trust_domain:
            raise UsageError(f"{spiffe_id} is outside trust domain {self.trust_domain!r}")
        not_before, not_after = _validity(flaw, validity_days)
        uris = [_flawed_uri(spiffe_id, flaw)]
        if flaw is Flaw.TWO_URI_SANS:
            uris.append(SpiffeId(spiffe_id.trust_domain, spiffe_id.path + "-twin"))
        key: SvidKey = rsa.generate_private_key(65537, 2048) if flaw is Flaw.RSA_2048 else new_ec_key()
        leaf = leaf_certificate(
            common_name=spiffe_id.segments[-1],
            public_key=key.public_key(),
            sans=[*(x509.UniformResourceIdentifier(str(uri)) for uri in uris), *extra_sans],
            issuer=self.certificate,
            issuer_key=self._key,
            not_before=not_before,
            not_after=min(not_after, self.certificate.not_valid_after_utc),
            ca=flaw is Flaw.CA_TRUE,
            key_cert_sign=flaw is Flaw.KEY_CERT_SIGN,
        )
        chain = (leaf,) if flaw is Flaw.WITHOUT_INTERMEDIATE else (leaf, self.certificate)
        return Svid(spiffe_id, leaf, chain, key)


UNTRUSTED_CA = "untrusted-ca"  # the rogue CA a scenario uses for UNKNOWN_ISSUER


class Pki:
    """The operator's trust domain: root CA, one intermediate, the WFM's SVID, the trust bundle."""

    def __init__(
        self,
        *,
        directory: Path,
        trust_domain: str,
        wfm_id: str,
        root: x509.Certificate,
        intermediate: x509.Certificate,
        intermediate_key: ec.EllipticCurvePrivateKey,
        wfm_svid: Svid,
    ) -> None:
        """Use ``Pki.init`` or ``Pki.load``; this constructor trusts its arguments."""
        self.directory = directory
        self.trust_domain = trust_domain
        self.wfm_id = wfm_id
        self._root = root
        self._issuer = _Issuer(trust_domain, intermediate, intermediate_key)
        self._wfm_svid = wfm_svid

    @classmethod
    def init(cls, out: Path, *, trust_domain: str, wfm_id: str, validity_days: int = 30) -> Pki:
        """Create the trust domain in ``out``; an existing PKI with the same ids is loaded, never replaced."""
        _check_inputs(trust_domain, wfm_id, validity_days)
        if out.exists() and not out.is_dir():
            raise UsageError(f"{out} exists and is not a directory")
        if out.is_dir() and any(out.iterdir()):
            return cls._existing(out, trust_domain=trust_domain, wfm_id=wfm_id)
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
        now = utc_now()
        root_key, intermediate_key = new_ec_key(), new_ec_key()
        root = ca_certificate(
            f"{trust_domain} Margo root CA",
            root_key,
            issuer=None,
            issuer_key=root_key,
            now=now,
            days=ROOT_DAYS,
            path_length=1,
        )
        intermediate = ca_certificate(
            f"{trust_domain} Margo intermediate CA",
            intermediate_key,
            issuer=root,
            issuer_key=root_key,
            now=now,
            days=INTERMEDIATE_DAYS,
            path_length=0,
        )
        issuer = _Issuer(trust_domain, intermediate, intermediate_key)
        wfm_svid = issuer.mint(SpiffeId.wfm(trust_domain, wfm_id), None, validity_days)
        pki = cls(
            directory=out,
            trust_domain=trust_domain,
            wfm_id=wfm_id,
            root=root,
            intermediate=intermediate,
            intermediate_key=intermediate_key,
            wfm_svid=wfm_svid,
        )
        write_secret(out / "root.key", key_pem(root_key))
        write_secret(out / "intermediate.key", key_pem(intermediate_key))
        write_public(out / "root.crt", certificate_pem(root))
        write_public(out / "intermediate.crt", certificate_pem(intermediate))
        wfm_svid.write(out, "wfm")
        write_public(out / "bundle.pem", certificate_pem(*pki.anchors))
        write_public(out / "bundle.json", json_bytes(spiffe_bundle(pki.anchors)))
        meta = {"trust_domain": trust_domain, "wfm_id": wfm_id, "wfm_spiffe_id": str(pki.wfm_spiffe_id)}
        write_public(out / "pki.yaml", yaml.safe_dump(meta, sort_keys=False).encode())
        write_public(out / "README.md", _readme(pki).encode())
        return pki

    @classmethod
    def _existing(cls, out: Path, *, trust_domain: str, wfm_id: str) -> Pki:
        """A non-empty ``out`` must already be this very PKI (same trust domain and wfm-id)."""
        if not (out / "pki.yaml").is_file():
            raise UsageError(f"{out} is not empty and holds no PKI (no pki.yaml); choose an empty directory")
        existing = cls.load(out)
        if (existing.trust_domain, existing.wfm_id) != (trust_domain, wfm_id):
            raise UsageError(
                f"{out} already holds the PKI of trust domain {existing.trust_domain!r}, "
                f"wfm-id {existing.wfm_id!r}; choose another directory"
            )
        return existing

    @classmethod
    def load(cls, directory: Path) -> Pki:
        """Read a PKI written by ``init`` (root.key is not needed); UsageError naming the faulty file."""
        missing = [name for name in PKI_FILES if not (directory / name).is_file()]
        if missing:
            raise UsageError(
                f"{directory} is not a PKI directory (missing {', '.join(missing)}); "
                "create one with `margo-conformance pki init`"
            )
        trust_domain, wfm_id = _read_meta(directory / "pki.yaml")
        root = read_certificates(directory / "root.crt")[0]
        intermediate = read_certificates(directory / "intermediate.crt")[0]
        intermediate_key = read_key(directory / "intermediate.key")
        if not isinstance(intermediate_key, ec.EllipticCurvePrivateKey):
            raise UsageError(f"{directory / 'intermediate.key'}: expected an EC private key")
        if intermediate.public_key() != intermediate_key.public_key():
            raise UsageError(f"{directory / 'intermediate.key'} does not belong to intermediate.crt")
        _ensure_issued(intermediate, root, directory / "intermediate.crt")
        wfm_svid = Svid.load(SvidFiles(directory / "wfm.crt", directory / "wfm.key"))
        _ensure_issued(wfm_svid.certificate, intermediate, directory / "wfm.crt")
        expected = SpiffeId.wfm(trust_domain, wfm_id)
        if wfm_svid.spiffe_id != expected:
            raise UsageError(f"{directory / 'wfm.crt'} names {wfm_svid.spiffe_id}, pki.yaml says {expected}")
        return cls(
            directory=directory,
            trust_domain=trust_domain,
            wfm_id=wfm_id,
            root=root,
            intermediate=intermediate,
            intermediate_key=intermediate_key,
            wfm_svid=wfm_svid,
        )

    @property
    def wfm_spiffe_id(self) -> SpiffeId:
        """``spiffe://<td>/margo/wfm/<wfm-id>`` (WIP-001)."""
        return SpiffeId.wfm(self.trust_domain, self.wfm_id)

    @property
    def bundle_pem(self) -> Path:
        """The anchors file (the root only) for ssl contexts."""
        return self.directory / "bundle.pem"

    @property
    def bundle_json(self) -> Path:
        """The SPIFFE bundle document the Trust Bundle API serves."""
        return self.directory / "bundle.json"

    @property
    def wfm_svid(self) -> Svid:
        """The WFM's SVID, as in wfm.crt / wfm.key."""
        return self._wfm_svid

    @property
    def wfm_svid_files(self) -> SvidFiles:
        """wfm.crt (leaf + intermediate) and wfm.key, for ``tls.server_context``."""
        return SvidFiles(self.directory / "wfm.crt", self.directory / "wfm.key")

    @property
    def root(self) -> x509.Certificate:
        """The trust anchor."""
        return self._root

    @property
    def intermediate(self) -> x509.Certificate:
        """The issuing CA every SVID chain carries."""
        return self._issuer.certificate

    @property
    def anchors(self) -> tuple[x509.Certificate, ...]:
        """The bundle's anchors: the root only (TB-007: intermediates travel with the chain)."""
        return (self._root,)

    def mint_client(self, client_id: str, *, flaw: Flaw | None = None, validity_days: int = 30) -> Svid:
        """A WFM-client SVID ``…/margo/wfm/<wfm-id>/client/<client-id>``, optionally with one flaw."""
        return self._mint(SpiffeId.client(self.trust_domain, self.wfm_id, client_id), flaw, validity_days)

    def mint_wfm(
        self, *, wfm_id: str | None = None, flaw: Flaw | None = None, validity_days: int = 30
    ) -> Svid:
        """A WFM SVID, by default for this PKI's wfm-id (another one proves a device checks WIP-007)."""
        return self._mint(SpiffeId.wfm(self.trust_domain, wfm_id or self.wfm_id), flaw, validity_days)

    def mint_server(
        self,
        spiffe_id: SpiffeId,
        *,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
        validity_days: int = 30,
    ) -> Svid:
        """Any SPIFFE ID from the domain's intermediate; DNS/IP SANs for PKI-anchored HTTPS (TLS-006)."""
        extra: list[x509.GeneralName] = [x509.DNSName(dns) for dns in dns_names]
        extra += [x509.IPAddress(ip_address(ip)) for ip in ip_addresses]
        return self._mint(spiffe_id, None, validity_days, extra_sans=extra)

    def foreign(self) -> Pki:
        """An unrelated root + intermediate claiming the same names (a rogue CA, never in the bundle).

        Kept in ``untrusted-ca/`` inside the PKI folder, so that every process using this PKI (the suite
        and, in its self-test, a reference WFM told to trust it by mistake) shares one rogue CA."""
        return Pki.init(self.directory / UNTRUSTED_CA, trust_domain=self.trust_domain, wfm_id=self.wfm_id)

    def _mint(
        self,
        spiffe_id: SpiffeId,
        flaw: Flaw | None,
        validity_days: int,
        *,
        extra_sans: Sequence[x509.GeneralName] = (),
    ) -> Svid:
        """UNKNOWN_ISSUER comes from the rogue PKI's intermediate; everything else from ours."""
        if flaw is Flaw.UNKNOWN_ISSUER:
            return self.foreign()._issuer.mint(spiffe_id, None, validity_days, extra_sans=extra_sans)
        return self._issuer.mint(spiffe_id, flaw, validity_days, extra_sans=extra_sans)

    def __repr__(self) -> str:
        return f"Pki({str(self.directory)!r}, {self.wfm_spiffe_id})"


def _validity(flaw: Flaw | None, validity_days: int) -> tuple[datetime.datetime, datetime.datetime]:
    """notBefore = now - 5 min; EXPIRED ended a day ago, NOT_YET_VALID starts in a day."""
    now, validity = utc_now(), datetime.timedelta(days=validity_days)
    if flaw is Flaw.EXPIRED:
        return now - validity - FLAW_OFFSET, now - FLAW_OFFSET
    if flaw is Flaw.NOT_YET_VALID:
        return now + FLAW_OFFSET, now + FLAW_OFFSET + validity
    return now - BACKDATE, now + validity


def _flawed_uri(spiffe_id: SpiffeId, flaw: Flaw | None) -> SpiffeId:
    """The URI SAN to embed: the intended ID, or the one the flaw asks for."""
    if flaw is Flaw.FOREIGN_TRUST_DOMAIN:
        other = "foreign.example" if spiffe_id.trust_domain != "foreign.example" else "other.example"
        return SpiffeId(other, spiffe_id.path)
    if flaw is Flaw.WRONG_PATH:
        return SpiffeId(spiffe_id.trust_domain, f"/margo/device/{spiffe_id.segments[-1]}")
    return spiffe_id


def _check_inputs(trust_domain: str, wfm_id: str, validity_days: int) -> None:
    try:
        check_trust_domain(trust_domain)
        check_segment(wfm_id)
    except SvidError as exc:
        raise UsageError(str(exc)) from None
    if validity_days < 1:
        raise UsageError(f"validity must be at least one day, not {validity_days}")


def _read_meta(path: Path) -> tuple[str, str]:
    try:
        meta = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: cannot read ({exc})") from None
    fields = ("trust_domain", "wfm_id")
    if not isinstance(meta, dict) or not all(isinstance(meta.get(field), str) for field in fields):
        raise UsageError(f"{path}: needs string fields trust_domain and wfm_id")
    trust_domain, wfm_id = meta["trust_domain"], meta["wfm_id"]
    try:
        check_trust_domain(trust_domain)
        check_segment(wfm_id)
    except SvidError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return trust_domain, wfm_id


def _ensure_issued(certificate: x509.Certificate, issuer: x509.Certificate, path: Path) -> None:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        raise UsageError(f"{path} is not issued by the PKI's own CA") from None


def _readme(pki: Pki) -> str:
    return f"""# Margo trust domain `{pki.trust_domain}` (made by `margo-conformance pki init`)

WFM SPIFFE ID: `{pki.wfm_spiffe_id}`

| file | what it is | who gets it |
| --- | --- | --- |
| `root.crt` | root CA (the trust anchor) | everyone, through `bundle.pem` / `bundle.json` |
| `root.key` | root CA private key | nobody; may be moved offline, minting does not need it |
| `intermediate.crt` | issuing CA; every SVID chain carries it | travels inside each `*.crt` chain |
| `intermediate.key` | issuing CA private key | stays here: the suite mints SVIDs with it |
| `wfm.crt`, `wfm.key` | the WFM's SVID (leaf + intermediate) and its key | the WFM under test |
| `bundle.pem` | trust anchors (the root only), PEM | the WFM and every device |
| `bundle.json` | the same anchors as a SPIFFE bundle (JWK Set) | the Trust Bundle API (`trustBundleUri`) |
| `pki.yaml` | trust domain and wfm-id | the suite |

Client SVIDs for a device: `margo-conformance pki client --pki <this dir> --client-id <id> --out <dir>`.

Keep every `*.key` secret. They are written with mode 0600; only `wfm.key` leaves this directory (to the
WFM), and a device's key goes to that device only.
"""
