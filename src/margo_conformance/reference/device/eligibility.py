"""Device constraints of an ApplicationDeployment against the device's own capabilities (ADEP-003).

Capacity first (ELIG-006, CAP-005): ``cpu.cores`` must be met by ONE ``cpus[]`` entry (never a sum)
whose architecture is allowed; ``memory`` and ``storage`` are minimums, compared in bytes with binary
units (errata INC-015: capabilities may write ``"4 Gi"``). Then the eligibility rules (ELIG-008..015):
rules OR-ed; within a rule the property and label selector (each if present) AND-ed; within a selector
every match expression AND-ed. Property keys are RFC 6901 pointers into capabilities ``properties``;
label keys are exact. A malformed expression (wrong ``values`` for its operator, unknown operator)
evaluates false, as does a key that reaches a value of a kind the operator cannot judge.

``evaluate`` returns a verdict with the reasons a person reads in the failed status report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

UNITS = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?) ?(Ki|Mi|Gi|Ti|Pi|Ei)?$")
_MISSING = object()


@dataclass(frozen=True)
class Verdict:
    eligible: bool
    reasons: list[str] = field(default_factory=list)  # why not (empty when eligible)

    @property
    def message(self) -> str:
        return "; ".join(self.reasons)


def evaluate(constraints: Any, capabilities: Mapping[str, Any]) -> Verdict:
    """Capacity and eligibility rules of ``deviceConstraints`` (None: no constraint)."""
    if constraints is None:
        return Verdict(True)
    if not isinstance(constraints, Mapping):
        return Verdict(False, ["deviceConstraints is not an object"])
    properties = capabilities.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    labels = capabilities.get("labels")
    labels = labels if isinstance(labels, Mapping) else {}
    reasons = capacity_problems(constraints.get("capacityRequirements"), properties)
    if reasons:
        return Verdict(False, reasons)
    rules = constraints.get("eligibilityRules")
    if rules is None:
        return Verdict(True)
    if not isinstance(rules, list):
        return Verdict(False, ["eligibilityRules is not a list"])
    failures = []
    for index, rule in enumerate(rules):
        problem = _rule_problem(rule, properties, labels)
        if problem is None:
            return Verdict(True)  # ELIG-008: rules are OR-ed
        failures.append(f"eligibilityRules[{index}]: {problem}")
    return Verdict(False, failures or ["eligibilityRules is empty: no rule can hold"])


# -- capacity ----------------------------------------------------------------------------------------


def quantity_bytes(text: Any) -> int | None:
    """``128Mi`` / ``4 Gi`` / ``1073741824`` -> bytes (binary multiples); None when unreadable."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        return int(text) if math.isfinite(text) and text >= 0 else None
    if not isinstance(text, str):
        return None
    match = _QUANTITY.match(text.strip())
    if not match:
        return None
    number, unit = float(match.group(1)), match.group(2)
    return int(number * (1024 ** UNITS[unit] if unit else 1))


def capacity_problems(requirements: Any, properties: Mapping[str, Any]) -> list[str]:
    """ELIG-006 / CAP-005: every stated capacity item must hold."""
    if requirements is None:
        return []
    if not isinstance(requirements, Mapping):
        return ["capacityRequirements is not an object"]
    problems = []
    cpu = requirements.get("cpu")
    if cpu is not None:
        problems += _cpu_problems(cpu, properties.get("cpus"))
    for name in ("memory", "storage"):
        wanted = requirements.get(name)
        if wanted is None:
            continue
        need = quantity_bytes(wanted)
        have = quantity_bytes(properties.get(name))
        if need is None:
            problems.append(f"capacityRequirements.{name} {wanted!r} is not a quantity")
        elif have is None:
            problems.append(f"capacityRequirements.{name}: the device reports no usable {name}")
        elif have < need:
            problems.append(f"capacityRequirements.{name}: needs {wanted}, the device has {properties[name]}")
    return problems


def _cpu_problems(cpu: Any, cpus: Any) -> list[str]:
    if not isinstance(cpu, Mapping):
        return ["capacityRequirements.cpu is not an object"]
    cores = cpu.get("cores")
    architectures = cpu.get("architectures")
    if not _is_number(cores):
        return [f"capacityRequirements.cpu.cores {cores!r} is not a number"]
    entries = [e for e in cpus if isinstance(e, Mapping)] if isinstance(cpus, list) else []
    for entry in entries:
        if not _is_number(entry.get("cores")) or entry["cores"] < cores:
            continue
        if architectures is not None and entry.get("architecture") not in architectures:
            continue
        return []
    allowed = f" with architecture in {list(architectures)}" if architectures is not None else ""
    return [f"capacityRequirements.cpu: no single cpus[] entry has {cores} cores{allowed} (CAP-005)"]


# -- eligibility rules -------------------------------------------------------------------------------


def _rule_problem(rule: Any, properties: Mapping[str, Any], labels: Mapping[str, Any]) -> str | None:
    if not isinstance(rule, Mapping):
        return "the rule is not an object"
    for selector_name, source, is_property in (
        ("propertySelector", properties, True),
        ("labelSelector", labels, False),
    ):
        selector = rule.get(selector_name)
        if selector is None:
            continue
        problem = _selector_problem(selector, source, is_property)
        if problem is not None:
            return f"{selector_name}.{problem}"
    return None


def _selector_problem(selector: Any, source: Mapping[str, Any], is_property: bool) -> str | None:
    expressions = selector.get("matchExpressions") if isinstance(selector, Mapping) else None
    if not isinstance(expressions, list) or not expressions:
        return "matchExpressions is missing or empty"
    for index, expression in enumerate(expressions):
        if not isinstance(expression, Mapping):
            return f"matchExpressions[{index}] is not an object"
        value = _resolve(source, expression.get("key"), is_property)
        if not matches(expression, value, is_property=is_property):
            key, operator = expression.get("key"), expression.get("operator")
            shown = "absent" if value is _MISSING else repr(value)
            return f"matchExpressions[{index}] ({key} {operator}) not met (value {shown})"
    return None


def _resolve(source: Any, key: Any, is_property: bool) -> Any:
    if not isinstance(key, str):
        return _MISSING
    if not is_property:  # ELIG-010: the exact label key
        return source.get(key, _MISSING) if isinstance(source, Mapping) else _MISSING
    return json_pointer(source, key)


def json_pointer(document: Any, pointer: str) -> Any:
    """RFC 6901; ``_MISSING`` when the pointer does not resolve."""
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        return _MISSING
    current = document
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, Mapping):
            if token not in current:
                return _MISSING
            current = current[token]
        elif isinstance(current, list):
            if not token.isdigit() or (token != "0" and token.startswith("0")) or int(token) >= len(current):
                return _MISSING
            current = current[int(token)]
        else:
            return _MISSING
    return current


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool) or _is_number(value)


def _kind(value: Any) -> str:
    """scalar | scalar-array | object-array | other (ELIG-009/010)."""
    if _is_scalar(value):
        return "scalar"
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value) or all(_is_number(v) for v in value):
            return "scalar-array"
        if all(isinstance(v, Mapping) for v in value):
            return "object-array"
    return "other"


def _same(left: Any, right: Any) -> bool:
    """Equality that keeps booleans, numbers and strings apart (True is not 1; exact strings)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    return isinstance(left, str) and isinstance(right, str) and left == right


def _values_ok(values: Any) -> bool:
    """ELIG-012: one or more strings or numbers, or exactly one boolean, all of one type."""
    if not isinstance(values, list) or not values:
        return False
    if all(isinstance(v, bool) for v in values):
        return len(values) == 1
    return all(isinstance(v, str) for v in values) or all(_is_number(v) for v in values)


def matches(expression: Mapping[str, Any], value: Any, *, is_property: bool) -> bool:
    """One match expression against the value its key reached (``_MISSING`` if none)."""
    operator = expression.get("operator")
    values = expression.get("values", _MISSING)
    kind = "absent" if value is _MISSING else _kind(value)
    if kind == "other" or (kind == "object-array" and not is_property):
        kind = "other"  # ELIG-009/010: evaluates false whatever the operator
    if operator in ("Exists", "DoesNotExist"):
        if values is not _MISSING or "itemSelector" in expression:  # ELIG-013
            return False
        if kind == "other":
            return False
        return (kind != "absent") is (operator == "Exists")
    if operator in ("In", "NotIn"):
        if not _values_ok(values) or kind not in ("scalar", "scalar-array"):
            return False
        assert isinstance(values, list)
        items = value if kind == "scalar-array" else [value]
        hit = any(_same(item, wanted) for item in items for wanted in values)
        return hit if operator == "In" else not hit
    if operator in ("Gt", "Lt"):
        if not (isinstance(values, list) and len(values) == 1 and _is_number(values[0])):  # ELIG-014
            return False
        if not _is_number(value):
            return False
        return bool(value > values[0]) if operator == "Gt" else bool(value < values[0])
    if operator in ("ContainsAll", "ContainsAny"):
        return _contains(expression, value, kind, values, all_of=operator == "ContainsAll")
    return False  # ELIG-011: unknown operator


def _contains(expression: Mapping[str, Any], value: Any, kind: str, values: Any, *, all_of: bool) -> bool:
    """ELIG-015: itemSelector with >= 1 expressions, no values; some element satisfies all (ContainsAll)
    or any (ContainsAny) item expression; item keys point into each element."""
    selector = expression.get("itemSelector")
    items: Sequence[Any] = (selector.get("matchExpressions") if isinstance(selector, Mapping) else None) or []
    if values is not _MISSING or not isinstance(items, list) or not items:
        return False
    if kind not in ("scalar-array", "object-array"):
        return False
    for element in value:
        results = [
            isinstance(item, Mapping)
            and matches(item, _resolve(element, item.get("key"), True), is_property=True)
            for item in items
        ]
        if all(results) if all_of else any(results):
            return True
    return False
