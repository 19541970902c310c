"""The package checker library: archive safety, the Compose/description/layout checks, the fault catalogue.

Fast and offline: no registry, no Docker daemon (the Compose-spec check runs the bundled compose binary).
"""

from __future__ import annotations

import copy
import gzip
import io
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from margo_conformance._internal import tar_safety
from margo_conformance._internal.archive_builder import (
    ArchiveEntry,
    entries_from_directory,
    pack,
    pack_directory,
)
from margo_conformance.errors import InputError
from margo_conformance.findings import Finding, Findings, Level
from margo_conformance.package import check
from margo_conformance.package.compose_archive import check_compose_archive
from margo_conformance.package.description import check_description
from margo_conformance.package.helm_chart import check_helm_chart
from margo_conformance.package.mutants import load_faults, materialize

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "fixtures" / "packages"
VENDOR_A = PACKAGES / "vendor-a-compose"
SENSOR_HUB = VENDOR_A / "components" / "sensor-hub"
FAULTS = load_faults(PACKAGES / "faults.yaml")
LOCAL_FAULTS = sorted(name for name, fault in FAULTS.items() if not fault.needs_registry)
SHOULD_FAULTS = {
    "compose-folder-misnamed",
    "capacity-restated-in-property-selector",
    "resource-outside-resources-folder",  # PKG-002 is a SHOULD (INC-156)
}

MiB = 1024 * 1024


# -- helpers -----------------------------------------------------------------------------------------


def top(name: str = "c") -> ArchiveEntry:
    return ArchiveEntry(name, type="dir", mode=0o755)


def file(name: str, text: str = "x\n", mode: int = 0o644) -> ArchiveEntry:
    return ArchiveEntry(name, data=text.encode(), mode=mode)


def link(name: str, target: str, kind: str = "symlink") -> ArchiveEntry:
    return ArchiveEntry(name, type=kind, target=target, mode=0o777)


def raw_tar_gz(*infos: tarfile.TarInfo) -> bytes:
    """A gzip'd tar of bare headers, for member types archive_builder does not make (devices)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info in infos:
            tar.addfile(info)
    return gzip.compress(raw.getvalue(), mtime=0)


def gzip_of_zeros(size: int) -> bytes:
    """``size`` zero bytes gzip'd, built chunk by chunk so the test never holds them in memory."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(MiB)
    body = b"".join(compressor.compress(chunk) for _ in range(size // MiB))
    return body + compressor.flush()


def problems(data: bytes) -> list[tuple[str, str]]:
    with tar_safety.open_tar_gz(data) as tar:
        return [(p.member, p.kind) for p in tar_safety.member_problems(tar)]


def summary(findings: Findings) -> list[tuple[str, Level]]:
    return [(f.requirement, f.level) for f in findings]


def files_under(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*"))


@pytest.fixture
def small_inflate_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """A 1 MiB decompression limit. ``decompress_gzip`` binds MAX_DECOMPRESSED_BYTES as its keyword
    default at import time, so patching the module constant alone would not reach ``open_tar_gz``."""
    monkeypatch.setattr(tar_safety, "MAX_DECOMPRESSED_BYTES", MiB)
    monkeypatch.setattr(tar_safety.decompress_gzip, "__kwdefaults__", {"limit": MiB})
    return MiB


# -- tar_safety: reading ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04 a zip file", "not gzip"),
        (b"", "not gzip"),
        (b"\x1f\x8b\x08\x00" + b"\xff" * 40, "corrupt gzip"),
        (gzip.compress(b"not a tar, just text" * 10), "not a valid tar"),
    ],
    ids=["zip", "empty", "corrupt-gzip", "gzip-of-non-tar"],
)
def test_unreadable_archives_are_input_errors(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        tar_safety.open_tar_gz(data)


def test_gzip_with_a_bad_checksum_is_an_input_error() -> None:
    data = bytearray(pack([top(), file("c/a")]))
    data[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    with pytest.raises(InputError, match="corrupt gzip"):
        tar_safety.open_tar_gz(bytes(data))


def test_gzip_bomb_is_refused_at_the_limit() -> None:
    bomb = gzip_of_zeros(64 * MiB)
    assert len(bomb) < MiB // 4
    with pytest.raises(InputError, match="beyond 1 MiB"):
        tar_safety.decompress_gzip(bomb, limit=MiB)


def test_gzip_bomb_is_refused_when_opening_the_tar(small_inflate_limit: int) -> None:
    with pytest.raises(InputError, match="inflates beyond 1 MiB"):
        tar_safety.open_tar_gz(gzip_of_zeros(64 * MiB))


def test_input_just_under_the_limit_is_accepted(small_inflate_limit: int) -> None:
    data = pack([top(), file("c/a", "x" * (small_inflate_limit // 2))])
    with tar_safety.open_tar_gz(data) as tar:
        assert [m.name for m in tar.getmembers()] == ["c", "c/a"]


def test_too_many_members_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tar_safety, "MAX_MEMBERS", 5)
    many = pack([top(), *(file(f"c/{i}") for i in range(5))])
    with pytest.raises(InputError, match="more than 5 members"):
        tar_safety.open_tar_gz(many)
    with tar_safety.open_tar_gz(pack([top(), *(file(f"c/{i}") for i in range(4))])) as tar:
        assert len(tar.getmembers()) == 5


def test_a_multi_member_gzip_is_read_whole() -> None:
    whole = gzip.decompress(pack([top(), file("c/a"), link("c/sock", "/var/run/docker.sock")]))
    split = 3 * 512  # after the headers and data of "c" and "c/a": the symlink is in the second gzip member
    data = gzip.compress(whole[:split], mtime=0) + gzip.compress(whole[split:], mtime=0)
    assert gzip.decompress(data) == whole
    assert ("c/sock", "link-escape") in problems(data)


# -- tar_safety: member classification ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "kinds"),
    [
        (file("/etc/cron.d/evil"), ["absolute-path"]),
        (file("c/../../evil.sh"), ["parent-reference"]),
        (link("c/sock", "/var/run/docker.sock"), ["link-escape"]),
        (link("c/up", "../../etc/passwd"), ["link-escape"]),
        (link("c/up", ".."), ["link-escape"]),  # the archive root is outside the top-level folder
        (link("c/other-top", "../d/x"), ["link-escape"]),  # another top-level folder is outside too
        (link("c/hard", "../etc/passwd", kind="hardlink"), ["link-escape"]),
        (link("c/hard", "/etc/passwd", kind="hardlink"), ["link-escape"]),
        (link("c/inside", "compose.yaml"), []),
        (link("c/sub/inside", "../compose.yaml"), []),
        (link("c/hard", "c/compose.yaml", kind="hardlink"), []),
        (ArchiveEntry("c/fifo", type="fifo"), ["special-file"]),
        (file("c/run.sh", mode=0o4755), ["setid-bit"]),
        (file("c/run.sh", mode=0o2755), ["setid-bit"]),
        (ArchiveEntry("c/tmp", type="dir", mode=0o1777), ["sticky-bit"]),
    ],
    ids=[
        "absolute",
        "dotdot",
        "symlink-absolute",
        "symlink-relative-escape",
        "symlink-to-root",
        "symlink-to-another-top",
        "hardlink-relative-escape",
        "hardlink-absolute",
        "symlink-inside",
        "symlink-inside-from-subdir",
        "hardlink-inside",
        "fifo",
        "setuid",
        "setgid",
        "sticky",
    ],
)
def test_member_problems_classify_each_unsafe_member(entry: ArchiveEntry, kinds: list[str]) -> None:
    data = pack([top(), file("c/compose.yaml"), entry])
    assert problems(data) == [(entry.name, kind) for kind in kinds]


def test_a_character_device_is_a_special_file() -> None:
    device = tarfile.TarInfo("c/null")
    device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3
    assert problems(raw_tar_gz(tarfile.TarInfo("c/ok"), device)) == [("c/null", "special-file")]


# -- tar_safety: extraction ---------------------------------------------------------------------------

ESCAPES: dict[str, Callable[[Path], list[ArchiveEntry]]] = {
    "absolute": lambda base: [file(str(base / "escaped.txt"))],
    "dotdot": lambda base: [file("c/../../escaped.txt")],
    "symlink-then-write-through-it": lambda base: [link("c/out", "../.."), file("c/out/escaped.txt")],
    "symlink-absolute": lambda base: [link("c/out", str(base))],
    "hardlink": lambda base: [link("c/passwd", "../escaped.txt", kind="hardlink")],
    "fifo": lambda base: [ArchiveEntry("c/fifo", type="fifo")],
    "setuid": lambda base: [file("c/run.sh", mode=0o4755)],
}


@pytest.mark.parametrize("case", ESCAPES)
def test_extract_safely_refuses_and_writes_nothing(case: str, tmp_path: Path) -> None:
    destination = tmp_path / "out" / "dest"
    destination.mkdir(parents=True)
    data = pack([top(), file("c/compose.yaml"), *ESCAPES[case](tmp_path)])
    with tar_safety.open_tar_gz(data) as tar, pytest.raises(InputError, match="refusing to extract"):
        tar_safety.extract_safely(tar, destination)
    assert files_under(tmp_path) == [tmp_path / "out", destination]


def test_extract_safely_refuses_a_link_through_a_symlinked_directory(tmp_path: Path) -> None:
    """A link written through another link: member_problems resolves the chain as an extractor would."""
    destination = tmp_path / "out" / "dest"
    destination.mkdir(parents=True)
    data = pack([top(), link("c/d", ".."), link("c/d/e", "../../escaped.txt")])
    with tar_safety.open_tar_gz(data) as tar, pytest.raises(InputError, match="refusing to extract"):
        tar_safety.extract_safely(tar, destination)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "out" / "escaped.txt").exists()


def test_extract_safely_extracts_a_safe_archive(tmp_path: Path) -> None:
    data = pack([top(), file("c/compose.yaml", "services: {}\n"), link("c/alias.yaml", "compose.yaml")])
    with tar_safety.open_tar_gz(data) as tar:
        tar_safety.extract_safely(tar, tmp_path)
    assert (tmp_path / "c" / "alias.yaml").read_text() == "services: {}\n"
    assert (tmp_path / "c" / "alias.yaml").is_symlink()


# -- archive_builder ----------------------------------------------------------------------------------


def test_pack_is_deterministic() -> None:
    first, second = pack_directory(SENSOR_HUB, top="sensor-hub"), pack_directory(SENSOR_HUB, top="sensor-hub")
    assert first == second
    assert first[4:8] == b"\x00\x00\x00\x00"  # gzip header MTIME
    with tar_safety.open_tar_gz(first) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["sensor-hub", "sensor-hub/compose.yaml", "sensor-hub/sensor-hub.env"]
    assert {(m.mtime, m.uid, m.gid, m.uname) for m in members} == {(0, 0, 0, "root")}


# -- Compose archives ---------------------------------------------------------------------------------

COMPOSE_TEXT = (SENSOR_HUB / "compose.yaml").read_text(encoding="utf-8")


def sensor_hub(
    *, folder: str = "sensor-hub", compose: str = COMPOSE_TEXT, extra: tuple[ArchiveEntry, ...] = ()
) -> bytes:
    """vendor-a's Compose archive, optionally with another folder name, compose.yaml or more members."""
    entries = [
        ArchiveEntry(e.name.replace("sensor-hub", folder, 1), e.type, e.data, e.target, e.mode)
        for e in entries_from_directory(SENSOR_HUB, top="sensor-hub")
    ]
    entries = [
        file(f"{folder}/compose.yaml", compose) if e.name == f"{folder}/compose.yaml" else e for e in entries
    ]
    return pack([*entries, *extra])


def compose_findings(data: bytes) -> Findings:
    return check_compose_archive(data, component="sensor-hub", location="sensor-hub.tar.gz")


def test_reference_compose_archive_has_no_findings() -> None:
    assert summary(compose_findings(sensor_hub())) == []


def test_misnamed_folder_is_one_should_finding() -> None:
    findings = compose_findings(sensor_hub(folder="app"))
    assert summary(findings) == [("REG-013", Level.SHOULD)]
    assert findings.conformant
    assert "'app'" in findings.items[0].message


def test_obsolete_version_key_is_still_conformant() -> None:
    """The Compose Specification calls the top-level `version` informative only (Compose warns)."""
    findings = compose_findings(sensor_hub(compose='version: "3.8"\n' + COMPOSE_TEXT))
    assert summary(findings) == []


def compose_yaml(*, env_file: list[Any] | None = None, configs: dict[str, str] | None = None) -> str:
    """A one-service compose.yaml with the given env_file list and file-based configs."""
    service: dict[str, Any] = {"image": "margo-test/http-server:1.0.0"}
    document: dict[str, Any] = {"services": {"sensor-hub": service}}
    if env_file is not None:
        service["env_file"] = env_file
    if configs:
        service["configs"] = list(configs)
        document["configs"] = {name: {"file": path} for name, path in configs.items()}
    return yaml.safe_dump(document, sort_keys=False)


def test_optional_env_file_may_be_missing() -> None:
    compose = compose_yaml(env_file=["sensor-hub.env", {"path": "site-overrides.env", "required": False}])
    assert summary(compose_findings(sensor_hub(compose=compose))) == []


def test_required_env_file_given_as_a_mapping_must_be_present() -> None:
    findings = compose_findings(sensor_hub(compose=compose_yaml(env_file=[{"path": "site.env"}])))
    assert summary(findings) == [("REG-014", Level.MUST)]
    assert findings.items[0].location.endswith("#services.sensor-hub.env_file[0]")


@pytest.mark.parametrize("reference", ["../secrets.txt", "/etc/secrets.txt", "missing.txt"])
def test_config_file_outside_or_missing_is_reg_014(reference: str) -> None:
    findings = compose_findings(sensor_hub(compose=compose_yaml(configs={"settings": reference})))
    assert summary(findings) == [("REG-014", Level.MUST)]
    assert findings.items[0].location.endswith("#configs.settings.file")


def test_config_file_inside_the_folder_is_fine() -> None:
    extra = (ArchiveEntry("sensor-hub/conf", type="dir", mode=0o755), file("sensor-hub/conf/s.txt"))
    compose = compose_yaml(configs={"settings": "./conf/s.txt"})
    assert summary(compose_findings(sensor_hub(compose=compose, extra=extra))) == []


SECRET = "secrets:\n  site-token:\n    file: ./sensor-hub.env\n"


@pytest.mark.parametrize(
    ("volumes", "where"),
    [
        (["./sensor-hub.env:/etc/site.env:ro"], "#services.sensor-hub.volumes[0]"),
        (
            [{"type": "bind", "source": "sensor-hub.env", "target": "/etc/site.env"}],
            "#services.sensor-hub.volumes[0]",
        ),
    ],
)
def test_a_shipped_bind_mount_source_is_reg_014(volumes: list[Any], where: str) -> None:
    """REG-014 MUST NOT: a bind mount names a path of the device; its source is not in the archive."""
    document = yaml.safe_load(COMPOSE_TEXT)
    document["services"]["sensor-hub"]["volumes"] = volumes
    findings = compose_findings(sensor_hub(compose=yaml.safe_dump(document)))
    assert summary(findings) == [("REG-014", Level.MUST)]
    assert findings.items[0].location.endswith(where) and "bind mount" in findings.items[0].message


@pytest.mark.parametrize(
    "volume",
    [
        "data:/var/lib/data",
        "/srv/site:/etc/site:ro",
        "./not-shipped:/x",
        {"type": "volume", "source": "data", "target": "/data"},
    ],
)
def test_named_volumes_and_unshipped_bind_sources_are_fine(volume: Any) -> None:
    document = yaml.safe_load(COMPOSE_TEXT)
    document["services"]["sensor-hub"]["volumes"] = [volume]
    if isinstance(volume, dict) or not volume.startswith((".", "/")):
        document["volumes"] = {"data": {}}
    assert summary(compose_findings(sensor_hub(compose=yaml.safe_dump(document)))) == []


def test_a_shipped_secret_file_is_reg_014_and_an_unshipped_one_is_fine() -> None:
    findings = compose_findings(sensor_hub(compose=COMPOSE_TEXT + SECRET))
    assert summary(findings) == [("REG-014", Level.MUST)]
    assert findings.items[0].location.endswith("#secrets.site-token.file")
    unshipped = COMPOSE_TEXT + SECRET.replace("./sensor-hub.env", "./site-token.txt")
    assert summary(compose_findings(sensor_hub(compose=unshipped))) == []


def chart(*extra: ArchiveEntry) -> bytes:
    return pack(
        [
            file("metrics-gateway/Chart.yaml", "apiVersion: v2\nname: metrics-gateway\nversion: 1.0.0\n"),
            file("metrics-gateway/templates/deployment.yaml", "kind: Deployment\n"),
            *extra,
        ]
    )


HOOK_JOB = "kind: Job\nmetadata:\n  annotations:\n    helm.sh/hook: pre-install\n"


@pytest.mark.parametrize(
    "extra",
    [
        file("metrics-gateway/charts/cache/templates/job.yaml", HOOK_JOB),
        file("metrics-gateway/charts/cache/charts/deep/crds/c.yaml", "kind: CustomResourceDefinition\n"),
        ArchiveEntry(
            "metrics-gateway/charts/db-1.0.0.tgz",
            "file",
            pack([file("db/Chart.yaml", "apiVersion: v2\n"), file("db/templates/job.yaml", HOOK_JOB)]),
            "",
            0o644,
        ),
    ],
    ids=["subchart-folder", "nested-subchart-folder", "packaged-subchart"],
)
def test_subcharts_are_inspected_like_the_chart(extra: ArchiveEntry) -> None:
    """APPD-004: Helm installs subcharts with their parent, hooks and CRDs included."""
    findings = check_helm_chart(chart(extra), component="metrics-gateway", location="m.tgz")
    assert summary(findings) == [("APPD-004", Level.MUST)]


def test_clean_subcharts_and_a_values_file_named_like_a_hook_are_fine() -> None:
    findings = check_helm_chart(
        chart(
            file("metrics-gateway/charts/cache/templates/svc.yaml", "kind: Service\n"),
            file("metrics-gateway/charts/cache/values.yaml", "note: helm.sh/hook: is only text here\n"),
        ),
        component="metrics-gateway",
        location="m.tgz",
    )
    assert summary(findings) == []


def test_link_through_a_symlinked_directory_is_reg_015() -> None:
    data = sensor_hub(extra=(link("sensor-hub/d", ".."), link("sensor-hub/d/e", "../../etc/passwd")))
    assert "REG-015" in compose_findings(data).requirements()


# -- the Application Description ----------------------------------------------------------------------

MINIMAL: dict[str, Any] = {
    "apiVersion": "v1",
    "id": "minimal-app",
    "metadata": {
        "name": "Minimal",
        "version": "1.0.0",
        "catalog": {"application": {"icon": "./resources/icon.png"}, "organization": [{"name": "Example"}]},
    },
    "deploymentProfiles": [
        {
            "type": "compose",
            "id": "minimal-compose",
            "components": [
                {
                    "name": "web",
                    "properties": {"repository": "oci://registry.invalid/m/web", "revision": "1.0.0"},
                }
            ],
        }
    ],
}
RESOURCES = {"resources/icon.png": b"\x89PNG", "icon.png": b"\x89PNG"}


def description_findings(edit: Callable[[dict[str, Any]], None] = lambda doc: None) -> Findings:
    document = copy.deepcopy(MINIMAL)
    edit(document)
    _, findings = check_description(yaml.safe_dump(document, sort_keys=False), "margo.yaml", RESOURCES)
    return findings


def _profile(document: dict[str, Any]) -> dict[str, Any]:
    profile: dict[str, Any] = document["deploymentProfiles"][0]
    return profile


def _target_unknown_component(document: dict[str, Any]) -> None:
    document["parameters"] = {
        "port": {"value": 8080, "targets": [{"pointer": "PORT", "components": ["webb"]}]}
    }


def _duplicate_profile_id(document: dict[str, Any]) -> None:
    document["deploymentProfiles"].append(copy.deepcopy(_profile(document)))


def _setting_unknown_schema(document: dict[str, Any]) -> None:
    document["parameters"] = {
        "port": {"value": 8080, "targets": [{"pointer": "PORT", "components": ["web"]}]}
    }
    document["configuration"] = {
        "sections": [
            {"name": "General", "settings": [{"parameter": "port", "name": "Port", "schema": "portt"}]}
        ],
        "schema": [{"name": "port", "dataType": "integer"}],
    }


def _capacity_restated(document: dict[str, Any]) -> None:
    _profile(document)["deviceConstraints"] = {
        "capacityRequirements": {"memory": "128Mi"},
        "eligibilityRules": [
            {"propertySelector": {"matchExpressions": [{"key": "/memory", "operator": "Exists"}]}}
        ],
    }


def _custom_profile_without_labels(document: dict[str, Any]) -> None:
    _profile(document)["type"] = "custom"
    _profile(document)["deviceConstraints"] = {
        "eligibilityRules": [
            {
                "propertySelector": {
                    "matchExpressions": [{"key": "/vendor", "operator": "In", "values": ["B"]}]
                }
            }
        ]
    }


def _icon_outside_resources(document: dict[str, Any]) -> None:
    document["metadata"]["catalog"]["application"]["icon"] = "./icon.png"


def test_minimal_description_has_no_findings() -> None:
    assert summary(description_findings()) == []


@pytest.mark.parametrize(
    ("edit", "requirement", "level", "location"),
    [
        (_target_unknown_component, "APPD-107", Level.MUST, "$.parameters.port.targets[0].components"),
        (_duplicate_profile_id, "APPD-103", Level.MUST, "$.deploymentProfiles"),
        (_setting_unknown_schema, "APPD-108", Level.MUST, "$.configuration.sections[0].settings[0].schema"),
        (_capacity_restated, "ELIG-007", Level.SHOULD, "$.deploymentProfiles[0].deviceConstraints"),
        (_custom_profile_without_labels, "APPD-006", Level.MUST, "$.deploymentProfiles[0]"),
        (_icon_outside_resources, "PKG-002", Level.SHOULD, "$.metadata.catalog.application.icon"),
    ],
    ids=[
        "target-unknown-component",
        "duplicate-profile-id",
        "setting-unknown-schema",
        "capacity-restated",
        "custom-profile-without-labels",
        "icon-outside-resources",
    ],
)
def test_semantic_rule(
    edit: Callable[[dict[str, Any]], None], requirement: str, level: Level, location: str
) -> None:
    findings = description_findings(edit)
    assert [(f.requirement, f.level, f.location) for f in findings] == [
        (requirement, level, "margo.yaml" + location)
    ]


@pytest.mark.parametrize(
    ("text", "location"),
    [
        ("apiVersion: v1\nid: [unclosed\n", "margo.yaml:3:1"),
        ("apiVersion: v1\n  id: bad-indent\n", "margo.yaml:2:5"),
        ("apiVersion: v1\nid: x\n\tmetadata: tab\n", "margo.yaml:3:1"),
    ],
    ids=["unclosed-flow", "bad-indent", "tab"],
)
def test_parse_errors_have_line_and_column(text: str, location: str) -> None:
    _, findings = check_description(text, "margo.yaml", {})
    assert [(f.requirement, f.location) for f in findings] == [("APPD-101", location)]
    assert findings.items[0].message.startswith("not valid YAML")


@pytest.mark.parametrize(
    "text",
    ["a: 1\n---\nb: 2\n", "- a list\n", "just a string\n", ""],
    ids=["two-documents", "list", "scalar", "empty"],
)
def test_description_must_be_one_mapping(text: str) -> None:
    document, findings = check_description(text, "margo.yaml", {})
    assert document is None
    assert summary(findings) == [("APPD-101", Level.MUST)]


# -- loading packages ---------------------------------------------------------------------------------


def write_archive(path: Path, entries: list[ArchiveEntry]) -> Path:
    path.write_bytes(pack(entries))
    return path


def test_package_as_tar_gz_loads_and_is_conformant(tmp_path: Path) -> None:
    archive = write_archive(tmp_path / "vendor-a.tar.gz", entries_from_directory(VENDOR_A, top="vendor-a"))
    report = check.check_package(str(archive))
    assert summary(report.findings) == []
    assert report.conformant
    assert report.origin == str(archive)
    assert {"PKG-001", "APPD-101", "REG-013", "REG-015"} <= report.checked


def test_package_archive_with_parent_reference_is_refused_unextracted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))  # where load_from_archive extracts
    entries = [*entries_from_directory(VENDOR_A, top="vendor-a"), file("vendor-a/../../escaped.txt")]
    archive = write_archive(tmp_path / "evil.tar.gz", entries)
    with pytest.raises(InputError, match=r"'\.\.'"):
        check.load_package(str(archive))
    assert files_under(tmp_path) == [archive, scratch]  # extracted nothing, cleaned up its directory


def test_nonexistent_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or directory"):
        check.load_package(str(tmp_path / "missing"))


@pytest.mark.parametrize("second", ["margo-copy.yaml", "notes.yml"])
def test_two_yaml_files_at_the_root_are_pkg_001(tmp_path: Path, second: str) -> None:
    (tmp_path / "margo.yaml").write_text((VENDOR_A / "margo.yaml").read_text())
    (tmp_path / second).write_text("apiVersion: v1\n")
    report = check.check_package(str(tmp_path))
    assert summary(report.findings) == [("PKG-001", Level.MUST)]
    assert second in report.findings.items[0].message
    assert report.verdicts() == {"PKG-001": "fail"}


def test_a_root_without_yaml_is_pkg_001(tmp_path: Path) -> None:
    assert summary(check.check_package(str(tmp_path)).findings) == [("PKG-001", Level.MUST)]


# -- the fault catalogue ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOCAL_FAULTS)
def test_fault_is_found_as_exactly_its_requirement(name: str, tmp_path: Path) -> None:
    fault = FAULTS[name]
    report = check.check_package(str(materialize(fault, PACKAGES, tmp_path)))
    expected_level = Level.SHOULD if name in SHOULD_FAULTS else Level.MUST
    assert {(f.requirement, f.level) for f in report.findings} == {(fault.requirement, expected_level)}, (
        _show(report.findings)
    )
    assert report.conformant is (name in SHOULD_FAULTS)
    assert report.verdicts()[fault.requirement] == ("warn" if name in SHOULD_FAULTS else "fail")


def test_catalogue_has_the_expected_should_faults() -> None:
    assert set(LOCAL_FAULTS) >= SHOULD_FAULTS


@pytest.mark.parametrize("reference", sorted(p.name for p in PACKAGES.iterdir() if p.is_dir()))
def test_reference_packages_are_conformant(reference: str) -> None:
    report = check.check_package(str(PACKAGES / reference))
    assert summary(report.findings) == []
    assert set(report.verdicts().values()) == {"pass"}


def _show(findings: Findings) -> str:
    return "\n".join(f"{f.requirement} {f.level.value} {f.location}: {f.message}" for f in findings)


def test_a_finding_is_a_collected_violation_and_back() -> None:
    """One shape for a check (issue 9, deliverable 7): a package finding converts to the Violation a
    check raises, its location as evidence, and a Violation collects into a finding at a level."""
    finding = Finding("REG-014", Level.MUST, "a.tar.gz!a/compose.yaml#secrets.s.file", "shipped")
    violation = finding.violation()
    assert isinstance(violation, AssertionError)
    assert (violation.requirement, violation.message, violation.evidence) == (
        "REG-014",
        "shipped",
        finding.location,
    )
    assert Finding.of(violation, Level.MUST) == finding
