"""The suite's own JSON Schemas (Draft 2020-12) of the Margo documents, and the findings they yield.

Margo publishes OpenAPI and LinkML whose literal JSON Schema reading is defective (see ``errata.yaml``), so
the suite validates against its own schemas in ``pins/<pin>/schemas/``. Each schema node may name the
requirement a violation at or below it breaks with ``x-margo-requirement``; the nearest one on the failing
schema path wins, else the schema root's, so every finding carries a registry ID and a JSON path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator, FormatChecker  # type: ignore[import-untyped]
from jsonschema.exceptions import ValidationError, best_match  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from . import DEFAULT_PIN
from .findings import Finding
from .paths import pin_dir
from .registry import make_finding

if TYPE_CHECKING:
    from referencing._core import Resolver

DOCUMENT_TYPES: tuple[str, ...] = (
    "ApplicationDescription",
    "ApplicationDeployment",
    "StateManifest",
    "DeploymentStatusManifest",
    "DeviceCapabilitiesManifest",
    "ProblemDetail",
    "DiscoveryDocument",
    "SpiffeBundle",
)
ANNOTATION = "x-margo-requirement"
REQUIREMENT_MAP = "x-margo-requirement-map"
_MAX_MESSAGE = 200
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$")
_URI_REFERENCE = re.compile(r"^[^\s<>\"{}|\\^`]*$")
_MISSING = object()


def _format_checker() -> FormatChecker:
    """jsonschema's checker plus dependency-free 'uri'/'uri-reference' checks (RFC 3986 shape only),
    so the result does not depend on which optional packages happen to be installed."""
    checker = FormatChecker()
    checker.checks("uri")(lambda value: not isinstance(value, str) or bool(_URI.match(value)))
    checker.checks("uri-reference")(
        lambda value: not isinstance(value, str) or bool(_URI_REFERENCE.match(value))
    )
    return checker


@dataclass(frozen=True)
class SchemaSet:
    """The schemas of one pin, loaded once, with one validator per document type."""

    pin: str
    registry: Registry[Any]
    validators: Mapping[str, Draft202012Validator]

    @classmethod
    def load(cls, pin: str = DEFAULT_PIN) -> SchemaSet:
        return _load(pin)

    def schema(self, document_type: str) -> dict[str, Any]:
        return dict(self._validator(document_type).schema)

    def validate(self, document: object, document_type: str, *, location: str = "") -> list[Finding]:
        """Findings for every schema violation, sorted by JSON path; empty when the document is valid."""
        validator = self._validator(document_type)
        findings = {
            finding
            for error in validator.iter_errors(document)
            for finding in self._findings(_leaf(error), validator, location)
        }
        return sorted(findings, key=lambda f: (f.location, f.requirement, f.message))

    def is_valid(self, document: object, document_type: str) -> bool:
        return bool(self._validator(document_type).is_valid(document))

    def classify(self, document: object) -> str | None:
        """Which document type this looks like, from its keys (for the upstream-examples oracle);
        older shapes (apiVersion/kind, annotations) are recognised too."""
        if not isinstance(document, dict):
            return None
        keys = set(document)
        kind = document.get("kind")
        if "manifestVersion" in keys:
            return "StateManifest"
        if "deploymentProfiles" in keys or kind in ("ApplicationDescription", "ApplicationSpecification"):
            return "ApplicationDescription"
        if {"metadata", "spec"} <= keys or kind == "ApplicationDeployment":
            return "ApplicationDeployment"
        if "adoptedManifestVersion" in keys or (
            isinstance(document.get("status"), dict) and "components" in keys
        ):
            return "DeploymentStatusManifest"
        if isinstance(document.get("properties"), dict):
            return "DeviceCapabilitiesManifest"
        if keys & {"trustDomain", "trustBundleUri"}:
            return "DiscoveryDocument"
        if isinstance(document.get("keys"), list):
            return "SpiffeBundle"
        if "type" in keys and keys & {"title", "status", "detail"}:
            return "ProblemDetail"
        return None

    def _validator(self, document_type: str) -> Draft202012Validator:
        try:
            return self.validators[document_type]
        except KeyError:
            raise ValueError(
                f"unknown document type {document_type!r}; known: {', '.join(DOCUMENT_TYPES)}"
            ) from None

    def _findings(
        self, error: ValidationError, validator: Draft202012Validator, location: str
    ) -> Iterator[Finding]:
        requirement = self._requirement(error, validator)
        path = _json_path(error.absolute_path)
        instance = error.instance
        if error.validator == "required" and isinstance(instance, dict):
            missing = [name for name in _as_list(error.validator_value) if name not in instance]
            for name in missing:
                yield make_finding(
                    requirement, f"{location}{_child(path, name)}", f"required property {name!r} is missing"
                )
            return
        if error.validator == "additionalProperties" and isinstance(instance, dict):
            for name in _extra_properties(error):
                if EXTENSION_NAME.match(name):  # well named, but where the model has no extension slot
                    yield make_finding(
                        EXTENSION_PLACEMENT,
                        f"{location}{_child(path, name)}",
                        f"extension {name!r} is not allowed here",
                    )
                else:
                    yield make_finding(
                        requirement,
                        f"{location}{_child(path, name)}",
                        f"property {name!r} is not allowed here",
                    )
            return
        yield make_finding(requirement, f"{location}{path}", _message(error))

    def _requirement(self, error: ValidationError, validator: Draft202012Validator) -> str:
        """The nearest x-margo-requirement on the error's schema path, following $ref across files.

        jsonschema leaves "$ref" out of schema paths, so the walk tries both the node's own key and its
        $ref target and keeps the route that ends at the schema object the error names. The schema root's
        x-margo-requirement-map then renames IDs of shared definitions for this document."""
        root = validator.schema
        resolver = self.registry.resolver(base_uri=str(root.get("$id", "")))
        found = _walk(root, resolver, tuple(error.absolute_schema_path), root[ANNOTATION], error.schema)
        requirement = found or root[ANNOTATION]
        # A shared definition names the package-side rule; a document may restate it for its own party.
        return str(root.get(REQUIREMENT_MAP, {}).get(requirement, requirement))


EXTENSION_NAME = re.compile(r"^x-[a-z][a-z0-9-]*-extensions$")
EXTENSION_PLACEMENT = "EXT-005"  # extensions sit only where the model places them


@cache
def _load(pin: str) -> SchemaSet:
    folder = pin_dir(pin) / "schemas"
    schemas = {
        path.name.removesuffix(".schema.json"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(folder.glob("*.schema.json"))
    }
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema, default_specification=DRAFT202012))
        for schema in schemas.values()
    )
    checker = _format_checker()
    # The same dict objects back the registry and the validators, so the walk in _requirement can
    # recognise the failing schema node by identity.
    validators = {
        name: Draft202012Validator(schemas[name], registry=registry, format_checker=checker)
        for name in DOCUMENT_TYPES
    }
    return SchemaSet(pin=pin, registry=registry, validators=validators)


def _walk(
    node: Any, resolver: Resolver[Any], keys: tuple[str | int, ...], found: str, target: Any
) -> str | None:
    """Depth-first along ``keys``; returns the last annotation seen on a route ending at ``target``."""
    if isinstance(node, dict) and isinstance(node.get(ANNOTATION), str):
        found = node[ANNOTATION]
    if not keys:
        return found if node is target else None
    key, rest = keys[0], keys[1:]
    if not rest and node is target:  # key is the failing keyword; its own subschema may be annotated
        child = node.get(key) if isinstance(node, dict) else None
        return (
            child[ANNOTATION] if isinstance(child, dict) and isinstance(child.get(ANNOTATION), str) else found
        )
    child = _child_node(node, key)
    if child is not _MISSING:
        result = _walk(child, resolver, rest, found, target)
        if result is not None:
            return result
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        resolved = resolver.lookup(node["$ref"])
        return _walk(resolved.contents, resolved.resolver, keys, found, target)
    return None


def _child_node(node: Any, key: str | int) -> Any:
    if isinstance(node, dict) and key in node:
        return node[key]
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    return _MISSING


def _leaf(error: ValidationError) -> ValidationError:
    """Collapse anyOf/oneOf noise. When exactly one alternative got past the value itself (all its errors lie
    deeper in the instance), that alternative was meant: report its best error. Otherwise report the value
    once ('matches none of the allowed forms')."""
    while error.validator in ("anyOf", "oneOf") and error.context:
        depth = len(error.absolute_path)
        branches: dict[object, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        deep = [subs for subs in branches.values() if all(len(sub.absolute_path) > depth for sub in subs)]
        if len(deep) != 1:
            return error
        error = best_match(deep[0])
    return error


def _json_path(parts: Sequence[str | int]) -> str:
    path = "$"
    for part in parts:
        path = f"{path}[{part}]" if isinstance(part, int) else _child(path, part)
    return path


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if _IDENTIFIER.match(name) else f"{path}[{json.dumps(name)}]"


def _as_list(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _extra_properties(error: ValidationError) -> list[str]:
    """The property names additionalProperties rejected (those no properties/patternProperties cover)."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    declared = set(schema.get("properties", {}))
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    return sorted(
        name for name in error.instance if name not in declared and not any(p.search(name) for p in patterns)
    )


def _short(value: object) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(error: ValidationError) -> str:
    """A short human message that never dumps the whole instance."""
    kind, expected, instance = error.validator, error.validator_value, error.instance
    if kind == "type":
        message = f"{_short(instance)} is not of type {' or '.join(_as_list(expected) or [str(expected)])}"
    elif kind == "enum":
        message = f"{_short(instance)} is not one of {', '.join(map(str, _as_list(expected)))}"
    elif kind == "const":
        message = f"{_short(instance)} is not {_short(expected)}"
    elif kind == "pattern":
        message = f"{_short(instance)} does not match {expected}"
    elif kind in ("anyOf", "oneOf"):
        message = f"{_short(instance)} matches none of the allowed forms"
    elif kind == "not" and expected == {} or kind is None:  # {"not": {}} or false: the member is forbidden
        name = error.absolute_path[-1] if error.absolute_path else None
        message = (
            f"property {name!r} is not allowed here" if isinstance(name, str) else "value is not allowed here"
        )
    elif kind == "contains":
        message = "no item matches the required form"
    else:
        message = error.message
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."
