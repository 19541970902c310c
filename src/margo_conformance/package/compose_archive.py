"""SUP-01 checks of a Compose component archive, in the order the spec states them.

The archive is inspected member by member *before* anything is extracted (REG-015); only a safe
archive is extracted, into a temporary directory, for the Compose-file checks (REG-014, REG-013).
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._internal import bounded, tar_safety
from .._internal.safe_paths import is_file_inside
from .._internal.tools import compose_binary
from ..errors import InputError
from ..findings import Findings, Level
from ..registry import make_finding
from .archive_findings import open_for_checks

COMPOSE_FILE = "compose.yaml"
FORBIDDEN_COMPOSE_NAMES = ("compose.yml", "docker-compose.yaml", "docker-compose.yml")
COMPOSE_CONFIG_TIMEOUT_S = 20.0


def check_compose_archive(data: bytes, *, component: str, location: str) -> Findings:
    """All archive findings for one component's Compose archive."""
    findings = Findings()
    # REG-013: a gzip'd tar archive. REG-015: no absolute paths, '..', escaping links, set-id/sticky bits.
    tar = open_for_checks(
        data,
        location=location,
        findings=findings,
        format_requirement="REG-013",
        safety_requirement="REG-015",
        what="gzip'd tar archive",
    )
    if tar is None:
        return findings
    with tar:
        top = _check_layout(tar, component=component, location=location, findings=findings)
        if top is None or not findings.conformant:
            return findings
        try:
            with _extracted(tar) as root:
                _check_compose_file(root, top, location, findings)
        except InputError as exc:  # the stdlib's own extraction filter refused something we did not see
            findings.add(make_finding("REG-015", location, f"the archive cannot be extracted safely: {exc}"))
    return findings


def _check_compose_file(root: Path, top: str, location: str, findings: Findings) -> None:
    """REG-014 and REG-013 on the extracted compose.yaml."""
    compose_path = root / top / COMPOSE_FILE
    document = _load_compose(compose_path, f"{location}!{top}/{COMPOSE_FILE}", findings)
    if document is not None:
        _check_referenced_files(document, root / top, f"{location}!{top}", findings)
        _check_excluded_files(document, root / top, f"{location}!{top}", findings)
        if findings.conformant:
            _check_compose_spec(compose_path, f"{location}!{top}/{COMPOSE_FILE}", findings)


def _check_layout(tar: tarfile.TarFile, *, component: str, location: str, findings: Findings) -> str | None:
    """REG-013: exactly one top-level directory holding compose.yaml and no other Compose file name.

    Members that could escape (absolute paths, '..') are REG-015 findings and do not count here.
    """
    tops = sorted(tar_safety.top_level_names(tar, safe_only=True))
    if len(tops) != 1:
        findings.add(
            make_finding(
                "REG-013", location, f"archive must have exactly one top-level directory, found {tops}"
            )
        )
        return None
    top = tops[0]
    members = {m.name.lstrip("./").rstrip("/"): m for m in tar.getmembers()}
    if top in members and not members[top].isdir():
        findings.add(make_finding("REG-013", f"{location}!{top}", "the top-level entry is not a directory"))
        return None
    for name in FORBIDDEN_COMPOSE_NAMES:
        if f"{top}/{name}" in members:
            findings.add(
                make_finding(
                    "REG-013",
                    f"{location}!{top}/{name}",
                    f"Compose file must be named {COMPOSE_FILE}, not {name}",
                )
            )
    compose = members.get(f"{top}/{COMPOSE_FILE}")
    if compose is None or not compose.isfile():
        findings.add(
            make_finding("REG-013", f"{location}!{top}/", f"no {COMPOSE_FILE} in the top-level directory")
        )
        return None
    if top != component:
        findings.add(
            make_finding(
                "REG-013",
                f"{location}!{top}/",
                f"top-level directory {top!r} should be named after the component {component!r}",
                level=Level.SHOULD,
            )
        )
    return top


@contextmanager
def _extracted(tar: tarfile.TarFile) -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="margo-compose-"))
    try:
        tar_safety.extract_safely(tar, directory)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _load_compose(path: Path, location: str, findings: Findings) -> dict[str, Any] | None:
    try:
        document = bounded.load_yaml(path.read_bytes(), where=COMPOSE_FILE)
    except (OSError, bounded.UntrustedInput) as exc:
        findings.add(make_finding("REG-013", location, f"not readable YAML: {_one_line(exc)}"))
        return None
    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        findings.add(make_finding("REG-013", location, "not a Compose file: no 'services' mapping"))
        return None
    return document


def _check_referenced_files(document: dict[str, Any], top: Path, location: str, findings: Findings) -> None:
    """REG-014: env_file and file-based configs are included, with relative paths inside the directory."""
    for where, reference in _file_references(document):
        if reference.startswith("/") or ".." in Path(reference).parts:
            findings.add(
                make_finding(
                    "REG-014",
                    f"{location}/{COMPOSE_FILE}#{where}",
                    f"{reference!r} is not a relative path inside the archive",
                )
            )
        elif not is_file_inside(top, reference):  # never raises for a NUL or a 300-byte name
            findings.add(
                make_finding(
                    "REG-014",
                    f"{location}/{COMPOSE_FILE}#{where}",
                    f"{reference!r} is referenced but not in the archive",
                )
            )


def _check_excluded_files(document: dict[str, Any], top: Path, location: str, findings: Findings) -> None:
    """REG-014 MUST NOT: the files of file-based secrets and the sources of bind mounts are not shipped
    (secrets are provided at deploy time; a bind mount names a path of the device)."""
    for where, reference, what in _excluded_references(document):
        if reference.startswith(("/", "~")) or ".." in Path(reference).parts:
            continue  # outside the archive by construction
        if (top / reference).exists():
            findings.add(
                make_finding(
                    "REG-014",
                    f"{location}/{COMPOSE_FILE}#{where}",
                    f"{reference!r} is the {what} and must not be in the archive",
                )
            )


def _excluded_references(document: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(where, relative path, what) for each secret file and each bind-mount source."""
    for name, secret in _mapping(document.get("secrets")).items():
        if isinstance(secret, dict) and isinstance(secret.get("file"), str):
            yield f"secrets.{name}.file", secret["file"], f"file of the secret {name!r}"
    for name, service in _mapping(document.get("services")).items():
        volumes = service.get("volumes") if isinstance(service, dict) else None
        for index, volume in enumerate(volumes if isinstance(volumes, list) else []):
            source = _bind_source(volume)
            if source is not None:
                yield f"services.{name}.volumes[{index}]", source, "source of a bind mount"


def _bind_source(volume: Any) -> str | None:
    """A volume's bind-mount source: long syntax ``type: bind``, or short syntax with a path source."""
    if isinstance(volume, dict):
        source = volume.get("source")
        return source if volume.get("type") == "bind" and isinstance(source, str) else None
    if isinstance(volume, str) and ":" in volume:
        source = volume.split(":", 1)[0]
        return source if source.startswith((".", "/", "~")) else None  # else a named volume
    return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _file_references(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for name, service in (document.get("services") or {}).items():
        env_files = (service or {}).get("env_file") if isinstance(service, dict) else None
        if isinstance(env_files, (str, dict)):
            env_files = [env_files]
        for index, entry in enumerate(env_files if isinstance(env_files, list) else []):
            path = entry.get("path") if isinstance(entry, dict) else entry
            required = entry.get("required", True) if isinstance(entry, dict) else True
            if isinstance(path, str) and required is not False:
                yield f"services.{name}.env_file[{index}]", path
    configs = document.get("configs")
    for name, config in configs.items() if isinstance(configs, dict) else ():
        if isinstance(config, dict) and isinstance(config.get("file"), str):
            yield f"configs.{name}.file", config["file"]


def _check_compose_spec(compose_path: Path, location: str, findings: Findings) -> None:
    """REG-013: the file conforms to the Compose Specification, as Docker Compose v2 parses it."""
    binary = compose_binary()
    if binary is None:
        return  # reported once by the caller's notes; the shape checks above still ran
    try:
        result = subprocess.run(
            [
                binary,
                "--project-directory",
                str(compose_path.parent),
                "-f",
                str(compose_path),
                "config",
                "--quiet",
            ],
            capture_output=True,
            text=True,
            timeout=COMPOSE_CONFIG_TIMEOUT_S,
            check=False,
            env={"PATH": "/usr/bin:/bin", "COMPOSE_PROJECT_NAME": "margo-check"},
        )
    except subprocess.TimeoutExpired:
        findings.add(
            make_finding("REG-013", location, "Docker Compose did not finish parsing the file in time")
        )
        return
    if result.returncode != 0:
        findings.add(
            make_finding("REG-013", location, f"not a valid Compose file: {_one_line(result.stderr)}")
        )


def _one_line(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= 240 else text[:237] + "..."
