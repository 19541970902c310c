"""Checks of the Application Description: its schema, then the rules a schema cannot express.

Each rule is one small function with one decision, named ``check_…``; ``check_description`` runs
them all and returns the parsed document so the component checks know what to look for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Hashable, Iterator
from typing import Any

import yaml

from .._internal import bounded
from ..findings import Findings, Level
from ..registry import make_finding
from ..schemas import SchemaSet

Document = dict[str, Any]

# libyaml's safe loader when PyYAML was built with it: ten times faster on large descriptions.
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# More than one document is reported as APPD-101 below, so the loader may read a few.
DESCRIPTION_LIMITS = bounded.Limits(max_documents=16)

# PKG-101: the resource formats P-APPD allows for each catalog entry, by file extension.
RESOURCE_FORMATS: dict[str, tuple[str, ...]] = {
    "descriptionFile": (".md",),
    "licenseFile": (".txt", ".md", ".pdf"),
    "releaseNotes": (".md", ".pdf"),
    "icon": (".png", ".jpg", ".jpeg", ".svg", ".gif", ".webp"),
}


def parse_description(text: str, location: str, findings: Findings) -> Document | None:
    """The YAML document, or None with an APPD-101 finding when it is not one YAML mapping."""
    try:  # bounded: depth, size, aliases, documents, str keys (hostile input)
        documents = bounded.load_yaml_documents(text, where=location, limits=DESCRIPTION_LIMITS)
    except bounded.UntrustedInput as exc:
        findings.add(make_finding("APPD-101", exc.place, exc.problem))
        return None
    if len(documents) != 1 or not isinstance(documents[0], dict):
        findings.add(make_finding("APPD-101", location, "the description must be exactly one YAML mapping"))
        return None
    return documents[0]


def check_description(
    text: str, location: str, resources: dict[str, bytes]
) -> tuple[Document | None, Findings]:
    findings = Findings()
    document = parse_description(text, location, findings)
    if document is None:
        return None, findings
    findings.extend(SchemaSet.load().validate(document, "ApplicationDescription", location=location))
    for rule in SEMANTIC_RULES:
        rule(document, location, findings)
    check_catalog_resources(document, location, resources, findings)
    return document, findings


def profiles(document: Document) -> list[tuple[int, Document]]:
    items = document.get("deploymentProfiles")
    return [(i, p) for i, p in enumerate(items) if isinstance(p, dict)] if isinstance(items, list) else []


def components(profile: Document) -> list[tuple[int, Document]]:
    items = profile.get("components")
    return [(i, c) for i, c in enumerate(items) if isinstance(c, dict)] if isinstance(items, list) else []


def _report_repeats(
    values: list[Any], *, requirement: str, where: str, what: str, findings: Findings
) -> None:
    """One finding per value that occurs more than once."""
    for value, count in Counter(v for v in values if isinstance(v, str)).items():
        if count > 1:
            findings.add(make_finding(requirement, where, f"{what} {value!r} is used {count} times"))


def check_profile_ids_unique(document: Document, location: str, findings: Findings) -> None:
    """APPD-103: each deployment profile id is unique within the description."""
    _report_repeats(
        [p.get("id") for _, p in profiles(document)],
        requirement="APPD-103",
        where=f"{location}$.deploymentProfiles",
        what="profile id",
        findings=findings,
    )


def check_component_names_unique(document: Document, location: str, findings: Findings) -> None:
    """APPD-104: component names are unique within a deployment profile (targets address them by name)."""
    for index, profile in profiles(document):
        _report_repeats(
            [c.get("name") for _, c in components(profile)],
            requirement="APPD-104",
            where=f"{location}$.deploymentProfiles[{index}].components",
            what="component name",
            findings=findings,
        )


def check_parameter_targets(document: Document, location: str, findings: Findings) -> None:
    """APPD-107: every parameter target names components that exist in the description."""
    known = {
        n for _, p in profiles(document) for _, c in components(p) if isinstance(n := c.get("name"), str)
    }
    for name, target_index, target in _targets(document):
        for component in _list(target.get("components")):
            if not _among(component, known):
                findings.add(
                    make_finding(
                        "APPD-107",
                        f"{location}$.parameters.{name}.targets[{target_index}].components",
                        f"target names component {component!r}, which no deployment profile defines",
                    )
                )


def _targets(document: Document) -> Iterator[tuple[str, int, Document]]:
    parameters = document.get("parameters")
    if not isinstance(parameters, dict):
        return
    for name, parameter in parameters.items():
        targets = parameter.get("targets") if isinstance(parameter, dict) else None
        for index, target in enumerate(targets if isinstance(targets, list) else []):
            if isinstance(target, dict):
                yield name, index, target


def check_configuration_references(document: Document, location: str, findings: Findings) -> None:
    """APPD-108: settings name defined parameters and schemas; schema names are unique."""
    configuration = document.get("configuration")
    if not isinstance(configuration, dict):
        return
    parameters = document.get("parameters")
    parameters = parameters if isinstance(parameters, dict) else {}
    schemas = [s for s in _list(configuration.get("schema")) if isinstance(s, dict)]
    schema_names = {name for s in schemas if isinstance(name := s.get("name"), str)}
    _report_repeats(
        [s.get("name") for s in schemas],
        requirement="APPD-108",
        where=f"{location}$.configuration.schema",
        what="schema name",
        findings=findings,
    )
    for s_index, section in enumerate(_list(configuration.get("sections"))):
        for k, setting in enumerate(_list(section.get("settings")) if isinstance(section, dict) else []):
            if not isinstance(setting, dict):
                continue
            where = f"{location}$.configuration.sections[{s_index}].settings[{k}]"
            if not _among(setting.get("parameter"), parameters):
                findings.add(
                    make_finding(
                        "APPD-108",
                        f"{where}.parameter",
                        f"setting refers to undefined parameter {setting.get('parameter')!r}",
                    )
                )
            if not _among(setting.get("schema"), schema_names):
                findings.add(
                    make_finding(
                        "APPD-108",
                        f"{where}.schema",
                        f"setting refers to undefined schema {setting.get('schema')!r}",
                    )
                )


def _list(value: Any) -> list[Any]:
    """A list the schema allows here; anything else (the schema reports it) as an empty one."""
    return value if isinstance(value, list) else []


def _among(value: Any, names: Collection[Any]) -> bool:
    """``value in names`` for any value of a hostile document (a list is unhashable, and no name)."""
    return isinstance(value, Hashable) and not isinstance(value, tuple) and value in names


def check_other_architecture_described(document: Document, location: str, findings: Findings) -> None:
    """APPD-009: a profile whose architectures include 'other' describes the architecture."""
    for index, profile in profiles(document):
        constraints = profile.get("deviceConstraints")
        capacity = constraints.get("capacityRequirements") if isinstance(constraints, dict) else None
        cpu = capacity.get("cpu") if isinstance(capacity, dict) else None
        architectures = cpu.get("architectures") if isinstance(cpu, dict) else None
        if (
            isinstance(architectures, list)
            and "other" in architectures
            and not str(profile.get("description") or "").strip()
        ):
            findings.add(
                make_finding(
                    "APPD-009",
                    f"{location}$.deploymentProfiles[{index}]",
                    "architectures include 'other' but the profile has no description",
                )
            )


def check_resources_folder(document: Document, location: str, findings: Findings) -> None:
    """PKG-002: the resource files a catalog names live in the package's resources/ folder."""
    for key, reference in _catalog_files(document):
        path = reference.removeprefix("./")
        if not path.startswith("resources/") or ".." in path.split("/"):
            findings.add(
                make_finding(
                    "PKG-002",
                    f"{location}$.metadata.catalog.application.{key}",
                    f"{reference!r} is not inside the package's resources/ folder",
                )
            )


def _catalog_files(document: Document) -> Iterator[tuple[str, str]]:
    """(catalog key, path) for each resource file metadata.catalog.application names (not URLs)."""
    metadata = document.get("metadata")
    catalog = metadata.get("catalog") if isinstance(metadata, dict) else None
    application = catalog.get("application") if isinstance(catalog, dict) else None
    if not isinstance(application, dict):
        return
    for key in RESOURCE_FORMATS:
        reference = application.get(key)
        if isinstance(reference, str) and "://" not in reference:
            yield key, reference


# ELIG-007: capacity resources and the capability properties a selector would restate them with.
CAPACITY_PROPERTIES = {"cpu": "/cpus", "memory": "/memory", "storage": "/storage"}


def check_capacity_not_restated(document: Document, location: str, findings: Findings) -> None:
    """ELIG-007 (SHOULD NOT): a resource in capacityRequirements is not also tested by a propertySelector."""
    for index, profile in profiles(document):
        constraints = profile.get("deviceConstraints")
        if not isinstance(constraints, dict):
            continue
        capacity = constraints.get("capacityRequirements")
        pointers = (
            {CAPACITY_PROPERTIES[k] for k in capacity if k in CAPACITY_PROPERTIES}
            if isinstance(capacity, dict)
            else set()
        )
        for rule in _list(constraints.get("eligibilityRules")):
            selector = rule.get("propertySelector") if isinstance(rule, dict) else None
            for expression in _list(selector.get("matchExpressions")) if isinstance(selector, dict) else []:
                key = expression.get("key") if isinstance(expression, dict) else None
                if isinstance(key, str) and "/" + key.lstrip("/").split("/")[0] in pointers:
                    findings.add(
                        make_finding(
                            "ELIG-007",
                            f"{location}$.deploymentProfiles[{index}].deviceConstraints",
                            f"{key!r} restates a capacityRequirements resource in a propertySelector",
                            level=Level.SHOULD,
                        )
                    )


def check_custom_profile_targets_labels(document: Document, location: str, findings: Findings) -> None:
    """APPD-006: a custom deployment profile selects its devices with label-selector eligibility rules."""
    for index, profile in profiles(document):
        if profile.get("type") != "custom":
            continue
        constraints = profile.get("deviceConstraints")
        rules = constraints.get("eligibilityRules") if isinstance(constraints, dict) else None
        if not any(isinstance(r, dict) and r.get("labelSelector") for r in _list(rules)):
            findings.add(
                make_finding(
                    "APPD-006",
                    f"{location}$.deploymentProfiles[{index}]",
                    "a custom profile needs eligibility rules with a labelSelector on supplier-agreed labels",
                )
            )


def check_catalog_resources(
    document: Document, location: str, resources: dict[str, bytes], findings: Findings
) -> None:
    """PKG-101: resource files named in metadata.catalog.application exist, in an allowed format."""
    for key, reference in _catalog_files(document):
        extensions = RESOURCE_FORMATS[key]
        where = f"{location}$.metadata.catalog.application.{key}"
        path = reference.removeprefix("./")
        if path not in resources:
            findings.add(make_finding("PKG-101", where, f"{reference!r} is not in the package"))
        elif not path.lower().endswith(extensions):
            findings.add(
                make_finding(
                    "PKG-101",
                    where,
                    f"{reference!r} is not one of the allowed formats {', '.join(extensions)}",
                )
            )


SEMANTIC_RULES: tuple[Callable[[Document, str, Findings], None], ...] = (
    check_profile_ids_unique,
    check_component_names_unique,
    check_parameter_targets,
    check_configuration_references,
    check_other_architecture_described,
    check_resources_folder,
    check_capacity_not_restated,
    check_custom_profile_targets_labels,
)
