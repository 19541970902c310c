"""The applications the device scenarios deploy: vendor-a's and vendor-b's Compose packages, published
to the suite's local OCI registry as SUP-01 artifacts, each scenario in its own namespace.

What a scenario may change before publishing (a copy is published, the fixtures stay as they are):

* ``host_port`` — vendor-a's published port becomes ``127.0.0.1:<host_port>:8080`` (each scenario gets
  a free port, so scenarios never clash unless they mean to);
* ``eligibility`` — ``any-compose-device`` (the default) replaces the package's eligibility rules by
  one that every Compose device meets (``/supportedDeploymentTypes`` ``In [compose]``): the packaged
  rules ask for vendor labels a vendor's device does not report; ``as-packaged`` keeps them;
  ``unmet`` asks for a label no device reports (``Exists``), so the device must not deploy it;
* ``failing_component`` — a second component whose only service exits at once (for the roll-up);
* ``extensions`` — keep the package's ``x-…-extensions`` (vendor-a's component carries
  ``x-vendor-a-extensions``, which no device knows); by default they are taken out, so that only the
  scenario about unknown extensions depends on a device ignoring them (ADEP-006).

The description handed to the WFM references the registry it was published to.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..package.publish import FIXTURE_HOST, find_description, publish_package

PACKAGES = {"vendor-a": "vendor-a-compose", "vendor-b": "vendor-b-compose"}
SERVICE = {"vendor-a": "sensor-hub", "vendor-b": "line-monitor"}
EXTENSION = re.compile(r"^x-[a-z][a-z0-9-]*-extensions$")
UNMET_LABEL = "conformance.margo.example/never-reported"
ELIGIBILITY = ("any-compose-device", "as-packaged", "unmet")
ANY_COMPOSE_DEVICE = [
    {
        "propertySelector": {
            "matchExpressions": [
                {"key": "/supportedDeploymentTypes", "operator": "In", "values": ["compose"]}
            ]
        }
    }
]
UNMET = [{"labelSelector": {"matchExpressions": [{"key": UNMET_LABEL, "operator": "Exists"}]}}]
FAILING_SERVICE = {
    "services": {
        "exits-at-once": {
            "image": "margo-test/http-server:1.0.0",
            "entrypoint": ["/bin/false"],
            "restart": "no",
        }
    }
}


@dataclass(frozen=True)
class AppRequest:
    vendor: str
    host_port: int | None = None
    eligibility: str = "any-compose-device"
    failing_component: bool = False
    extensions: bool = False


@dataclass(frozen=True)
class PublishedApp:
    vendor: str
    description: str  # the text the WFM deploys
    host_port: int | None
    reference: str  # oci://… of the application package
    declared_env: frozenset[str]  # variable names its Compose files set (environment, env_file)


def publish_app(
    request: AppRequest, packages: Path, workdir: Path, registry_host: str, namespace: str
) -> PublishedApp:
    """Copy, adapt and publish one vendor's package; the description references ``registry_host``."""
    source = packages / PACKAGES[request.vendor]
    package = workdir / f"{request.vendor}-{namespace}"
    shutil.copytree(source, package)
    component_dir = package / "components" / SERVICE[request.vendor]
    if request.host_port is not None:
        _publish_port(component_dir / "compose.yaml", SERVICE[request.vendor], request.host_port)
    description_path = find_description(package)
    document = yaml.safe_load(description_path.read_text(encoding="utf-8"))
    profile = next(p for p in document["deploymentProfiles"] if p.get("type") == "compose")
    document["deploymentProfiles"] = [profile]  # the device persona deploys the Compose profile
    _set_eligibility(profile, request.eligibility)
    if request.failing_component:
        _add_failing_component(package, profile)
    if not request.extensions:
        _strip_extensions(profile)
    description_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    published = publish_package(package, registry_host, namespace=namespace)
    text = description_path.read_text(encoding="utf-8").replace(FIXTURE_HOST, f"{registry_host}/{namespace}")
    return PublishedApp(request.vendor, text, request.host_port, published.reference, _declared_env(package))


def _declared_env(package: Path) -> frozenset[str]:
    names: set[str] = set()
    for compose_file in (package / "components").glob("*/compose.yaml"):
        compose = yaml.safe_load(compose_file.read_text(encoding="utf-8")) or {}
        for service in (compose.get("services") or {}).values():
            environment = service.get("environment") or {}
            names |= (
                {str(item).partition("=")[0] for item in environment}
                if isinstance(environment, list)
                else set(map(str, environment))
            )
            for env_file in service.get("env_file") or []:
                text = (compose_file.parent / str(env_file)).read_text(encoding="utf-8")
                names |= {line.partition("=")[0].strip() for line in text.splitlines() if "=" in line}
    return frozenset(names)


def _strip_extensions(profile: dict[str, Any]) -> None:
    for holder in [profile, *profile.get("components", [])]:
        for key in [k for k in holder if EXTENSION.match(str(k))]:
            del holder[key]


def _publish_port(compose_file: Path, service: str, host_port: int) -> None:
    compose = yaml.safe_load(compose_file.read_text(encoding="utf-8"))
    compose["services"][service]["ports"] = [f"127.0.0.1:{host_port}:8080"]
    compose_file.write_text(yaml.safe_dump(compose, sort_keys=False), encoding="utf-8")


def _set_eligibility(profile: dict[str, Any], eligibility: str) -> None:
    constraints = profile.setdefault("deviceConstraints", {})
    if eligibility == "any-compose-device":
        constraints["eligibilityRules"] = ANY_COMPOSE_DEVICE
    elif eligibility == "unmet":
        constraints["eligibilityRules"] = UNMET
    elif eligibility != "as-packaged":
        raise ValueError(f"eligibility {eligibility!r}: expected one of {', '.join(ELIGIBILITY)}")


def _add_failing_component(package: Path, profile: dict[str, Any]) -> None:
    folder = package / "components" / "exits-at-once"
    folder.mkdir(parents=True)
    (folder / "compose.yaml").write_text(yaml.safe_dump(FAILING_SERVICE, sort_keys=False), encoding="utf-8")
    first = profile["components"][0]["properties"]
    repository = str(first["repository"]).rsplit("/", 1)[0] + "/exits-at-once"
    profile["components"].append(
        {
            "name": "exits-at-once",
            "properties": {"repository": repository, "revision": first["revision"], "timeout": "0m30s"},
        }
    )
