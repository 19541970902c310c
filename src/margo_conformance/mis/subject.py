"""The identity service under test, as the scenarios see it.

For the built-in run the suite starts its reference WFM, whose process also serves the trust endpoints
(with one fault switched on in the self-test), and authenticates them with the PKI's root (TLS-006
PKI-anchored validation); the WFM of that process is the one whose SVID the bundle must validate. For a
vendor's identity service everything comes from the SUT file's ``mis:`` section.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import MisSubjectConfig, WfmSubjectConfig
from ..errors import UsageError
from ..wfm.subject import WfmSubject

DISCOVERY_PATH = "/.well-known/margo"


@dataclass
class MisSubject:
    discovery_url: str
    trust_domain: str
    anchors: Path  # the initial trust anchors the MIS's TLS certificate chains to
    workdir: Path
    wfm_url: str = ""  # a WFM of this trust domain, for the consistency scenario ("" when none)
    timeout_s: float = 10.0
    wfm: WfmSubject | None = None  # the reference run's WFM process, which serves the trust endpoints

    @classmethod
    def start(
        cls,
        config: MisSubjectConfig,
        workdir: Path,
        *,
        faults: tuple[str, ...] = (),
        wfm: WfmSubjectConfig | None = None,
    ) -> MisSubject:
        if config.reference:
            started = WfmSubject.start(WfmSubjectConfig(reference=True), workdir, faults=faults)
            assert started.process is not None
            origin = started.process.endpoints["mis_url"]
            return cls(
                origin + DISCOVERY_PATH,
                started.pki.trust_domain,
                started.pki.bundle_pem,
                workdir,
                started.url,
                config.timeout_s,
                started,
            )
        if faults:
            raise UsageError("faults can only be switched on in the suite's reference identity service")
        if config.anchors is None or not config.anchors.is_file():
            raise UsageError(f"mis.anchors: {config.anchors} is not a file of PEM trust anchors")
        return cls(
            config.discovery_url,
            config.trust_domain,
            config.anchors,
            workdir,
            config.wfm_url or _same_domain_wfm(config, wfm),
            config.timeout_s,
        )

    def close(self) -> None:
        if self.wfm is not None:
            self.wfm.close()


def _same_domain_wfm(config: MisSubjectConfig, wfm: WfmSubjectConfig | None) -> str:
    """The SUT's vendor WFM when it lives in the identity service's trust domain."""
    if wfm is None or wfm.reference or wfm.trust_domain != config.trust_domain:
        return ""
    return wfm.url
