"""One regression test per root cause of the hostile-input report (part 3): each input once crashed,
hung or blew up the suite; now it is a finding or one clear error line, in bounded time and memory."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest
from fuzz.generators import (
    COMPOSE_PACKAGE,
    HELM_PACKAGE,
    Entry,
    _chain,
    _folder_entries,
    _laughs,
    _sparse,
    tar_gz,
)

from margo_conformance._internal import bounded, tar_safety
from margo_conformance._internal.safe_paths import plain_name
from margo_conformance.config import Sut
from margo_conformance.errors import InputError, UsageError
from margo_conformance.findings import Finding, Findings, Level
from margo_conformance.package.check import check_package
from margo_conformance.package.helm_chart import uses_lookup

# -- the bounded loader ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: " + "[" * 30_000 + "]" * 30_000, "nesting deeper than 100 levels"),  # libyaml segfaulted
        ("a: " + "{a: " * 5_000 + "1" + "}" * 5_000, "nesting deeper than 100 levels"),  # RecursionError
        (_laughs(9, 9).decode(), "nodes once aliases are expanded"),  # billion laughs: 2.7 GB
        ("a: &a [*a]", "refers to itself"),  # circular alias: json.dumps raised
        ("a: !!int xyz", "a value cannot be read"),  # ValueError, not YAMLError
        ("a: " + "9" * 5000, "a value cannot be read"),  # int over 4,300 digits
        ("a: !!timestamp 2001-13-45", "a value cannot be read"),
        ("{1: a}", "is not a string"),  # int keys
        ("? [a]\n: 1", "not valid YAML"),  # unhashable key
        ("a: 1\n---\nb: 2", "more than 1 YAML document"),
    ],
)
def test_the_loader_refuses_each_hostile_shape_with_one_named_problem(text: str, problem: str) -> None:
    with pytest.raises(bounded.UntrustedInput) as caught:
        bounded.load_yaml(text, where="margo.yaml")
    assert problem in caught.value.problem and caught.value.place.startswith("margo.yaml")


def test_the_loader_reads_ordinary_documents_with_anchors_and_merge_keys() -> None:
    text = "base: &b {image: x, ports: [1]}\nweb:\n  <<: *b\n  name: w\n"
    assert bounded.load_yaml(text, where="compose.yaml")["web"] == {"image": "x", "ports": [1], "name": "w"}


def test_json_depth_is_measured_before_parsing_and_strings_do_not_count() -> None:
    assert bounded.json_depth('{"a": "[[[[", "b": [[1]]}') == 3
    assert bounded.json_depth(r'["\\", ["x\"[", []]]') == 3  # escaped quotes and backslashes
    assert bounded.json_depth(b"[" * 10_000_000, stop_above=100) == 101
    with pytest.raises(bounded.UntrustedInput, match="nesting deeper"):
        bounded.load_json("[" * 100_000, where="body")
    with pytest.raises(bounded.UntrustedInput, match="NaN is not JSON"):
        bounded.load_json('{"a": NaN}', where="body")


# -- descriptions, through package check -------------------------------------------------------------


def _package(tmp_path: Path, description: str | bytes, source: Path = COMPOSE_PACKAGE) -> Path:
    root = tmp_path / "pkg"
    shutil.copytree(source, root)
    (root / "margo.yaml").write_bytes(description.encode() if isinstance(description, str) else description)
    return root


@pytest.mark.parametrize(
    "description",
    [
        "a: " + "[" * 30_000 + "]" * 30_000,
        _laughs(10, 10).decode(),
        "id: &a [*a]",
        "apiVersion: !!int xyz",
        "{1: 2, null: 3}",
        "id: '[/]'\nmetadata: {name: '[bold]'}",
    ],
    ids=["deep", "laughs", "cycle", "constructor", "keys", "markup"],
)
def test_a_hostile_description_is_an_appd_101_finding(tmp_path: Path, description: str) -> None:
    report = check_package(str(_package(tmp_path, description)))
    assert not report.conformant
    assert "APPD-101" in report.findings.requirements() or description.startswith("id: '[/]'")


def test_many_findings_stay_linear(tmp_path: Path) -> None:
    """20,000 unknown keys took 60 s (``Findings.add`` searched a list); now one set lookup each."""
    findings = Findings()
    for i in range(50_000):
        findings.add(Finding("APPD-101", Level.MUST, f"$.x{i}", "unknown"))
        findings.add(Finding("APPD-101", Level.MUST, f"$.x{i}", "unknown"))
    assert len(findings) == 50_000


def test_type_confusion_in_the_semantic_rules_is_no_crash(tmp_path: Path) -> None:
    text = (COMPOSE_PACKAGE / "margo.yaml").read_text(encoding="utf-8")
    text += "\nconfiguration: {schema: 5, sections: [{settings: [{parameter: [1], schema: {a: 1}}]}]}\n"
    text = text.replace('components: ["metrics-gateway"]', "components: [[1]]")
    report = check_package(str(_package(tmp_path, text)))
    assert not report.conformant


# -- path traversal ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../../../../../etc/ssl", "..", "a/../../b", "x\x00y", "n" * 300])
def test_a_component_named_like_a_path_never_reads_outside_the_package(tmp_path: Path, name: str) -> None:
    text = (
        (COMPOSE_PACKAGE / "margo.yaml")
        .read_text(encoding="utf-8")
        .replace("- name: sensor-hub", f"- name: {name!r}")
    )
    report = check_package(str(_package(tmp_path, text)))
    assert not any("/etc" in f.location or "ssl" in f.location for f in report.findings)
    assert not plain_name(name)


def test_a_component_folder_that_links_outside_is_not_packed(tmp_path: Path) -> None:
    root = _package(tmp_path, (COMPOSE_PACKAGE / "margo.yaml").read_bytes())
    shutil.rmtree(root / "components" / "sensor-hub")
    (root / "components" / "sensor-hub").symlink_to("/etc")
    report = check_package(str(root))
    assert not any("/etc" in f.location or "passwd" in f.message for f in report.findings)


# -- archives ------------------------------------------------------------------------------------------


def _problems(entries: list[Entry]) -> set[str]:
    with tar_safety.open_tar_gz(tar_gz(entries)) as tar:
        return {p.kind for p in tar_safety.member_problems(tar)}


def test_an_exponential_symlink_chain_resolves_in_linear_time() -> None:
    """``x_i -> x_{i+1}/../x_{i+1}``: 22 levels took 15 s, doubling per level (30 did not end)."""
    entries = [Entry("top", tarfile.DIRTYPE, mode=0o755), *_chain("top", 30, exponential=True)]
    assert _problems(entries) == set()  # every link stays inside top/
    entries[-1] = Entry("top/x30", tarfile.SYMTYPE, linkname="../..", mode=0o777)
    assert _problems(entries) == {"link-escape"}
    # a chain longer than the hop bound is refused as a whole, as fast
    assert _problems([Entry("top", tarfile.DIRTYPE), *_chain("top", 5_000, exponential=True)]) == {
        "link-escape"
    }


def test_a_hard_link_to_a_missing_member_is_a_problem_not_a_key_error(tmp_path: Path) -> None:
    entries = [
        Entry("top", tarfile.DIRTYPE, mode=0o755),
        Entry("top/h", tarfile.LNKTYPE, linkname="top/none"),
    ]
    assert "missing-link-target" in _problems(entries)
    with tar_safety.open_tar_gz(tar_gz(entries)) as tar, pytest.raises(InputError, match="no such member"):
        tar_safety.extract_safely(tar, tmp_path)


@pytest.mark.parametrize("mtime", ["-1e300", "1e300"])
def test_a_modification_time_out_of_range_is_a_problem_not_an_overflow(tmp_path: Path, mtime: str) -> None:
    entries = [Entry("top", tarfile.DIRTYPE, mode=0o755), Entry("top/f", data=b"x", pax={"mtime": mtime})]
    assert "header-field" in _problems(entries)
    with tar_safety.open_tar_gz(tar_gz(entries)) as tar, pytest.raises(InputError, match="out of range"):
        tar_safety.extract_safely(tar, tmp_path)


def test_a_sparse_member_is_refused_before_its_holes_are_allocated() -> None:
    """254 bytes claiming 2 GiB allocated 4.3 GB when read."""
    with pytest.raises(InputError, match="sparse"):
        tar_safety.open_tar_gz(tar_gz([Entry("top", tarfile.DIRTYPE), _sparse("top/compose.yaml", 2**31)]))


def test_a_hostile_compose_archive_is_findings(tmp_path: Path) -> None:
    root = _package(tmp_path, (COMPOSE_PACKAGE / "margo.yaml").read_bytes())
    shutil.rmtree(root / "components" / "sensor-hub")
    source = COMPOSE_PACKAGE / "components" / "sensor-hub"
    entries = _folder_entries(source, "sensor-hub") + _chain("sensor-hub", 40, exponential=True)
    entries.append(Entry("sensor-hub/h", tarfile.LNKTYPE, linkname="sensor-hub/none"))
    (root / "components" / "sensor-hub.tar.gz").write_bytes(tar_gz(entries))
    report = check_package(str(root))
    assert "REG-015" in report.findings.requirements()


# -- Helm ----------------------------------------------------------------------------------------------


def test_the_lookup_scan_is_linear_and_still_finds_lookup() -> None:
    """``\\{\\{-?[^}]*\\blookup\\b`` took 23 s on 20,000 ``{{``; the scan reads each action once."""
    assert not uses_lookup("{{" * 200_000)
    assert uses_lookup("{{ " * 100_000 + "lookup")
    assert uses_lookup('{{- $s := lookup "v1" "Secret" "ns" "n" }}')
    assert not uses_lookup("{{ .Values.lookup_table }} lookup")


def test_a_hostile_chart_yaml_is_an_appd_110_finding(tmp_path: Path) -> None:
    root = _package(tmp_path, (HELM_PACKAGE / "margo.yaml").read_bytes(), source=HELM_PACKAGE)
    shutil.rmtree(root / "components" / "metrics-gateway")
    entries = _folder_entries(HELM_PACKAGE / "components" / "metrics-gateway", "metrics-gateway")
    entries = [e if not e.name.endswith("Chart.yaml") else Entry(e.name, data=b"a: !!int x") for e in entries]
    (root / "components" / "metrics-gateway.tgz").write_bytes(tar_gz(entries))
    assert "APPD-110" in check_package(str(root)).findings.requirements()


# -- SUT files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[" * 20_000 + "]" * 20_000,
        "a: " + "{a: " * 5_000 + "}" * 5_000,
        "declares: " + _laughs(9, 9).decode(),
        "x" * 2_000_000,
    ],
    ids=["deep-list", "deep-map", "laughs", "huge"],
)
def test_a_hostile_sut_file_is_one_usage_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "sut.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        Sut.from_file(path, environ={})
    assert len(caught.value.diagnostics()) < 2_000
