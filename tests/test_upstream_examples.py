"""The upstream-examples oracle: every example copied from margo/specification is classified and validated
with the suite's rc.3 schemas, and must agree with pins/<pin>/upstream-examples.yaml.

The upstream valid/ and invalid/ folders reflect older models (errata INC-109), so the oracle records the
rc.3 verdict; a new example file, a changed schema or a changed verdict shows up here as a failure.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from margo_conformance import DEFAULT_PIN
from margo_conformance.paths import pin_dir
from margo_conformance.schemas import DOCUMENT_TYPES, SchemaSet

# In CI the repository is cloned with shared/ beside it (…/main and …/shared).
SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"
EXAMPLES_DIR = SHARED_DIR / "margo-spec" / "examples"
ORACLE = pin_dir(DEFAULT_PIN) / "upstream-examples.yaml"
UNPARSEABLE = object()
# The rc.3-era example whose only defect is one over-indented line (errata INC-020).
PRE_DRAFT_EXAMPLE = "pre-draft/valid/ApplicationDescription-002.yaml"
PRE_DRAFT_BAD_LINE = '                        values: ["NVIDIA"]'
PRE_DRAFT_FIXED_LINE = '                      values: ["NVIDIA"]'


def _examples_dir() -> Path:
    if not EXAMPLES_DIR.is_dir():
        pytest.fail(
            f"the shared folder {EXAMPLES_DIR} is missing: clone the shared documents beside this repository "
            "(it must hold margo-spec/examples/)",
            pytrace=False,
        )
    return EXAMPLES_DIR


@cache
def _oracle() -> dict[str, dict[str, str]]:
    data = yaml.safe_load(ORACLE.read_text(encoding="utf-8"))
    examples: dict[str, dict[str, str]] = data["examples"]
    return examples


def _files() -> list[str]:
    if not EXAMPLES_DIR.is_dir():
        return []
    return sorted(p.relative_to(EXAMPLES_DIR).as_posix() for p in EXAMPLES_DIR.rglob("*") if p.is_file())


def _parse(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError):
        return UNPARSEABLE


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return SchemaSet.load()


def test_oracle_lists_exactly_the_example_files() -> None:
    files = set(_files()) if _examples_dir() else set()
    listed = set(_oracle())
    assert not files - listed, f"examples missing from {ORACLE.name}: {sorted(files - listed)}"
    assert not listed - files, f"{ORACLE.name} lists files that do not exist: {sorted(listed - files)}"


def test_oracle_entries_are_well_formed() -> None:
    for name, entry in _oracle().items():
        assert set(entry) == {"document", "verdict", "reason"}, name
        assert entry["document"] in DOCUMENT_TYPES, name
        assert entry["verdict"] in ("valid", "invalid"), name
        assert entry["reason"].strip() and "\n" not in entry["reason"].strip(), name


@pytest.mark.parametrize("name", _files() or ["<examples folder missing>"])
def test_example_verdict_matches_the_oracle(schemas: SchemaSet, name: str) -> None:
    path = _examples_dir() / name
    entry = _oracle().get(name)
    if entry is None:
        pytest.fail(
            f"{name} is not listed in {ORACLE.name}: add its document type, rc.3 verdict and reason",
            pytrace=False,
        )
    document = _parse(path)
    if document is UNPARSEABLE:
        assert entry["verdict"] == "invalid", f"{name} does not parse, so its rc.3 verdict is invalid"
        return
    assert schemas.classify(document) == entry["document"], f"{name} classified differently"
    findings = schemas.validate(document, entry["document"], location=name)
    verdict = "invalid" if findings else "valid"
    shown = "\n  ".join(f"{f.requirement} {f.location}: {f.message}" for f in findings)
    assert verdict == entry["verdict"], (
        f"{name}: rc.3 verdict {verdict}, oracle says {entry['verdict']}\n  {shown}"
    )


def test_the_re_indented_pre_draft_example_is_rc3_valid(schemas: SchemaSet) -> None:
    """INC-020: the rc.3-era example fails only on YAML indentation; with that fixed it is valid."""
    text = (_examples_dir() / PRE_DRAFT_EXAMPLE).read_text(encoding="utf-8")
    assert PRE_DRAFT_BAD_LINE in text
    assert _parse(_examples_dir() / PRE_DRAFT_EXAMPLE) is UNPARSEABLE
    document = yaml.safe_load(text.replace(PRE_DRAFT_BAD_LINE, PRE_DRAFT_FIXED_LINE))
    assert schemas.validate(document, "ApplicationDescription") == []
