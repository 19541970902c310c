"""Steps of the package persona: thin; the checks and expectations live in margo_conformance.package."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from margo_conformance._internal.local_registry import LocalRegistry
from margo_conformance.config import Sut
from margo_conformance.package import expectations
from margo_conformance.package.check import PackageReport
from margo_conformance.package.subjects import PackageSubjects

FEATURES = Path(__file__).resolve().parents[1] / "features" / "package"
# signing-fixtures.feature (the signature checker's proof) is bound beside its own steps, in
# test_package_signing.py
scenarios(*(str(f) for f in sorted(FEATURES.rglob("*.feature")) if f.name != "signing-fixtures.feature"))


@pytest.fixture(scope="session")
def package_subjects(
    request: pytest.FixtureRequest,
    sut: Sut,
    fixtures_dir: Path,
    local_registry: Callable[[], LocalRegistry],
    tmp_path_factory: pytest.TempPathFactory,
) -> PackageSubjects:
    return PackageSubjects(
        sut,
        fixtures=fixtures_dir / "packages",
        workdir=tmp_path_factory.mktemp("packages"),
        registry=local_registry,
        mutant=request.config.getoption("--margo-mutant"),
        faults_off=request.config.getoption("--margo-faults-off"),
    )


@given("the application packages under test", target_fixture="package_targets")
def packages_under_test(package_subjects: PackageSubjects) -> list[str]:
    return package_subjects.targets()


@given("the application packages under test, published in an OCI registry", target_fixture="package_targets")
def published_packages_under_test(package_subjects: PackageSubjects) -> list[str]:
    return package_subjects.published_targets()


@given(parsers.parse('the bundled package with the fault "{fault}"'), target_fixture="package_targets")
def bundled_faulty_package(package_subjects: PackageSubjects, fault: str) -> list[str]:
    return [package_subjects.fault_target(fault)]


@when("each package is checked", target_fixture="package_reports")
@when("each published package is checked", target_fixture="package_reports")
@when("the package is checked", target_fixture="package_reports")
def check_packages(package_subjects: PackageSubjects, package_targets: list[str]) -> list[PackageReport]:
    return [package_subjects.check(target) for target in package_targets]


@when(
    "the signatures of each published package are verified under the publisher's trust policy",
    target_fixture="package_reports",
)
@when(
    "the package's signatures are verified under the publisher's trust policy",
    target_fixture="package_reports",
)
def verify_signatures(package_subjects: PackageSubjects, package_targets: list[str]) -> list[PackageReport]:
    return [package_subjects.check_signatures(target) for target in package_targets]


@when("their Compose archives were available to check")
def compose_archives_checked(package_reports: list[PackageReport]) -> None:
    expectations.ensure_artifacts_checked(package_reports, "compose")


@when("their Helm charts were available to check")
def helm_charts_checked(package_reports: list[PackageReport]) -> None:
    expectations.ensure_artifacts_checked(package_reports, "helm")


@then(parsers.parse("no package breaks requirement {requirement}"))
def no_package_breaks(package_reports: list[PackageReport], requirement: str) -> None:
    expectations.ensure_meets(package_reports, requirement)


@then(parsers.parse("no package departs from the recommendation of requirement {requirement}"))
def no_package_departs(package_reports: list[PackageReport], requirement: str) -> None:
    expectations.ensure_meets_recommendation(package_reports, requirement)


@then(parsers.parse("the package is non-conformant, breaking requirement {requirement}"))
def package_refused(package_reports: list[PackageReport], requirement: str) -> None:
    expectations.ensure_refused(package_reports[0], requirement)


@then(
    parsers.parse(
        "the package stays conformant but departs from the recommendation of requirement {requirement}"
    )
)
def package_warned(package_reports: list[PackageReport], requirement: str) -> None:
    expectations.ensure_departs_from_recommendation(package_reports[0], requirement)
