"""The identity toolkit: SPIFFE IDs, the operator's PKI, flawed SVIDs, SVID policies, real mTLS handshakes.

Handshakes run on 127.0.0.1 with a server thread and 5-second socket timeouts. Which flaws OpenSSL
refuses during the handshake and which only the SVID policy catches is pinned here (``HANDSHAKE_FLAWS``,
``POLICY_ONLY_FLAWS``), because the reference WFM and the virtual client rely on it.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import socket
import ssl
import stat
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from typer.testing import CliRunner

from margo_conformance import cli
from margo_conformance.errors import UsageError
from margo_conformance.pki import (
    AllOf,
    AllowedKey,
    AllowedSignature,
    ChainsToBundle,
    ClientShape,
    ExactSpiffeId,
    Flaw,
    LeafNotCa,
    OneUriSan,
    Pki,
    SpiffeId,
    SpiffeScheme,
    Svid,
    SvidError,
    SvidFiles,
    SvidPolicy,
    TrustDomainIs,
    Validity,
    check_segment,
    client_context,
    client_policy,
    legacy_tls11_client_context,
    peer_chain,
    server_context,
    spiffe_id_of,
    wfm_policy,
    x509_anchors,
)

TD, WFM_ID = "factory.example", "wfm-1"
TIMEOUT = 5.0
KEY_FILES = ("root.key", "intermediate.key", "wfm.key")
ALL_FILES = (
    "root.crt",
    "root.key",
    "intermediate.crt",
    "intermediate.key",
    "wfm.crt",
    "wfm.key",
    "bundle.pem",
    "bundle.json",
    "pki.yaml",
    "README.md",
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.init(tmp_path_factory.mktemp("pki") / "pki", trust_domain=TD, wfm_id=WFM_ID)


@pytest.fixture(scope="module")
def svid_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("svids")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- SPIFFE IDs (WIP-001, WIP-002, SVID-006(c)) ------------------------------------------------------


def test_spiffe_id_shapes_and_format() -> None:
    wfm = SpiffeId.wfm(TD, WFM_ID)
    client = SpiffeId.client(TD, WFM_ID, "dev-1")
    assert str(wfm) == "spiffe://factory.example/margo/wfm/wfm-1"
    assert str(client) == "spiffe://factory.example/margo/wfm/wfm-1/client/dev-1"
    assert (wfm.wfm_id, wfm.client_id) == (WFM_ID, None)
    assert (client.wfm_id, client.client_id) == (WFM_ID, "dev-1")
    assert SpiffeId.parse(str(client)) == client
    assert SpiffeId.parse(str(wfm)) == wfm


@pytest.mark.parametrize(
    "uri",
    [
        "spiffe://factory.example/margo/device/x",
        "spiffe://factory.example/margo/wfm/w/client",
        "spiffe://factory.example/margo/wfm/w/clients/c",
        "spiffe://factory.example/other/wfm/w",
        "spiffe://factory.example/margo/wfm/w/client/c/extra",
    ],
)
def test_other_shapes_have_no_wfm_or_client_id(uri: str) -> None:
    spiffe_id = SpiffeId.parse(uri)
    assert (spiffe_id.wfm_id, spiffe_id.client_id) == (None, None)


@pytest.mark.parametrize(
    "uri",
    [
        "https://factory.example/margo/wfm/w",
        "SPIFFE://factory.example/margo/wfm/w",
        "spiffe://factory.example",
        "spiffe://factory.example/",
        "spiffe:///margo/wfm/w",
        "spiffe://factory.example//margo",
        "spiffe://factory.example/margo/",
        "spiffe://factory.example/margo/../wfm",
        "spiffe://factory.example/margo/./wfm",
        "spiffe://Factory.example/margo/wfm/w",
        "spiffe://factory.example:443/margo/wfm/w",
        "spiffe://user@factory.example/margo/wfm/w",
        "spiffe://factory.example/margo/wfm/w?x=1",
        "spiffe://factory.example/margo/wfm/w#f",
        "spiffe://factory.example/margo/wfm/w%20x",
    ],
)
def test_parse_refuses_what_is_not_a_spiffe_id(uri: str) -> None:
    with pytest.raises(SvidError, match=r"^(SVID-006\(c\)|SVID-001):"):
        SpiffeId.parse(uri)


@pytest.mark.parametrize("value", ["", ".", "..", "a/b", "ü", "a b", "a%41", "a:b", "a@b"])
def test_check_segment_refuses(value: str) -> None:
    with pytest.raises(SvidError, match="^WIP-002:"):
        check_segment(value)


@pytest.mark.parametrize("value", ["a~b", "A.b_c-d", "...", "0", "Dev-01"])
def test_check_segment_accepts_unreserved(value: str) -> None:
    check_segment(value)


def test_constructors_validate_segments() -> None:
    with pytest.raises(SvidError, match="^WIP-002:"):
        SpiffeId.client(TD, WFM_ID, "a/b")
    with pytest.raises(SvidError, match="^WIP-002:"):
        SpiffeId.wfm(TD, "..")


# -- Pki.init / load / bundle ------------------------------------------------------------------------


def test_init_writes_every_file_with_secret_keys(pki: Pki) -> None:
    assert sorted(p.name for p in pki.directory.iterdir()) == sorted(ALL_FILES)
    for name in KEY_FILES:
        assert _mode(pki.directory / name) == 0o600, name
    assert _mode(pki.directory) == 0o700
    assert pki.bundle_pem.read_bytes() == pki.root.public_bytes(serialization.Encoding.PEM)
    assert pki.wfm_spiffe_id == SpiffeId.wfm(TD, WFM_ID)
    assert "wfm.key" in (pki.directory / "README.md").read_text()


def test_load_round_trips(pki: Pki) -> None:
    loaded = Pki.load(pki.directory)
    assert (loaded.trust_domain, loaded.wfm_id) == (TD, WFM_ID)
    assert loaded.root == pki.root and loaded.intermediate == pki.intermediate
    assert loaded.wfm_svid.chain == pki.wfm_svid.chain
    assert loaded.wfm_svid.spiffe_id == pki.wfm_spiffe_id
    assert loaded.wfm_svid.key_pem() == pki.wfm_svid.key_pem()
    assert loaded.mint_client("c").certificate.issuer == pki.intermediate.subject


def test_init_on_an_existing_pki_loads_it(pki: Pki) -> None:
    again = Pki.init(pki.directory, trust_domain=TD, wfm_id=WFM_ID)
    assert again.root == pki.root
    with pytest.raises(UsageError, match="already holds the PKI"):
        Pki.init(pki.directory, trust_domain=TD, wfm_id="wfm-2")


def test_init_refuses_a_non_pki_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="holds no PKI"):
        Pki.init(tmp_path, trust_domain=TD, wfm_id=WFM_ID)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(
    ("trust_domain", "wfm_id"), [("Factory.example", "w"), ("f.example:8443", "w"), ("f.example", "a/b")]
)
def test_init_validates_names(tmp_path: Path, trust_domain: str, wfm_id: str) -> None:
    with pytest.raises(UsageError):
        Pki.init(tmp_path / "pki", trust_domain=trust_domain, wfm_id=wfm_id)
    assert not (tmp_path / "pki").exists()


@pytest.mark.parametrize("broken", ["wfm.key", "intermediate.crt", "pki.yaml"])
def test_load_names_a_missing_or_corrupt_file(pki: Pki, tmp_path: Path, broken: str) -> None:
    copy = tmp_path / "pki"
    copy.mkdir()
    for path in pki.directory.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    (copy / broken).unlink()
    with pytest.raises(UsageError, match=broken):
        Pki.load(copy)
    (copy / broken).write_text("garbage: [\n" if broken == "pki.yaml" else "not PEM")
    with pytest.raises(UsageError, match=broken):
        Pki.load(copy)


def test_load_refuses_a_wfm_svid_from_another_ca(pki: Pki, tmp_path: Path) -> None:
    copy = tmp_path / "pki"
    copy.mkdir()
    for path in pki.directory.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    pki.foreign().wfm_svid.write(copy, "wfm")
    with pytest.raises(UsageError, match="not issued by the PKI's own CA"):
        Pki.load(copy)


def test_bundle_json_is_a_spiffe_jwk_set_of_the_root(pki: Pki) -> None:
    document = json.loads(pki.bundle_json.read_text())
    assert document["spiffe_sequence"] == 1
    assert document["spiffe_refresh_hint"] == 3600
    [key] = document["keys"]
    assert (key["kty"], key["crv"], key["use"]) == ("EC", "P-256", "x509-svid")
    [der] = key["x5c"]
    assert x509.load_der_x509_certificate(base64.b64decode(der)) == pki.root
    public = pki.root.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    numbers = public.public_numbers()
    for name, value in (("x", numbers.x), ("y", numbers.y)):
        raw = base64.urlsafe_b64decode(key[name] + "=" * (-len(key[name]) % 4))
        assert len(raw) == 32 and int.from_bytes(raw, "big") == value
    assert x509_anchors(document) == (pki.root,)


def test_x509_anchors_ignores_other_keys_and_fails_closed(pki: Pki) -> None:
    document = json.loads(pki.bundle_json.read_text())
    jwt_key = {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "use": "jwt-svid", "kid": "k"}
    extended = {**document, "unknown": True, "keys": [jwt_key, *document["keys"]]}
    assert x509_anchors(extended) == (pki.root,)  # TB-001, TB-007
    with pytest.raises(SvidError, match="^TB-004:"):
        x509_anchors({**document, "keys": [jwt_key]})


# -- minted SVIDs ------------------------------------------------------------------------------------


ExtensionT = TypeVar("ExtensionT", bound=x509.ExtensionType)


def _extension(certificate: x509.Certificate, kind: type[ExtensionT]) -> ExtensionT:
    return certificate.extensions.get_extension_for_class(kind).value


def test_a_good_client_svid_has_the_profile(pki: Pki) -> None:
    svid = pki.mint_client("dev-1")
    leaf = svid.certificate
    assert svid.spiffe_id == SpiffeId.client(TD, WFM_ID, "dev-1")
    assert svid.chain == (leaf, pki.intermediate)  # SVID-001: never the root
    key = leaf.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"  # SVID-003
    assert isinstance(leaf.signature_hash_algorithm, hashes.SHA256)
    assert _extension(leaf, x509.BasicConstraints).ca is False
    usage = _extension(leaf, x509.KeyUsage)
    assert usage.digital_signature and not usage.key_cert_sign and not usage.crl_sign
    assert set(_extension(leaf, x509.ExtendedKeyUsage)) == {
        x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
        x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH,
    }
    assert _extension(leaf, x509.SubjectAlternativeName).get_values_for_type(
        x509.UniformResourceIdentifier
    ) == [str(svid.spiffe_id)]
    age = datetime.datetime.now(datetime.UTC) - leaf.not_valid_before_utc
    assert datetime.timedelta(minutes=4) < age < datetime.timedelta(minutes=6)
    intermediate = _extension(pki.intermediate, x509.BasicConstraints)
    assert intermediate.ca and intermediate.path_length == 0
    ca_usage = _extension(pki.intermediate, x509.KeyUsage)
    assert ca_usage.key_cert_sign and ca_usage.crl_sign and not ca_usage.digital_signature
    client_policy(TD, WFM_ID).check(svid.chain)
    ChainsToBundle(pki.anchors).check(svid.chain)
    assert "PRIVATE" not in repr(svid) and "PRIVATE KEY" in svid.key_pem().decode()


def test_written_svid_reads_back_with_a_secret_key(pki: Pki, svid_dir: Path) -> None:
    svid = pki.mint_client("dev-rw")
    files = svid.write(svid_dir, "dev-rw")
    assert _mode(files.key) == 0o600
    assert x509.load_pem_x509_certificates(files.certificate.read_bytes()) == list(svid.chain)
    assert Svid.load(files).chain == svid.chain


def test_mint_server_adds_dns_names_but_one_uri(pki: Pki) -> None:
    svid = pki.mint_server(SpiffeId(TD, "/margo/mis"), dns_names=["mis.example"], ip_addresses=["127.0.0.1"])
    san = _extension(svid.certificate, x509.SubjectAlternativeName)
    assert san.get_values_for_type(x509.DNSName) == ["mis.example"]
    OneUriSan().check(svid.chain)


# Per flaw: the defect itself, and exactly which policies refuse it (the rest must pass).
ALL_POLICIES: dict[str, Callable[[Pki], SvidPolicy]] = {
    "TrustDomainIs": lambda pki: TrustDomainIs(TD),
    "Validity": lambda pki: Validity(),
    "ChainsToBundle": lambda pki: ChainsToBundle(pki.anchors),
    "LeafNotCa": lambda pki: LeafNotCa(),
    "SpiffeScheme": lambda pki: SpiffeScheme(),
    "OneUriSan": lambda pki: OneUriSan(),
    "AllowedKey": lambda pki: AllowedKey(),
    "AllowedSignature": lambda pki: AllowedSignature(),
    "ClientShape": lambda pki: ClientShape(TD, WFM_ID),
}
READS_THE_ID = {"TrustDomainIs", "SpiffeScheme", "OneUriSan", "ClientShape"}


def _uris(svid: Svid) -> list[str]:
    return _extension(svid.certificate, x509.SubjectAlternativeName).get_values_for_type(
        x509.UniformResourceIdentifier
    )


def _valid_at(svid: Svid, when: datetime.datetime) -> bool:
    leaf = svid.certificate
    return leaf.not_valid_before_utc <= when <= leaf.not_valid_after_utc


FLAWS: dict[Flaw, tuple[Callable[[Svid, Pki], bool], set[str], str]] = {
    Flaw.FOREIGN_TRUST_DOMAIN: (
        lambda s, p: _uris(s) == ["spiffe://foreign.example/margo/wfm/wfm-1/client/dev-1"],
        {"TrustDomainIs", "ClientShape"},
        r"SVID-006\(a\): trust domain 'foreign.example'",
    ),
    Flaw.WRONG_PATH: (
        lambda s, p: _uris(s) == ["spiffe://factory.example/margo/device/dev-1"],
        {"ClientShape"},
        "WIP-005:",
    ),
    Flaw.TWO_URI_SANS: (lambda s, p: len(_uris(s)) == 2, READS_THE_ID, r"SVID-006\(c\): leaf has 2 URI SANs"),
    Flaw.CA_TRUE: (
        lambda s, p: _extension(s.certificate, x509.BasicConstraints).ca,
        {"LeafNotCa"},
        r"SVID-006\(c\): leaf has cA=true",
    ),
    Flaw.KEY_CERT_SIGN: (
        lambda s, p: _extension(s.certificate, x509.KeyUsage).key_cert_sign,
        {"LeafNotCa"},
        r"SVID-006\(c\): leaf has keyCertSign",
    ),
    Flaw.EXPIRED: (
        lambda s, p: (
            s.certificate.not_valid_after_utc
            < datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=12)
        ),
        {"Validity", "ChainsToBundle"},
        r"SVID-006\(b\): leaf expired",
    ),
    Flaw.NOT_YET_VALID: (
        lambda s, p: (
            s.certificate.not_valid_before_utc
            > datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=12)
        ),
        {"Validity", "ChainsToBundle"},
        r"SVID-006\(b\): leaf is not yet valid",
    ),
    Flaw.UNKNOWN_ISSUER: (
        lambda s, p: s.chain[1] == p.foreign().intermediate and s.chain[1] != p.intermediate,
        {"ChainsToBundle"},
        r"SVID-006\(b\): chain does not lead to an anchor",
    ),
    Flaw.RSA_2048: (
        lambda s, p: isinstance(k := s.certificate.public_key(), rsa.RSAPublicKey) and k.key_size == 2048,
        {"AllowedKey"},
        "SVID-002: RSA key of 2048 bits",
    ),
    Flaw.WITHOUT_INTERMEDIATE: (
        lambda s, p: s.chain == (s.certificate,),
        {"ChainsToBundle"},
        r"SVID-006\(b\): chain does not lead to an anchor",
    ),
}


def test_every_flaw_is_covered() -> None:
    assert set(FLAWS) == set(Flaw)


@pytest.mark.parametrize("flaw", list(Flaw), ids=str)
def test_each_flaw_has_exactly_its_defect(pki: Pki, flaw: Flaw) -> None:
    has_defect, refusing, message = FLAWS[flaw]
    svid = pki.mint_client("dev-1", flaw=flaw)
    assert has_defect(svid, pki)
    assert svid.spiffe_id == SpiffeId.client(TD, WFM_ID, "dev-1")  # what was asked for
    refused: dict[str, str] = {}
    for name, make in ALL_POLICIES.items():
        try:
            make(pki).check(svid.chain)
        except SvidError as exc:
            refused[name] = str(exc)
    assert set(refused) == refusing, refused
    assert any(re.search(message, text) for text in refused.values()), refused


@pytest.mark.parametrize("flaw", [f for f in Flaw if FLAWS[f][1] - {"ChainsToBundle"}], ids=str)
def test_client_policy_refuses_a_flawed_leaf_naming_the_rule(pki: Pki, flaw: Flaw) -> None:
    svid = pki.mint_client("dev-1", flaw=flaw)
    with pytest.raises(SvidError, match=FLAWS[flaw][2]):
        client_policy(TD, WFM_ID).check((svid.certificate,))  # the leaf only, as Python 3.11 sees a peer


def test_wfm_policy_accepts_only_the_exact_wfm(pki: Pki) -> None:
    wfm_policy(TD, WFM_ID).check(pki.wfm_svid.chain)
    with pytest.raises(SvidError, match="^WIP-007: peer is .*/client/dev-1"):
        wfm_policy(TD, WFM_ID).check(pki.mint_client("dev-1").chain)
    with pytest.raises(SvidError, match="^WIP-007: peer is .*/margo/wfm/wfm-2, expected exactly"):
        wfm_policy(TD, WFM_ID).check(pki.mint_wfm(wfm_id="wfm-2").chain)
    with pytest.raises(SvidError, match="^WIP-007:"):
        wfm_policy(TD, WFM_ID).check(pki.mint_wfm(wfm_id="WFM-1").chain)  # WIP-003: case-sensitive


def test_client_policy_refuses_a_wfm_and_another_wfms_client(pki: Pki) -> None:
    with pytest.raises(SvidError, match="^WIP-005:"):
        client_policy(TD, WFM_ID).check(pki.wfm_svid.chain)
    with pytest.raises(SvidError, match="^WIP-005:"):
        client_policy(TD, "wfm-2").check(pki.mint_client("dev-1").chain)


def test_policy_building_blocks() -> None:
    with pytest.raises(ValueError):
        AllOf([])
    with pytest.raises(SvidError, match="^TLS-002:"):
        client_policy(TD, WFM_ID).check(())
    expected = SpiffeId.client(TD, WFM_ID, "dev")
    assert ExactSpiffeId(expected).expected == expected


def test_validity_allows_bounded_skew(pki: Pki) -> None:
    svid = pki.mint_client("dev-1")
    end = svid.certificate.not_valid_after_utc
    Validity(now=end + datetime.timedelta(seconds=59)).check(svid.chain)
    with pytest.raises(SvidError, match=r"SVID-006\(b\): leaf expired"):
        Validity(now=end + datetime.timedelta(seconds=61)).check(svid.chain)


def test_spiffe_id_of_needs_exactly_one_uri(pki: Pki) -> None:
    assert spiffe_id_of(pki.wfm_svid.certificate) == pki.wfm_spiffe_id
    with pytest.raises(SvidError, match="2 URI SANs"):
        spiffe_id_of(pki.mint_client("x", flaw=Flaw.TWO_URI_SANS).certificate)


# -- real handshakes ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    server_error: BaseException | None = None
    client_error: BaseException | None = None
    version: str | None = None
    server_saw: tuple[x509.Certificate, ...] = ()
    client_saw: tuple[x509.Certificate, ...] = ()

    @property
    def ok(self) -> bool:
        return self.server_error is None and self.client_error is None


def handshake(client: ssl.SSLContext, server: ssl.SSLContext) -> Outcome:
    """One connection on 127.0.0.1; the client reads a byte, since a TLS 1.3 client finishes its handshake
    before the server has judged the client certificate and only learns of a refusal on its first read."""
    outcome = Outcome()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)

    def serve() -> None:
        try:
            raw, _ = listener.accept()
            raw.settimeout(TIMEOUT)
            with server.wrap_socket(raw, server_side=True) as tls:
                outcome.server_saw = peer_chain(tls)
                outcome.version = tls.version()
                tls.sendall(b"!")
        except (OSError, ssl.SSLError) as exc:
            outcome.server_error = exc
        finally:
            listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with (
            socket.create_connection(listener.getsockname(), timeout=TIMEOUT) as raw,
            client.wrap_socket(raw) as tls,
        ):
            outcome.client_saw = peer_chain(tls)
            if tls.recv(1) != b"!":
                raise ConnectionError("server closed without answering")
    except (OSError, ssl.SSLError) as exc:
        outcome.client_error = exc
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "server thread hung"
    return outcome


def _client_files(pki: Pki, directory: Path, flaw: Flaw | None = None) -> SvidFiles:
    name = f"client-{flaw or 'good'}"
    return pki.mint_client("dev-1", flaw=flaw).write(directory, name)


HANDSHAKE_FLAWS = [Flaw.UNKNOWN_ISSUER, Flaw.EXPIRED, Flaw.NOT_YET_VALID, Flaw.WITHOUT_INTERMEDIATE]
POLICY_ONLY_FLAWS = [f for f in Flaw if f not in HANDSHAKE_FLAWS]


def test_mtls_at_tls13_shows_each_side_the_other_spiffe_id(pki: Pki, svid_dir: Path) -> None:
    client = client_context(_client_files(pki, svid_dir), pki.bundle_pem)
    outcome = handshake(client, server_context(pki.wfm_svid_files, pki.bundle_pem))
    assert outcome.ok, outcome
    assert outcome.version == "TLSv1.3"
    assert spiffe_id_of(outcome.server_saw[0]) == SpiffeId.client(TD, WFM_ID, "dev-1")
    client_policy(TD, WFM_ID).check(outcome.server_saw)
    wfm_policy(TD, WFM_ID).check(outcome.client_saw)
    if sys.version_info < (3, 13):
        assert len(outcome.server_saw) == 1  # 3.11/3.12 expose the peer leaf only


@pytest.mark.parametrize("flaw", HANDSHAKE_FLAWS, ids=str)
def test_openssl_refuses_a_client_svid_in_the_handshake(pki: Pki, svid_dir: Path, flaw: Flaw) -> None:
    client = client_context(_client_files(pki, svid_dir, flaw), pki.bundle_pem)
    outcome = handshake(client, server_context(pki.wfm_svid_files, pki.bundle_pem))
    assert isinstance(outcome.server_error, ssl.SSLCertVerificationError), outcome
    assert isinstance(outcome.client_error, ssl.SSLError), outcome


@pytest.mark.parametrize("flaw", HANDSHAKE_FLAWS, ids=str)
def test_openssl_refuses_a_wfm_svid_in_the_handshake(pki: Pki, svid_dir: Path, flaw: Flaw) -> None:
    server_files = pki.mint_wfm(flaw=flaw).write(svid_dir, f"wfm-{flaw}")
    client = client_context(_client_files(pki, svid_dir), pki.bundle_pem)
    outcome = handshake(client, server_context(server_files, pki.bundle_pem))
    assert isinstance(outcome.client_error, ssl.SSLCertVerificationError), outcome


@pytest.mark.parametrize("flaw", POLICY_ONLY_FLAWS, ids=str)
def test_only_the_policy_catches(pki: Pki, svid_dir: Path, flaw: Flaw) -> None:
    client = client_context(_client_files(pki, svid_dir, flaw), pki.bundle_pem)
    outcome = handshake(client, server_context(pki.wfm_svid_files, pki.bundle_pem))
    assert outcome.ok, outcome
    with pytest.raises(SvidError, match=FLAWS[flaw][2]):
        client_policy(TD, WFM_ID).check(outcome.server_saw)


def test_a_client_without_certificate_is_refused(pki: Pki) -> None:
    required = server_context(pki.wfm_svid_files, pki.bundle_pem)
    outcome = handshake(client_context(None, pki.bundle_pem), required)
    assert isinstance(outcome.server_error, ssl.SSLError) and isinstance(outcome.client_error, ssl.SSLError)
    server_only = server_context(pki.wfm_svid_files, pki.bundle_pem, require_client_cert=False)
    outcome = handshake(client_context(None, pki.bundle_pem), server_only)
    assert outcome.ok and outcome.server_saw == ()


def test_a_client_refuses_a_server_outside_the_bundle(pki: Pki) -> None:
    foreign = pki.foreign()
    outcome = handshake(
        client_context(None, pki.bundle_pem),
        server_context(foreign.wfm_svid_files, foreign.bundle_pem, require_client_cert=False),
    )
    assert isinstance(outcome.client_error, ssl.SSLCertVerificationError), outcome


@pytest.mark.parametrize("minimum", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=str)
def test_tls11_is_refused(pki: Pki, svid_dir: Path, minimum: ssl.TLSVersion) -> None:
    legacy = legacy_tls11_client_context(_client_files(pki, svid_dir), pki.bundle_pem)
    outcome = handshake(legacy, server_context(pki.wfm_svid_files, pki.bundle_pem, minimum=minimum))
    assert isinstance(outcome.server_error, ssl.SSLError) and outcome.client_error is not None, outcome
    assert "UNSUPPORTED_PROTOCOL" in str(outcome.server_error) or "VERSION" in str(outcome.server_error)


@pytest.mark.skipif(not ssl.HAS_TLSv1_1, reason="this OpenSSL cannot speak TLS 1.1 at all")
def test_the_legacy_client_really_offers_tls11(pki: Pki, svid_dir: Path) -> None:
    """Control: against a permissive server the legacy client completes TLS 1.1, so the refusal above is
    the server's doing, not the client's."""
    permissive = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    permissive.load_cert_chain(pki.wfm_svid_files.certificate, pki.wfm_svid_files.key)
    permissive.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        permissive.minimum_version = ssl.TLSVersion.TLSv1_1
    outcome = handshake(legacy_tls11_client_context(None, pki.bundle_pem), permissive)
    if outcome.client_error is not None and "UNSUPPORTED_PROTOCOL" in str(outcome.server_error):
        pytest.skip("the system OpenSSL policy disables TLS 1.1")
    assert outcome.ok and outcome.version == "TLSv1.1", outcome


def test_tls12_fallback_only_when_the_server_allows_it(pki: Pki, svid_dir: Path) -> None:
    files = _client_files(pki, svid_dir)
    tls12_client = client_context(files, pki.bundle_pem, maximum=ssl.TLSVersion.TLSv1_2)
    fallback = server_context(pki.wfm_svid_files, pki.bundle_pem, minimum=ssl.TLSVersion.TLSv1_2)
    outcome = handshake(tls12_client, fallback)
    assert outcome.ok and outcome.version == "TLSv1.2", outcome
    assert outcome.server_saw and spiffe_id_of(outcome.server_saw[0]).client_id == "dev-1"
    outcome = handshake(tls12_client, server_context(pki.wfm_svid_files, pki.bundle_pem))
    assert outcome.server_error is not None and outcome.client_error is not None, outcome


def test_contexts_never_offer_below_tls12(pki: Pki) -> None:
    with pytest.raises(ValueError, match="TLS-005"):
        server_context(pki.wfm_svid_files, pki.bundle_pem, minimum=ssl.TLSVersion.TLSv1_1)
    with pytest.raises(ValueError, match="TLS-005"):
        client_context(None, pki.bundle_pem, minimum=ssl.TLSVersion.TLSv1)
    with pytest.raises(UsageError):
        client_context(None, pki.directory / "missing.pem")


# -- command line ------------------------------------------------------------------------------------


def test_cli_init_and_client(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "pki"
    args = ["pki", "init", "--trust-domain", TD, "--wfm-id", WFM_ID, "--out", str(out)]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert "spiffe://factory.example/margo/wfm/wfm-1" in result.output
    assert "PRIVATE" not in result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(ALL_FILES)
    device = tmp_path / "device"
    args = ["pki", "client", "--pki", str(out), "--client-id", "dev-9", "--out", str(device)]
    result = runner.invoke(cli.app, [*args, "--flaw", "rsa-2048"])
    assert result.exit_code == 0, result.output
    assert "PRIVATE" not in result.output
    assert sorted(p.name for p in device.iterdir()) == ["bundle.pem", "dev-9.crt", "dev-9.key"]
    assert _mode(device / "dev-9.key") == 0o600
    svid = Svid.load(SvidFiles(device / "dev-9.crt", device / "dev-9.key"))
    assert isinstance(svid.key, rsa.RSAPrivateKey) and svid.spiffe_id.client_id == "dev-9"


@pytest.mark.parametrize(
    "args",
    [
        ["pki", "init", "--trust-domain", "Bad_Domain", "--wfm-id", "w", "--out", "{tmp}/a"],
        ["pki", "init", "--trust-domain", TD, "--wfm-id", "..", "--out", "{tmp}/a"],
        ["pki", "client", "--pki", "{tmp}", "--client-id", "c", "--out", "{tmp}/b"],
    ],
)
def test_cli_bad_input_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    monkeypatch.setattr(sys, "argv", ["margo-conformance", *argv])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("margo-conformance: error: ") and error.count("\n") == 1


def test_cli_refuses_an_unknown_flaw(pki: Pki, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.app,
        [
            "pki",
            "client",
            "--pki",
            str(pki.directory),
            "--client-id",
            "c",
            "--out",
            str(tmp_path),
            "--flaw",
            "nope",
        ],
    )
    assert isinstance(result.exception, UsageError) and "ca-true" in str(result.exception)
    assert not any(tmp_path.iterdir())


def test_keys_are_never_world_readable_even_with_a_loose_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        pki = Pki.init(tmp_path / "pki", trust_domain=TD, wfm_id=WFM_ID)
        files = pki.mint_client("dev").write(tmp_path / "out", "dev")
    finally:
        os.umask(previous)
    assert all(_mode(pki.directory / name) == 0o600 for name in KEY_FILES)
    assert _mode(files.key) == 0o600
