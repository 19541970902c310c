"""Loading a package from a directory or from a gzip'd tar of one, or a lone Compose archive or Helm chart.

Directory layout (PKG-002, plus our convention for component artifacts kept beside the package):

    <package>/
      margo.yaml                      exactly one YAML file at the root: the Application Description
      resources/…                     optional: icon, licence, release notes, description file
      components/<name>.tar.gz        optional: the Compose archive of component <name>
      components/<name>.tgz           optional: the packaged Helm chart of component <name>
      components/<name>.blob          optional: the OCI blob of a custom component <name>
                                      (each also as <name>-<revision>.<suffix>, the revision being
                                      the component's properties.revision)
      components/<name>/              optional: the component's source folder, archived here the way
                                      SUP-01 prescribes (one top-level folder named <name>)

In a registry (``oci://``) the components live at their ``repository``/``revision``; locally they
can only be checked when they sit under ``components/``.

``local_kind`` tells a target apart by what it holds: a folder with ``Chart.yaml`` is a Helm chart, any
other folder a package; a gzip'd tar of one folder holding ``Chart.yaml`` is a packaged chart, one
holding a Compose file (and no Application Description) a Compose archive, anything else a package
archive.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from .._internal import bounded, tar_safety
from .._internal.archive_builder import pack_directory
from .._internal.safe_paths import plain_name, resolves_inside
from ..errors import InputError
from ..findings import Findings
from ..registry import make_finding
from .description import DESCRIPTION_LIMITS
from .model import ComponentArtifact, LoadedPackage

MAX_FILE_BYTES = 64 * 1024 * 1024
ARTIFACT_SUFFIX = {"compose": ".tar.gz", "helm": ".tgz", "custom": ".blob"}
COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
CHART_FILE = "Chart.yaml"
MAX_PROBE_BYTES = 1024 * 1024  # a root YAML read to tell a description from a Compose file


def local_kind(path: Path) -> str:
    """ "package", "package-archive", "compose" or "helm", by the target's content (module docstring)."""
    if path.is_dir():
        return "helm" if (path / CHART_FILE).is_file() else "package"
    try:
        with tar_safety.open_tar_gz(_read_bytes(path)) as tar:
            top = _single_top(tar)
            if top is None:
                return "package-archive"
            files = {_member_name(m): m for m in tar.getmembers() if m.isfile()}
            if f"{top}/{CHART_FILE}" in files:
                return "helm"
            roots = [
                m for name, m in files.items() if name.count("/") == 1 and name.endswith((".yaml", ".yml"))
            ]
            has_compose = any(f"{top}/{name}" in files for name in COMPOSE_NAMES)
            if has_compose and not any(_is_description(_yaml_member(tar, m)) for m in roots):
                return "compose"
    except InputError:
        pass  # not a gzip'd tar: the package archive loader says so
    return "package-archive"


def load_compose_archive(path: Path) -> LoadedPackage:
    """A lone Compose archive (a folder is packed as SUP-01 prescribes): judged by SUP-01 alone, as
    the component named by its top-level folder."""
    data = pack_directory(path, top=path.name) if path.is_dir() else _read_bytes(path)
    return _lone(path, "compose", _top_of(data) or path.name, data)


def load_helm_chart(path: Path) -> LoadedPackage:
    """A lone Helm chart, packaged (``.tgz``) or a chart folder, as the component its Chart.yaml names."""
    if path.is_dir():
        chart = _chart_name(_read_text(path / CHART_FILE)) if (path / CHART_FILE).is_file() else None
        data = pack_directory(path, top=chart or path.name)
    else:
        data = _read_bytes(path)
    return _lone(path, "helm", _chart_name_in(data) or path.name, data)


def _lone(path: Path, kind: str, name: str, data: bytes) -> LoadedPackage:
    return LoadedPackage(
        origin=str(path),
        description_location=str(path),
        description_text=None,
        kind=kind,
        components=[ComponentArtifact(name=name, deployment_type=kind, location=str(path), archive=data)],
    )


def _member_name(member: tarfile.TarInfo) -> str:
    return "/".join(p for p in member.name.split("/") if p not in ("", "."))


def _single_top(tar: tarfile.TarFile) -> str | None:
    tops = tar_safety.top_level_names(tar, safe_only=True)
    return next(iter(tops)) if len(tops) == 1 else None


def _yaml_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Any:
    handle = tar.extractfile(member) if member.size <= MAX_PROBE_BYTES else None
    try:
        return (
            bounded.load_yaml(handle.read(), where=member.name, limits=DESCRIPTION_LIMITS) if handle else None
        )
    except bounded.UntrustedInput:
        return None


def _is_description(document: Any) -> bool:
    return isinstance(document, dict) and "deploymentProfiles" in document


def _top_of(data: bytes) -> str | None:
    try:
        with tar_safety.open_tar_gz(data) as tar:
            return _single_top(tar)
    except InputError:
        return None  # the archive checks report it


def _chart_name_in(data: bytes) -> str | None:
    try:
        with tar_safety.open_tar_gz(data) as tar:
            top = _single_top(tar)
            member = next(
                (m for m in tar.getmembers() if m.isfile() and _member_name(m) == f"{top}/{CHART_FILE}"), None
            )
            document = _yaml_member(tar, member) if member is not None else None
    except InputError:
        return None  # the chart checks report it
    return _chart_name(document)


def _chart_name(document: Any) -> str | None:
    if isinstance(document, str):
        try:
            document = bounded.load_yaml(document, where=CHART_FILE, limits=DESCRIPTION_LIMITS)
        except bounded.UntrustedInput:
            return None
    name = document.get("name") if isinstance(document, dict) else None
    return name if isinstance(name, str) and name else None


def load_from_directory(root: Path, *, origin: str | None = None) -> LoadedPackage:
    origin = origin or str(root)
    findings = Findings()
    candidates = sorted(p for p in root.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
    if len(candidates) != 1:
        names = [p.name for p in candidates]
        findings.add(
            make_finding(
                "PKG-001",
                origin,
                "the package root must hold exactly one YAML file (the Application Description); "
                f"found {names or 'none'}",
            )
        )
        return LoadedPackage(
            origin=origin, description_location=origin, description_text=None, findings=findings
        )
    description = candidates[0]
    text = _read_text(description)
    return LoadedPackage(
        origin=origin,
        description_location=description.name,
        description_text=text,
        resources=_read_package_files(root, exclude={description.name}),
        components=_local_components(root, text),
        findings=findings,
    )


def load_from_archive(path: Path) -> LoadedPackage:
    """A package shipped as a gzip'd tar: checked member by member, extracted to a temporary directory."""
    with tar_safety.open_tar_gz(_read_bytes(path)) as tar:
        workdir = Path(tempfile.mkdtemp(prefix="margo-package-"))
        try:
            tar_safety.extract_safely(tar, workdir)
            root = _package_root(workdir)
            loaded = load_from_directory(root, origin=str(path))
            loaded.kind = "package-archive"
            return loaded
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _package_root(workdir: Path) -> Path:
    """The archive's root, or its single top-level directory when the root holds nothing else."""
    entries = list(workdir.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return workdir


def _read_package_files(root: Path, *, exclude: set[str]) -> dict[str, bytes]:
    """Every regular file of the package but the description and component artifacts, so the layout
    checks see a resource wherever it was put (PKG-002) and whether it exists at all (PKG-101)."""
    return {
        relative: _read_bytes(path)
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and not path.is_symlink()
        and (relative := path.relative_to(root).as_posix()) not in exclude
        and not relative.startswith("components/")
    }


def _local_components(root: Path, description_text: str) -> list[ComponentArtifact]:
    """The components the description declares, with their archives where components/ holds them."""
    try:
        document = bounded.load_yaml(description_text, where="description", limits=DESCRIPTION_LIMITS)
    except bounded.UntrustedInput:
        return []  # the description checks report the YAML error
    artifacts: list[ComponentArtifact] = []
    profiles = document.get("deploymentProfiles") if isinstance(document, dict) else None
    for profile in profiles if isinstance(profiles, list) else []:  # the schema reports other shapes
        if not isinstance(profile, dict):
            continue
        kind = str(profile.get("type"))
        items = profile.get("components")
        for component in items if isinstance(items, list) else []:
            name = component.get("name") if isinstance(component, dict) else None
            if not isinstance(name, str):
                continue
            properties = component.get("properties")
            revision = properties.get("revision") if isinstance(properties, dict) else None
            path, archive = component_archive(root, name, kind, revision=revision)
            artifacts.append(
                ComponentArtifact(
                    name=name, deployment_type=kind, location=str(path.relative_to(root)), archive=archive
                )
            )
    return artifacts


def component_archive(
    root: Path, name: str, kind: str, *, revision: object = None
) -> tuple[Path, bytes | None]:
    """The archive file of a component (``<name>.<suffix>``, else ``<name>-<revision>.<suffix>``), else
    its source folder packed, else nothing. Names from the package never lead outside it."""
    if not plain_name(name):  # '../../etc/ssl' names no file of the package (the schema reports it)
        return root / "components", None
    suffix = ARTIFACT_SUFFIX.get(kind, "")
    archive = root / "components" / f"{name}{suffix}"
    candidates = [archive]
    if isinstance(revision, (str, int, float)) and plain_name(f"{name}-{str(revision).strip()}{suffix}"):
        candidates.append(root / "components" / f"{name}-{str(revision).strip()}{suffix}")
    folder = root / "components" / name
    for candidate in candidates:
        if kind in ARTIFACT_SUFFIX and candidate.is_file() and resolves_inside(root, candidate):
            return candidate, _read_bytes(candidate)
    if kind in ARTIFACT_SUFFIX and folder.is_dir() and resolves_inside(root, folder):
        return folder, pack_directory(folder, top=name)
    return archive, None


def _read_bytes(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; refusing it")
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _read_text(path: Path) -> str:
    try:
        return _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
