"""The SUT file: one YAML that describes the subjects under test (DESIGN.md §4).

Built once, frozen: defaults → SUT file → ``MARGO_*`` environment (derived from the field path, e.g.
``MARGO_PACKAGE_TARGETS=a,b``). ``redacted()`` is what reports embed; secrets never reach them.

Everything the suite can know about a SUT without talking to it is checked when the file is loaded (paths,
the PKI against the WFM section, command templates, targets, URLs): one message naming the key and where
its value came from (the file, or the ``MARGO_*`` variable), so a mistake is one usage error (exit 2), not
dozens of blocked or inconclusive scenarios.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from . import DEFAULT_PIN
from ._internal import bounded
from ._internal.oci import OciReference
from .errors import UsageError
from .registry import PROFILES
from .templates import (
    LAUNCHER_PLACEHOLDERS,
    PROVISIONER_PLACEHOLDERS,
    SECRET_NAME,
    check_template,
    hide_inline,
)

SECRET_KEY = SECRET_NAME
# A secret-named key (``api_token: …``) in a provisioner section: a placeholder of its templates whose
# value reports never show (a device launcher takes secrets as ``{env:NAME}`` only).
SECRET_PROPERTIES = {"(?i)(key|secret|password|token|credential)": {"type": "string"}}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
BOOLEAN_WORDS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
SUT_LIMITS = bounded.Limits(max_bytes=1024 * 1024)  # a SUT file is a page of settings, not a data set

# What a provisioner can be asked to do (DESIGN.md §4); command templates are named after them.
# deploy_package: a package from a registry ({package_ref}), exit 3 when the WFM refuses it (SIGN-113);
# install_trust: the Notary trust policy and store it verifies under ({trust_policy}, {trust_store}).
PROVISIONER_OPERATIONS = tuple(PROVISIONER_PLACEHOLDERS)
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
                # the signing profile: the publisher's trust material the vendor's signatures must verify
                # under, and (optional) what the suite signs the packages it publishes with
                "signing": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "trust_store": {
                            "oneOf": [
                                {"type": "string", "minLength": 1},
                                {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {"type": "string", "minLength": 1},
                                },
                            ]
                        },
                        "trust_policy": {"type": "string", "minLength": 1},
                        "sign_published": {
                            "oneOf": [
                                {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["key", "chain"],
                                    "properties": {
                                        "key": {"type": "string", "minLength": 1},
                                        "chain": {"type": "string", "minLength": 1},
                                    },
                                },
                                {  # the built-in run: the suite's seeded test publisher, minted at run time
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["suite_test_publisher"],
                                    "properties": {"suite_test_publisher": {"const": True}},
                                },
                            ]
                        },
                    },
                },
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
                    "patternProperties": SECRET_PROPERTIES,
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
        # The identity service (MIS) persona: its trust endpoints and the initial trust the suite
        # authenticates them with (TLS-006 PKI-anchored: CA file + the URL's DNS name or IP).
        "mis": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "reference": {"type": "boolean"},  # the suite starts its own reference identity service
                "url": {"type": "string", "pattern": "^https://[^/?#]+/?$"},  # the origin
                "discovery_url": {"type": "string", "pattern": "^https://"},  # default url/.well-known/margo
                "trust_domain": {"type": "string", "minLength": 1},
                "anchors": {"type": "string", "minLength": 1},  # PEM file the MIS's certificate chains to
                "wfm_url": {"type": "string", "pattern": "^https://"},  # a WFM of this trust domain
                "timeout_s": {"type": "number", "exclusiveMinimum": 0},
            },
            "if": {"properties": {"reference": {"const": True}}, "required": ["reference"]},
            "then": {},
            "else": {"required": ["url", "trust_domain", "anchors"]},
        },
    },
}


@dataclass(frozen=True)
class PackageSigning:
    """The publisher's Notary trust material (signing profile), and the suite's own signing material.

    ``trust_store`` is a Notary trust-store folder (``x509/ca/<name>/``) or root certificates (PEM files,
    folders of them); ``sign_published`` (key, chain) signs what the suite publishes for the vendor, or
    ``suite_test_publisher`` has the suite sign as its own test publisher (a key minted at run time, so no
    private key is ever kept in the repository)."""

    trust_store: tuple[Path, ...]
    trust_policy: Path
    sign_key: Path | None = None
    sign_chain: Path | None = None
    test_publisher: bool = False


@dataclass(frozen=True)
class PackageSubject:
    targets: tuple[str, ...]
    publish_to_local_registry: bool = False
    signing: PackageSigning | None = None


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
class MisSubjectConfig:
    """An identity service under test: the suite's reference MIS, or a vendor's at an origin URL."""

    reference: bool = False
    url: str = ""
    discovery_url: str = ""
    trust_domain: str = ""
    anchors: Path | None = None
    wfm_url: str = ""
    timeout_s: float = 10.0


@dataclass(frozen=True)
class Sut:
    pin: str = DEFAULT_PIN
    declares: tuple[str, ...] = ("core",)
    package: PackageSubject | None = None
    wfm: WfmSubjectConfig | None = None
    device: DeviceSubjectConfig | None = None
    mis: MisSubjectConfig | None = None
    source: str = "<defaults>"
    raw: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: Path, *, environ: Mapping[str, str] | None = None) -> Sut:
        environ = os.environ if environ is None else environ
        try:
            data = bounded.load_yaml(path.read_bytes(), where=str(path), limits=SUT_LIMITS) or {}
        except OSError as exc:
            raise UsageError(f"{path}: cannot read the SUT file: {exc.strerror or exc}") from None
        except bounded.UntrustedInput as exc:
            raise UsageError(f"{exc.place}: the SUT file is not valid YAML: {exc.problem}") from None
        if not isinstance(data, dict):
            raise UsageError(f"{path}: the SUT file must be a YAML mapping")
        origin = _Origin(path)
        data = _apply_environment(data, environ, origin)
        _validate(data, origin)
        sut = cls._build(data, base=path.parent, source=str(path), origin=origin)
        _check_subjects(sut, origin, environ)
        return sut

    @classmethod
    def _build(cls, data: dict[str, Any], *, base: Path, source: str, origin: _Origin) -> Sut:
        package = data.get("package")
        subject = None
        if package:
            targets = tuple(
                t if t.startswith("oci://") else str((base / t).resolve()) for t in package["targets"]
            )
            subject = PackageSubject(
                targets=targets,
                publish_to_local_registry=package.get("publish_to_local_registry", False),
                signing=_package_signing(package, data.get("declares", ["core"]), base),
            )
        wfm = data.get("wfm")
        return cls(
            pin=data.get("pin", DEFAULT_PIN),
            declares=tuple(data.get("declares", ["core"])),
            package=subject,
            wfm=_wfm_config(wfm, base, origin) if wfm else None,
            device=_device_config(data["device"]) if "device" in data else None,
            mis=_mis_config(data["mis"], base) if "mis" in data else None,
            source=source,
            raw=data,
        )

    def redacted(self) -> dict[str, Any]:
        """The declaration as given, with every secret-looking value replaced."""
        redacted: dict[str, Any] = _redact(dict(self.raw))
        return redacted | {"source": self.source}


SIGNING_KEYS = ("trust_store", "trust_policy")


def _package_signing(package: Mapping[str, Any], declares: list[str], base: Path) -> PackageSigning | None:
    """The package section's signing material; declaring ``signing`` without it is one clear error."""
    signing: Mapping[str, Any] = package.get("signing") or {}
    if "signing" not in declares:
        return None
    missing = [f"package.signing.{key}" for key in SIGNING_KEYS if not signing.get(key)]
    if missing:
        raise UsageError(
            f"the SUT declares the signing profile for its packages but gives no {' and no '.join(missing)} "
            "(the publisher's root certificates and Notary trust policy the signatures must verify under)"
        )
    stores = signing["trust_store"]
    sign = signing.get("sign_published") or {}
    given = [("package.signing.trust_policy", signing["trust_policy"])]
    given += [("package.signing.trust_store", s) for s in ([stores] if isinstance(stores, str) else stores)]
    given += [(f"package.signing.sign_published.{k}", sign[k]) for k in ("key", "chain") if k in sign]
    for key, value in given:
        if not (base / value).exists():
            raise UsageError(f"{key}: {base / value} does not exist (paths are relative to the SUT file)")
    return PackageSigning(
        trust_store=tuple((base / s).resolve() for s in ([stores] if isinstance(stores, str) else stores)),
        trust_policy=(base / signing["trust_policy"]).resolve(),
        sign_key=(base / sign["key"]).resolve() if "key" in sign else None,
        sign_chain=(base / sign["chain"]).resolve() if "chain" in sign else None,
        test_publisher=bool(sign.get("suite_test_publisher")),
    )


def _wfm_config(data: Mapping[str, Any], base: Path, origin: _Origin) -> WfmSubjectConfig:
    provisioner = dict(data.get("provisioner") or {"type": "reference"})
    if data.get("reference") and provisioner.get("type") != "reference":
        raise UsageError(
            f"{origin.where('wfm', 'provisioner', 'type')}: wfm.reference: true drives the suite's own WFM, "
            "whose provisioner type is 'reference'"
        )
    if not data.get("reference") and provisioner.get("type") == "reference":
        raise UsageError(
            f"{origin.where('wfm', 'provisioner', 'type')}: provisioner type 'reference' drives only the "
            "suite's own WFM (wfm.reference: true); for your WFM at wfm.url use 'command' or 'manual'"
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


def _mis_config(data: Mapping[str, Any], base: Path) -> MisSubjectConfig:
    url = str(data.get("url", "")).rstrip("/")
    return MisSubjectConfig(
        reference=bool(data.get("reference", False)),
        url=url,
        discovery_url=str(data.get("discovery_url") or (url + "/.well-known/margo" if url else "")),
        trust_domain=str(data.get("trust_domain", "")),
        anchors=(base / data["anchors"]).resolve() if data.get("anchors") else None,
        wfm_url=str(data.get("wfm_url", "")),
        timeout_s=float(data.get("timeout_s", 10.0)),
    )


class _Origin:
    """Where each value of the SUT came from: the file, or a ``MARGO_*`` variable that overrode it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.overrides: dict[tuple[str, ...], str] = {}

    def where(self, *keys: str | int) -> str:
        """``MARGO_X (environment override) $.a.b`` or ``<file>: $.a.b`` for the value at that path."""
        for length in range(len(keys), 0, -1):
            variable = self.overrides.get(tuple(str(k) for k in keys[:length]))
            if variable is not None:
                return f"{variable} (environment override of {_json_path(keys)})"
        return f"{self.path}: {_json_path(keys)}"


def _validate(data: dict[str, Any], origin: _Origin) -> None:
    errors = sorted(Draft202012Validator(SUT_SCHEMA).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{origin.where(*e.absolute_path)}: {_shortened(e.message)}" for e in errors[:10]]
        overridden = any(not line.startswith(str(origin.path)) for line in lines)
        head = "invalid SUT (file or environment)" if overridden else f"{origin.path}: invalid SUT file"
        raise UsageError(f"{head}:\n  " + "\n  ".join(lines))


def _shortened(message: str) -> str:
    """A schema message quotes the offending value whole: a 50 MB string must not become the message."""
    return message if len(message) <= 300 else message[:297] + "..."


def _json_path(parts: Any) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _apply_environment(data: dict[str, Any], environ: Mapping[str, str], origin: _Origin) -> dict[str, Any]:
    """MARGO_<SECTION>_<FIELD> (upper case) overrides a scalar or, comma-separated, a list field."""
    result = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for name, spec in SUT_SCHEMA["properties"].items():
        if spec.get("type") == "object" and "properties" in spec:
            for field_name, field_spec in spec["properties"].items():
                variable = f"MARGO_{name}_{field_name}".upper()
                if variable in environ:
                    if not isinstance(result.get(name, {}), dict):
                        continue  # the schema names the section that is not a mapping
                    result.setdefault(name, {})[field_name] = _coerce(environ[variable], field_spec, variable)
                    origin.overrides[(name, field_name)] = variable
        else:
            variable = f"MARGO_{name}".upper()
            if variable in environ:
                result[name] = _coerce(environ[variable], spec, variable)
                origin.overrides[(name,)] = variable
    return result


def _coerce(value: str, spec: dict[str, Any], variable: str) -> Any:
    if spec.get("type") == "array":
        return [item.strip() for item in value.split(",") if item.strip()]
    if spec.get("type") == "boolean":
        if value.strip().lower() not in BOOLEAN_WORDS:
            raise UsageError(
                f"{variable} (environment override): {value!r} is not a boolean; "
                f"use one of {', '.join(BOOLEAN_WORDS)}"
            )
        return BOOLEAN_WORDS[value.strip().lower()]
    if spec.get("type") == "number":
        try:
            return float(value)
        except ValueError:
            return value  # the schema then names the variable and says it must be a number
    return value


def _check_subjects(sut: Sut, origin: _Origin, environ: Mapping[str, str]) -> None:
    """What can be known before any scenario runs; the first mistake found is the one message."""
    if sut.package is None and sut.wfm is None and sut.device is None and sut.mis is None:
        raise UsageError(
            f"{origin.path}: the SUT declares no subject under test; add a package:, wfm:, device: or mis: "
            "section (README.md shows one for each)"
        )
    if sut.package is not None:
        _check_targets(sut.package.targets, origin)
    if sut.wfm is not None and not sut.wfm.reference:
        _check_wfm(sut.wfm, origin, environ)
    if sut.device is not None:
        _check_commands(
            sut.device.launcher,
            ("start", "stop"),
            ("device", "launcher"),
            origin,
            environ,
            known=lambda _: LAUNCHER_PLACEHOLDERS,
        )


def _check_targets(targets: tuple[str, ...], origin: _Origin) -> None:
    for index, target in enumerate(targets):
        where = origin.where("package", "targets", index)
        if target.startswith("oci://"):
            try:
                OciReference.parse(target).reference  # noqa: B018 - a tag or a digest is required
            except UsageError as exc:
                raise UsageError(f"{where}: {exc}") from None
            continue
        path = Path(target)
        if path.name.endswith(ARCHIVE_SUFFIXES) and path.is_file():
            raise UsageError(
                f"{where}: {path} is an archive; the scenarios need a package folder (unpack it) or an "
                "oci:// reference (`margo-conformance package check` checks archives as they are)"
            )
        if not path.is_dir():
            state = "is not a folder" if path.exists() else "does not exist"
            raise UsageError(
                f"{where}: the package folder {path} {state} (paths are relative to the SUT file)"
            )


def _check_wfm(wfm: WfmSubjectConfig, origin: _Origin, environ: Mapping[str, str]) -> None:
    url = urlsplit(wfm.url)
    try:
        _ = url.port  # a port that is not a number or out of range raises here
    except ValueError as exc:
        raise UsageError(f"{origin.where('wfm', 'url')}: {wfm.url!r}: {exc}") from None
    if not url.hostname:
        raise UsageError(f"{origin.where('wfm', 'url')}: {wfm.url!r} names no host (https://HOST[:PORT])")
    _check_pki(wfm, origin)
    _check_commands(
        wfm.provisioner,
        PROVISIONER_OPERATIONS,
        ("wfm", "provisioner"),
        origin,
        environ,
        known=lambda operation: PROVISIONER_PLACEHOLDERS[operation],
    )


def _check_pki(wfm: WfmSubjectConfig, origin: _Origin) -> None:
    """The operator PKI the suite mints clients from must be the trust domain the WFM section names."""
    from .pki import Pki

    where = origin.where("wfm", "pki")
    assert wfm.pki is not None  # required by the schema for a WFM that is not the reference
    if not wfm.pki.is_dir():
        state = "is not a folder" if wfm.pki.exists() else "does not exist"
        raise UsageError(f"{where}: {wfm.pki} {state}; create it with `margo-conformance pki init`")
    try:
        pki = Pki.load(wfm.pki)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    for key, declared, minted in (
        ("trust_domain", wfm.trust_domain, pki.trust_domain),
        ("wfm_id", wfm.wfm_id, pki.wfm_id),
    ):
        if declared != minted:
            raise UsageError(
                f"{origin.where('wfm', key)}: {declared!r} does not match the PKI at {wfm.pki}, "
                f"which was minted for {key} {minted!r}"
            )


def _check_commands(
    section: Mapping[str, Any],
    operations: tuple[str, ...],
    keys: tuple[str, ...],
    origin: _Origin,
    environ: Mapping[str, str],
    *,
    known: Callable[[str], Iterable[str]],
) -> None:
    """Every command template of a provisioner or launcher section could run (see ``templates``)."""
    if section.get("type") != "command":
        return
    secrets = [k for k in section if SECRET_KEY.search(k)]
    for operation in operations:
        if operation in section:
            check_template(
                str(section[operation]),
                [*known(operation), *secrets],
                where=origin.where(*keys, operation),
                environ=environ,
            )


def _redact(value: Any, key: str = "") -> Any:
    """Anything under a secret-looking key is replaced whole, mappings and lists included."""
    if SECRET_KEY.search(key):
        return "***"
    if isinstance(value, dict):
        return {k: _redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, key) for v in value]
    return hide_inline(value) if isinstance(value, str) else value


def load_sut(path: Path | None, *, environ: Mapping[str, str] | None = None) -> Sut:
    """The SUT from a file, or the built-in reference subjects when no file is given."""
    from .paths import suite_root

    return Sut.from_file(path or suite_root() / "fixtures" / "sut" / "reference.yaml", environ=environ)
