"""The reference WFM: every endpoint over real mTLS, restart persistence, identity refusals, the admin
interface, and every fault of the catalogue changing exactly the behaviour it names.

One WFM runs in-process (its own thread and loop, ephemeral loopback ports) for the whole module; each
test gets fresh client identities, so tests share no devices or deployments. Faults are switched at
run time through the admin interface and reset after every test.

The fault table (``PROBES``) pairs each fault with an *area* and the observations it must change. An
area's ``observe_*`` function runs one fixed exchange and returns plain observations (statuses, booleans,
header values); the baseline (no fault) must equal the conformant values in ``CONFORMANT``, and with one
fault switched on exactly the declared observations may differ.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import itertools
import json
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from margo_conformance.errors import UsageError
from margo_conformance.pki import Flaw, Pki, SvidFiles
from margo_conformance.pki.policy import spiffe_id_of, uri_sans
from margo_conformance.pki.tls import client_context, legacy_tls11_client_context, peer_chain
from margo_conformance.reference.wfm import FAULTS, BackgroundWfm, Endpoints, FaultSet, WfmConfig
from margo_conformance.registry import Registry
from margo_conformance.schemas import SchemaSet

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "fixtures" / "packages"
MANIFEST = "application/vnd.margo.manifest.v1+json"
BUNDLE = "application/vnd.margo.bundle.v1+tar+gzip"
IMMUTABLE = "private, max-age=31536000, immutable"
PT = "https://docs.margo.org/specification/problem-types#"
TD, WFM_ID = "factory.example", "wfm-1"
CLI = Path(sys.executable).parent / "margo-conformance"
SCHEMAS = SchemaSet.load()
_COUNTER = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_COUNTER)}"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def description(name: str) -> str:
    return (PACKAGES / name / "margo.yaml").read_text(encoding="utf-8")


def sensor_hub_with_profile_extension() -> str:
    """vendor-a-compose plus a profile-level extension (the fixtures have component/root ones only)."""
    document = yaml.safe_load(description("vendor-a-compose"))
    document["deploymentProfiles"][0]["x-vendor-a-extensions"] = {"tier": "edge"}
    return str(yaml.safe_dump(document, sort_keys=False))


def capabilities(device_id: str, types: tuple[str, ...] = ("compose",)) -> dict[str, Any]:
    """A hosting device (CAP-004: all hosting fields, otelCollector true)."""
    return {
        "properties": {
            "id": device_id,
            "vendor": "Vendor A",
            "modelNumber": "M-1",
            "serialNumber": "S-1",
            "cpus": [{"cores": 4, "architecture": "amd64"}],
            "memory": "4Gi",
            "storage": "64Gi",
            "peripherals": [],
            "interfaces": [{"type": "ethernet"}],
            "otelCollector": True,
            "supportedRuntimes": ["oci"],
            "supportedDeploymentTypes": list(types),
        }
    }


# -- a tiny mTLS client -------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def problem_type(self) -> str | None:
        if not self.headers.get("content-type", "").endswith("json") or not self.body:
            return None
        kind = self.json().get("type")
        return kind.removeprefix(PT) if isinstance(kind, str) else None


class Rejected(Exception):
    """The WFM answered nothing (handshake refused or connection reset without HTTP bytes)."""


@dataclass
class Client:
    endpoints: Endpoints
    files: SvidFiles
    bundle_pem: Path
    spiffe_id: str
    context: ssl.SSLContext = field(init=False)

    def __post_init__(self) -> None:
        self.context = client_context(self.files, self.bundle_pem)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        host, port = _host_port(self.endpoints.url)
        connection = http.client.HTTPSConnection(host, port, context=self.context, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        except (ConnectionError, ssl.SSLError, http.client.HTTPException) as exc:
            raise Rejected(repr(exc)) from None
        finally:
            connection.close()

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def manifest(self, headers: dict[str, str] | None = None) -> Reply:
        return self.get("/api/v1/deployments", {"Accept": MANIFEST, **(headers or {})})

    def put_capabilities(self, device_id: str, document: Any = None) -> Reply:
        body = json.dumps(capabilities(device_id) if document is None else document).encode()
        return self.request(
            "PUT", f"/api/v1/capabilities/{device_id}", body, {"Content-Type": "application/json"}
        )

    def delete_device(self, device_id: str) -> Reply:
        return self.request("DELETE", f"/api/v1/capabilities/{device_id}")

    def post_status(self, deployment_id: str, document: Any) -> Reply:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        return self.request(
            "POST", f"/api/v1/deployments/{deployment_id}/status", body, {"Content-Type": "application/json"}
        )

    def raw(self, request: bytes, *, timeout: float = 10) -> bytes:
        """Send bytes over a fresh TLS connection and read until EOF; Rejected when the handshake fails."""
        return raw_exchange(self.endpoints.url, self.context, request, timeout=timeout)


def _host_port(url: str) -> tuple[str, int]:
    host, _, port = url.split("://", 1)[1].rpartition(":")
    return host, int(port)


def raw_exchange(url: str, context: ssl.SSLContext, request: bytes, *, timeout: float = 10) -> bytes:
    return exchange(url, context, request, timeout=timeout)[0]


def exchange(url: str, context: ssl.SSLContext, request: bytes, *, timeout: float = 10) -> tuple[bytes, str]:
    """The bytes that arrived and how the connection ended: eof, reset (or TLS alert) or timeout."""
    host, port = _host_port(url)
    with socket.create_connection((host, port), timeout=timeout) as plain:
        try:
            tls = context.wrap_socket(plain)
        except (ssl.SSLError, ConnectionError) as exc:
            raise Rejected(repr(exc)) from None
        with tls:
            data = b""
            try:
                tls.sendall(request)
                while chunk := tls.recv(65536):
                    data += chunk
            except (ssl.SSLError, ConnectionError):
                return data, "reset"
            except TimeoutError:
                return data, "timeout"
            return data, "eof"


def parse_raw(data: bytes) -> Reply:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return Reply(int(lines[0].split()[1]), headers, body)


def http_get(
    url: str, *, context: ssl.SSLContext | None = None, headers: dict[str, str] | None = None
) -> Reply:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


# -- the harness -------------------------------------------------------------------------------------


class Harness:
    """One running WFM, its PKI, admin calls, and fresh clients."""

    def __init__(self, pki: Pki, endpoints: Endpoints, workdir: Path) -> None:
        self.pki, self.endpoints, self.workdir = pki, endpoints, workdir
        self.active: list[str] = []

    def admin(self, method: str, path: str, body: Any = None) -> Reply:
        assert self.endpoints.admin_url is not None
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.endpoints.admin_url + path, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return Reply(response.status, dict(response.getheaders()), response.read())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, dict(exc.headers.items()), exc.read())

    def set_faults(self, names: list[str]) -> None:
        reply = self.admin("POST", "/admin/faults", {"faults": names})
        assert reply.status == 200, reply.body
        self.active = list(names)

    def client(self, name: str | None = None, *, flaw: Flaw | None = None, accept: bool = True) -> Client:
        name = name or unique("client")
        svid = self.pki.mint_client(name, flaw=flaw)
        files = svid.write(self.workdir / "clients", f"{name}-{flaw or 'ok'}")
        spiffe_id = uri_sans(svid.certificate)[0]
        if accept:
            assert self.admin("POST", "/admin/clients/accept", {"spiffe_id": spiffe_id}).status == 200
        return Client(self.endpoints, files, self.pki.bundle_pem, spiffe_id)

    def deploy(
        self, client: Client, device_id: str, text: str, parameters: dict[str, Any] | None = None
    ) -> str:
        body = {
            "client_id": client.spiffe_id,
            "device_id": device_id,
            "application_description": text,
            "parameters": parameters or {},
        }
        reply = self.admin("POST", "/admin/deployments", body)
        assert reply.status == 201, reply.body
        return str(reply.json()["deploymentId"])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.init(tmp_path_factory.mktemp("pki") / "pki", trust_domain=TD, wfm_id=WFM_ID)


@pytest.fixture(scope="module")
def harness(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    workdir = tmp_path_factory.mktemp("wfm")
    config = WfmConfig(pki_dir=pki.directory, state_dir=workdir / "state", read_timeout=1.0)
    server = BackgroundWfm(config)
    endpoints = server.start()
    try:
        yield Harness(pki, endpoints, workdir)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "harness" in request.fixturenames:
        h: Harness = request.getfixturevalue("harness")
        h.set_faults([])
        h.admin("POST", "/admin/overload", {"status": None})


# -- observations per area ---------------------------------------------------------------------------


def observe_manifest(h: Harness) -> dict[str, Any]:
    c = h.client()
    device = unique("dev")
    assert c.put_capabilities(device).status == 201
    first, second = c.manifest(), c.manifest()
    m1 = first.json()
    obs: dict[str, Any] = {
        "first_version": m1["manifestVersion"],
        "empty_bundle": "absent" if "bundle" not in m1 else "null" if m1["bundle"] is None else "object",
        "empty_valid": not SCHEMAS.validate(m1, "StateManifest"),
        "poll_stable": (second.json()["manifestVersion"], second.headers["etag"])
        == (m1["manifestVersion"], first.headers["etag"]),
    }
    h.deploy(c, device, description("vendor-a-compose"))
    h.deploy(c, device, description("helm-app"))
    reply = c.manifest()
    manifest = reply.json()
    etag = reply.headers["etag"]
    bundle = manifest["bundle"]
    obs |= {
        "bundle_present": bundle is not None,
        "version_delta": manifest["manifestVersion"] - second.json()["manifestVersion"],
        "content_type": reply.headers["content-type"],
        "etag_strong": not etag.startswith("W/"),
        "etag_is_body_digest": etag.removeprefix("W/") == f'"{sha256(reply.body)}"',
        "cache_control": reply.headers["cache-control"],
        "valid": not SCHEMAS.validate(manifest, "StateManifest"),
        "deterministic": reply.body == json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode(),
        "urls_match": (bundle is None or bundle["url"] == f"/api/v1/bundles/{bundle['digest']}")
        and all(
            d["url"] == f"/api/v1/deployments/{d['deploymentId']}/{d['digest']}"
            for d in manifest["deployments"]
        ),
        "deployments": len(manifest["deployments"]),
    }
    revalidated = parse_raw(
        c.raw(
            b"GET /api/v1/deployments HTTP/1.1\r\nHost: wfm\r\nAccept: "
            + MANIFEST.encode()
            + b"\r\nIf-None-Match: "
            + etag.encode()
            + b"\r\nConnection: close\r\n\r\n"
        )
    )
    obs["inm_status"] = revalidated.status
    obs["inm_body_bytes"] = len(revalidated.body)
    obs["inm_etag"] = revalidated.headers.get("etag") == etag
    no_accept = c.get("/api/v1/deployments")
    obs["no_accept"] = f"{no_accept.status} {no_accept.headers.get('content-type')}"
    unsupported = c.get("/api/v1/deployments", {"Accept": "application/json, text/html"})
    obs["unsupported_accept"] = f"{unsupported.status} {unsupported.problem_type}"
    obs["wildcard_accept"] = c.get("/api/v1/deployments", {"Accept": "*/*"}).status
    return obs


def observe_digest(h: Harness) -> dict[str, Any]:
    a, b = h.client(), h.client()
    device = unique("dev")
    a.put_capabilities(device)
    h.deploy(a, device, description("vendor-a-compose"))
    h.deploy(a, device, description("helm-app"))
    manifest = a.manifest().json()
    ref = manifest["deployments"][0]
    yml = a.get(ref["url"])
    document = yaml.safe_load(yml.body)
    obs: dict[str, Any] = {
        "yaml_status": yml.status,
        "yaml_bytes_match": sha256(yml.body) == ref["digest"],
        "yaml_etag": "quoted digest" if yml.headers["etag"] == f'"{ref["digest"]}"' else yml.headers["etag"],
        "yaml_cache_control": yml.headers["cache-control"],
        "yaml_content_type": yml.headers["content-type"],
        "yaml_vary": yml.headers.get("vary"),
        "yaml_valid": not SCHEMAS.validate(document, "ApplicationDeployment")
        and document["id"] == ref["deploymentId"],
        "yaml_inm": a.get(ref["url"], {"If-None-Match": f'"{ref["digest"]}"'}).status,
    }
    archive = a.get(manifest["bundle"]["url"])
    with tarfile.open(fileobj=io.BytesIO(archive.body), mode="r:gz") as tar:
        members = {
            m.name: sha256(tar.extractfile(m).read())  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile() and "/" not in m.name
        }
    obs |= {
        "bundle_status": archive.status,
        "bundle_content_type": archive.headers["content-type"],
        "bundle_bytes_match": sha256(archive.body) == manifest["bundle"]["digest"],
        "bundle_etag": archive.headers["etag"] == f'"{manifest["bundle"]["digest"]}"',
        "bundle_cache_control": archive.headers["cache-control"],
        "bundle_members_match": sorted(members.values())
        == sorted(d["digest"] for d in manifest["deployments"]),
        "bundle_layout": sorted(members)
        == sorted(f"{d['deploymentId']}.yaml" for d in manifest["deployments"]),
        "bundle_inm": a.get(
            manifest["bundle"]["url"], {"If-None-Match": f'"{manifest["bundle"]["digest"]}"'}
        ).status,
    }
    unknown = a.get(f"/api/v1/deployments/{ref['deploymentId']}/sha256:{'0' * 64}")
    obs["unknown_digest"] = f"{unknown.status} {unknown.problem_type}"
    unknown_bundle = a.get(f"/api/v1/bundles/sha256:{'0' * 64}")
    obs["unknown_bundle"] = f"{unknown_bundle.status} {unknown_bundle.problem_type}"
    obs["other_client_yaml"] = b.get(ref["url"]).status
    obs["other_client_bundle"] = b.get(manifest["bundle"]["url"]).status
    return obs


def observe_capabilities(h: Harness) -> dict[str, Any]:
    a, b = h.client(), h.client()
    gateway = unique("gw")
    obs: dict[str, Any] = {
        "create": a.put_capabilities(gateway).status,
        "update": a.put_capabilities(gateway).status,
    }
    malformed = a.request(
        "PUT", f"/api/v1/capabilities/{gateway}", b"{not json", {"Content-Type": "application/json"}
    )
    obs["malformed"] = f"{malformed.status} {malformed.problem_type}"
    invalid = a.put_capabilities(gateway, {"properties": {"id": gateway}, "apiVersion": "v1"})
    obs["invalid"] = f"{invalid.status} {invalid.problem_type}"
    obs["invalid_has_errors"] = bool(invalid.json().get("errors"))
    obs["id_mismatch"] = a.put_capabilities(gateway, capabilities("someone-else")).status
    orphan = a.put_capabilities(f"{unique('gw')}/child")
    obs["child_first"] = f"{orphan.status} {orphan.problem_type}"
    obs["child_after_gateway"] = a.put_capabilities(f"{gateway}/child").status
    obs["other_client_same_id"] = b.put_capabilities(gateway).status
    obs["delete"] = a.delete_device(f"{gateway}/child").status
    unknown = a.delete_device(unique("nothing"))
    obs["delete_unknown"] = f"{unknown.status} {unknown.problem_type}"
    return obs


def observe_status(h: Harness) -> dict[str, Any]:
    a, b = h.client(), h.client()
    device = unique("dev")
    a.put_capabilities(device)
    deployment = h.deploy(a, device, description("vendor-a-compose"))
    version = a.manifest().json()["manifestVersion"]

    def report(deployment_id: str, state: str = "installing") -> dict[str, Any]:
        return {
            "deploymentId": deployment_id,
            "adoptedManifestVersion": version,
            "status": {"state": state},
            "components": [{"name": "sensor-hub", "state": state}],
        }

    obs: dict[str, Any] = {
        "first": a.post_status(deployment, report(deployment)).status,
        "second": a.post_status(deployment, report(deployment, "installed")).status,
    }
    mismatch = a.post_status(deployment, report(str(uuid.uuid4())))
    obs["mismatch"] = f"{mismatch.status} {mismatch.problem_type}"
    stranger = str(uuid.uuid4())
    unknown = a.post_status(stranger, report(stranger))
    obs["unknown_deployment"] = f"{unknown.status} {unknown.problem_type}"
    malformed = a.post_status(deployment, b"[1,")
    obs["malformed"] = f"{malformed.status} {malformed.problem_type}"
    invalid = a.post_status(deployment, report(deployment, "running"))
    obs["invalid_state"] = f"{invalid.status} {invalid.problem_type}"
    # OA3 leaves the object open: the older sources' envelope is accepted (errata INC-008, STAT-103)
    legacy = {"apiVersion": "deployment.margo/v1", "kind": "DeploymentStatus", **report(deployment)}
    obs["legacy_envelope"] = a.post_status(deployment, legacy).status
    obs["other_client"] = b.post_status(deployment, report(deployment)).status
    return obs


def observe_errors(h: Harness) -> dict[str, Any]:
    c = h.client()
    missing = c.delete_device(unique("nothing"))
    problem = missing.json()
    obs: dict[str, Any] = {
        "problem_content_type": missing.headers["content-type"],
        "problem_has_type": "type" in problem,
        "problem_registered": str(problem.get("type")).endswith("#device-not-found"),
        "problem_valid": not SCHEMAS.validate(problem, "ProblemDetail"),
        "problem_retry": (
            problem.get("retryable"),
            problem.get("backoffStrategy"),
            "retry-after" in missing.headers,
        ),
    }
    for status in (429, 503):
        assert (
            h.admin("POST", "/admin/overload", {"status": status, "retry_after": 3, "requests": 1}).status
            == 200
        )
        busy = c.manifest()
        body = busy.json()
        obs[f"overload_{status}"] = (
            busy.status,
            busy.headers.get("retry-after"),
            body.get("retryable"),
            body.get("backoffStrategy"),
            body.get("retryAfterSeconds"),
        )
    obs["after_overload"] = c.manifest().status
    return obs


def observe_identity(h: Harness) -> dict[str, Any]:
    def outcome(client: Client) -> str:
        try:
            answer = client.manifest()
        except (Rejected, ConnectionError):
            return "rejected"
        return f"{answer.status} {answer.problem_type}" if answer.status == 403 else str(answer.status)

    obs: dict[str, Any] = {}
    for key, flaw in (
        ("foreign_trust_domain", Flaw.FOREIGN_TRUST_DOMAIN),
        ("wrong_path", Flaw.WRONG_PATH),
        ("two_uri_sans", Flaw.TWO_URI_SANS),
        ("ca_leaf", Flaw.CA_TRUE),
        ("key_cert_sign", Flaw.KEY_CERT_SIGN),
        ("expired", Flaw.EXPIRED),
        ("unknown_issuer", Flaw.UNKNOWN_ISSUER),
    ):
        obs[key] = outcome(h.client(flaw=flaw))  # listed by exact SPIFFE ID: only recognition can refuse
    obs["unlisted"] = outcome(h.client(accept=False))
    retired = h.client()
    assert h.admin("POST", "/admin/clients/retire", {"spiffe_id": retired.spiffe_id}).status == 200
    obs["retired"] = outcome(retired)
    obs["accepted"] = outcome(h.client())
    return obs


def observe_tls(h: Harness) -> dict[str, Any]:
    c = h.client()
    request = b"GET /api/v1/deployments HTTP/1.1\r\nHost: wfm\r\nConnection: close\r\n\r\n"

    def outcome(context: ssl.SSLContext) -> str:
        host, port = _host_port(h.endpoints.url)
        try:
            with (
                socket.create_connection((host, port), timeout=10) as plain,
                context.wrap_socket(plain) as tls,
            ):
                tls.sendall(request)
                data = tls.recv(65536)
                return f"{tls.version()} {parse_raw(data).status}" if data else "rejected"
        except (ssl.SSLError, ConnectionError):
            return "rejected"

    def context(minimum: ssl.TLSVersion, maximum: ssl.TLSVersion) -> ssl.SSLContext:
        return client_context(c.files, h.pki.bundle_pem, minimum=minimum, maximum=maximum)

    v12, v13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3
    anchors_and_intermediate = h.workdir / "anchors-and-intermediate.pem"
    anchors_and_intermediate.write_bytes(
        h.pki.bundle_pem.read_bytes() + (h.pki.directory / "intermediate.crt").read_bytes()
    )
    host, port = _host_port(h.endpoints.url)
    lenient = client_context(c.files, anchors_and_intermediate)
    with socket.create_connection((host, port), timeout=10) as plain, lenient.wrap_socket(plain) as tls:
        presented = str(spiffe_id_of(peer_chain(tls)[0]))
    return {
        "tls13": outcome(context(v13, v13)),
        "tls12": outcome(context(v12, v12)),
        "tls11": outcome(legacy_tls11_client_context(c.files, h.pki.bundle_pem)),
        "default": outcome(c.context),
        "wfm_spiffe_id": presented,
        "root_only_anchors": outcome(client_context(c.files, h.pki.bundle_pem)),  # needs the intermediate
        "anonymous": outcome(client_context(None, h.pki.bundle_pem)),  # no client certificate at all
    }


def observe_deployment(h: Harness) -> dict[str, Any]:
    c = h.client()
    device = unique("dev")
    c.put_capabilities(device)
    text = sensor_hub_with_profile_extension()
    deployment_id = h.deploy(c, device, text, {"listenPort": 9090})
    manifest = c.manifest().json()
    ref = next(d for d in manifest["deployments"] if d["deploymentId"] == deployment_id)
    document = yaml.safe_load(c.get(ref["url"]).body)
    source = yaml.safe_load(text)
    profile, served = source["deploymentProfiles"][0], document["spec"]["deploymentProfile"]
    return {
        "valid": not SCHEMAS.validate(document, "ApplicationDeployment"),
        "id": document["id"] == deployment_id,
        "metadata": document["metadata"] == {"name": source["id"], "namespace": "margo", "deviceId": device},
        "application_id": document["spec"]["applicationId"] == source["id"],
        "profile_type": served["type"],
        "constraints_verbatim": served["deviceConstraints"] == profile["deviceConstraints"],
        "profile_extensions": {k: v for k, v in served.items() if k.startswith("x-")}
        == {k: v for k, v in profile.items() if k.startswith("x-")},
        "component_extensions": served["components"] == profile["components"],
        "root_extensions_absent": not any(k.startswith("x-") for k in document["spec"]),
        "listen_port": document["spec"]["parameters"]["listenPort"]["value"],
        "site_name": document["spec"]["parameters"]["siteName"]["value"],
        "targets": document["spec"]["parameters"]["listenPort"]["targets"]
        == source["parameters"]["listenPort"]["targets"],
    }


def observe_restart(h: Harness) -> dict[str, Any]:
    """Its own WFM (the faults of the caller, ``h.active``), stopped and started on the same state."""
    state = h.workdir / unique("restart")
    config = WfmConfig(pki_dir=h.pki.directory, state_dir=state, faults=tuple(h.active), mis_listen=None)
    with BackgroundWfm(config) as endpoints:
        first = Harness(h.pki, endpoints, h.workdir)
        client = first.client()
        client.put_capabilities("dev")
        client.manifest()  # version 1
        first.deploy(client, "dev", description("vendor-a-compose"))
        before = client.manifest()  # version 2
    with BackgroundWfm(config) as endpoints:
        second = Harness(h.pki, endpoints, h.workdir)
        client.endpoints = endpoints
        after = client.manifest()
        policy_kept = after.status == 200
        device_kept = client.put_capabilities("dev").status == 200
        second.deploy(client, "dev", description("helm-app"))
        changed = client.manifest()
    return {
        "policy_kept": policy_kept,
        "device_kept": device_kept,
        "version_kept": after.json()["manifestVersion"] == before.json()["manifestVersion"],
        "etag_kept": after.headers["etag"] == before.headers["etag"],
        "bump_after_restart": changed.json()["manifestVersion"] - after.json()["manifestVersion"],
    }


def observe_isolation(h: Harness) -> dict[str, Any]:
    a, b = h.client(), h.client()
    device = unique("dev")
    b.put_capabilities(device)
    theirs = h.deploy(b, device, description("vendor-a-compose"))
    listed = [d["deploymentId"] for d in a.manifest().json()["deployments"]]
    return {"lists_other_clients_deployment": theirs in listed}


def observe_changes(h: Harness) -> dict[str, Any]:
    c = h.client()
    device = unique("dev")
    c.put_capabilities(device)
    deployment_id = h.deploy(c, device, description("vendor-a-compose"))
    added = c.manifest().json()["manifestVersion"]
    body = {
        "client_id": c.spiffe_id.rsplit("/", 1)[1],
        "device_id": device,
        "application_description": description("vendor-a-compose"),
        "parameters": {"listenPort": 9191},
    }
    assert h.admin("PUT", f"/admin/deployments/{deployment_id}", body).status == 200
    updated = c.manifest().json()["manifestVersion"]
    assert h.admin("DELETE", f"/admin/deployments/{deployment_id}").status == 204
    removed = c.manifest().json()["manifestVersion"]
    return {"bump_on_update": updated - added, "bump_on_removal": removed - updated}


OBSERVE: dict[str, Callable[[Harness], dict[str, Any]]] = {
    "changes": observe_changes,
    "isolation": observe_isolation,
    "manifest": observe_manifest,
    "digest": observe_digest,
    "capabilities": observe_capabilities,
    "status": observe_status,
    "errors": observe_errors,
    "identity": observe_identity,
    "tls": observe_tls,
    "deployment": observe_deployment,
    "restart": observe_restart,
}

CONFORMANT: dict[str, dict[str, Any]] = {
    "changes": {"bump_on_update": 1, "bump_on_removal": 1},
    "isolation": {"lists_other_clients_deployment": False},
    "manifest": {
        "bundle_present": True,
        "first_version": 1,
        "empty_bundle": "null",
        "empty_valid": True,
        "poll_stable": True,
        "version_delta": 2,
        "content_type": MANIFEST,
        "etag_strong": True,
        "etag_is_body_digest": True,
        "cache_control": "private",
        "valid": True,
        "deterministic": True,
        "urls_match": True,
        "deployments": 2,
        "inm_status": 304,
        "inm_body_bytes": 0,
        "inm_etag": True,
        "no_accept": f"200 {MANIFEST}",
        "unsupported_accept": "406 server-cannot-generate-response",
        "wildcard_accept": 200,
    },
    "digest": {
        "yaml_status": 200,
        "yaml_bytes_match": True,
        "yaml_etag": "quoted digest",
        "yaml_cache_control": IMMUTABLE,
        "yaml_content_type": "application/yaml",
        "yaml_vary": "Accept-Encoding",
        "yaml_valid": True,
        "yaml_inm": 304,
        "bundle_status": 200,
        "bundle_content_type": BUNDLE,
        "bundle_bytes_match": True,
        "bundle_etag": True,
        "bundle_cache_control": IMMUTABLE,
        "bundle_members_match": True,
        "bundle_layout": True,
        "bundle_inm": 304,
        "unknown_digest": "404 deployment-not-found",
        "unknown_bundle": "404 invalid-bundle",
        "other_client_yaml": 404,
        "other_client_bundle": 404,
    },
    "capabilities": {
        "create": 201,
        "update": 200,
        "malformed": "400 invalid-request",
        "invalid": "422 semantic-error",
        "invalid_has_errors": True,
        "id_mismatch": 422,
        "child_first": "404 gateway-not-found",
        "child_after_gateway": 201,
        "other_client_same_id": 201,
        "delete": 204,
        "delete_unknown": "404 device-not-found",
    },
    "status": {
        "first": 201,
        "second": 200,
        "mismatch": "422 semantic-error",
        "unknown_deployment": "422 semantic-error",
        "malformed": "400 invalid-request",
        "invalid_state": "422 semantic-error",
        "legacy_envelope": 200,
        "other_client": 422,
    },
    "errors": {
        "problem_content_type": "application/problem+json",
        "problem_has_type": True,
        "problem_registered": True,
        "problem_valid": True,
        "problem_retry": (False, "none", False),
        "overload_429": (429, "3", True, "exponential", 3),
        "overload_503": (503, "3", True, "exponential", 3),
        "after_overload": 200,
    },
    "identity": {
        "foreign_trust_domain": "rejected",
        "wrong_path": "rejected",
        "two_uri_sans": "rejected",
        "ca_leaf": "rejected",
        "key_cert_sign": "rejected",
        "expired": "rejected",
        "unknown_issuer": "rejected",
        "unlisted": "403 not-authorized",
        "retired": "403 not-authorized",
        "accepted": "200",
    },
    "tls": {
        "tls13": "TLSv1.3 200",
        "tls12": "rejected",
        "tls11": "rejected",
        "default": "TLSv1.3 200",
        "wfm_spiffe_id": f"spiffe://{TD}/margo/wfm/{WFM_ID}",
        "root_only_anchors": "TLSv1.3 200",
        "anonymous": "rejected",
    },
    "deployment": {
        "valid": True,
        "id": True,
        "metadata": True,
        "application_id": True,
        "profile_type": "compose",
        "constraints_verbatim": True,
        "profile_extensions": True,
        "component_extensions": True,
        "root_extensions_absent": True,
        "listen_port": 9090,
        "site_name": "plant-1",
        "targets": True,
    },
    "restart": {
        "policy_kept": True,
        "device_kept": True,
        "version_kept": True,
        "etag_kept": True,
        "bump_after_restart": 1,
    },
}

# fault -> (area, the observations it must change, and no others)
PROBES: dict[str, tuple[str, set[str]]] = {
    "etag-weak": ("manifest", {"etag_strong"}),
    "etag-not-body-digest": ("manifest", {"etag_is_body_digest"}),
    "manifest-cache-public": ("manifest", {"cache_control"}),
    "manifest-immutable": ("manifest", {"cache_control"}),
    "accept-missing-406": ("manifest", {"no_accept"}),
    "accept-unsupported-200": ("manifest", {"unsupported_accept"}),
    "if-none-match-ignored": ("manifest", {"inm_status", "inm_body_bytes"}),
    "not-modified-with-body": ("manifest", {"inm_body_bytes"}),
    "version-starts-at-0": ("manifest", {"first_version", "empty_valid"}),
    "version-not-bumped": ("manifest", {"version_delta"}),
    "version-bumped-on-every-poll": (
        "manifest",
        {"poll_stable", "version_delta", "inm_status", "inm_body_bytes", "inm_etag"},
    ),
    "version-reset-on-restart": ("restart", {"version_kept", "etag_kept"}),
    "version-not-bumped-on-update": ("changes", {"bump_on_update"}),
    "version-not-bumped-on-removal": ("changes", {"bump_on_removal"}),
    "empty-bundle-archive": ("manifest", {"empty_bundle", "empty_valid"}),
    "bundle-omitted": ("manifest", {"empty_bundle", "empty_valid"}),
    "url-digest-mismatch": ("manifest", {"urls_match"}),
    "yaml-trailing-newline": ("digest", {"yaml_bytes_match"}),
    "deployment-etag-unquoted": ("digest", {"yaml_etag"}),
    "deployment-not-immutable": ("digest", {"yaml_cache_control"}),
    "bundle-extra-yaml": ("digest", {"bundle_members_match", "bundle_layout"}),
    "bundle-missing-yaml": ("digest", {"bundle_members_match", "bundle_layout"}),
    "bundle-wrong-content-type": ("digest", {"bundle_content_type"}),
    "unknown-digest-200": ("digest", {"unknown_digest"}),
    "cross-client-deployments": ("digest", {"other_client_yaml"}),
    "cross-client-devices": ("capabilities", {"other_client_same_id"}),
    "capabilities-create-200": ("capabilities", {"create", "child_after_gateway", "other_client_same_id"}),
    "capabilities-update-201": ("capabilities", {"update"}),
    "malformed-body-422": ("capabilities", {"malformed"}),
    "semantic-error-400": ("capabilities", {"invalid", "id_mismatch"}),
    "semantic-error-without-errors": ("capabilities", {"invalid_has_errors"}),
    "child-before-gateway-accepted": ("capabilities", {"child_first"}),
    "delete-200": ("capabilities", {"delete"}),
    "delete-unknown-204": ("capabilities", {"delete_unknown"}),
    "status-create-200": ("status", {"first"}),
    "status-mismatched-id-accepted": ("status", {"mismatch"}),
    "problem-as-json": ("errors", {"problem_content_type"}),
    "problem-without-type": ("errors", {"problem_has_type", "problem_valid", "problem_registered"}),
    "problem-type-about-blank": ("errors", {"problem_registered"}),
    "overload-without-retry-after": ("errors", {"overload_429"}),
    "accepts-foreign-trust-domain": ("identity", {"foreign_trust_domain"}),
    "accepts-wrong-path": ("identity", {"wrong_path"}),
    "accepts-two-uri-sans": ("identity", {"two_uri_sans"}),
    "accepts-ca-leaf": ("identity", {"ca_leaf"}),
    "accepts-key-cert-sign-leaf": ("identity", {"key_cert_sign"}),
    "accepts-unlisted-client": ("identity", {"unlisted"}),
    "retired-still-accepted": ("identity", {"retired"}),
    "accepts-expired": ("identity", {"expired"}),
    "accepts-unknown-issuer": ("identity", {"unknown_issuer"}),
    "accepts-anonymous": ("tls", {"anonymous"}),
    # TLS 1.1 needs a minimum of 1.1, which also lets 1.2 in: allowed as a fallback (TLS-004), not a fault.
    "tls11-accepted": ("tls", {"tls11", "tls12"}),
    "tls13-refused": ("tls", {"tls13", "tls12", "default", "root_only_anchors"}),
    "wfm-wrong-spiffe-id": ("tls", {"wfm_spiffe_id"}),
    "omits-intermediate": ("tls", {"tls13", "default", "root_only_anchors"}),
    "application-id-wrong": ("deployment", {"application_id"}),
    "constraints-modified": ("deployment", {"constraints_verbatim"}),
    "extensions-dropped": ("deployment", {"profile_extensions", "component_extensions"}),
    "root-extensions-forwarded": ("deployment", {"root_extensions_absent"}),
    "parameters-ignored": ("deployment", {"listen_port"}),
    "bundle-null-with-deployments": ("manifest", {"bundle_present"}),
    "cross-client-manifest": ("isolation", {"lists_other_clients_deployment"}),
    "cross-client-status": ("status", {"other_client"}),
    # variants: allowed behaviours, each changing exactly the observation it is about
    "refuses-unaccepted-at-handshake": ("identity", {"unlisted"}),
    "refuses-retired-at-handshake": ("identity", {"retired"}),
    "retired-problem-type": ("identity", {"retired"}),
    "status-id-mismatch-400": ("status", {"mismatch"}),
    "short-private-max-age": ("manifest", {"cache_control"}),
    "version-bumped-on-restart": ("restart", {"version_kept", "etag_kept"}),
}


# Signing faults act on packages deployed from a registry under a trust policy: tests/test_wfm_signing.py
# probes them (its LETS_THROUGH table), against signed fixtures in a local registry.
SIGNING = {name for name, fault in FAULTS.items() if fault.area == "signing"}
# The identity service's faults and variants act on the trust endpoints: the mis persona's self-test
# probes them (fixtures/mis/faults.yaml, tests/test_selftest.py), a requirement of the mis persona each.
MIS = {name for name, fault in FAULTS.items() if fault.area == "mis"}

# -- the fault catalogue -----------------------------------------------------------------------------


def test_every_fault_has_a_probe_and_a_registered_requirement() -> None:
    assert set(PROBES) | SIGNING | MIS == set(FAULTS)
    registry = Registry.load()
    for fault in FAULTS.values():
        assert fault.requirement in registry, fault
        assert ("mis" if fault.name in MIS else "wfm") in registry.get(fault.requirement).personas, fault


def test_unknown_fault_names_are_a_usage_error_listing_the_known_ones() -> None:
    with pytest.raises(UsageError) as caught:
        FaultSet(["etag-weak", "no-such-fault"])
    assert "no-such-fault" in str(caught.value) and "etag-weak" in str(caught.value)
    with pytest.raises(KeyError):
        FaultSet().active("no-such-fault")


@pytest.mark.parametrize("area", sorted(CONFORMANT))
def test_without_faults_every_area_is_conformant(area: str, harness: Harness) -> None:
    assert OBSERVE[area](harness) == CONFORMANT[area]


@pytest.mark.parametrize("name", sorted(PROBES))
def test_each_fault_changes_exactly_its_behaviour(name: str, harness: Harness) -> None:
    area, expected = PROBES[name]
    harness.set_faults([name])
    observed = OBSERVE[area](harness)
    changed = {key for key, value in CONFORMANT[area].items() if observed[key] != value}
    assert changed == expected, {key: observed[key] for key in changed | expected}


# -- identity -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flaw", [Flaw.FOREIGN_TRUST_DOMAIN, Flaw.WRONG_PATH, Flaw.TWO_URI_SANS, Flaw.CA_TRUE, Flaw.UNKNOWN_ISSUER]
)
def test_a_peer_that_is_not_a_client_gets_no_http_bytes(flaw: Flaw, harness: Harness) -> None:
    client = harness.client(flaw=flaw)
    request = b"GET /api/v1/deployments HTTP/1.1\r\nHost: wfm\r\n\r\n"  # keep-alive: only a reset ends it
    try:
        answer, ending = exchange(harness.endpoints.url, client.context, request, timeout=5)
    except Rejected:
        answer, ending = b"", "reset"  # refused in the handshake (unknown issuer)
    assert (answer, ending) in ((b"", "reset"), (b"", "eof"))
    last = harness.admin("GET", "/admin/requests").json()["requests"][-1]
    assert (last["kind"], last["requests"], last["client"]) == ("connection", 0, None), last
    if flaw is Flaw.UNKNOWN_ISSUER:  # OpenSSL refuses the chain in the handshake
        assert last["outcome"] == "handshake-failed" and "certificate" in last["note"], last
    else:  # the handshake is done, the connection gate rejects the peer (WIP-005)
        assert last["outcome"] == "rejected" and "connection rejected" in last["note"], last


def test_garbage_from_an_unrecognised_peer_gets_no_bytes_either(harness: Harness) -> None:
    client = harness.client(flaw=Flaw.WRONG_PATH)
    answer, ending = exchange(harness.endpoints.url, client.context, b"\x00\x01 not http\r\n\r\n", timeout=5)
    assert (answer, ending) in ((b"", "reset"), (b"", "eof"))


def test_recognition_is_repeated_on_every_request_of_a_connection(harness: Harness) -> None:
    client = harness.client(flaw=Flaw.WRONG_PATH)
    harness.set_faults(["accepts-wrong-path"])
    host, port = _host_port(harness.endpoints.url)
    connection = http.client.HTTPSConnection(host, port, context=client.context, timeout=10)
    try:
        connection.request("GET", "/api/v1/deployments")
        first = connection.getresponse()
        first.read()
        assert first.status == 200
        harness.set_faults([])  # the same, still open connection is no longer a client's
        connection.request("GET", "/api/v1/deployments")
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            connection.getresponse()
    finally:
        connection.close()


def test_no_client_certificate_is_refused_in_the_handshake(harness: Harness) -> None:
    context = client_context(None, harness.pki.bundle_pem)
    with pytest.raises(Rejected):
        answer = raw_exchange(
            harness.endpoints.url, context, b"GET /api/v1/deployments HTTP/1.1\r\nHost: w\r\n\r\n"
        )
        if not answer:
            raise Rejected("no bytes")


def test_policy_denial_is_403_not_authorized_and_accepting_by_pattern_or_client_id_works(
    harness: Harness,
) -> None:
    client = harness.client(accept=False)
    denied = client.manifest()
    assert (denied.status, denied.problem_type) == (403, "not-authorized")
    assert denied.headers["content-type"] == "application/problem+json"
    assert not SCHEMAS.validate(denied.json(), "ProblemDetail")
    name = client.spiffe_id.rsplit("/", 1)[1]
    assert harness.admin("POST", "/admin/clients/accept", {"client_id": name}).status == 200
    assert client.manifest().status == 200
    assert harness.admin("POST", "/admin/clients/retire", {"client_id": name}).status == 200
    assert client.manifest().status == 403
    other = harness.client(accept=False)
    pattern = f"spiffe://{TD}/margo/wfm/{WFM_ID}/client/*"
    assert harness.admin("POST", "/admin/clients/accept", {"pattern": pattern}).status == 200
    assert other.manifest().status == 200
    assert client.manifest().status == 403  # retirement wins over the namespace wildcard


def test_the_caller_is_the_spiffe_id_not_the_path_or_body(harness: Harness) -> None:
    a, b = harness.client(), harness.client()
    a.put_capabilities("shared-name")
    assert b.delete_device("shared-name").status == 404  # b never registered it
    assert a.delete_device("shared-name").status == 204


# -- endpoint details not covered by the observations ------------------------------------------------


def test_gateway_hierarchy_routes_slashes_and_delete_takes_children_along(harness: Harness) -> None:
    c = harness.client()
    assert c.put_capabilities("gw").status == 201
    assert c.put_capabilities("gw/a").status == 201
    assert c.put_capabilities("gw/a/b").status == 201
    assert c.delete_device("gw").status == 204
    assert c.put_capabilities("gw/a").status == 404


def test_deployment_update_keeps_the_id_and_changes_the_digest(harness: Harness) -> None:
    c = harness.client()
    c.put_capabilities("dev")
    deployment_id = harness.deploy(c, "dev", description("vendor-a-compose"))
    before = c.manifest().json()
    body = {
        "client_id": c.spiffe_id.rsplit("/", 1)[1],
        "device_id": "dev",
        "application_description": description("vendor-a-compose"),
        "parameters": {"listenPort": 9999},
    }
    assert harness.admin("PUT", f"/admin/deployments/{deployment_id}", body).status == 200
    after = c.manifest().json()
    assert after["manifestVersion"] == before["manifestVersion"] + 1
    assert after["deployments"][0]["deploymentId"] == deployment_id
    assert after["deployments"][0]["digest"] != before["deployments"][0]["digest"]
    assert c.get(before["deployments"][0]["url"]).status == 200  # digest-addressed: still immutable
    same = harness.admin("PUT", f"/admin/deployments/{deployment_id}", body)
    assert same.status == 200 and c.manifest().json()["manifestVersion"] == after["manifestVersion"]
    immutable = dict(body, parameters={"listenPort": 9999, "siteName": "plant-2"})
    refused = harness.admin("PUT", f"/admin/deployments/{deployment_id}", immutable)
    assert refused.status == 422 and b"immutable" in refused.body  # APPD-003
    assert harness.admin("DELETE", f"/admin/deployments/{deployment_id}").status == 204
    emptied = c.manifest().json()
    assert emptied == {"bundle": None, "deployments": [], "manifestVersion": after["manifestVersion"] + 1}
    report = {
        "deploymentId": deployment_id,
        "adoptedManifestVersion": emptied["manifestVersion"],
        "status": {"state": "removed"},
        "components": [{"name": "sensor-hub", "state": "removed"}],
    }
    assert c.post_status(deployment_id, report).status == 201  # a removed deployment still gets reports


def test_profile_follows_the_reported_deployment_types(harness: Harness) -> None:
    c = harness.client()
    c.put_capabilities(
        "dev", capabilities("dev", ("custom",)) | {"labels": {"vendor-b.example/runtime": "line-controller"}}
    )
    harness.deploy(c, "dev", description("vendor-b-compose"))
    served = yaml.safe_load(c.get(c.manifest().json()["deployments"][0]["url"]).body)
    assert served["spec"]["deploymentProfile"]["type"] == "custom"
    assert not SCHEMAS.validate(served, "ApplicationDeployment")


def test_invalid_provisioning_input_is_refused(harness: Harness) -> None:
    c = harness.client()
    base = {"client_id": c.spiffe_id, "device_id": "dev", "parameters": {}}
    cases = [
        (dict(base, application_description="id: [unclosed"), 400),
        (dict(base, application_description="apiVersion: v1\nid: x\n"), 422),
        (dict(base, application_description=description("vendor-a-compose"), parameters={"nope": 1}), 422),
        (
            dict(
                base, application_description=description("vendor-a-compose"), parameters={"listenPort": 80}
            ),
            422,
        ),
        (dict(base, application_description=description("vendor-a-compose"), device_id="bad id"), 422),
        (dict(base, application_description=description("vendor-a-compose"), client_id="spiffe://"), 422),
    ]
    for body, status in cases:
        reply = harness.admin("POST", "/admin/deployments", body)
        assert reply.status == status, (body, reply.body)
        assert reply.headers["Content-Type"] == "application/problem+json"
    assert harness.admin("DELETE", f"/admin/deployments/{uuid.uuid4()}").status == 404


def test_oversized_slow_and_unroutable_requests_get_problems(harness: Harness) -> None:
    c = harness.client()
    big = c.request("PUT", "/api/v1/capabilities/dev", b"{" + b" " * (1024 * 1024 + 10) + b"}")
    assert big.status == 413 and big.headers["content-type"] == "application/problem+json"
    lost = c.get("/api/v1/nowhere")
    assert (lost.status, lost.json()["type"]) == (404, "about:blank")
    assert c.request("PATCH", "/api/v1/deployments").status == 405
    slow = parse_raw(
        c.raw(b"PUT /api/v1/capabilities/dev HTTP/1.1\r\nHost: w\r\nContent-Length: 100\r\n\r\n{", timeout=3)
    )
    assert slow.status == 408 and json.loads(slow.body)["status"] == 408
    assert c.manifest().status == 200  # still serving


# -- MIS trust endpoints ------------------------------------------------------------------------------


def test_trust_endpoints(harness: Harness) -> None:
    mis = harness.endpoints.mis_url
    assert mis is not None
    anchors = ssl.create_default_context(cafile=str(harness.pki.bundle_pem))  # PKI-anchored, IP SAN checked
    discovery = http_get(mis + "/.well-known/margo", context=anchors)
    document = discovery.json()
    assert document == {"trustDomain": TD, "trustBundleUri": f"{mis}/.well-known/spiffe/bundle.json"}
    assert not SCHEMAS.validate(document, "DiscoveryDocument")
    bundle = http_get(document["trustBundleUri"], context=anchors)
    assert bundle.body == harness.pki.bundle_json.read_bytes()
    assert bundle.headers["content-type"] == "application/json"
    assert not SCHEMAS.validate(bundle.json(), "SpiffeBundle")
    again = http_get(
        document["trustBundleUri"], context=anchors, headers={"If-None-Match": bundle.headers["etag"]}
    )
    assert (again.status, again.body) == (304, b"")
    missing = http_get(mis + "/.well-known/other", context=anchors)
    assert missing.status == 404 and missing.headers["content-type"] == "application/problem+json"


# -- admin ---------------------------------------------------------------------------------------------


def test_admin_state_faults_and_request_log(harness: Harness) -> None:
    c = harness.client()
    c.put_capabilities("dev")
    harness.deploy(c, "dev", description("vendor-a-compose"))
    state = harness.admin("GET", "/admin/state")
    assert b"PRIVATE KEY" not in state.body
    assert any(d["client"] == c.spiffe_id for d in state.json()["deployments"])
    refused = harness.admin("POST", "/admin/faults", {"faults": ["nope"]})
    assert refused.status == 422 and b"etag-weak" in refused.body
    catalogue = harness.admin("GET", "/admin/faults").json()["catalogue"]
    assert {f["name"] for f in catalogue} == set(FAULTS)
    log = harness.admin("GET", "/admin/requests").json()["requests"]
    requests = [r for r in log if r["kind"] == "request"]
    assert {"time", "client", "method", "path", "status"} <= set(requests[-1])
    assert requests[-1]["client"] == c.spiffe_id
    assert harness.admin("POST", "/admin/overload", {"status": 500}).status == 422


# -- lifecycle -----------------------------------------------------------------------------------------


def test_clean_shutdown_leaves_no_threads_or_ports(pki: Pki, tmp_path: Path) -> None:
    before = set(threading.enumerate())
    server = BackgroundWfm(WfmConfig(pki_dir=pki.directory, state_dir=tmp_path / "state"))
    endpoints = server.start()
    urls = [endpoints.url, endpoints.mis_url, endpoints.admin_url]
    server.stop()
    assert set(threading.enumerate()) <= before
    for url in urls:
        assert url is not None
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(_host_port(url), timeout=2).close()


def test_admin_listens_on_loopback_only_and_state_belongs_to_one_wfm(pki: Pki, tmp_path: Path) -> None:
    exposed = WfmConfig(pki_dir=pki.directory, state_dir=tmp_path / "a", admin_listen=("0.0.0.0", 0))
    with pytest.raises(UsageError, match="loopback"):
        BackgroundWfm(exposed).start()
    other = Pki.init(tmp_path / "other-pki", trust_domain=TD, wfm_id="wfm-2")
    with BackgroundWfm(WfmConfig(pki_dir=pki.directory, state_dir=tmp_path / "b")):
        pass
    with pytest.raises(UsageError, match="wfm-id"):
        BackgroundWfm(WfmConfig(pki_dir=other.directory, state_dir=tmp_path / "b")).start()


def test_cli_serves_until_sigterm(pki: Pki, tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    command = [
        str(CLI), "reference", "wfm",
        "--pki", str(pki.directory), "--state", str(tmp_path / "state"), "--ready-file", str(ready),
        "--fault", "etag-weak",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), process.stderr.read() if process.stderr else ""
        document = json.loads(ready.read_text())
        assert set(document) == {"url", "mis_url", "admin_url", "pid"} and document["pid"] == process.pid
        faults = http_get(document["admin_url"] + "/admin/faults").json()
        assert faults["active"] == ["etag-weak"]
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=10)
        assert process.returncode == 0
        assert json.loads(stdout.splitlines()[0]) == document
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_refuses_unknown_faults(pki: Pki, tmp_path: Path) -> None:
    command = [
        str(CLI), "reference", "wfm",
        "--pki", str(pki.directory), "--state", str(tmp_path), "--fault", "nope",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "etag-weak" in result.stderr
