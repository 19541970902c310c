"""A small, derandomized fuzzing run of every generator (the long one is ``scripts/fuzz``), and a replay
of every failing input the fuzzer ever kept (``tests/fuzz/regressions/``)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from fuzz import generators
from fuzz.generators import Case
from fuzz.harness import REGRESSIONS, load_regression, run_in_process
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

GENERATORS: dict[str, Callable[[], st.SearchStrategy[Case]]] = {
    "description": generators.description_cases,
    "compose": generators.compose_cases,
    "helm": generators.helm_cases,
    "archive": generators.archive_cases,
    "path-name": generators.path_name_cases,
    "sut": generators.sut_cases,
    "http": generators.http_answer_cases,
}


@pytest.fixture(autouse=True)
def _no_compose_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    """``docker compose config`` is not the suite's parser and costs ~0.2 s a case."""
    from margo_conformance.package import compose_archive

    monkeypatch.setattr(compose_archive, "compose_binary", lambda: None)


def _check(case: Case) -> None:
    with tempfile.TemporaryDirectory() as folder:
        outcome = run_in_process(case, Path(folder))
    assert outcome.ok, f"{case.kind}: {outcome.what}: {outcome.stderr}"


@pytest.mark.parametrize("kind", list(GENERATORS))
def test_generated_hostile_inputs_end_in_a_verdict_or_one_error(kind: str) -> None:
    run = settings(
        max_examples=50,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )(given(GENERATORS[kind]())(_check))
    run()


@pytest.mark.parametrize(
    "folder", sorted(p for p in REGRESSIONS.iterdir() if p.is_dir()) if REGRESSIONS.is_dir() else [], ids=str
)
def test_every_kept_failing_input_is_now_handled(folder: Path) -> None:
    _check(load_regression(folder))
