"""Loading a package from a directory or from a gzip'd tar of one.

Directory layout (PKG-002, plus our convention for component artifacts kept beside the package):

    <package>/
      margo.yaml                      exactly one YAML file at the root: the Application Description
      resources/…                     optional: icon, licence, release notes, description file
      components/<name>.tar.gz        optional: the Compose archive of component <name>
      components/<name>.tgz           optional: the packaged Helm chart of component <name>
      components/<name>.blob          optional: the OCI blob of a custom component <name>
      components/<name>/              optional: the component's source folder, archived here the way
                                      SUP-01 prescribes (one top-level folder named <name>)

In a registry (``oci://``) the components live at their ``repository``/``revision``; locally they
can only be checked when they sit under ``components/``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

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
            return load_from_directory(root, origin=str(path))
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
            path, archive = component_archive(root, name, kind)
            artifacts.append(
                ComponentArtifact(
                    name=name, deployment_type=kind, location=str(path.relative_to(root)), archive=archive
                )
            )
    return artifacts


def component_archive(root: Path, name: str, kind: str) -> tuple[Path, bytes | None]:
    """The archive file of a component, else its source folder packed, else nothing."""
    if not plain_name(name):  # '../../etc/ssl' names no file of the package (the schema reports it)
        return root / "components", None
    archive = root / "components" / f"{name}{ARTIFACT_SUFFIX.get(kind, '')}"
    folder = root / "components" / name
    if kind in ARTIFACT_SUFFIX and archive.is_file() and resolves_inside(root, archive):
        return archive, _read_bytes(archive)
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
