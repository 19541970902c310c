"""`package check` on every artifact a vendor produces, each conformant and with a finding; `--as`; a
component archive named after its revision; unreachable references beside and without findings;
registry reach (`--plain-http`, `--resolve`) against a loopback registry; REG-005 read as INC-019.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from margo_conformance._internal.archive_builder import pack_directory
from margo_conformance._internal.local_registry import LocalRegistry, free_port
from margo_conformance._internal.oci import (
    HELM_CHART,
    HELM_CONFIG,
    OciClient,
    OciReference,
    Reach,
    registry_reach,
)
from margo_conformance.cli import app
from margo_conformance.errors import EnvironmentProblem, UsageError
from margo_conformance.package.check import KINDS, target_kind
from margo_conformance.package.mutants import load_faults, materialize
from margo_conformance.package.oci_source import (
    APP_ARTIFACT_TYPE,
    COMPOSE_ARTIFACT_TYPE,
    DESCRIPTION_MEDIA_TYPE,
    artifact_kind,
)
from margo_conformance.package.publish import (
    Variant,
    publish_package,
    push_compose_component,
    push_helm_chart,
)
from margo_conformance.signing.fixtures import SigningPki
from margo_conformance.signing.policy import policy_data

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "fixtures" / "packages"
COMPOSE_APP = PACKAGES / "vendor-a-compose"  # component sensor-hub, revision 1.2.0
HELM_APP = PACKAGES / "helm-app"  # component metrics-gateway, revision 0.4.0
FAULTS = load_faults(PACKAGES / "faults.yaml")


def check(*args: str) -> tuple[int, dict[str, Any]]:
    """`package check ARGS --json`: the exit code and the report."""
    result = CliRunner().invoke(app, ["package", "check", *args, "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def must_requirements(report: dict[str, Any]) -> set[str]:
    return {rid for rid, verdict in report["requirements"].items() if verdict == "fail"}


def tar_gz(folder: Path, top: str | None = None) -> bytes:
    return pack_directory(folder, top=top or folder.name)


def copy_tree(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination)
    return destination


# -- local artifacts ---------------------------------------------------------------------------------


@pytest.fixture
def compose_folder(tmp_path: Path) -> Path:
    return copy_tree(COMPOSE_APP / "components" / "sensor-hub", tmp_path / "src" / "sensor-hub")


@pytest.fixture
def chart_folder(tmp_path: Path) -> Path:
    return copy_tree(HELM_APP / "components" / "metrics-gateway", tmp_path / "src" / "metrics-gateway")


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_package_folder(tmp_path: Path) -> None:
    assert check(str(COMPOSE_APP))[0] == 0
    code, report = check(str(materialize(FAULTS["target-unknown-component"], PACKAGES, tmp_path)))
    assert (code, report["kind"], report["verdict"]) == (1, "package", "non-conformant")


def test_package_tarball(tmp_path: Path) -> None:
    code, report = check(str(write(tmp_path / "app.tar.gz", tar_gz(COMPOSE_APP, "app"))))
    assert (code, report["kind"], report["verdict"]) == (0, "package-archive", "conformant")
    assert "REG-013" in report["requirements"]  # its component archive was judged too
    faulty = materialize(FAULTS["target-unknown-component"], PACKAGES, tmp_path / "fault")
    code, report = check(str(write(tmp_path / "bad.tar.gz", tar_gz(faulty, "bad"))))
    assert (code, report["kind"], report["verdict"]) == (1, "package-archive", "non-conformant")


def test_compose_archive_is_judged_by_sup01_alone(tmp_path: Path, compose_folder: Path) -> None:
    code, report = check(str(write(tmp_path / "sensor-hub.tar.gz", tar_gz(compose_folder))))
    assert (code, report["kind"]) == (0, "compose")
    assert set(report["requirements"]) == {"REG-013", "REG-014", "REG-015"}
    (compose_folder / "compose.yaml").rename(compose_folder / "compose.yml")
    code, report = check(str(write(tmp_path / "misnamed.tar.gz", tar_gz(compose_folder))))
    assert (code, report["kind"], must_requirements(report)) == (1, "compose", {"REG-013"})


def test_packaged_helm_chart(tmp_path: Path, chart_folder: Path) -> None:
    code, report = check(str(write(tmp_path / "chart.tgz", tar_gz(chart_folder))))
    assert (code, report["kind"], set(report["requirements"])) == (0, "helm", {"APPD-004", "APPD-110"})
    (chart_folder / "templates" / "hook.yaml").write_text(
        "metadata:\n  annotations:\n    helm.sh/hook: pre-install\n"
    )
    code, report = check(str(write(tmp_path / "hooked.tgz", tar_gz(chart_folder))))
    assert (code, must_requirements(report)) == (1, {"APPD-004"})


def test_chart_folder(chart_folder: Path) -> None:
    assert check(str(chart_folder))[1]["kind"] == "helm"
    assert check(str(chart_folder))[0] == 0
    chart = chart_folder / "Chart.yaml"
    chart.write_text(chart.read_text().replace("apiVersion: v2", "apiVersion: v1"))
    code, report = check(str(chart_folder))
    assert (code, must_requirements(report)) == (1, {"APPD-110"})


def test_a_package_whose_folder_holds_a_compose_file_below_the_root_is_a_package(tmp_path: Path) -> None:
    """components/<name>/compose.yaml sits two levels down: the target is a package archive."""
    assert target_kind(str(write(tmp_path / "app.tar.gz", tar_gz(COMPOSE_APP, "app")))) == "package-archive"


def test_a_compose_file_beside_the_description_leaves_it_a_package(
    tmp_path: Path, compose_folder: Path
) -> None:
    root = copy_tree(COMPOSE_APP, tmp_path / "app")
    shutil.copy(compose_folder / "compose.yaml", root / "compose.yaml")
    assert target_kind(str(write(tmp_path / "app.tar.gz", tar_gz(root)))) == "package-archive"


def test_what_is_not_a_gzipped_tar_is_read_as_a_package_archive(tmp_path: Path) -> None:
    assert target_kind(str(write(tmp_path / "x.tar.gz", b"not gzip"))) == "package-archive"


def test_as_forces_the_kind(tmp_path: Path, compose_folder: Path) -> None:
    archive = str(write(tmp_path / "sensor-hub.tar.gz", tar_gz(compose_folder)))
    code, report = check(archive, "--as", "helm")
    assert (code, report["kind"], must_requirements(report)) == (1, "helm", {"APPD-110"})
    assert check(str(compose_folder), "--as", "compose")[1]["kind"] == "compose"


@pytest.mark.parametrize(
    ("target", "kind", "message"),
    [
        (".", "oci-package", "is a local path"),
        ("oci://127.0.0.1:1/a:1", "compose", "is an oci:// reference"),
        (".", "chart", "expected one of package, package-archive"),
    ],
)
def test_as_that_does_not_fit_the_target_is_a_usage_error(target: str, kind: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        target_kind(target, kind)


def test_help_names_every_kind() -> None:
    text = " ".join(CliRunner().invoke(app, ["package", "check", "--help"]).stdout.split())
    assert all(kind in text for kind in KINDS)


def revision_named(tmp_path: Path) -> Path:
    """The compose fixture with its component archived as components/sensor-hub-1.2.0.tar.gz."""
    root = copy_tree(COMPOSE_APP, tmp_path / "app")
    folder = root / "components" / "sensor-hub"
    (root / "components" / "sensor-hub-1.2.0.tar.gz").write_bytes(tar_gz(folder))
    shutil.rmtree(folder)
    return root


def test_component_archive_named_after_its_revision(tmp_path: Path) -> None:
    root = revision_named(tmp_path)
    code, report = check(str(root))
    assert (code, report["notes"]) == (0, [])
    assert {"REG-013", "REG-014", "REG-015"} <= set(report["requirements"])
    (root / "components" / "sensor-hub-1.2.0.tar.gz").rename(root / "components" / "sensor-hub-9.9.9.tar.gz")
    assert "its archive was not checked" in " ".join(check(str(root))[1]["notes"])


@pytest.mark.parametrize(
    ("manifest", "kind"),
    [
        ({"artifactType": APP_ARTIFACT_TYPE}, "package"),
        ({"layers": [{"mediaType": DESCRIPTION_MEDIA_TYPE}]}, "package"),
        ({"config": {"mediaType": HELM_CONFIG}}, "helm"),
        ({"layers": [{"mediaType": HELM_CHART}]}, "helm"),
        ({"artifactType": COMPOSE_ARTIFACT_TYPE}, "compose"),
        ({"layers": [{"mediaType": "application/vnd.docker.compose.file+yaml"}]}, "compose"),
        ({"artifactType": "application/vnd.example+json", "layers": []}, None),
    ],
)
def test_an_oci_manifest_says_what_it_holds(manifest: dict[str, Any], kind: str | None) -> None:
    assert artifact_kind(manifest) == kind


# -- registries --------------------------------------------------------------------------------------


def test_revision_named_component_is_published_with_its_package(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    published = publish_package(revision_named(tmp_path), registry.host, namespace="revision-named")
    code, report = check(published.reference)
    assert (code, report["verdict"]) == (0, "conformant")
    assert {"REG-010", "REG-013"} <= set(report["requirements"])


def test_oci_package(registry: LocalRegistry) -> None:
    published = publish_package(COMPOSE_APP, registry.host, namespace="kinds")
    code, report = check(published.reference)
    assert (code, report["kind"], report["verdict"]) == (0, "oci-package", "conformant")
    wrong = publish_package(COMPOSE_APP, registry.host, namespace="kinds", repository="wrong", tag="v9")
    code, report = check(wrong.reference)
    assert (code, must_requirements(report)) == (1, {"REG-005"})


@pytest.mark.parametrize(("revision", "expected"), [("1.2.0", set()), ("2.0.0", {"REG-012"})])
def test_oci_compose_component(
    registry: LocalRegistry, compose_folder: Path, revision: str, expected: set[str]
) -> None:
    repository = f"lone-{revision.replace('.', '-')}/sensor-hub"  # tag 1.2.0, annotated {revision}
    ref = OciReference.parse(f"oci://{registry.host}/{repository}:1.2.0")
    with OciClient(registry.host) as client:
        push_compose_component(client, ref, tar_gz(compose_folder), name="sensor-hub", revision=revision)
    code, report = check(str(ref))
    assert report["kind"] == "oci-component"
    assert {"REG-011", "REG-012", "REG-013"} <= set(report["requirements"])
    assert (code, must_requirements(report)) == (1 if expected else 0, expected)


def test_oci_component_in_the_docker_compose_publish_shape_is_reg_017(
    registry: LocalRegistry, compose_folder: Path
) -> None:
    ref = OciReference.parse(f"oci://{registry.host}/docker-shape/sensor-hub:1.2.0")
    with OciClient(registry.host) as client:
        push_compose_component(
            client,
            ref,
            tar_gz(compose_folder),
            name="sensor-hub",
            revision="1.2.0",
            variant=Variant(docker_compose_publish_shape=True),
        )
    code, report = check(str(ref))
    assert (code, report["kind"]) == (1, "oci-component")
    assert "REG-017" in must_requirements(report)


def test_oci_helm_component(registry: LocalRegistry, chart_folder: Path) -> None:
    ref = OciReference.parse(f"oci://{registry.host}/lone/metrics-gateway:0.4.0")
    with OciClient(registry.host) as client:
        push_helm_chart(client, ref, tar_gz(chart_folder))
    code, report = check(str(ref))
    assert (code, report["kind"], report["verdict"]) == (0, "oci-component", "conformant")
    (chart_folder / "templates" / "crds.yaml").write_text('{{ lookup "v1" "Secret" "" "x" }}\n')
    with OciClient(registry.host) as client:
        push_helm_chart(client, ref.with_tag("0.4.0-lookup"), tar_gz(chart_folder))
    code, report = check(str(ref.with_tag("0.4.0-lookup")))
    assert (code, must_requirements(report)) == (1, {"APPD-004"})


def test_oci_component_read_as_a_package_with_as(registry: LocalRegistry, compose_folder: Path) -> None:
    ref = OciReference.parse(f"oci://{registry.host}/lone/forced:1.2.0")
    with OciClient(registry.host) as client:
        push_compose_component(client, ref, tar_gz(compose_folder), name="forced", revision="1.2.0")
    code, report = check(str(ref), "--as", "oci-package")
    assert (code, report["kind"]) == (1, "oci-package")
    assert "REG-008" in must_requirements(report)


UNREACHABLE_COMPONENT = """\
      - name: api
        properties:
          repository: oci://127.0.0.1:{port}/acme/api
          revision: 2.0.0
"""


def with_unreachable_component(tmp_path: Path) -> tuple[Path, str]:
    """The compose fixture plus a component whose registry refuses connections (a closed loopback port)."""
    root = copy_tree(COMPOSE_APP, tmp_path / "app")
    port = free_port()
    write_component(root / "margo.yaml", UNREACHABLE_COMPONENT.format(port=port))
    return root, f"oci://127.0.0.1:{port}/acme/api:2.0.0"


def write_component(description: Path, component: str) -> None:
    """Add ``component`` (YAML lines) first in the description's first deployment profile."""
    text = description.read_text()
    anchor = "    components:\n"
    assert anchor in text
    description.write_text(text.replace(anchor, anchor + component, 1))


def test_unreachable_component_alone_leaves_the_verdict_incomplete(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    root, missing = with_unreachable_component(tmp_path)
    published = publish_package(root, registry.host, namespace="reach")
    code, report = check(published.reference)
    assert (code, report["verdict"], report["unreachable"]) == (2, "incomplete", [missing])
    assert must_requirements(report) == set()
    assert report["requirements"]["REG-010"] == "not-checked"  # one component could not be resolved
    assert report["requirements"]["PKG-002"] == "pass"  # the description was judged whole
    assert any(missing in note and "connection refused" in note for note in report["notes"])


def test_component_on_an_unknown_host_is_unreachable(registry: LocalRegistry, tmp_path: Path) -> None:
    """.invalid never resolves (RFC 6761); no registry answered, so nothing is judged either way."""
    root = copy_tree(COMPOSE_APP, tmp_path / "app")
    write_component(
        root / "margo.yaml", UNREACHABLE_COMPONENT.replace("127.0.0.1:{port}", "unknown-host.invalid")
    )
    published = publish_package(root, registry.host, namespace="unknown-host")
    code, report = check(published.reference, "--timeout", "5")
    assert (code, report["unreachable"]) == (2, ["oci://unknown-host.invalid/acme/api:2.0.0"])
    assert any("host name does not resolve" in note for note in report["notes"])


def test_unreachable_component_never_hides_a_must_finding(registry: LocalRegistry, tmp_path: Path) -> None:
    root, missing = with_unreachable_component(tmp_path)
    published = publish_package(root, registry.host, namespace="reach", repository="tagged", tag="v1")
    code, report = check(published.reference)
    assert (code, report["verdict"], report["unreachable"]) == (1, "non-conformant", [missing])
    assert must_requirements(report) == {"REG-005"}


def test_unreachable_component_in_the_text_report(registry: LocalRegistry, tmp_path: Path) -> None:
    root, missing = with_unreachable_component(tmp_path)
    published = publish_package(root, registry.host, namespace="text")
    result = CliRunner().invoke(app, ["package", "check", published.reference])
    assert result.exit_code == 2
    assert f"incomplete: {published.reference}" in " ".join(result.stdout.split())


def test_signatures_are_verified_from_a_package(
    registry: LocalRegistry, chart_folder: Path, tmp_path: Path
) -> None:
    """A trust policy on a lone component is refused (one line, exit 2), never a silent pass."""
    ref = OciReference.parse(f"oci://{registry.host}/signed/metrics-gateway:0.4.0")
    with OciClient(registry.host) as client:
        push_helm_chart(client, ref, tar_gz(chart_folder))
    store = SigningPki("artifacts").write_trust_store(tmp_path / "store")
    policy = tmp_path / "trustpolicy.json"
    policy.write_text(json.dumps(policy_data(level="strict", scopes=["*"])))
    trust = ["--trust-policy", str(policy), "--trust-store", str(store)]
    result = CliRunner().invoke(app, ["package", "check", str(ref), *trust])
    assert isinstance(result.exception, UsageError), result.output
    assert "is an oci-component: signatures are verified from a package" in str(result.exception)


# -- registry reach ----------------------------------------------------------------------------------

NAME = "registry.example:5000"  # never looked up: --resolve sends it to the loopback registry


def test_resolve_and_plain_http_reach_a_registry_by_another_name(registry: LocalRegistry) -> None:
    resolve = f"{NAME}:{registry.host}"
    with registry_reach(Reach.parse(plain_http=True, resolve=[resolve])):
        published = publish_package(COMPOSE_APP, NAME, namespace="mirror")
    assert published.reference.startswith(f"oci://{NAME}/")
    code, report = check(published.reference, "--plain-http", "--resolve", resolve)
    assert (code, report["verdict"]) == (0, "conformant")
    # without --plain-http the name is not loopback: HTTPS, which a plain-HTTP registry cannot answer
    result = CliRunner().invoke(app, ["package", "check", published.reference, "--resolve", resolve])
    assert isinstance(result.exception, EnvironmentProblem)  # the entry point's one line, exit 2
    assert f"registry {NAME} (resolved to 127.0.0.1:" in str(result.exception)


def test_a_404_from_a_resolve_mirror_is_unreachable_not_a_finding(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    """The mirror may simply not carry the component: the publisher's own registry was not asked."""
    root = copy_tree(COMPOSE_APP, tmp_path / "app")
    extra = UNREACHABLE_COMPONENT.replace("127.0.0.1:{port}", "registry.invalid")
    write_component(root / "margo.yaml", extra)  # no archive under components/: never pushed
    resolve = f"{NAME}:{registry.host}"
    with registry_reach(Reach.parse(plain_http=True, resolve=[resolve])):
        published = publish_package(root, NAME, namespace="partial")
    code, report = check(published.reference, "--plain-http", "--resolve", resolve)
    assert (code, report["verdict"]) == (2, "incomplete")
    assert report["unreachable"] == [f"oci://{NAME}/partial/acme/api:2.0.0"]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (["registry.example:443:10.0.0.7:5000"], {("registry.example", 443): ("10.0.0.7", 5000)}),
        (["Registry.Example:443:10.0.0.7"], {("registry.example", 443): ("10.0.0.7", 443)}),
        (["[::1]:443:[fd00::7]:8443"], {("::1", 443): ("fd00::7", 8443)}),
    ],
)
def test_resolve_entries_parse(entries: list[str], expected: dict[tuple[str, int], tuple[str, int]]) -> None:
    assert dict(Reach.parse(plain_http=None, resolve=entries).resolve) == expected


@pytest.mark.parametrize("entry", ["registry.example", "registry.example:443", "a:0:b:1", "a:443:b:99999"])
def test_malformed_resolve_is_a_usage_error(entry: str) -> None:
    with pytest.raises(UsageError, match="HOST:PORT:ADDRESS"):
        Reach.parse(plain_http=None, resolve=[entry])


# -- REG-005 read as INC-019 -------------------------------------------------------------------------


def test_latest_beside_the_version_tag_is_fine(registry: LocalRegistry) -> None:
    versioned = publish_package(COMPOSE_APP, registry.host, namespace="tags")
    latest = publish_package(COMPOSE_APP, registry.host, namespace="tags", tag="latest")
    assert latest.manifest_digest == versioned.manifest_digest
    code, report = check(latest.reference)
    assert (code, report["requirements"]["REG-005"]) == (0, "pass")
    assert any("INC-019" in note for note in report["notes"])


def test_latest_without_the_version_tag_is_reg_005(registry: LocalRegistry) -> None:
    latest = publish_package(COMPOSE_APP, registry.host, namespace="only-latest", tag="latest")
    code, report = check(latest.reference)
    assert (code, must_requirements(report)) == (1, {"REG-005"})
    assert "does not exist" in json.dumps(report["findings"])


def test_latest_whose_version_tag_names_another_manifest_is_reg_005(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    root = copy_tree(COMPOSE_APP, tmp_path / "app")
    publish_package(root, registry.host, namespace="moved")  # 1.2.0
    (root / "resources" / "release-notes.md").write_text("Rebuilt.\n")
    latest = publish_package(root, registry.host, namespace="moved", tag="latest")
    code, report = check(latest.reference)
    assert (code, must_requirements(report)) == (1, {"REG-005"})
    assert "names another manifest" in json.dumps(report["findings"])
