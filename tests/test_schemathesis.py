"""Schemathesis, a tool written independently of this project, against the reference WFM.

The suite's own tests share the project's reading of the spec; a misreading they share with the reference
hides itself. Schemathesis reads the pinned OpenAPI on its own and sends what it makes of it to the
reference WFM over mutual TLS, as an accepted WFM client would. Every finding is fixed in the reference or
named by an erratum: ``read_inc_002`` mends the one defect of the pinned file that no response could
pass, and ``READINGS`` judges the bodies whose refusal an erratum explains.

Bounded for CI: a fixed number of examples per operation, derandomized (a fixed seed), a timeout on every
request, one WFM in-process on loopback for the whole module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from requests.adapters import HTTPAdapter
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.case import Case
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.specs.openapi.schemas import OpenApiSchema

from margo_conformance.pki import Pki
from margo_conformance.pki.policy import uri_sans
from margo_conformance.pki.tls import client_context
from margo_conformance.reference.device.capabilities import host_capabilities
from margo_conformance.reference.wfm import AdminClient, BackgroundWfm, WfmConfig
from margo_conformance.schemas import SchemaSet
from margo_conformance.wfm.documents import make_status

ROOT = Path(__file__).resolve().parents[1]
PINNED = ROOT.parent / "shared" / "margo-spec" / "rc3"
WFM_SPEC = PINNED / "workload-management-api-1.0.0-rc.3.yaml"
MIS_SPEC = PINNED / "trust-bundle-api-1.0.0-rc.3.yaml"
PACKAGES = ROOT / "fixtures" / "packages"
SEED = 9
EXAMPLES = 25  # per operation, fuzzing phase (examples and coverage phases are bounded by the schema)
REQUEST_TIMEOUT_S = 5.0
SCHEMAS = SchemaSet.load()
Check = Callable[[Any, Any, Case[Any]], None]
CONFIG: dict[str, Any] = {
    "seed": SEED,
    "generation": {"max-examples": EXAMPLES},
    "request-timeout": REQUEST_TIMEOUT_S,
}


class SpiffeAdapter(HTTPAdapter):
    """Verifies the WFM against the trust bundle and identifies it by SPIFFE ID, not by host name.

    The WFM's SVID names no DNS name or IP address (SVID-006(a)), so urllib3's host-name match is off;
    the chain is still built against the bundle during the handshake (``client_context``)."""

    def __init__(self, context: Any) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        kwargs["assert_hostname"] = False
        super().init_poolmanager(*args, **kwargs)


@dataclass(frozen=True)
class Target:
    """The WFM's Management Interface (mutual TLS) and its MIS trust endpoints (server-only TLS)."""

    base_url: str
    session: requests.Session
    mis_url: str
    mis_session: requests.Session
    bundle: str  # the trust anchors both are verified against (never the system's CA store)
    deployment_id: str  # the one deployment assigned to the client (``deploy_one``)


def deploy_one(session: requests.Session, url: str, admin: AdminClient, client_id: str) -> str:
    """One device with one deployment, so that the manifest Schemathesis reads has a bundle and entries."""
    device = "schemathesis-device"
    reply = session.put(f"{url}/api/v1/capabilities/{device}", json=host_capabilities(device), timeout=10)
    assert reply.status_code == 201, reply.text
    description = (PACKAGES / "vendor-a-compose" / "margo.yaml").read_text(encoding="utf-8")
    return admin.deploy(client_id, device, description, {})[0]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    workdir = tmp_path_factory.mktemp("schemathesis")
    pki = Pki.init(workdir / "pki", trust_domain="factory.example", wfm_id="wfm-1")
    server = BackgroundWfm(WfmConfig(pki_dir=pki.directory, state_dir=workdir / "state", read_timeout=1.0))
    endpoints = server.start()
    try:
        svid = pki.mint_client("schemathesis")
        files = svid.write(workdir / "client", "schemathesis")
        assert endpoints.admin_url is not None
        client_id = uri_sans(svid.certificate)[0]
        AdminClient(endpoints.admin_url).accept_client(client_id)
        session = requests.Session()
        session.cert = (str(files.certificate), str(files.key))
        session.verify = str(pki.bundle_pem)
        session.mount("https://", SpiffeAdapter(client_context(files, pki.bundle_pem)))
        assert endpoints.mis_url is not None
        mis_session = requests.Session()
        mis_session.verify = str(pki.bundle_pem)  # PKI-anchored: the MIS certificate names 127.0.0.1
        with session, mis_session:
            deployment_id = deploy_one(session, endpoints.url, AdminClient(endpoints.admin_url), client_id)
            yield Target(
                endpoints.url, session, endpoints.mis_url, mis_session, str(pki.bundle_pem), deployment_id
            )
    finally:
        server.stop()


def load_schema(spec: Path, mend: Callable[[dict[str, Any]], None] | None = None) -> OpenApiSchema | None:
    """A pinned OpenAPI (``mend`` applies an erratum's reading to its schemas), or None when absent."""
    if not spec.is_file():
        return None
    document = yaml.safe_load(spec.read_text(encoding="utf-8"))
    if mend is not None:
        mend(document["components"]["schemas"])
    return schemathesis.openapi.from_dict(document, config=SchemathesisConfig.from_dict(CONFIG))


def read_inc_002(schemas: dict[str, Any]) -> None:
    """INC-002: the dotted names of UnsignedAppStateManifest.required are the bundle object's required
    members (read literally, no manifest could ever validate). Nothing else of the pinned file changes."""
    manifest = schemas["UnsignedAppStateManifest"]
    dotted = [name for name in manifest["required"] if name.startswith("bundle.")]
    manifest["required"] = [name for name in manifest["required"] if name not in dotted]
    schemas["DeploymentBundleRef"]["required"] = [name.removeprefix("bundle.") for name in dotted]


@dataclass(frozen=True)
class Reading:
    """How the errata judge a body the OpenAPI accepts but the reference refuses (400/422).

    The pinned schemas/<document_type>.schema.json carry the errata that add prose rules to the OA3
    schema. A refusal is right when that reading refuses the body too, when the body's id differs from
    the path's (INC-103, INC-180), or, with ``assigned_only``, when the path names a deployment never
    assigned to the caller (INC-022). Anything else is a false refusal."""

    document_type: str
    parameter: str
    body_id: Callable[[Any], Any]
    assigned_only: bool = False

    def check(self, target: Target) -> Check:
        def check(ctx: Any, response: Any, case: Case[Any]) -> None:
            if response.status_code not in (400, 422) or case.meta is None:
                return
            if not case.meta.generation.mode.is_positive:
                return
            body, path_id = case.body, case.path_parameters[self.parameter]
            if self.assigned_only and path_id != target.deployment_id:
                return
            if SCHEMAS.is_valid(body, self.document_type) and self.body_id(body) == path_id:
                raise AssertionError(
                    f"{response.status_code} for a body that the pinned {self.document_type} reading accepts "
                    f"and whose id equals the path's {self.parameter}"
                )

        check.__name__ = f"refusal_follows_{self.document_type}_reading"
        return check


def _capabilities_id(body: Any) -> Any:
    return body["properties"]["id"]


def _status_id(body: Any) -> Any:
    return body["deploymentId"]


# Operations where Schemathesis's expectation "a schema-valid body is accepted" meets a rule the OA3
# schema does not encode: the reading's check judges instead of positive_data_acceptance.
READINGS: dict[str, Reading] = {
    # INC-118 (hosting fields, otelCollector true, labels with custom), INC-015 (capacity units),
    # INC-180 (properties.id must equal the path's deviceId): 422 #semantic-error.
    "PUT /api/v1/capabilities/{deviceId}": Reading(
        "DeviceCapabilitiesManifest", "deviceId", _capabilities_id
    ),
    # INC-003 (manifestVersion an integer from 1), INC-115 (error members required), INC-103 (body
    # deploymentId must equal the path's), INC-022 (a deployment never assigned): 422 #semantic-error.
    "POST /api/v1/deployments/{deploymentId}/status": Reading(
        "DeploymentStatusManifest", "deploymentId", _status_id, assigned_only=True
    ),
}


def test_inc_002_reading_moves_only_the_dotted_names() -> None:
    schemas: dict[str, Any] = {
        "UnsignedAppStateManifest": {"required": ["manifestVersion", "bundle", "bundle.url", "deployments"]},
        "DeploymentBundleRef": {"type": ["object", "null"]},
    }
    read_inc_002(schemas)
    assert schemas["UnsignedAppStateManifest"]["required"] == ["manifestVersion", "bundle", "deployments"]
    assert schemas["DeploymentBundleRef"] == {"type": ["object", "null"], "required": ["url"]}


def _positive(body: Any, device_id: str) -> Any:
    """Just what ``Reading.check`` reads of a Schemathesis case."""
    mode = SimpleNamespace(is_positive=True)
    return SimpleNamespace(
        meta=SimpleNamespace(generation=SimpleNamespace(mode=mode)),
        body=body,
        path_parameters={"deviceId": device_id},
    )


def test_a_refusal_is_right_only_when_an_erratum_explains_it() -> None:
    check = READINGS["PUT /api/v1/capabilities/{deviceId}"].check(cast(Target, None))
    valid = host_capabilities("edge-1")
    refused = SimpleNamespace(status_code=422)
    check(None, refused, _positive(valid, "edge-2"))  # INC-180: the ids differ
    check(None, refused, _positive({"properties": {**valid["properties"], "otelCollector": False}}, "edge-1"))
    check(None, SimpleNamespace(status_code=201), _positive(valid, "edge-1"))
    with pytest.raises(AssertionError, match="reading accepts"):
        check(None, refused, _positive(valid, "edge-1"))


WFM_SCHEMA = load_schema(WFM_SPEC, read_inc_002)
MIS_SCHEMA = load_schema(MIS_SPEC)

if WFM_SCHEMA is None or MIS_SCHEMA is None:

    def test_the_pinned_openapi_files_are_beside_the_checkout() -> None:
        pytest.fail(
            f"the pinned OpenAPI files are not in {PINNED}: Schemathesis reads them from the shared folder "
            "beside the checkout (../shared/margo-spec/rc3/); put that folder there, never copy it into "
            "the project"
        )

else:
    # Derandomized (reproducible); no Hypothesis deadline or health checks, which time the machine rather
    # than judge the WFM (a hang still ends at REQUEST_TIMEOUT_S).
    bounded = settings(derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))

    @WFM_SCHEMA.parametrize()
    @bounded
    def test_reference_wfm_answers_as_the_openapi_says(case: Case[Any], target: Target) -> None:
        reading = READINGS.get(case.operation.label)
        case.call_and_validate(
            base_url=target.base_url,
            session=target.session,
            verify=target.bundle,
            timeout=REQUEST_TIMEOUT_S,
            excluded_checks=[positive_data_acceptance] if reading else None,
            additional_checks=[reading.check(target)] if reading else None,
        )

    @MIS_SCHEMA.parametrize()
    @bounded
    def test_reference_mis_answers_as_the_openapi_says(case: Case[Any], target: Target) -> None:
        case.call_and_validate(
            base_url=target.mis_url,
            session=target.mis_session,
            verify=target.bundle,
            timeout=REQUEST_TIMEOUT_S,
        )

    def test_the_status_of_the_clients_deployment_is_accepted(target: Target) -> None:
        """The one positive status Schemathesis cannot make up: it needs the id of a real deployment."""
        manifest = target.session.get(
            f"{target.base_url}/api/v1/deployments", verify=target.bundle, timeout=REQUEST_TIMEOUT_S
        ).json()
        assert WFM_SCHEMA is not None
        operation = WFM_SCHEMA["/api/v1/deployments/{deploymentId}/status"]["POST"]
        body = make_status(target.deployment_id, adopted_manifest_version=manifest["manifestVersion"])
        case = operation.Case(path_parameters={"deploymentId": target.deployment_id}, body=body)
        response = case.call_and_validate(
            base_url=target.base_url, session=target.session, verify=target.bundle, timeout=REQUEST_TIMEOUT_S
        )
        assert response.status_code == 201, response.text
