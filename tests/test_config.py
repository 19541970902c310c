"""The SUT file: loading, environment overrides, validation messages, redaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from margo_conformance import DEFAULT_PIN
from margo_conformance.config import Sut, load_sut
from margo_conformance.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "fixtures" / "sut" / "reference.yaml"
PACKAGES = ROOT / "fixtures" / "packages"


def write_sut(directory: Path, content: dict[str, Any] | str) -> Path:
    path = directory / "sut.yaml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content), encoding="utf-8")
    return path


def validation_error(tmp_path: Path, content: dict[str, Any] | str) -> str:
    with pytest.raises(UsageError) as raised:
        Sut.from_file(write_sut(tmp_path, content), environ={})
    return str(raised.value)


# -- the reference SUT --------------------------------------------------------------------------------


def test_reference_sut_resolves_targets_to_absolute_paths() -> None:
    sut = Sut.from_file(REFERENCE, environ={})
    assert sut.package is not None
    assert sut.package.targets == tuple(
        str(PACKAGES / name) for name in ("vendor-a-compose", "vendor-b-compose", "helm-app")
    )
    assert all(Path(t).is_absolute() and Path(t).is_dir() for t in sut.package.targets)
    assert sut.package.publish_to_local_registry is True
    assert {"core", "compose", "helm", "custom", "gateway", "isolation"} <= set(sut.declares)
    assert sut.wfm is not None and sut.wfm.reference
    assert sut.pin == DEFAULT_PIN
    assert sut.source == str(REFERENCE)


def test_load_sut_without_a_file_is_the_reference() -> None:
    assert load_sut(None, environ={}) == Sut.from_file(REFERENCE, environ={})


def test_targets_are_resolved_against_the_sut_file_not_the_cwd(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    sut = Sut.from_file(
        write_sut(tmp_path, {"package": {"targets": ["pkg", "oci://registry.example/app:1.0.0"]}}), environ={}
    )
    assert sut.package is not None
    assert sut.package.targets == (str(tmp_path / "pkg"), "oci://registry.example/app:1.0.0")


def test_defaults_for_a_file_with_only_a_subject(tmp_path: Path) -> None:
    sut = Sut.from_file(write_sut(tmp_path, {"device": {}}), environ={})
    assert (sut.pin, sut.declares, sut.package) == (DEFAULT_PIN, ("core",), None)


# -- environment overrides ----------------------------------------------------------------------------


def test_environment_overrides_targets_and_declares() -> None:
    environ = {
        "MARGO_PACKAGE_TARGETS": "../packages/helm-app, ../packages/vendor-a-compose,",
        "MARGO_DECLARES": "core",
    }
    sut = Sut.from_file(REFERENCE, environ=environ)
    assert sut.package is not None
    assert sut.package.targets == (str(PACKAGES / "helm-app"), str(PACKAGES / "vendor-a-compose"))
    assert sut.declares == ("core",)
    assert sut.package.publish_to_local_registry is True  # untouched


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("1", True), ("no", False), ("false", False)]
)
def test_environment_overrides_a_boolean(value: str, expected: bool) -> None:
    sut = Sut.from_file(REFERENCE, environ={"MARGO_PACKAGE_PUBLISH_TO_LOCAL_REGISTRY": value})
    assert sut.package is not None
    assert sut.package.publish_to_local_registry is expected


def test_environment_can_add_a_package_section(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    sut = Sut.from_file(write_sut(tmp_path, {"declares": ["core"]}), environ={"MARGO_PACKAGE_TARGETS": "x"})
    assert sut.package is not None
    assert sut.package.targets == (str(tmp_path / "x"),)


def test_environment_values_are_validated() -> None:
    with pytest.raises(
        UsageError, match=r"MARGO_DECLARES \(environment override of \$\.declares\[1\]\): 'kub"
    ):
        Sut.from_file(REFERENCE, environ={"MARGO_DECLARES": "core,kubernetes"})


def test_the_process_environment_is_read_when_none_is_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARGO_DECLARES", "core,helm")
    assert Sut.from_file(REFERENCE).declares == ("core", "helm")


# -- validation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "path"),
    [
        ({"package": {"targets": []}}, "$.package.targets:"),
        ({"package": {"targets": [""]}}, "$.package.targets[0]:"),
        ({"package": {}}, "$.package: 'targets' is a required property"),
        ({"package": {"targets": ["x"], "publish": True}}, "$.package: Additional properties"),
        ({"declares": ["core", "core"]}, "$.declares:"),
        ({"declares": ["core", "kubernetes"]}, "$.declares[1]:"),
        ({"pin": "margo-0.9"}, "$.pin:"),
        ({"wfm": "not a mapping"}, "$.wfm:"),
    ],
    ids=[
        "no-targets",
        "empty-target",
        "targets-missing",
        "unknown-package-key",
        "duplicate-profile",
        "unknown-profile",
        "other-pin",
        "wfm-not-a-mapping",
    ],
)
def test_validation_errors_name_the_json_path(tmp_path: Path, content: dict[str, Any], path: str) -> None:
    message = validation_error(tmp_path, content)
    assert "invalid SUT file" in message
    assert path in message


def test_unknown_package_key_is_named(tmp_path: Path) -> None:
    message = validation_error(tmp_path, {"package": {"targets": ["x"], "publish_to_local_registy": True}})
    assert "'publish_to_local_registy' was unexpected" in message


def test_all_validation_errors_are_listed(tmp_path: Path) -> None:
    message = validation_error(tmp_path, {"declares": ["nope"], "package": {"targets": []}})
    assert "$.declares[0]:" in message
    assert "$.package.targets:" in message


@pytest.mark.parametrize(
    "content", ["- a\n- list\n", "just text\n", "42\n"], ids=["list", "string", "number"]
)
def test_sut_file_must_be_a_mapping(tmp_path: Path, content: str) -> None:
    assert "must be a YAML mapping" in validation_error(tmp_path, content)


def test_malformed_yaml_is_a_usage_error(tmp_path: Path) -> None:
    message = validation_error(tmp_path, "package:\n  targets: [unclosed\n")
    assert "not valid YAML" in message
    assert "\n" not in message


# -- unreadable files ---------------------------------------------------------------------------------


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read the SUT file: No such file"):
        Sut.from_file(tmp_path / "missing.yaml", environ={})


def test_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read the SUT file"):
        Sut.from_file(tmp_path, environ={})


def test_non_utf8_file_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "sut.yaml"
    path.write_bytes(b"\xff\xfe p\x00i\x00n\x00")
    with pytest.raises(UsageError, match=str(path)):
        Sut.from_file(path, environ={})


# -- redaction ----------------------------------------------------------------------------------------

SECRETS = {
    "url": "https://wfm.example",
    "password": "hunter2",
    "api_token": "t0ken",
    "signing_key": "k3y",
    "clientSecret": "s3cret",
    "auth": {"username": "admin", "bearerToken": "b34rer"},
    "tokens": ["one", "two"],
}


@pytest.fixture
def redacted(tmp_path: Path) -> dict[str, Any]:
    """Every section of the SUT file is closed, so secret-named keys are put in ``raw`` directly: the
    redaction must hold whatever a later section lets through."""
    content = {"package": {"targets": ["x"]}, "device": SECRETS}
    return Sut(raw=content, source=str(tmp_path / "sut.yaml")).redacted()


def test_secret_named_values_are_redacted(redacted: dict[str, Any]) -> None:
    wfm = redacted["device"]
    assert [wfm[k] for k in ("password", "api_token", "signing_key", "clientSecret")] == ["***"] * 4
    assert wfm["auth"] == {"username": "admin", "bearerToken": "***"}
    assert wfm["tokens"] == "***"  # a secret-named list is replaced whole


def test_other_values_are_kept(redacted: dict[str, Any], tmp_path: Path) -> None:
    assert redacted["device"]["url"] == "https://wfm.example"
    assert redacted["package"] == {"targets": ["x"]}
    assert redacted["source"] == str(tmp_path / "sut.yaml")


def test_no_secret_reaches_the_redacted_text(redacted: dict[str, Any]) -> None:
    text = yaml.safe_dump(redacted)
    for secret in ("hunter2", "t0ken", "k3y", "s3cret", "b34rer", "one", "two"):
        assert secret not in text


def test_redaction_does_not_change_the_sut(tmp_path: Path) -> None:
    sut = Sut(raw={"device": {"password": "hunter2"}})
    sut.redacted()
    assert sut.raw["device"] == {"password": "hunter2"}


def test_a_mapping_under_a_secret_named_key_is_redacted(tmp_path: Path) -> None:
    content = {"device": {"credentials": {"user": "admin", "value": "s3cret"}}}
    redacted = Sut(raw=content).redacted()
    assert "s3cret" not in yaml.safe_dump(redacted)


# -- the signing profile's package material ------------------------------------------------------------


def test_reference_sut_gives_the_publishers_trust_material_and_signs_what_it_publishes() -> None:
    signing = load_sut(None, environ={}).package.signing  # type: ignore[union-attr]
    assert signing is not None
    assert signing.trust_store == (REFERENCE.parent / "signing" / "trust-store",)
    assert signing.trust_policy.is_file() and signing.test_publisher and signing.sign_key is None


@pytest.mark.parametrize(
    ("signing", "missing"),
    [
        (None, "no package.signing.trust_store and no package.signing.trust_policy"),
        ({"trust_store": "roots.pem"}, "no package.signing.trust_policy"),
        ({"trust_policy": "trustpolicy.json"}, "no package.signing.trust_store"),
    ],
)
def test_declaring_signing_without_the_trust_material_names_the_missing_key(
    tmp_path: Path, signing: dict[str, str] | None, missing: str
) -> None:
    package: dict[str, Any] = {"targets": ["oci://registry.example/app:1.0.0"]}
    if signing is not None:
        package["signing"] = signing
    message = validation_error(tmp_path, {"declares": ["core", "signing"], "package": package})
    assert missing in message and len(message.splitlines()) == 1


def test_trust_store_may_be_several_certificate_files(tmp_path: Path) -> None:
    package = {
        "targets": ["x"],
        "signing": {"trust_store": ["a.pem", "roots/"], "trust_policy": "policy.json"},
    }
    for made in ("x", "roots"):  # what the SUT file names must exist when it is loaded
        (tmp_path / made).mkdir()
    for made in ("a.pem", "policy.json"):
        (tmp_path / made).touch()
    sut = Sut.from_file(write_sut(tmp_path, {"declares": ["signing"], "package": package}), environ={})
    assert sut.package is not None and sut.package.signing is not None
    assert sut.package.signing.trust_store == (tmp_path / "a.pem", tmp_path / "roots")
    assert sut.package.signing.sign_key is None


def test_signing_material_that_does_not_exist_is_named_at_load(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    package = {"targets": ["x"], "signing": {"trust_store": "roots", "trust_policy": "policy.json"}}
    with pytest.raises(UsageError, match=r"package.signing.trust_policy: .*policy.json does not exist"):
        Sut.from_file(write_sut(tmp_path, {"declares": ["signing"], "package": package}), environ={})


def test_signing_material_is_ignored_without_the_signing_profile(tmp_path: Path) -> None:
    package = {"targets": ["x"], "signing": {"trust_store": "s", "trust_policy": "p.json"}}
    (tmp_path / "x").mkdir()
    sut = Sut.from_file(write_sut(tmp_path, {"declares": ["core"], "package": package}), environ={})
    assert sut.package is not None and sut.package.signing is None
