"""One bounded loader for untrusted YAML and JSON (descriptions, Compose files, charts, SUT files, bodies).

A hostile document must cost at most what its limits allow, and every way it can fail must become one
``UntrustedInput`` error naming the place and the limit:

* size is checked before parsing;
* nesting depth, node count after alias expansion (billion laughs), recursive aliases and the number of
  documents are measured on libyaml's *event* stream, which is iterative, before any node is composed:
  composing (recursive, in C or Python) only ever sees a shallow, small document, so libyaml cannot
  overflow its stack (it segfaults at ~30,000 levels) and Python cannot raise RecursionError;
* constructor errors that are not ``YAMLError`` (``!!int xyz``, integers over 4,300 digits, bad dates,
  unhashable keys) are caught;
* with ``str_keys`` every mapping key must be a string, so later code may rely on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import InputError

# libyaml's event parser when PyYAML was built with it: iterative and ten times faster.
_PARSER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Limits:
    """What one untrusted document may cost. The defaults are far above any real package file."""

    max_bytes: int = 8 * 1024 * 1024
    max_depth: int = 100
    max_nodes: int = 200_000  # after alias expansion: a billion-laughs block exceeds it at once
    max_documents: int = 1
    str_keys: bool = True


DEFAULT_LIMITS = Limits()
# HTTP bodies a subject answers with (WFM and device APIs): as large as the client reads (64 MiB), deeper
# than any real document, still far below the interpreter's recursion limit.
HTTP_BODY_LIMITS = Limits(max_bytes=64 * 1024 * 1024, max_depth=512, max_nodes=5_000_000)


class UntrustedInput(InputError):
    """An untrusted document is malformed or exceeds a limit; ``place`` is where, ``problem`` what."""

    def __init__(self, place: str, problem: str) -> None:
        super().__init__(f"{place}: {problem}")
        self.place = place
        self.problem = problem


def load_yaml(text: str | bytes, *, where: str, limits: Limits = DEFAULT_LIMITS) -> Any:
    """The one YAML document of ``text`` (None when empty), within ``limits``."""
    documents = load_yaml_documents(text, where=where, limits=limits)
    if len(documents) > 1:
        raise UntrustedInput(where, "more than one YAML document")
    return documents[0] if documents else None


def load_yaml_documents(text: str | bytes, *, where: str, limits: Limits = DEFAULT_LIMITS) -> list[Any]:
    """Every YAML document of ``text``, within ``limits``; UntrustedInput otherwise."""
    _check_size(text, where, limits)
    _measure_events(text, where, limits)
    try:
        documents = list(yaml.load_all(text, Loader=_PARSER))
    except yaml.YAMLError as exc:
        raise UntrustedInput(_marked(where, exc), f"not valid YAML: {_yaml_problem(exc)}") from None
    except (ValueError, TypeError, OverflowError, UnicodeError, RecursionError) as exc:
        raise UntrustedInput(where, f"a value cannot be read: {_one_line(exc)}") from None
    if limits.str_keys:
        for document in documents:
            _check_keys(document, where)
    return documents


def load_json(text: str | bytes, *, where: str, limits: Limits = DEFAULT_LIMITS) -> Any:
    """The JSON value of ``text`` within ``limits`` (size, depth; NaN and Infinity are refused)."""
    _check_size(text, where, limits)
    if json_depth(text, stop_above=limits.max_depth) > limits.max_depth:
        raise UntrustedInput(where, f"nesting deeper than {limits.max_depth} levels (limit)")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, TypeError, RecursionError) as exc:
        raise UntrustedInput(where, f"not valid JSON: {_one_line(exc)}") from None
    return value


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(text: str | bytes, *, stop_above: int | None = None) -> int:
    """The deepest bracket nesting of a JSON text, ignoring brackets inside strings; linear time, and
    it stops counting once ``stop_above`` is exceeded (a megabyte of '[' costs nothing)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        depth += 1 if byte in (0x5B, 0x7B) else -1
        if depth > deepest:
            deepest = depth
            if stop_above is not None and deepest > stop_above:
                break
    return deepest


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _check_size(text: str | bytes, where: str, limits: Limits) -> None:
    if len(text) > limits.max_bytes:
        raise UntrustedInput(where, f"larger than {limits.max_bytes} bytes (limit)")


def _measure_events(text: str | bytes, where: str, limits: Limits) -> None:
    """Depth, expanded size, alias cycles and document count from the event stream, before composing.

    ``total`` counts every node as composing would, an alias costing the size of what it names, so the
    expanded size is known in one linear pass; an anchored collection's size is ``total`` at its end
    minus ``total`` at its start.
    """
    open_starts: list[tuple[str | None, int]] = []  # (anchor, total at its start) per open collection
    sizes: dict[str, int] = {}
    total = documents = 0
    for event in _events(text, where):
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > limits.max_documents:
                raise UntrustedInput(where, f"more than {limits.max_documents} YAML document(s) (limit)")
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(open_starts) >= limits.max_depth:
                raise UntrustedInput(
                    _at(where, event), f"nesting deeper than {limits.max_depth} levels (limit)"
                )
            open_starts.append((event.anchor, total))
            total += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, start = open_starts.pop()
            if anchor:
                sizes[anchor] = total - start
        elif isinstance(event, yaml.ScalarEvent):
            total += 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in open_starts):
                raise UntrustedInput(_at(where, event), f"alias *{event.anchor} refers to itself (recursive)")
            total += sizes.get(event.anchor or "", 1)
        if total > limits.max_nodes:
            raise UntrustedInput(
                _at(where, event), f"more than {limits.max_nodes} nodes once aliases are expanded (limit)"
            )


def _events(text: str | bytes, where: str) -> Iterator[Any]:
    loader = None
    try:
        loader = _PARSER(text)
        while loader.check_event():
            yield loader.get_event()
    except yaml.YAMLError as exc:
        raise UntrustedInput(_marked(where, exc), f"not valid YAML: {_yaml_problem(exc)}") from None
    except (ValueError, TypeError, UnicodeError) as exc:
        raise UntrustedInput(where, f"not valid YAML: {_one_line(exc)}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_keys(document: Any, where: str) -> None:
    """Every mapping key is a string (iterative: the depth is already bounded, but stay flat anyway)."""
    stack: list[tuple[Any, str]] = [(document, "$")]
    seen: set[int] = set()
    while stack:
        value, path = stack.pop()
        if id(value) in seen:  # an alias: the same object was checked already
            continue
        if isinstance(value, dict):
            seen.add(id(value))
            for key, item in value.items():
                if not isinstance(key, str):
                    raise UntrustedInput(where, f"{path}: key {_one_line(repr(key))} is not a string")
                stack.append((item, f"{path}.{key}"[:200]))
        elif isinstance(value, list):
            seen.add(id(value))
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(value))


def _at(where: str, event: Any) -> str:
    mark = getattr(event, "start_mark", None)
    return f"{where}:{mark.line + 1}:{mark.column + 1}" if mark is not None else where


def _marked(where: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f"{where}:{mark.line + 1}:{mark.column + 1}" if mark is not None else where


def _yaml_problem(exc: yaml.YAMLError) -> str:
    return _one_line(getattr(exc, "problem", None) or exc)


def _one_line(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= 200 else text[:197] + "..."
