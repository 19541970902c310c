"""The instrument WFM: served faults, the transcript and the admin client, over real mTLS.

One reference WFM runs in-process for the module. Each test makes fresh clients (a client ``a`` with two
deployments and a bystander ``b`` with one), switches served faults on through the admin interface, and
compares what the suite's virtual WFM client receives with what it received before: exactly the named
difference, for exactly the named client or deployment. Waiting for a transcript record polls the
admin interface with a bound; nothing sleeps for a fixed time and nothing is timed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import socket
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from margo_conformance.pki import Pki, SvidFiles
from margo_conformance.pki.policy import uri_sans
from margo_conformance.pki.tls import client_context, legacy_tls11_client_context
from margo_conformance.reference.wfm import (
    SERVED,
    AdminClient,
    AdminError,
    BackgroundWfm,
    Endpoints,
    WfmConfig,
)
from margo_conformance.reference.wfm.instrument import SIZE_SKEW, TAMPER
from margo_conformance.registry import Registry
from margo_conformance.wfm.client import Exchange, VirtualClient
from margo_conformance.wfm.documents import make_capabilities, make_status

ROOT = Path(__file__).resolve().parents[1]
DESCRIPTION = (ROOT / "fixtures" / "packages" / "vendor-a-compose" / "margo.yaml").read_text(encoding="utf-8")
TD, WFM_ID = "instrument.example", "wfm-1"
PROBLEM_TYPES = "https://docs.margo.org/specification/problem-types#"
_COUNTER = itertools.count(1)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- the world ----------------------------------------------------------------------------------------


@dataclass
class Party:
    """One client of the WFM: its identity, its virtual WFM client, its deployments."""

    spiffe_id: str
    files: SvidFiles
    client: VirtualClient
    deployments: list[str]


@dataclass(frozen=True)
class Served:
    """Everything one client is served: manifest, each deployment YAML, the bundle."""

    manifest: Exchange
    yamls: dict[str, Exchange]
    bundle: Exchange | None

    @property
    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = self.manifest.json()
        return document

    def references(self) -> list[dict[str, Any]]:
        """deployments[] and the bundle of the manifest."""
        return [*self.document["deployments"], self.document["bundle"]]

    def ref(self, deployment_id: str) -> dict[str, Any]:
        return next(r for r in self.document["deployments"] if r["deploymentId"] == deployment_id)

    def members(self) -> dict[str, bytes]:
        assert self.bundle is not None and self.bundle.status == 200, self.bundle
        with tarfile.open(fileobj=io.BytesIO(self.bundle.body), mode="r:gz") as tar:
            files = [(m.name.removesuffix(".yaml"), tar.extractfile(m)) for m in tar.getmembers()]
            return {name: file.read() for name, file in files if file is not None}


@dataclass
class World:
    pki: Pki
    endpoints: Endpoints
    admin: AdminClient
    workdir: Path
    parties: list[Party] = field(default_factory=list)

    def identity(self, name: str) -> tuple[str, SvidFiles]:
        svid = self.pki.mint_client(name)
        return uri_sans(svid.certificate)[0], svid.write(self.workdir / "clients", name)

    def party(self, deployments: int = 0) -> Party:
        """A client that reported its device and fetched its first manifest, then got deployments."""
        name = f"client-{next(_COUNTER)}"
        spiffe_id, files = self.identity(name)
        self.admin.accept_client(spiffe_id)
        client = VirtualClient(self.endpoints.url, files, self.pki.bundle_pem)
        assert client.put_capabilities("dev", make_capabilities("dev")).status == 201
        assert client.get_manifest().status == 200  # version 1, before any deployment
        ids = [self.admin.deploy(spiffe_id, "dev", DESCRIPTION, {})[0] for _ in range(deployments)]
        self.parties.append(Party(spiffe_id, files, client, ids))
        return self.parties[-1]

    def close_parties(self) -> None:
        while self.parties:
            self.parties.pop().client.close()

    def serve(self, *faults: dict[str, str]) -> None:
        self.admin.set_served(list(faults))

    def await_record(self, predicate: Callable[[dict[str, Any]], bool], since: int) -> dict[str, Any]:
        """The latest transcript record from ``since`` on matching ``predicate``, polled for
        (a connection is recorded when it ends, a moment after the peer saw the end)."""
        deadline = time.monotonic() + 10
        while True:
            records, _ = self.admin.requests(since)
            found = [r for r in records if predicate(r)]
            if found:
                return found[-1]
            assert time.monotonic() < deadline, f"no such record among {records}"
            threading.Event().wait(0.02)


def fetch_all(party: Party) -> Served:
    manifest = party.client.get_manifest()
    assert manifest.status == 200, manifest.transcript()
    document = manifest.json()
    yamls = {r["deploymentId"]: party.client.fetch(r["url"]) for r in document["deployments"]}
    bundle = party.client.fetch(document["bundle"]["url"]) if document["bundle"] else None
    return Served(manifest, yamls, bundle)


def switched(world: World, a: Party, b: Party, fault: dict[str, str]) -> tuple[Served, Served, Served]:
    """What ``a`` is served before and after ``fault`` is switched on, and what ``b`` was served."""
    before, bystander = fetch_all(a), fetch_all(b)
    world.serve(fault)
    return before, fetch_all(a), bystander


def same(before: Served, after: Served) -> bool:
    """Byte for byte the same answers."""
    bodies = [(x.manifest.body, {k: v.body for k, v in x.yamls.items()}) for x in (before, after)]
    bundles = [x.bundle.body if x.bundle else None for x in (before, after)]
    return bodies[0] == bodies[1] and bundles[0] == bundles[1]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.init(tmp_path_factory.mktemp("pki") / "pki", trust_domain=TD, wfm_id=WFM_ID)


@pytest.fixture(scope="module")
def world(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("instrument")
    server = BackgroundWfm(WfmConfig(pki_dir=pki.directory, state_dir=workdir / "wfm", read_timeout=2.0))
    endpoints = server.start()
    assert endpoints.admin_url is not None
    try:
        yield World(pki, endpoints, AdminClient(endpoints.admin_url), workdir)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "world" in request.fixturenames:
        w: World = request.getfixturevalue("world")
        w.admin.set_served([])
        w.admin.overload(None)
        w.close_parties()


@pytest.fixture
def a(world: World) -> Party:
    return world.party(deployments=2)


@pytest.fixture
def b(world: World) -> Party:
    return world.party(deployments=1)


# -- the catalogue ------------------------------------------------------------------------------------


def test_every_served_fault_probes_a_device_requirement(world: World) -> None:
    registry = Registry.load()
    for served in SERVED.values():
        assert served.requirement in registry, served
        assert "device" in registry.get(served.requirement).personas, served
        assert served.scope in ("client", "deployment", "listener"), served
    listing = world.admin.served()
    assert listing["active"] == []
    assert listing["catalogue"] == [s.as_dict() for s in SERVED.values()]


# -- client- and deployment-scoped faults -------------------------------------------------------------


def test_manifest_version_lower_serves_the_current_content_one_below_the_highest_served(
    world: World, a: Party, b: Party
) -> None:
    before, bystander = fetch_all(a), fetch_all(b)
    highest = before.document["manifestVersion"]
    assert highest == 3
    world.serve({"name": "manifest-version-lower", "client": a.spiffe_id})
    lowered = a.client.get_manifest(if_none_match=before.manifest.header("ETag"))
    assert lowered.status == 200  # another body, so another ETag: no 304
    assert lowered.json() == {**before.document, "manifestVersion": highest - 1}
    assert lowered.header("ETag") == f'"{sha256(lowered.body)}"' != before.manifest.header("ETag")
    digest = world.admin.update(a.deployments[0], a.spiffe_id, "dev", DESCRIPTION, {"listenPort": 9090})
    changed = a.client.get_manifest().json()
    assert changed["manifestVersion"] == highest - 1  # still one below what it was served
    assert any(r["digest"] == digest for r in changed["deployments"])
    assert same(bystander, fetch_all(b))
    world.serve()
    assert a.client.get_manifest().json()["manifestVersion"] == highest + 1  # the true version


def test_manifest_version_equal_serves_the_current_content_at_the_highest_served(
    world: World, a: Party, b: Party
) -> None:
    before, bystander = fetch_all(a), fetch_all(b)
    world.admin.update(a.deployments[1], a.spiffe_id, "dev", DESCRIPTION, {"listenPort": 9091})
    world.serve({"name": "manifest-version-equal", "client": a.spiffe_id.rsplit("/", 1)[1]})  # client-id
    equal = a.client.get_manifest(if_none_match=before.manifest.header("ETag"))
    assert equal.status == 200 and equal.json()["manifestVersion"] == before.document["manifestVersion"]
    assert equal.json()["deployments"] != before.document["deployments"]  # the current content
    assert same(bystander, fetch_all(b))


def test_unsupported_digest_algorithm_rewrites_every_digest_as_sha512_of_the_same_bytes(
    world: World, a: Party, b: Party
) -> None:
    """The algorithm is the one flaw: each url names the same sha512 digest and serves the same bytes."""
    fault = {"name": "unsupported-digest-algorithm", "client": a.spiffe_id}
    before, after, bystander = switched(world, a, b, fault)
    for ref, original in zip(after.references(), before.references(), strict=True):
        url = original["url"].replace(original["digest"], ref["digest"])
        assert ref == {**original, "digest": ref["digest"], "url": url}  # sizes unchanged
        assert ref["url"].endswith("/" + ref["digest"])
    for deployment_id, exchange in after.yamls.items():
        assert exchange.status == 200 and exchange.body == before.yamls[deployment_id].body
        assert after.ref(deployment_id)["digest"] == "sha512:" + hashlib.sha512(exchange.body).hexdigest()
    assert after.bundle is not None and before.bundle is not None and after.bundle.body == before.bundle.body
    assert after.document["bundle"]["digest"] == "sha512:" + hashlib.sha512(after.bundle.body).hexdigest()
    assert same(bystander, fetch_all(b))


def test_wrong_size_bytes_adds_to_every_size_and_nothing_else(world: World, a: Party, b: Party) -> None:
    before, after, bystander = switched(world, a, b, {"name": "wrong-size-bytes", "client": a.spiffe_id})
    for ref, original in zip(after.references(), before.references(), strict=True):
        assert ref == {**original, "sizeBytes": original["sizeBytes"] + SIZE_SKEW}
    assert same(before, Served(before.manifest, after.yamls, after.bundle))  # the bytes served are right
    assert same(bystander, fetch_all(b))


def test_deployment_digest_mismatch_tampers_one_yaml_and_its_bundle_member_only(
    world: World, a: Party, b: Party
) -> None:
    tampered, kept = a.deployments
    fault = {"name": "deployment-digest-mismatch", "deployment": tampered}
    before, after, bystander = switched(world, a, b, fault)
    assert after.document["deployments"] == before.document["deployments"]  # the true digests
    yaml = after.yamls[tampered]
    assert yaml.status == 200 and yaml.body == before.yamls[tampered].body + TAMPER
    assert sha256(yaml.body) != after.ref(tampered)["digest"]
    assert yaml.header("ETag") == f'"{after.ref(tampered)["digest"]}"'
    assert after.yamls[kept].body == before.yamls[kept].body
    assert after.bundle is not None
    listed = after.document["bundle"]["digest"]
    assert sha256(after.bundle.body) == listed != before.document["bundle"]["digest"]
    assert after.members() == {**before.members(), tampered: before.yamls[tampered].body + TAMPER}
    assert same(bystander, fetch_all(b))


def test_bundle_digest_mismatch_serves_the_same_archive_in_other_bytes(
    world: World, a: Party, b: Party
) -> None:
    fault = {"name": "bundle-digest-mismatch", "client": a.spiffe_id}
    before, after, bystander = switched(world, a, b, fault)
    assert after.manifest.body == before.manifest.body
    assert after.bundle is not None and before.bundle is not None
    assert sha256(after.bundle.body) != after.document["bundle"]["digest"]
    assert gzip.decompress(after.bundle.body) == gzip.decompress(before.bundle.body)
    assert {k: v.body for k, v in after.yamls.items()} == {k: v.body for k, v in before.yamls.items()}
    assert same(bystander, fetch_all(b))


def test_deployment_404_refuses_its_yaml_and_every_bundle_holding_it(
    world: World, a: Party, b: Party
) -> None:
    gone, kept = a.deployments
    before, after, bystander = switched(world, a, b, {"name": "deployment-404", "deployment": gone})
    assert after.manifest.body == before.manifest.body
    missing = after.yamls[gone]
    assert (missing.status, missing.header("Content-Type")) == (404, "application/problem+json")
    assert missing.json()["type"] == PROBLEM_TYPES + "deployment-not-found"
    assert after.yamls[kept].body == before.yamls[kept].body
    assert after.bundle is not None and after.bundle.status == 404
    assert after.bundle.json()["type"] == PROBLEM_TYPES + "invalid-bundle"
    assert same(bystander, fetch_all(b))
    world.serve()
    assert same(before, fetch_all(a))


# -- listener faults ----------------------------------------------------------------------------------


def test_wrong_wfm_spiffe_id_holds_from_the_next_request_until_switched_off(world: World, a: Party) -> None:
    """Switching a listener fault closes open connections: a kept-alive client must handshake again."""
    right = f"spiffe://{TD}/margo/wfm/{WFM_ID}"
    assert str(a.client.get_manifest().peer_spiffe_id) == right
    world.serve({"name": "wrong-wfm-spiffe-id"})
    assert str(a.client.get_manifest().peer_spiffe_id) == f"{right}-other"
    world.serve()
    assert str(a.client.get_manifest().peer_spiffe_id) == right


def test_untrusted_chain_fails_the_handshake_of_a_client_that_validates_it(world: World, a: Party) -> None:
    world.serve({"name": "untrusted-chain"})
    mark = world.admin.requests(since=10**9)[1]
    a.client.close()
    refused = a.client.get_manifest()
    assert refused.status is None and "certificate" in (refused.refused or ""), refused.transcript()
    failed = world.await_record(lambda r: r.get("outcome") == "handshake-failed", since=mark)
    assert (failed["kind"], failed["client"], failed["requests"]) == ("connection", None, 0)
    assert "unknown ca" in failed["note"].lower(), failed
    rogue = VirtualClient(world.endpoints.url, a.files, world.pki.foreign().bundle_pem)
    served = rogue.get_manifest()  # trusting the rogue CA instead: the right SPIFFE ID, the wrong chain
    assert served.status == 200 and str(served.peer_spiffe_id) == f"spiffe://{TD}/margo/wfm/{WFM_ID}"
    rogue.close()
    world.serve()
    assert a.client.get_manifest().status == 200


def test_tls11_only_negotiates_tls_1_1_and_nothing_else(world: World, a: Party) -> None:
    world.serve({"name": "tls11-only"})
    a.client.close()
    refused = a.client.get_manifest()  # offers TLS 1.2 and 1.3 only
    assert refused.status is None, refused.transcript()
    legacy = VirtualClient(
        world.endpoints.url,
        a.files,
        world.pki.bundle_pem,
        context=legacy_tls11_client_context(a.files, world.pki.bundle_pem),
    )
    mark = world.admin.requests(since=10**9)[1]
    accepted = legacy.get_manifest()
    assert (accepted.status, accepted.tls_version) == (200, "TLSv1.1")
    legacy.close()
    record = world.await_record(lambda r: r.get("tls_version") == "TLSv1.1", since=mark)
    assert record["outcome"] == "requests" and record["client"] == a.spiffe_id
    world.serve()
    a.client.close()
    assert a.client.get_manifest().tls_version == "TLSv1.3"


# -- the transcript -----------------------------------------------------------------------------------


def test_requests_carry_headers_bodies_and_their_connection(world: World, a: Party) -> None:
    a.client.close()
    mark = world.admin.requests(since=10**9)[1]
    document = make_capabilities("dev", labels={"site": "plant-2"})
    assert a.client.put_capabilities("dev", document).status == 200
    first = a.client.get_manifest()
    etag = first.header("ETag")
    assert a.client.get_manifest(if_none_match=etag).status == 304
    report = make_status(a.deployments[0], adopted_manifest_version=first.json()["manifestVersion"])
    assert a.client.post_status(a.deployments[0], report).status == 201
    a.client.close()
    records, _ = world.admin.requests(since=mark)
    put, poll, conditional, status = [r for r in records if r["kind"] == "request"]
    number = put["connection"]
    assert [r["connection"] for r in (put, poll, conditional, status)] == [number] * 4
    connection = world.await_record(lambda r: r["kind"] == "connection" and r["connection"] == number, mark)
    assert (connection["outcome"], connection["requests"]) == ("requests", 4)
    assert connection["client"] == a.spiffe_id
    assert connection["tls_version"] == "TLSv1.3" and connection["received_bytes"] > 0
    assert put["body"] == document and put["request_headers"] == {"content-type": "application/json"}
    assert poll["request_headers"] == {"accept": "application/vnd.margo.manifest.v1+json"}
    assert poll["response_headers"] == {"etag": etag} and "body" not in poll
    assert conditional["request_headers"]["if-none-match"] == etag and conditional["status"] == 304
    assert (status["method"], status["status"], status["body"]) == ("POST", 201, report)
    assert put["index"] < poll["index"] < conditional["index"] < status["index"] < connection["index"]


def test_unkept_bodies_and_retry_after_are_noted(world: World, a: Party) -> None:
    mark = world.admin.requests(since=10**9)[1]
    big = make_capabilities("dev", labels={"padding": "x" * (65 * 1024)})
    assert a.client.put_capabilities("dev", big).status == 200
    assert a.client.put_capabilities("dev", b"{not json").status == 400
    world.admin.overload(429, 3, requests=1)
    assert a.client.get_manifest().status == 429
    records, _ = world.admin.requests(since=mark)
    large, garbage, overloaded = [r for r in records if r["kind"] == "request"]
    assert "body" not in large and "over 65536 bytes" in large["note"]
    assert "body" not in garbage and "not JSON" in garbage["note"]
    assert overloaded["response_headers"] == {"retry-after": "3"}


def test_a_peer_that_refuses_the_wfm_after_the_handshake_is_a_connection_without_requests(
    world: World, a: Party
) -> None:
    mark = world.admin.requests(since=10**9)[1]
    host, port = world.endpoints.url.removeprefix("https://").rsplit(":", 1)
    context = client_context(a.files, world.pki.bundle_pem)
    with socket.create_connection((host, int(port)), timeout=10) as plain, context.wrap_socket(plain) as tls:
        tls.getpeercert()  # handshake done; the client now walks away, as one refusing the WFM's SVID
    record = world.await_record(lambda r: r.get("outcome") == "no-request", since=mark)
    assert (record["kind"], record["client"], record["requests"]) == ("connection", a.spiffe_id, 0)
    assert record["peer"].startswith("127.0.0.1:") and record["ended"] is not None


def test_a_client_with_other_trust_anchors_leaves_a_failed_handshake(world: World, a: Party) -> None:
    mark = world.admin.requests(since=10**9)[1]
    stranger = VirtualClient(world.endpoints.url, a.files, world.pki.foreign().bundle_pem)
    assert stranger.get_manifest().status is None
    record = world.await_record(lambda r: r.get("outcome") == "handshake-failed", since=mark)
    assert record["kind"] == "connection" and "unknown ca" in record["note"].lower(), record
    assert (record["client"], record["tls_version"], record["requests"]) == (None, None, 0)


def test_since_pages_correctly_after_the_log_wraps(pki: Pki, tmp_path: Path) -> None:
    config = WfmConfig(pki_dir=pki.directory, state_dir=tmp_path / "wfm", request_log_size=5)
    with BackgroundWfm(config) as endpoints:
        assert endpoints.admin_url is not None
        admin = AdminClient(endpoints.admin_url)
        world = World(pki, endpoints, admin, tmp_path)
        party = world.party()  # capabilities + manifest: indexes 0 and 1
        for _ in range(10):
            assert party.client.get_manifest().status == 200  # indexes 2..11
        records, following = admin.requests()
        assert [r["index"] for r in records] == [7, 8, 9, 10, 11] and following == 12
        assert [r["index"] for r in admin.requests(since=9)[0]] == [9, 10, 11]
        assert [r["index"] for r in admin.requests(since=3)[0]] == [7, 8, 9, 10, 11]  # 3..6 dropped out
        assert admin.requests(since=12) == ([], 12)
        assert admin.requests(since=10**9) == ([], 12)
        admin.clear_requests()
        assert admin.requests(since=7) == ([], 12)
        assert party.client.get_manifest().status == 200
        assert [r["index"] for r in admin.requests(since=12)[0]] == [12]
        party.client.close()


# -- the admin interface ------------------------------------------------------------------------------


def test_served_entries_are_checked_and_echoed(world: World, a: Party) -> None:
    client_id = a.spiffe_id.rsplit("/", 1)[1]
    world.serve({"name": "wrong-size-bytes", "client": client_id})
    previous = world.admin.set_served(
        [
            {"name": "deployment-404", "deployment": a.deployments[0], "client": a.spiffe_id},
            {"name": "tls11-only"},
            {"name": "tls11-only"},
        ]
    )
    assert previous == [{"name": "wrong-size-bytes", "client": a.spiffe_id}]
    assert world.admin.served()["active"] == [
        {"name": "deployment-404", "client": a.spiffe_id, "deployment": a.deployments[0]},
        {"name": "tls11-only"},
    ]
    assert world.admin.state()["served"] == world.admin.served()["active"]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"faults": "wrong-size-bytes"}, 400, "expected"),
        ({"faults": [], "extra": 1}, 400, "expected"),
        ({"faults": [{"name": "no-such-fault", "client": "c"}]}, 400, "known: bundle-digest-mismatch"),
        ({"faults": [{"client": "c"}]}, 400, '"name"'),
        ({"faults": [{"name": "wrong-size-bytes"}]}, 400, "client-scoped"),
        ({"faults": [{"name": "wrong-size-bytes", "client": "c", "deployment": "d"}]}, 400, "client-scoped"),
        ({"faults": [{"name": "wrong-size-bytes", "client": "spiffe://"}]}, 400, "client"),
        ({"faults": [{"name": "tls11-only", "client": "c"}]}, 400, "listener"),
        ({"faults": [{"name": "deployment-404", "client": "c"}]}, 400, "deployment-scoped"),
        (
            {"faults": [{"name": "deployment-404", "deployment": "no-such-id"}]},
            404,
            "no deployment no-such-id",
        ),
        ({"faults": [{"name": "deployment-404", "deployment": 7}]}, 400, "non-empty string"),
        ({"faults": [{"name": "deployment-404", "deployment": ""}]}, 400, "non-empty string"),
    ],
)
def test_bad_served_requests_are_problems(world: World, body: Any, status: int, detail: str) -> None:
    with pytest.raises(AdminError) as refused:
        world.admin.call("POST", "/admin/served", body)
    assert refused.value.status == status and detail in refused.value.detail, refused.value
    assert world.admin.served()["active"] == []  # nothing half-applied


def test_a_deployment_of_another_client_is_refused(world: World, a: Party, b: Party) -> None:
    entry = {"name": "deployment-404", "deployment": a.deployments[0], "client": b.spiffe_id}
    with pytest.raises(AdminError, match="belongs to") as refused:
        world.admin.set_served([entry])
    assert refused.value.status == 400


def test_admin_errors_say_what_went_wrong(world: World) -> None:
    with pytest.raises(AdminError, match="HTTP 400: the body is not JSON") as bad:
        world.admin.call("POST", "/admin/served", None)
    assert bad.value.status == 400
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe closes
    nowhere = f"http://127.0.0.1:{port}"
    with pytest.raises(AdminError, match=f"cannot reach {nowhere}.*admin_url") as unreachable:
        AdminClient(nowhere, timeout_s=5).state()
    assert unreachable.value.status is None
    with pytest.raises(AdminError, match="HTTP 404"):
        world.admin.undeploy("no-such-deployment")


def test_wfm_faults_through_the_admin_client(world: World) -> None:
    with pytest.raises(AdminError) as wrong:
        world.admin.set_faults(["no-such-fault"])
    assert wrong.value.status == 422 and "etag-weak" in wrong.value.detail
    assert wrong.value.__cause__ is None  # never a urllib traceback behind it
    assert world.admin.set_faults(["etag-weak"]) == []
    assert world.admin.set_faults([]) == ["etag-weak"]
    assert world.admin.state()["wfmId"] == WFM_ID


def test_switching_listener_faults_leaves_the_tls_policy_as_it_was(world: World, a: Party) -> None:
    world.serve({"name": "tls11-only"})
    world.serve()
    a.client.close()
    legacy = VirtualClient(
        world.endpoints.url,
        a.files,
        world.pki.bundle_pem,
        context=legacy_tls11_client_context(a.files, world.pki.bundle_pem),
    )
    assert legacy.get_manifest().status is None  # TLS 1.1 is refused again (TLS-005)
    assert a.client.get_manifest().tls_version == "TLSv1.3"
