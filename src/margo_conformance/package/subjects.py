"""The packages a run checks: the SUT's targets, their published copies, and bundled faulty fixtures.

Checking is done once per target and cached for the whole run, so twenty scenarios about one package
cost one check. Publishing to the suite's local registry happens only when a scenario needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._internal.local_registry import LocalRegistry
from ..config import Sut
from ..errors import Blocked
from ..signing import vendor
from ..signing.fixtures import Fixture
from ..signing.package_check import Trust, check_signatures
from .check import PackageReport, check_package
from .mutants import PackageFault, load_faults, materialize
from .publish import PublishedPackage, Variant, publish_package

REGISTRY_ONLY_KEYS = ("tag", "tamper", "signature")  # fault publish keys that are not Variant fields
VALID_SIGNATURE = "valid"  # a signing fault switched off: the package signed as its publisher would


class PackageSubjects:
    def __init__(
        self,
        sut: Sut,
        *,
        fixtures: Path,
        workdir: Path,
        registry: Callable[[], LocalRegistry],
        mutant: str | None = None,
        faults_off: bool = False,
    ) -> None:
        self._sut = sut
        self._references = fixtures
        self._workdir = workdir
        self._registry = registry
        self._faults = load_faults(fixtures / "faults.yaml")
        self._mutant = self.fault(mutant) if mutant else None
        self._faults_off = faults_off
        self._reports: dict[str, PackageReport] = {}
        self._signatures: dict[str, PackageReport] = {}
        self._published: dict[str, str] = {}
        self._trust: Trust | None = None

    def fault(self, name: str) -> PackageFault:
        try:
            return self._faults[name]
        except KeyError:
            raise Blocked(f"no bundled fault named {name!r} in {self._references / 'faults.yaml'}") from None

    def targets(self) -> list[str]:
        """The packages under test: the self-test's mutant, else the SUT's targets."""
        if self._mutant is not None:
            return [str(materialize(self._mutant, self._references, self._workdir))]
        if self._sut.package is None:
            raise Blocked("the SUT file declares no 'package' subject")
        return list(self._sut.package.targets)

    def published_targets(self) -> list[str]:
        """The packages under test as oci:// references, publishing local folders when allowed."""
        if self._mutant is not None:
            return [self._publish(self._mutant.name, self._mutant)]
        if self._sut.package is None:
            raise Blocked("the SUT file declares no 'package' subject")
        published = []
        for target in self._sut.package.targets:
            if target.startswith("oci://"):
                published.append(target)
            elif self._sut.package.publish_to_local_registry:
                published.append(self._publish(target, None, source=Path(target)))
            else:
                raise Blocked(
                    f"{target} is a local package and the SUT does not allow publishing it "
                    "to the suite's registry (package.publish_to_local_registry)"
                )
        return published

    def fault_target(self, name: str) -> str:
        """The bundled package with this fault switched on (or off, in the self-test's faults-off run)."""
        fault = self.fault(name)
        if self._faults_off and fault.signature is not None:  # the origin, published and validly signed
            return self._publish(f"{fault.name}-off", fault, signature=VALID_SIGNATURE)
        if self._faults_off:
            return str(self._references / fault.origin)
        if fault.needs_registry:
            return self._publish(fault.name, fault)
        return str(materialize(fault, self._references, self._workdir))

    def check(self, target: str) -> PackageReport:
        if target not in self._reports:
            self._reports[target] = check_package(target)
        return self._reports[target]

    def check_signatures(self, target: str) -> PackageReport:
        """The signature findings of an ``oci://`` package under the publisher's trust (the SUT file's)."""
        if target not in self._signatures:
            self._signatures[target] = check_signatures(target, self.publisher_trust()).report()
        return self._signatures[target]

    def publisher_trust(self) -> Trust:
        signing = self._sut.package.signing if self._sut.package else None
        if signing is None:
            raise Blocked(
                "the SUT file gives no package.signing.trust_store and trust_policy to verify signatures with"
            )
        if self._trust is None:
            self._trust = vendor.publisher_trust(signing.trust_store, signing.trust_policy, self._workdir)
        return self._trust

    def _publish(
        self,
        key: str,
        fault: PackageFault | None,
        *,
        source: Path | None = None,
        signature: str | None = None,
    ) -> str:
        if key not in self._published:
            registry = self._registry()
            folder = source or materialize(fault, self._references, self._workdir)  # type: ignore[arg-type]
            overrides: dict[str, Any] = dict(fault.publish or {}) if fault else {}
            extra = {k: overrides.pop(k) for k in REGISTRY_ONLY_KEYS if k in overrides}
            published = publish_package(
                folder,
                registry.host,
                tag=extra.get("tag"),
                variant=_variant(overrides),
                namespace=_namespace(key),
            )
            if "tamper" in extra:
                registry.tamper_blob(published.component(extra["tamper"]).layer_digest)
            self._sign(published, signature or extra.get("signature"))
            self._published[key] = published.reference
        return self._published[key]

    def _sign(self, published: PublishedPackage, signature: str | None) -> None:
        """A signing fault's signatures (the suite's test publisher), else the SUT's own signing material."""
        if signature is not None:
            vendor.sign_published_as(published, Fixture(signature), vendor.reference_publisher())
            return
        signing = self._sut.package.signing if self._sut.package else None
        if signing is not None and signing.test_publisher:
            vendor.sign_published_as_test_publisher(published, self._workdir)
        elif signing is not None and signing.sign_key is not None and signing.sign_chain is not None:
            vendor.sign_published(published, signing.sign_key, signing.sign_chain)


def _namespace(key: str) -> str:
    """A registry path segment of its own for each published subject (a fault name or a folder)."""
    return "subjects/" + "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(key).name.lower())


def _variant(overrides: dict[str, Any]) -> Variant:
    """A publishing Variant from YAML values (lists become the tuple/frozenset fields it expects)."""
    if "omit_annotations" in overrides:
        overrides["omit_annotations"] = frozenset(overrides["omit_annotations"])
    if "extra_layers" in overrides:
        overrides["extra_layers"] = tuple((m, t.encode()) for m, t in overrides["extra_layers"])
    return Variant(**overrides)
