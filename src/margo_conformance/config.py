"""The SUT file: one YAML that describes the subjects under test (DESIGN.md §4).

Built once, frozen: defaults → SUT file → ``MARGO_*`` environment (derived from the field path, e.g.
``MARGO_PACKAGE_TARGETS=a,b``). ``redacted()`` is what reports embed; secrets never reach them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from . import DEFAULT_PIN
from ._internal import bounded
from .errors import UsageError
from .registry import PROFILES

SUT_LIMITS = bounded.Limits(max_bytes=1024 * 1024)  # a SUT file is a page of settings, not a data set
SECRET_KEY = re.compile(r"(key|secret|password|token|credential)", re.IGNORECASE)

# What a provisioner can be asked to do (DESIGN.md §4); command templates are named after them.
# deploy_package: a package from a registry ({package_ref}), exit 3 when the WFM refuses it (SIGN-113);
# install_trust: the Notary trust policy and store it verifies under ({trust_policy}, {trust_store}).
PROVISIONER_OPERATIONS = (
    "accept_client",
    "retire_client",
    "deploy",
    "deploy_package",
    "install_trust",
    "update",
    "undeploy",
    "restart",
    "overload",
)
# How the suite starts a device's WFM client against its instrument WFM (DESIGN.md §4).
LAUNCHER_TYPES = ("reference", "command", "manual")

SUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "pin": {"const": DEFAULT_PIN},
        "declares": {"type": "array", "items": {"enum": list(PROFILES)}, "uniqueItems": True},
        "package": {
            "type": "object",
            "additionalProperties": False,
            "required": ["targets"],
            "properties": {
                "targets": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                "publish_to_local_registry": {"type": "boolean"},
            },
        },
        "wfm": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "reference": {"type": "boolean"},  # the suite starts its own reference WFM
                "url": {"type": "string", "pattern": "^https://"},
                "wfm_id": {"type": "string", "minLength": 1},
                "trust_domain": {"type": "string", "minLength": 1},
                "pki": {"type": "string", "minLength": 1},
                "timeout_s": {"type": "number", "exclusiveMinimum": 0},
                "provisioner": {
                    "type": "object",
                    "required": ["type"],
                    "additionalProperties": False,
                    "properties": {
                        "type": {"enum": ["reference", "command", "manual"]},
                        "timeout_s": {"type": "number", "exclusiveMinimum": 0},
                        **{
                            operation: {"type": "string", "minLength": 1}
                            for operation in PROVISIONER_OPERATIONS
                        },
                    },
                },
            },
            "if": {"properties": {"reference": {"const": True}}, "required": ["reference"]},
            "then": {},
            "else": {"required": ["url", "wfm_id", "trust_domain", "pki", "provisioner"]},
        },
        "device": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "launcher": {
                    "type": "object",
                    "required": ["type"],
                    "additionalProperties": False,
                    "properties": {
                        "type": {"enum": list(LAUNCHER_TYPES)},
                        "start": {"type": "string", "minLength": 1},
                        "stop": {"type": "string", "minLength": 1},
                    },
                    "if": {"properties": {"type": {"const": "command"}}},
                    "then": {"required": ["start"]},
                },
                "observer": {
                    "type": "object",
                    "required": ["type"],
                    "additionalProperties": False,
                    "properties": {
                        "type": {"enum": ["docker", "none"]},
                        "docker_host": {"type": "string", "minLength": 1},
                    },
                },
                "poll_interval_s": {"type": "number", "exclusiveMinimum": 0},
                "status_timeout_s": {"type": "number", "exclusiveMinimum": 0},
                "wfm_host": {"type": "string", "minLength": 1},
            },
        },
    },
}


@dataclass(frozen=True)
class PackageSubject:
    targets: tuple[str, ...]
    publish_to_local_registry: bool = False


@dataclass(frozen=True)
class WfmSubjectConfig:
    """A WFM under test: the suite's reference WFM, or a vendor's at a URL with its operator PKI."""

    reference: bool = False
    url: str = ""
    wfm_id: str = ""
    trust_domain: str = ""
    pki: Path | None = None
    timeout_s: float = 10.0
    provisioner: Mapping[str, Any] = field(default_factory=lambda: {"type": "reference"})


@dataclass(frozen=True)
class DeviceSubjectConfig:
    """A device under test: how to start its WFM client, how to watch its runtime, and its tempo.

    ``poll_interval_s`` is the period the device is started with (reference) or told the suite it
    polls at (command, manual); every wait of the device scenarios is a multiple of it plus
    ``status_timeout_s`` for work the device does (pulls, container starts)."""

    launcher: Mapping[str, Any] = field(default_factory=lambda: {"type": "reference"})
    observer: Mapping[str, Any] = field(default_factory=lambda: {"type": "docker"})
    poll_interval_s: float = 0.5
    status_timeout_s: float = 60.0
    wfm_host: str = "127.0.0.1"

    @property
    def reference(self) -> bool:
        return self.launcher.get("type") == "reference"


@dataclass(frozen=True)
class Sut:
    pin: str = DEFAULT_PIN
    declares: tuple[str, ...] = ("core",)
    package: PackageSubject | None = None
    wfm: WfmSubjectConfig | None = None
    device: DeviceSubjectConfig | None = None
    source: str = "<defaults>"
    raw: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: Path, *, environ: Mapping[str, str] | None = None) -> Sut:
        try:
            data = bounded.load_yaml(path.read_bytes(), where=str(path), limits=SUT_LIMITS) or {}
        except OSError as exc:
            raise UsageError(f"{path}: cannot read the SUT file: {exc.strerror or exc}") from None
        except bounded.UntrustedInput as exc:
            raise UsageError(f"{exc.place}: the SUT file is not valid YAML: {exc.problem}") from None
        if not isinstance(data, dict):
            raise UsageError(f"{path}: the SUT file must be a YAML mapping")
        data = _apply_environment(data, os.environ if environ is None else environ)
        _validate(data, path)
        return cls._build(data, base=path.parent, source=str(path))

    @classmethod
    def _build(cls, data: dict[str, Any], *, base: Path, source: str) -> Sut:
        package = data.get("package")
        subject = None
        if package:
            targets = tuple(
                t if t.startswith("oci://") else str((base / t).resolve()) for t in package["targets"]
            )
            subject = PackageSubject(
                targets=targets, publish_to_local_registry=package.get("publish_to_local_registry", False)
            )
        wfm = data.get("wfm")
        return cls(
            pin=data.get("pin", DEFAULT_PIN),
            declares=tuple(data.get("declares", ["core"])),
            package=subject,
            wfm=_wfm_config(wfm, base) if wfm else None,
            device=_device_config(data["device"]) if "device" in data else None,
            source=source,
            raw=data,
        )

    def redacted(self) -> dict[str, Any]:
        """The declaration as given, with every secret-looking value replaced."""
        redacted: dict[str, Any] = _redact(dict(self.raw))
        return redacted | {"source": self.source}


def _wfm_config(data: Mapping[str, Any], base: Path) -> WfmSubjectConfig:
    provisioner = dict(data.get("provisioner") or {"type": "reference"})
    if data.get("reference") and provisioner.get("type") != "reference":
        raise UsageError(
            "wfm.reference: true drives the suite's own WFM, whose provisioner type is 'reference'"
        )
    return WfmSubjectConfig(
        reference=bool(data.get("reference", False)),
        url=str(data.get("url", "")),
        wfm_id=str(data.get("wfm_id", "")),
        trust_domain=str(data.get("trust_domain", "")),
        pki=(base / data["pki"]).resolve() if data.get("pki") else None,
        timeout_s=float(data.get("timeout_s", 10.0)),
        provisioner=provisioner,
    )


def _device_config(data: Mapping[str, Any]) -> DeviceSubjectConfig:
    defaults = DeviceSubjectConfig()
    return DeviceSubjectConfig(
        launcher=dict(data.get("launcher") or defaults.launcher),
        observer=dict(data.get("observer") or defaults.observer),
        poll_interval_s=float(data.get("poll_interval_s", defaults.poll_interval_s)),
        status_timeout_s=float(data.get("status_timeout_s", defaults.status_timeout_s)),
        wfm_host=str(data.get("wfm_host", defaults.wfm_host)),
    )


def _validate(data: dict[str, Any], path: Path) -> None:
    errors = sorted(Draft202012Validator(SUT_SCHEMA).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{_json_path(e.absolute_path)[:200]}: {_shortened(e.message)}" for e in errors[:10]]
        raise UsageError(f"{path}: invalid SUT file:\n  " + "\n  ".join(lines))


def _shortened(message: str) -> str:
    """A schema message quotes the offending value whole: a 50 MB string must not become the message."""
    return message if len(message) <= 300 else message[:297] + "..."


def _json_path(parts: Any) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """MARGO_<SECTION>_<FIELD> (upper case) overrides a scalar or, comma-separated, a list field."""
    result = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for name, spec in SUT_SCHEMA["properties"].items():
        if spec.get("type") == "object" and "properties" in spec:
            for field_name, field_spec in spec["properties"].items():
                value = environ.get(f"MARGO_{name}_{field_name}".upper())
                if value is not None:
                    result.setdefault(name, {})[field_name] = _coerce(value, field_spec)
        else:
            value = environ.get(f"MARGO_{name}".upper())
            if value is not None:
                result[name] = _coerce(value, spec)
    return result


def _coerce(value: str, spec: dict[str, Any]) -> Any:
    if spec.get("type") == "array":
        return [item.strip() for item in value.split(",") if item.strip()]
    if spec.get("type") == "boolean":
        return value.lower() in ("1", "true", "yes")
    if spec.get("type") == "number":
        try:
            return float(value)
        except ValueError:
            return value  # the schema then names the field and says it must be a number
    return value


def _redact(value: Any, key: str = "") -> Any:
    """Anything under a secret-looking key is replaced whole, mappings and lists included."""
    if SECRET_KEY.search(key):
        return "***"
    if isinstance(value, dict):
        return {k: _redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, key) for v in value]
    return value


def load_sut(path: Path | None, *, environ: Mapping[str, str] | None = None) -> Sut:
    """The SUT from a file, or the built-in reference subjects when no file is given."""
    from .paths import suite_root

    return Sut.from_file(path or suite_root() / "fixtures" / "sut" / "reference.yaml", environ=environ)
