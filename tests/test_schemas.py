"""The suite's own rc.3 JSON Schemas: well-formed, consistent with the registry and errata, and
validating hand-written documents to findings with a JSON path and the right requirement ID."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from margo_conformance import DEFAULT_PIN
from margo_conformance.paths import pin_dir
from margo_conformance.registry import Registry
from margo_conformance.schemas import ANNOTATION, DOCUMENT_TYPES, REQUIREMENT_MAP, SchemaSet

SCHEMA_DIR = pin_dir(DEFAULT_PIN) / "schemas"
SCHEMA_NAMES = ("Common", *DOCUMENT_TYPES)
DIGEST = "sha256:" + "ab" * 32
UUID = "a3e2f5dc-912e-494f-8395-52cf3769bc06"
DELETE = object()


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return SchemaSet.load()


def _schema_file(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    return schema


def _errata() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load((pin_dir(DEFAULT_PIN) / "errata.yaml").read_text(encoding="utf-8"))
    return {entry["id"]: entry for entry in data["errata"]}


def _annotations(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == ANNOTATION:
                yield value
            elif key == REQUIREMENT_MAP:
                yield from value.keys()
                yield from value.values()
            else:
                yield from _annotations(value)
    elif isinstance(node, list):
        for item in node:
            yield from _annotations(item)


def variant(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy with the member at a dotted path (list indexes as numbers) set, or removed with DELETE."""
    result = copy.deepcopy(document)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = result
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return result


def pairs(schemas: SchemaSet, document: object, document_type: str) -> set[tuple[str, str]]:
    return {(f.location, f.requirement) for f in schemas.validate(document, document_type)}


# ---------------------------------------------------------------- the schema files themselves


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = _schema_file(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://margo-conformance.invalid/{DEFAULT_PIN}/{name}.schema.json"
    assert "errata" in schema["description"] or not schema["x-margo-errata"]


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_names_only_registered_requirements_and_known_errata(name: str) -> None:
    schema = _schema_file(name)
    registry = Registry.load()
    unknown = sorted({rid for rid in _annotations(schema) if rid not in registry})
    assert not unknown, f"{name}: requirement IDs missing from the registry: {unknown}"
    errata = _errata()
    assert all(eid in errata for eid in schema["x-margo-errata"]), schema["x-margo-errata"]
    assert all(eid in schema["description"] for eid in schema["x-margo-errata"])
    if name != "Common":
        assert schema[ANNOTATION] in registry, "every document schema names a default requirement"


def test_errata_cover_the_digest_and_touch_known_things() -> None:
    errata = _errata()
    assert {f"INC-{n:03d}" for n in range(1, 25)} <= set(errata)
    registry = Registry.load()
    for entry in errata.values():
        assert set(entry) == {"id", "title", "upstream", "defect", "reading", "touches"}, entry["id"]
        assert entry["upstream"] and all(
            {"repository", "path", "commit", "location"} <= set(u) for u in entry["upstream"]
        )
        unknown = [t for t in entry["touches"] if t not in SCHEMA_NAMES and t not in registry]
        assert not unknown, f"{entry['id']} touches unknown {unknown}"


def test_unknown_document_type_is_refused(schemas: SchemaSet) -> None:
    with pytest.raises(ValueError, match="unknown document type"):
        schemas.validate({}, "Nonsense")


# ---------------------------------------------------------------- ApplicationDescription

APP: dict[str, Any] = {
    "apiVersion": "v1",
    "id": "hello-world",
    "metadata": {
        "name": "Hello World",
        "version": "1.0.0",
        "catalog": {"organization": [{"name": "Northstar"}]},
    },
    "deploymentProfiles": [
        {
            "type": "helm",
            "id": "hello-helm",
            "components": [
                {
                    "name": "hello-world",
                    "properties": {"repository": "oci://r.example/charts/hello", "revision": "1.0.1_build.7"},
                }
            ],
            "deviceConstraints": {
                "capacityRequirements": {
                    "cpu": {"cores": 0.5, "architectures": ["amd64"]},
                    "memory": "512Mi",
                },
                "eligibilityRules": [
                    {
                        "propertySelector": {
                            "matchExpressions": [
                                {
                                    "key": "/peripherals",
                                    "operator": "ContainsAny",
                                    "itemSelector": {
                                        "matchExpressions": [
                                            {"key": "/type", "operator": "In", "values": ["gpu"]}
                                        ]
                                    },
                                }
                            ]
                        },
                        "labelSelector": {
                            "matchExpressions": [{"key": "example.com/site", "operator": "Exists"}]
                        },
                    }
                ],
            },
            "x-acme-extensions": {"tier": "gold"},
        }
    ],
    "parameters": {
        "greeting": {
            "value": "Hello",
            "targets": [{"pointer": "global.greeting", "components": ["hello-world"]}],
        }
    },
    "configuration": {
        "sections": [
            {"name": "General", "settings": [{"parameter": "greeting", "name": "Greeting", "schema": "text"}]}
        ],
        "schema": [{"name": "text", "dataType": "string", "maxLength": 45, "allowEmpty": False}],
    },
}
PROFILE = "$.deploymentProfiles[0]"
EXPRESSION = "deploymentProfiles.0.deviceConstraints.eligibilityRules.0.propertySelector.matchExpressions.0"


def test_minimal_application_description_is_valid(schemas: SchemaSet) -> None:
    assert schemas.validate(APP, "ApplicationDescription") == []


@pytest.mark.parametrize(
    ("path", "value", "location", "requirement"),
    [
        ("apiVersion", "margo.org/v1-alpha1", "$.apiVersion", "APPD-102"),
        ("kind", "ApplicationDescription", "$.kind", "APPD-101"),
        ("id", "com.acme_App", "$.id", "APPD-102"),
        ("metadata.catalog", DELETE, "$.metadata.catalog", "APPD-101"),
        ("deploymentProfiles.0.type", "helm.v3", f"{PROFILE}.type", "APPD-103"),
        (
            "deploymentProfiles.0.components.0.name",
            "Hello_World",
            f"{PROFILE}.components[0].name",
            "APPD-104",
        ),
        (
            "deploymentProfiles.0.components.0.properties.revision",
            "v1.0.0",
            f"{PROFILE}.components[0].properties.revision",
            "APPD-105",
        ),
        (
            "deploymentProfiles.0.components.0.properties.repository",
            "https://x",
            f"{PROFILE}.components[0].properties.repository",
            "APPD-105",
        ),
        (
            "deploymentProfiles.0.components.0.properties.packageLocation",
            "https://x",
            f"{PROFILE}.components[0].properties.packageLocation",
            "APPD-105",
        ),
        (
            "deploymentProfiles.0.components.0.properties.timeout",
            "5m",
            f"{PROFILE}.components[0].properties.timeout",
            "APPD-106",
        ),
        (
            "deploymentProfiles.0.components.0.properties.wait",
            "yes",
            f"{PROFILE}.components[0].properties.wait",
            "APPD-106",
        ),
        (
            "parameters.greeting.targets.0.components",
            DELETE,
            "$.parameters.greeting.targets[0].components",
            "APPD-107",
        ),
        ("configuration.schema.0.dataType", "float", "$.configuration.schema[0].dataType", "APPD-108"),
        (
            "deploymentProfiles.0.deviceConstraints.capacityRequirements.memory",
            "1 Gi",
            f"{PROFILE}.deviceConstraints.capacityRequirements.memory",
            "APPD-109",
        ),
        (
            "deploymentProfiles.0.deviceConstraints.capacityRequirements.cpu.architectures",
            ["x86_64"],
            f"{PROFILE}.deviceConstraints.capacityRequirements.cpu.architectures[0]",
            "APPD-109",
        ),
        (
            "deploymentProfiles.0.deviceConstraints.capacityRequirements.cpu.architectures",
            ["other"],
            f"{PROFILE}.description",
            "APPD-009",
        ),
        ("x-Acme-extensions", {}, "$", "EXT-003"),
        ("x-acme-extensions", ["not", "an", "object"], '$["x-acme-extensions"]', "EXT-004"),
        (
            f"{EXPRESSION}.operator",
            "ContainersAny",
            f"{PROFILE}.deviceConstraints.eligibilityRules[0].propertySelector.matchExpressions[0].operator",
            "ELIG-011",
        ),
        (
            f"{EXPRESSION}.itemSelector",
            DELETE,
            f"{PROFILE}.deviceConstraints.eligibilityRules[0].propertySelector.matchExpressions[0].itemSelector",
            "ELIG-015",
        ),
        (
            f"{EXPRESSION}.itemSelector.matchExpressions.0.values",
            [],
            f"{PROFILE}.deviceConstraints.eligibilityRules[0].propertySelector.matchExpressions[0].itemSelector.matchExpressions[0].values",
            "ELIG-012",
        ),
        (
            f"{EXPRESSION}.itemSelector.matchExpressions.0.matchExpression",
            [],
            f"{PROFILE}.deviceConstraints.eligibilityRules[0].propertySelector.matchExpressions[0].itemSelector.matchExpressions[0].matchExpression",
            "ELIG-011",
        ),
    ],
)
def test_application_description_violations(
    schemas: SchemaSet, path: str, value: Any, location: str, requirement: str
) -> None:
    assert (location, requirement) in pairs(schemas, variant(APP, path, value), "ApplicationDescription")


@pytest.mark.parametrize(
    ("expression", "requirement"),
    [
        ({"key": "/vendor", "operator": "In"}, "ELIG-012"),
        ({"key": "/vendor", "operator": "In", "values": ["a", 1]}, "ELIG-012"),
        ({"key": "/gpu", "operator": "In", "values": [True, False]}, "ELIG-012"),
        ({"key": "/vendor", "operator": "Exists", "values": ["a"]}, "ELIG-013"),
        ({"key": "/cores", "operator": "Gt", "values": [1, 2]}, "ELIG-014"),
        ({"key": "/cores", "operator": "Lt", "values": ["4"]}, "ELIG-014"),
        (
            {
                "key": "/peripherals",
                "operator": "ContainsAll",
                "values": ["gpu"],
                "itemSelector": {"matchExpressions": [{"key": "/type", "operator": "Exists"}]},
            },
            "ELIG-015",
        ),
        (
            {"key": "/peripherals", "operator": "ContainsAll", "itemSelector": {"matchExpressions": []}},
            "APPD-101",
        ),
    ],
)
def test_operator_rules(schemas: SchemaSet, expression: dict[str, Any], requirement: str) -> None:
    document = variant(APP, EXPRESSION, expression)
    assert requirement in {f.requirement for f in schemas.validate(document, "ApplicationDescription")}


@pytest.mark.parametrize(
    "expression",
    [
        {"key": "/vendor", "operator": "NotIn", "values": ["acme", "globex"]},
        {"key": "/cpus/0/cores", "operator": "In", "values": [2, 4.5]},
        {"key": "/otelCollector", "operator": "In", "values": [True]},
        {"key": "/cpus/0/cores", "operator": "Gt", "values": [2]},
        {"key": "/memory", "operator": "DoesNotExist"},
    ],
)
def test_well_formed_operators_are_valid(schemas: SchemaSet, expression: dict[str, Any]) -> None:
    assert schemas.validate(variant(APP, EXPRESSION, expression), "ApplicationDescription") == []


def test_application_description_accepts_custom_profiles_and_array_parameter_values(
    schemas: SchemaSet,
) -> None:
    document = variant(APP, "deploymentProfiles.0.type", "custom")
    document = variant(document, "parameters.greeting.value", ["a", "b"])
    assert schemas.validate(document, "ApplicationDescription") == []


# ---------------------------------------------------------------- ApplicationDeployment

DEPLOYMENT: dict[str, Any] = {
    "id": UUID,
    "metadata": {"name": "hello-world-deployment", "namespace": "margo", "deviceId": "gateway1/*"},
    "spec": {
        "applicationId": "hello-world",
        "deploymentProfile": {
            "type": "compose",
            "components": [
                {
                    "name": "hello-world",
                    "properties": {
                        "repository": "oci://r.example/compose/hello",
                        "revision": "1.0.9",
                        "wait": True,
                        "timeout": "8m30s",
                    },
                }
            ],
            "deviceConstraints": copy.deepcopy(APP["deploymentProfiles"][0]["deviceConstraints"]),
        },
        "parameters": {
            "greeting": {"value": "Hi", "targets": [{"pointer": "GREETING", "components": ["hello-world"]}]}
        },
        "x-wfm-extensions": {"trace": True},
    },
}


def test_minimal_application_deployment_is_valid(schemas: SchemaSet) -> None:
    assert schemas.validate(DEPLOYMENT, "ApplicationDeployment") == []


def test_undefined_annotations_member_is_tolerated_not_required(schemas: SchemaSet) -> None:
    """INC-004: OA3 requires an undefined `annotations`; the suite neither requires nor rejects it."""
    with_annotations = variant(DEPLOYMENT, "metadata.annotations", {"owner": "ops"})
    assert schemas.validate(with_annotations, "ApplicationDeployment") == []


@pytest.mark.parametrize(
    ("path", "value", "location", "requirement"),
    [
        ("id", DELETE, "$.id", "ADEP-103"),
        ("id", "not-a-uuid", "$.id", "ADEP-103"),
        ("apiVersion", "application.margo.org/v1alpha1", "$.apiVersion", "ADEP-103"),
        ("metadata.deviceId", "gateway1/*/x", "$.metadata.deviceId", "ADEP-103"),
        ("spec.applicationId", "Hello.World", "$.spec.applicationId", "ADEP-103"),
        ("spec.deploymentProfile.type", "helm.v3", "$.spec.deploymentProfile.type", "ADEP-103"),
        (
            "spec.deploymentProfile.components.0.name",
            "Hello",
            "$.spec.deploymentProfile.components[0].name",
            "ADEP-103",
        ),
        ("spec.parameters.greeting.value", DELETE, "$.spec.parameters.greeting.value", "ADEP-103"),
        ("spec.x-WFM-extensions", {}, "$.spec", "EXT-003"),
        (
            "spec.deploymentProfile.deviceConstraints.eligibilityRules.0.propertySelector.matchExpressions.0.key",
            "peripherals",
            "$.spec.deploymentProfile.deviceConstraints.eligibilityRules[0].propertySelector.matchExpressions[0].key",
            "ELIG-009",
        ),
    ],
)
def test_application_deployment_violations(
    schemas: SchemaSet, path: str, value: Any, location: str, requirement: str
) -> None:
    assert (location, requirement) in pairs(
        schemas, variant(DEPLOYMENT, path, value), "ApplicationDeployment"
    )


# ---------------------------------------------------------------- State Manifest

MANIFEST: dict[str, Any] = {  # the shape of the P-DS example
    "manifestVersion": 101,
    "bundle": {
        "mediaType": "application/vnd.margo.bundle.v1+tar+gzip",
        "digest": DIGEST,
        "url": f"/api/v1/bundles/{DIGEST}",
    },
    "deployments": [{"deploymentId": UUID, "digest": DIGEST, "url": f"/api/v1/deployments/{UUID}/{DIGEST}"}],
}


def test_p_ds_example_shape_is_valid(schemas: SchemaSet) -> None:
    assert schemas.validate(MANIFEST, "StateManifest") == []


def test_bundle_null_with_empty_deployments_is_valid(schemas: SchemaSet) -> None:
    assert schemas.validate({"manifestVersion": 1, "bundle": None, "deployments": []}, "StateManifest") == []


def test_dotted_required_names_are_read_as_bundle_members(schemas: SchemaSet) -> None:
    """INC-002: no literal "bundle.mediaType" member is demanded; a bundle object needs its three members."""
    assert not any("bundle.mediaType" in f.message for f in schemas.validate(MANIFEST, "StateManifest"))
    assert pairs(schemas, variant(MANIFEST, "bundle.url", DELETE), "StateManifest") == {
        ("$.bundle.url", "DS-103")
    }


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"manifestVersion": 2, "bundle": MANIFEST["bundle"], "deployments": []}, ("$.bundle", "DS-012")),
        ({"manifestVersion": 2, "deployments": []}, ("$.bundle", "DS-012")),
        (variant(MANIFEST, "manifestVersion", 1.5), ("$.manifestVersion", "DS-103")),
        (variant(MANIFEST, "manifestVersion", 0), ("$.manifestVersion", "DS-103")),
        (variant(MANIFEST, "manifestVersion", 2**64), ("$.manifestVersion", "DS-103")),
        (variant(MANIFEST, "manifestVersion", "101"), ("$.manifestVersion", "DS-103")),
        (variant(MANIFEST, "bundle.mediaType", "application/json"), ("$.bundle.mediaType", "DS-103")),
        (variant(MANIFEST, "bundle.sizeBytes", 10.5), ("$.bundle.sizeBytes", "DS-103")),
        (variant(MANIFEST, "deployments.0.digest", DIGEST.upper()), ("$.deployments[0].digest", "DS-020")),
        (
            variant(MANIFEST, "deployments.0.digest", "sha512:" + "ab" * 64),
            ("$.deployments[0].digest", "DS-020"),
        ),
        (
            variant(MANIFEST, "deployments.0.deploymentId", "dep-1"),
            ("$.deployments[0].deploymentId", "DS-103"),
        ),
        (
            variant(MANIFEST, "bundle.url", f"/api/v1/clients/1234/bundles/{DIGEST}"),
            ("$.bundle.url", "DS-101"),
        ),
        (
            variant(MANIFEST, "deployments.0.url", f"https://wfm.example/api/v1/deployments/{UUID}/{DIGEST}"),
            ("$.deployments[0].url", "DS-101"),
        ),
    ],
)
def test_state_manifest_violations(
    schemas: SchemaSet, document: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert expected in pairs(schemas, document, "StateManifest")


def test_state_manifest_edges_that_stay_valid(schemas: SchemaSet) -> None:
    prefixed = variant(MANIFEST, "bundle.url", f"/v1alpha2/margo/api/v1/bundles/{DIGEST}")  # INC-110
    largest = variant(prefixed, "manifestVersion", 2**64 - 1)
    sized = variant(largest, "deployments.0.sizeBytes", 0)
    assert schemas.validate(sized, "StateManifest") == []


# ---------------------------------------------------------------- DeploymentStatusManifest

STATUS: dict[str, Any] = {
    "deploymentId": UUID,
    "deviceId": "gateway1/device-a",
    "adoptedManifestVersion": 7,
    "status": {
        "state": "failed",
        "error": {"code": "102", "source": "gateway1", "message": "child device unreachable"},
    },
    "components": [
        {
            "name": "hello-world",
            "state": "failed",
            "error": {"code": "E1", "source": "hello-world", "message": "pull failed"},
        }
    ],
}


def test_status_is_valid(schemas: SchemaSet) -> None:
    assert schemas.validate(STATUS, "DeploymentStatusManifest") == []


@pytest.mark.parametrize(
    ("path", "value", "location", "requirement"),
    [
        ("adoptedManifestVersion", DELETE, "$.adoptedManifestVersion", "STAT-102"),
        ("adoptedManifestVersion", 1.5, "$.adoptedManifestVersion", "STAT-102"),
        ("kind", "DeploymentStatusManifest", "$.kind", "STAT-103"),
        ("apiVersion", "deployment.margo/v1", "$.apiVersion", "STAT-103"),
        ("deviceId", "gateway1/*", "$.deviceId", "STAT-102"),
        ("status.state", "running", "$.status.state", "STAT-002"),
        ("components.0.state", "Installed", "$.components[0].state", "STAT-002"),
        ("components.0.error.source", DELETE, "$.components[0].error.source", "STAT-005"),
        ("status.error.code", 102, "$.status.error.code", "STAT-102"),
    ],
)
def test_status_violations(
    schemas: SchemaSet, path: str, value: Any, location: str, requirement: str
) -> None:
    assert (location, requirement) in pairs(schemas, variant(STATUS, path, value), "DeploymentStatusManifest")


# ---------------------------------------------------------------- DeviceCapabilitiesManifest

GATEWAY: dict[str, Any] = {
    "properties": {"id": "gateway1", "vendor": "Northstar", "modelNumber": "G1", "serialNumber": "S1"}
}
DEVICE: dict[str, Any] = {
    "properties": {
        "id": "gateway1/device-a",
        "vendor": "Northstar",
        "modelNumber": "332ANZE1-N1",
        "serialNumber": "PF45343-AA",
        "cpus": [{"cores": 4, "architecture": "arm64"}],
        "memory": "59 Gi",
        "storage": "1862Gi",
        "peripherals": [{"type": "gpu", "manufacturer": "NVIDIA"}],
        "interfaces": [{"type": "ethernet"}],
        "otelCollector": True,
        "supportedRuntimes": ["oci", "custom"],
        "supportedDeploymentTypes": ["compose"],
    },
    "labels": {"example.com/site": "plant-1", "example.com/zones": [1, 2], "example.com/secure": True},
    "x-wfm-extensions": {"rack": "A3"},
}


def test_non_hosting_gateway_and_hosting_device_are_valid(schemas: SchemaSet) -> None:
    assert schemas.validate(GATEWAY, "DeviceCapabilitiesManifest") == []
    assert schemas.validate(DEVICE, "DeviceCapabilitiesManifest") == []


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (variant(GATEWAY, "apiVersion", "device.margo.org/v1alpha1"), ("$.apiVersion", "CAP-104")),
        (variant(GATEWAY, "properties.id", "gateway 1"), ("$.properties.id", "CAP-104")),
        (variant(DEVICE, "properties.otelCollector", False), ("$.properties.otelCollector", "CAP-004")),
        (variant(GATEWAY, "properties.cpus", [{"cores": 2}]), ("$.properties.supportedRuntimes", "CAP-004")),
        (variant(DEVICE, "properties.supportedRuntimes", []), ("$.properties.supportedRuntimes", "CAP-104")),
        (
            variant(DEVICE, "properties.supportedRuntimes", ["wasm"]),
            ("$.properties.supportedRuntimes[0]", "CAP-104"),
        ),
        (
            variant(DEVICE, "properties.cpus", [{"cores": 2, "architecture": "x86_64"}]),
            ("$.properties.cpus[0].architecture", "CAP-104"),
        ),
        (variant(DEVICE, "properties.memory", "59GB"), ("$.properties.memory", "CAP-104")),
        (variant(DEVICE, "labels", DELETE), ("$.labels", "CAP-012")),
        (variant(DEVICE, "labels.bad", {"nested": 1}), ("$.labels.bad", "CAP-104")),
    ],
)
def test_capabilities_violations(
    schemas: SchemaSet, document: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert expected in pairs(schemas, document, "DeviceCapabilitiesManifest")


# ---------------------------------------------------------------- ProblemDetail, discovery, bundle

PROBLEM: dict[str, Any] = {
    "type": "https://docs.margo.org/specification/problem-types#semantic-error",
    "title": "Semantic error",
    "status": 422,
    "retryable": False,
    "backoffStrategy": "none",
    "errors": [{"field": "properties.cpus", "message": "unknown architecture"}],
    "vendor_code": "E42",
}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (variant(PROBLEM, "status", DELETE), ("$.status", "API-ERR-002")),
        (variant(PROBLEM, "type", "not a uri"), ("$.type", "API-ERR-002")),
        (variant(PROBLEM, "backoffStrategy", "linear"), ("$.backoffStrategy", "API-ERR-002")),
        (variant(variant(PROBLEM, "status", 429), "retryable", False), ("$.retryable", "API-RETRY-001")),
        (
            variant(variant(PROBLEM, "status", 503), "backoffStrategy", "none"),
            ("$.backoffStrategy", "API-RETRY-002"),
        ),
        (variant(PROBLEM, "retryable", True), ("$.retryable", "API-RETRY-004")),
    ],
)
def test_problem_detail(schemas: SchemaSet, document: dict[str, Any], expected: tuple[str, str]) -> None:
    assert schemas.validate(PROBLEM, "ProblemDetail") == []
    assert expected in pairs(schemas, document, "ProblemDetail")


def test_discovery_document(schemas: SchemaSet) -> None:
    document = {
        "trustDomain": "factory.example",
        "trustBundleUri": "https://mis.factory.example/.well-known/spiffe/bundle.json",
        "future": 1,
    }
    assert schemas.validate(document, "DiscoveryDocument") == []
    insecure = variant(document, "trustBundleUri", "http://mis.factory.example/bundle.json")
    assert pairs(schemas, insecure, "DiscoveryDocument") == {("$.trustBundleUri", "TB-102")}
    assert ("$.trustDomain", "TB-102") in pairs(
        schemas, variant(document, "trustDomain", "Factory.Example"), "DiscoveryDocument"
    )


def test_spiffe_bundle(schemas: SchemaSet) -> None:
    anchor: dict[str, Any] = {
        "kty": "EC",
        "crv": "P-256",
        "x": "AQ",
        "y": "AQ",
        "use": "x509-svid",
        "x5c": ["MIIBszCCAVmgAwIBAgIQ"],
    }
    bundle: dict[str, Any] = {
        "spiffe_sequence": 12,
        "spiffe_refresh_hint": 86400,
        "keys": [anchor, {"kty": "EC", "use": "jwt-svid", "kid": "k1"}],
    }
    assert schemas.validate(bundle, "SpiffeBundle") == []
    assert ("$.keys", "TB-104") in pairs(schemas, variant(bundle, "keys", bundle["keys"][1:]), "SpiffeBundle")
    assert ("$.keys[0].kid", "TB-104") in pairs(schemas, variant(bundle, "keys.0.kid", "k0"), "SpiffeBundle")
    assert ("$.keys[0].x5c", "TB-104") in pairs(
        schemas, variant(bundle, "keys.0.x5c", anchor["x5c"] * 2), "SpiffeBundle"
    )


# ---------------------------------------------------------------- the findings themselves


def test_findings_are_sorted_prefixed_short_and_stamped(schemas: SchemaSet) -> None:
    document = variant(APP, "id", "X" * 5000)
    document = variant(document, "apiVersion", "v2")
    document = variant(document, "kind", "ApplicationDescription")
    findings = schemas.validate(document, "ApplicationDescription", location="margo.yaml")
    assert [f.location for f in findings] == sorted(f.location for f in findings)
    assert all(f.location.startswith("margo.yaml$") for f in findings)
    assert all(len(f.message) <= 200 for f in findings)
    assert {f.requirement for f in findings} == {"APPD-101", "APPD-102"}
    assert all(f.level.value == "MUST" for f in findings)
    assert findings == schemas.validate(document, "ApplicationDescription", location="margo.yaml")


def test_any_of_noise_is_collapsed_to_one_finding(schemas: SchemaSet) -> None:
    findings = schemas.validate(
        variant(APP, "parameters.greeting.value", {"nested": True}), "ApplicationDescription"
    )
    assert [(f.location, f.requirement) for f in findings] == [("$.parameters.greeting.value", "APPD-107")]


def test_classify_recognises_each_type(schemas: SchemaSet) -> None:
    samples = {
        "ApplicationDescription": APP,
        "ApplicationDeployment": DEPLOYMENT,
        "StateManifest": MANIFEST,
        "DeploymentStatusManifest": STATUS,
        "DeviceCapabilitiesManifest": DEVICE,
        "ProblemDetail": PROBLEM,
        "DiscoveryDocument": {"trustDomain": "td", "trustBundleUri": "https://x/b.json"},
        "SpiffeBundle": {"keys": []},
    }
    assert {name: schemas.classify(doc) for name, doc in samples.items()} == {name: name for name in samples}
    assert schemas.classify(["not", "a", "mapping"]) is None
