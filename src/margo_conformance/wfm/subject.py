"""The WFM under test, as the scenarios see it: where it is, who may talk to it, who provisions it.

For the built-in reference run the suite mints a trust domain, starts its own reference WFM (with one
fault switched on in the self-test) and provisions it through the admin interface; for a vendor's
WFM everything comes from the SUT file. Trust material for packages (SUP-03) is the suite's to hand
out as the operator: the reference WFM is restarted with it, a vendor's gets it from its provisioner.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .._internal.processes import tied_to_parent
from ..config import WfmSubjectConfig
from ..errors import EnvironmentProblem, UsageError
from ..pki import Flaw, Pki, SpiffeId, Svid, SvidError
from ..pki.policy import spiffe_id_of
from .client import VirtualClient
from .provisioners import Provisioner, make_provisioner

REFERENCE_TRUST_DOMAIN = "factory.example"
REFERENCE_WFM_ID = "wfm-1"
START_TIMEOUT_S = 20.0


class ReferenceWfmProcess:
    """The reference WFM in a process of its own, restartable on the same state."""

    def __init__(
        self, pki: Pki, state: Path, *, faults: tuple[str, ...] = (), trust: tuple[Path, Path] | None = None
    ) -> None:
        self._pki, self._state, self._faults = pki, state, faults
        self.trust = trust  # (trust policy file, trust store directory), or None: packages unverified
        self._process: subprocess.Popen[bytes] | None = None
        self.endpoints: dict[str, str] = {}

    def start(self) -> None:
        ready = self._state / "ready.json"
        ready.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "margo_conformance.cli",
            "reference",
            "wfm",
            "--pki",
            str(self._pki.directory),
            "--state",
            str(self._state),
            "--ready-file",
            str(ready),
        ]
        for fault in self._faults:
            command += ["--fault", fault]
        if self.trust is not None:
            command += ["--trust-policy", str(self.trust[0]), "--trust-store", str(self.trust[1])]
        for option, key in (
            ("--listen", "url"),
            ("--mis-listen", "mis_url"),
            ("--admin-listen", "admin_url"),
        ):
            if key in self.endpoints:  # a restart comes back on the same addresses
                command += [option, self.endpoints[key].split("://", 1)[1]]
        log = (self._state / "wfm.log").open("ab")
        self._process = subprocess.Popen(
            tied_to_parent(command), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = (self._state / "wfm.log").read_text(errors="replace").strip().splitlines()[-8:]
                raise EnvironmentProblem("the reference WFM did not start:\n  " + "\n  ".join(tail))
            time.sleep(0.05)  # poll: waiting for the server to write its ready file
        self.endpoints = json.loads(ready.read_text(encoding="utf-8"))

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def use_trust(self, trust_policy: Path, trust_store: Path) -> None:
        """Verify packages under this trust material from now on: a restart (same state and addresses)
        when it differs from what the WFM runs with."""
        if self.trust != (trust_policy, trust_store):
            self.trust = (trust_policy, trust_store)
            self.restart()


@dataclass
class WfmSubject:
    url: str
    pki: Pki
    provisioner: Provisioner
    workdir: Path
    timeout_s: float = 10.0
    process: ReferenceWfmProcess | None = None
    _trust: tuple[Path, Path] | None = field(default=None, init=False, repr=False)  # last handed out

    @classmethod
    def start(cls, config: WfmSubjectConfig, workdir: Path, *, faults: tuple[str, ...] = ()) -> WfmSubject:
        if config.reference:
            pki = Pki.init(workdir / "pki", trust_domain=REFERENCE_TRUST_DOMAIN, wfm_id=REFERENCE_WFM_ID)
            (workdir / "state").mkdir(exist_ok=True)
            process = ReferenceWfmProcess(pki, workdir / "state", faults=faults)
            process.start()
            provisioner = make_provisioner(config.provisioner, admin_url=process.endpoints["admin_url"])
            return cls(process.endpoints["url"], pki, provisioner, workdir, config.timeout_s, process)
        if faults:
            raise UsageError("faults can only be switched on in the suite's reference WFM")
        if config.pki is None:
            raise UsageError(
                "wfm.pki: the operator PKI directory (from `margo-conformance pki init`) is required"
            )
        pki = Pki.load(config.pki)
        if (pki.trust_domain, pki.wfm_id) != (config.trust_domain, config.wfm_id):
            raise UsageError(
                f"wfm.pki is for {pki.wfm_spiffe_id}, but the SUT says trust_domain={config.trust_domain} "
                f"wfm_id={config.wfm_id}"
            )
        return cls(config.url, pki, make_provisioner(config.provisioner), workdir, config.timeout_s)

    def close(self) -> None:
        if self.process is not None:
            self.process.stop()

    @property
    def wfm_spiffe_id(self) -> SpiffeId:
        return self.pki.wfm_spiffe_id

    def new_client_id(self) -> SpiffeId:
        """A fresh client identity for one scenario (scenarios never share identities)."""
        return SpiffeId.client(self.pki.trust_domain, self.pki.wfm_id, f"c-{secrets.token_hex(4)}")

    def client(
        self,
        *,
        flaw: Flaw | None = None,
        accepted: bool = True,
        name: str | None = None,
        client_id: str | None = None,
    ) -> tuple[VirtualClient, SpiffeId]:
        """A virtual client with a freshly minted SVID, accepted by the WFM's policy unless told not to;
        ``client_id`` mints for an existing client's id (an impersonation), else a fresh one."""
        client_id = client_id or str(self.new_client_id().client_id)
        svid = self.pki.mint_client(client_id, flaw=flaw)
        files = svid.write(self.workdir / "clients", name or client_id)
        presented = _presented_id(svid)
        if accepted:
            # The operator lists the identity the certificate really carries, so that a flawed SVID is
            # refused for its flaw and not merely because the policy does not know it.
            self.provisioner.accept_client(presented)
        return VirtualClient(self.url, files, self.pki.bundle_pem, timeout_s=self.timeout_s), presented

    def anonymous_client(self) -> VirtualClient:
        return VirtualClient(self.url, None, self.pki.bundle_pem, timeout_s=self.timeout_s)

    def restart(self) -> None:
        if self.process is not None:
            self.process.restart()
            self._check_address()
            return
        self.provisioner.restart()

    def use_trust(self, trust_policy: Path, trust_store: Path) -> None:
        """The WFM verifies packages under this Notary trust policy and store (SUP-03 §5: the operator
        distributes them); done once per run for the same files."""
        if self._trust == (trust_policy, trust_store):
            return
        if self.process is not None:
            self.process.use_trust(trust_policy, trust_store)
            self._check_address()
        else:
            self.provisioner.install_trust(trust_policy=trust_policy, trust_store=trust_store)
        self._trust = (trust_policy, trust_store)

    def _check_address(self) -> None:
        assert self.process is not None
        if self.process.endpoints["url"] != self.url:
            raise EnvironmentProblem("the reference WFM came back on another address")


def _presented_id(svid: Svid) -> SpiffeId:
    """The SPIFFE ID in the leaf's single URI SAN; the requested one when there is not exactly one."""
    try:
        return spiffe_id_of(svid.certificate)
    except SvidError:
        return svid.spiffe_id
