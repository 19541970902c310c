"""The signing profile's subjects for one run: signature fixtures in the suite's registry, and the trust
material (Notary trust store and trust policy files) the scenarios verify them with.

Fixtures are generated once, on first use. In the self-test's faults-off run every badly signed
fixture resolves to ``valid``, so each refusal scenario must fail (it cannot pass vacuously).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .._internal.local_registry import LocalRegistry
from .._internal.oci import OciClient, OciReference
from ..errors import Blocked
from .fixtures import Fixture, SignatureFixture, SigningPki, generate_fixtures
from .oci_signatures import mirror_artifact
from .package_check import SignatureCheck, Trust, check_signatures
from .policy import Level, policy_data

PUBLISHERS = ("vendor-a", "rogue-publisher")  # the trusted publisher, and the one untrusted-ca signs with
STORE_NAME = "publisher"  # the named store (ca:publisher) every generated trust policy uses
ELSEWHERE = "registry.invalid/elsewhere/app"  # a scope no fixture lives in
GOOD = (Fixture.VALID, Fixture.VALID_PS256)
MIRROR = "mirror"  # the namespace a fixture is mirrored under, as a plant's local registry would


def mirrored_scope(scope: str) -> str:
    """``host/repo`` → ``host/mirror/repo``: where ``SignatureSubjects.mirror`` puts a package."""
    host, _, repository = scope.partition("/")
    return f"{host}/{MIRROR}/{repository}"


class SignatureSubjects:
    def __init__(
        self,
        registry: Callable[[], LocalRegistry],
        workdir: Path,
        *,
        faults_off: bool = False,
        prefix: str = "sig",
    ) -> None:
        """``prefix`` names the fixtures' namespaces (``<prefix>-<kind>``): one per persona in a run."""
        self._registry = registry
        self._workdir = workdir
        self._faults_off = faults_off
        self._prefix = prefix
        self._pkis = {name: SigningPki(name) for name in PUBLISHERS}
        self._fixtures: dict[Fixture, SignatureFixture] = {}
        self._checks: dict[tuple[str, Path, Path, bool], SignatureCheck] = {}
        self._mirrors: dict[str, str] = {}

    def fixtures(self) -> dict[Fixture, SignatureFixture]:
        if not self._fixtures:
            self._fixtures = generate_fixtures(
                self._registry().host,
                publisher=self._pkis["vendor-a"],
                rogue=self._pkis["rogue-publisher"],
                prefix=self._prefix,
            )
        return self._fixtures

    def fixture(self, name: str) -> SignatureFixture:
        """The fixture by name (``valid`` instead of a bad one when faults are switched off)."""
        try:
            kind = Fixture(name)
        except ValueError:
            raise Blocked(f"no signature fixture named {name!r}; known: {', '.join(Fixture)}") from None
        return self.fixtures()[Fixture.VALID if self._faults_off and kind not in GOOD else kind]

    def trust_store(self, publisher: str) -> Path:
        """``x509/ca/publisher/root.pem`` holding this publisher's root (its signing material)."""
        if publisher not in self._pkis:
            raise Blocked(f"no publisher PKI named {publisher!r}; known: {', '.join(PUBLISHERS)}")
        return self._pkis[publisher].write_trust_store(self._workdir / f"store-{publisher}", STORE_NAME)

    def trust_policy(self, level: str, *, covering_fixtures: bool = True) -> Path:
        """A ``trustpolicy.json`` of one policy at ``level`` for every fixture repository and its mirror,
        or for a scope no fixture is in."""
        scopes = [ELSEWHERE]
        if covering_fixtures:
            scopes = [s for f in self.fixtures().values() for s in f.scopes()]
            scopes += [mirrored_scope(s) for s in scopes]
        data = policy_data(level=Level(level), scopes=sorted(set(scopes)), trust_store=STORE_NAME)
        path = self._workdir / f"trustpolicy-{level}-{'fixtures' if covering_fixtures else 'elsewhere'}.json"
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")
        return path

    def mirror(self, name: str) -> str:
        """The fixture's package copied by digest, with its signatures, to ``mirror/<repository>``."""
        if name not in self._mirrors:
            fixture = self.fixture(name)
            ref = OciReference.parse(fixture.reference)
            with OciClient(ref.registry) as client:
                copy = mirror_artifact(client, ref.repository, fixture.digest, f"{MIRROR}/{ref.repository}")
            self._mirrors[name] = str(copy)
        return self._mirrors[name]

    def verify(self, name: str, policy: Path, store: Path, *, mirrored: bool = False) -> SignatureCheck:
        key = (name, policy, store, mirrored)
        if key not in self._checks:
            reference = self.mirror(name) if mirrored else self.fixture(name).reference
            self._checks[key] = check_signatures(reference, Trust.load(policy, store))
        return self._checks[key]
