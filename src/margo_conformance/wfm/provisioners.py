"""How the suite asks a WFM to do operator things (DESIGN.md §4): accept or retire a client, deploy
(an Application Description, or a package from a registry under the WFM's trust policy).

Three adapters behind one interface:
- ``reference``: the suite's reference WFM, through its admin interface (never the southbound API);
- ``command``: a vendor's CLI, one command template per operation (contract below);
- ``manual``: the operator does it by hand and confirms at the terminal; without one, blocked.

Command contract (docs/provisioner-contract.md). Each template is split like a shell would (``shlex``)
*before* placeholders are filled in, so a value can never become a new argument or shell syntax; no shell
is run (``templates.render``; ``{env:NAME}`` and secret-named keys are never shown in reports). Placeholders:
``{spiffe_id}`` ``{client_id}`` ``{device_id}`` ``{app_description}`` (a file path) ``{parameters_file}``
(a JSON file of name → value) ``{deployment_id}`` ``{status}`` ``{retry_after}`` ``{package_ref}``
(``oci://host/repository:tag``) ``{trust_policy}`` (a Notary trustpolicy.json) ``{trust_store}`` (a Notary
trust store directory). Exit 0 means done; ``deploy`` and ``deploy_package`` print the new deploymentId on
stdout (the last UUID printed, or JSON ``{"deploymentId": …}``). Every command has a time limit; its
stderr is kept as evidence in the blocked verdict.

Expected refusal: ``deploy_package`` exits with ``REFUSED_EXIT`` (3) when the WFM refuses the package (its
signatures fail verification under the WFM's trust policy), the reason on stderr. Every provisioner
raises ``Refused`` for that, which a scenario may expect; any other failure stays ``Blocked``.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from ..errors import Blocked, MargoError, UsageError
from ..instrument import AdminClient, AdminError
from ..pki import SpiffeId
from ..templates import render, secret_values

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
REFUSED_EXIT = 3  # deploy_package: the WFM refused the package (stderr: why)
PACKAGE_TIMEOUT_S = 60.0  # the reference WFM verifies a package against a registry before it answers


class Refused(MargoError):
    """The WFM refused to deploy a package (SIGN-113): an answer of the subject, not a blocked step."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the WFM refused the package: {reason}")
        self.reason = reason


class Provisioner(Protocol):
    def accept_client(self, spiffe_id: SpiffeId) -> None: ...
    def retire_client(self, spiffe_id: SpiffeId) -> None: ...
    def deploy(
        self, *, client: SpiffeId, device_id: str, description: Path, parameters: Mapping[str, Any]
    ) -> str: ...
    def deploy_package(
        self, *, client: SpiffeId, device_id: str, package_ref: str, parameters: Mapping[str, Any]
    ) -> str:
        """The new deploymentId; ``Refused`` when the WFM refuses the package, ``Blocked`` otherwise."""
        ...

    def install_trust(self, *, trust_policy: Path, trust_store: Path) -> None:
        """The operator distributes publisher signing material (SUP-03 §5): the WFM verifies under it."""
        ...

    def update(self, deployment_id: str, *, description: Path, parameters: Mapping[str, Any]) -> None: ...
    def undeploy(self, deployment_id: str) -> None: ...
    def overload(self, *, status: int, retry_after: int) -> None: ...
    def restart(self) -> None: ...


class ReferenceProvisioner:
    """The reference WFM's admin interface (plain HTTP on loopback); a failed call blocks the scenario."""

    def __init__(self, admin_url: str, *, timeout_s: float = 10.0) -> None:
        self._admin = AdminClient(admin_url, timeout_s=timeout_s)
        self._packages = AdminClient(admin_url, timeout_s=max(timeout_s, PACKAGE_TIMEOUT_S))

    def accept_client(self, spiffe_id: SpiffeId) -> None:
        with _blocked():
            self._admin.accept_client(str(spiffe_id))

    def retire_client(self, spiffe_id: SpiffeId) -> None:
        with _blocked():
            self._admin.retire_client(str(spiffe_id))

    def deploy(
        self, *, client: SpiffeId, device_id: str, description: Path, parameters: Mapping[str, Any]
    ) -> str:
        text = description.read_text(encoding="utf-8")
        client_id = client.client_id or str(client)
        with _blocked():
            deployment_id, _ = self._admin.deploy(client_id, device_id, text, parameters)
        return deployment_id

    def deploy_package(
        self, *, client: SpiffeId, device_id: str, package_ref: str, parameters: Mapping[str, Any]
    ) -> str:
        """``POST /admin/deployments`` with ``package``: a 422 signature-refused problem is a refusal."""
        client_id = client.client_id or str(client)
        try:
            deployment_id, _ = self._packages.deploy_package(client_id, device_id, package_ref, parameters)
        except AdminError as exc:
            if exc.signature_refused:
                raise Refused(exc.detail) from None
            raise Blocked(str(exc)) from None
        return deployment_id

    def install_trust(self, *, trust_policy: Path, trust_store: Path) -> None:
        raise Blocked(
            "the reference WFM takes its trust material at start (--trust-policy, --trust-store): the suite "
            "restarts it with them, not through its admin interface"
        )

    def update(self, deployment_id: str, *, description: Path, parameters: Mapping[str, Any]) -> None:
        """New content for the deployment, for the same client and device as before."""
        text = description.read_text(encoding="utf-8")
        with _blocked():
            held = [d for d in self._admin.state()["deployments"] if d["deploymentId"] == deployment_id]
            if not held:
                raise Blocked(f"the reference WFM holds no deployment {deployment_id} to update")
            self._admin.update(deployment_id, held[0]["client"], held[0]["deviceId"], text, parameters)

    def undeploy(self, deployment_id: str) -> None:
        with _blocked():
            self._admin.undeploy(deployment_id)

    def overload(self, *, status: int, retry_after: int) -> None:
        with _blocked():
            self._admin.overload(status, retry_after, requests=1)

    def restart(self) -> None:
        raise Blocked("the reference WFM is restarted by the suite itself, not through its admin interface")


@contextlib.contextmanager
def _blocked() -> Iterator[None]:
    """An admin call that fails is a precondition that could not be set up."""
    try:
        yield
    except AdminError as exc:
        raise Blocked(str(exc)) from None


class CommandProvisioner:
    """A vendor's command line, one template per operation (see the module docstring)."""

    def __init__(self, templates: Mapping[str, Any], *, timeout_s: float = 60.0) -> None:
        self._secrets = secret_values(templates)  # placeholders whose values reports never show
        self._templates = {
            k: str(v) for k, v in templates.items() if k not in ("type", "timeout_s", *self._secrets)
        }
        self._timeout = float(templates.get("timeout_s", timeout_s))

    def _run(self, operation: str, *, refusal_exit: int | None = None, **values: str) -> str:
        template = self._templates.get(operation)
        if template is None:
            raise Blocked(
                f"the SUT's provisioner has no '{operation}' command, so this precondition cannot be set up"
            )
        try:
            command = render(template, values, secrets=self._secrets)
        except (KeyError, ValueError) as exc:
            raise UsageError(f"provisioner.{operation}: bad template {template!r}: {exc}") from None
        argv = command.argv
        try:
            result = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=self._timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except FileNotFoundError:
            raise Blocked(f"provisioner.{operation}: command not found: {argv[0]}") from None
        except subprocess.TimeoutExpired:
            raise Blocked(
                f"provisioner.{operation}: no answer within {self._timeout:.0f} s: {command.shown}"
            ) from None
        if refusal_exit is not None and result.returncode == refusal_exit:
            raise Refused(result.stderr.strip()[-1500:] or f"exit {refusal_exit}, no reason on stderr")
        if result.returncode != 0:
            raise Blocked(
                f"provisioner.{operation} failed (exit {result.returncode}): {command.shown}\n"
                f"stderr: {result.stderr.strip()[-1500:]}"
            )
        return result.stdout

    def accept_client(self, spiffe_id: SpiffeId) -> None:
        self._run("accept_client", spiffe_id=str(spiffe_id), client_id=str(spiffe_id.client_id))

    def retire_client(self, spiffe_id: SpiffeId) -> None:
        self._run("retire_client", spiffe_id=str(spiffe_id), client_id=str(spiffe_id.client_id))

    def deploy(
        self, *, client: SpiffeId, device_id: str, description: Path, parameters: Mapping[str, Any]
    ) -> str:
        with _parameters_file(parameters) as parameters_file:
            stdout = self._run(
                "deploy",
                spiffe_id=str(client),
                client_id=str(client.client_id),
                device_id=device_id,
                app_description=str(description),
                parameters_file=parameters_file,
            )
        return deployment_id_from(stdout)

    def deploy_package(
        self, *, client: SpiffeId, device_id: str, package_ref: str, parameters: Mapping[str, Any]
    ) -> str:
        with _parameters_file(parameters) as parameters_file:
            stdout = self._run(
                "deploy_package",
                refusal_exit=REFUSED_EXIT,
                spiffe_id=str(client),
                client_id=str(client.client_id),
                device_id=device_id,
                package_ref=package_ref,
                parameters_file=parameters_file,
            )
        return deployment_id_from(stdout)

    def install_trust(self, *, trust_policy: Path, trust_store: Path) -> None:
        self._run("install_trust", trust_policy=str(trust_policy), trust_store=str(trust_store))

    def update(self, deployment_id: str, *, description: Path, parameters: Mapping[str, Any]) -> None:
        with _parameters_file(parameters) as parameters_file:
            self._run(
                "update",
                deployment_id=deployment_id,
                app_description=str(description),
                parameters_file=parameters_file,
            )

    def undeploy(self, deployment_id: str) -> None:
        self._run("undeploy", deployment_id=deployment_id)

    def overload(self, *, status: int, retry_after: int) -> None:
        self._run("overload", status=str(status), retry_after=str(retry_after))

    def restart(self) -> None:
        self._run("restart")


def deployment_id_from(stdout: str) -> str:
    """The deploymentId a deploy command printed: JSON {"deploymentId": …}, else the last UUID."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and isinstance(value.get("deploymentId"), str):
            return str(value["deploymentId"])
    found: list[str] = UUID.findall(stdout)
    if not found:
        raise Blocked(
            f"the deploy command printed no deploymentId (a UUID or JSON); stdout: {stdout[-500:]!r}"
        )
    return found[-1]


@contextlib.contextmanager
def _parameters_file(parameters: Mapping[str, Any]) -> Iterator[str]:
    """A temporary JSON file of parameter values, removed afterwards."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="margo-params-", delete=False) as handle:
        json.dump(dict(parameters), handle)
    try:
        yield handle.name
    finally:
        Path(handle.name).unlink(missing_ok=True)


class ManualProvisioner:
    """The operator acts by hand; the suite waits at the terminal (bounded), else the scenario is blocked."""

    def __init__(self, *, timeout_s: float = 300.0) -> None:
        self._timeout = timeout_s

    def _ask(self, instruction: str, *, answer: str = "press Enter when done") -> str:
        try:
            terminal = open("/dev/tty", "r+", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError:
            raise Blocked(f"manual provisioner needs an operator at a terminal to: {instruction}") from None
        with terminal:
            terminal.write(
                f"\n[margo-conformance] OPERATOR: {instruction}\n  ({answer}; {self._timeout:.0f} s) > "
            )
            terminal.flush()
            import select

            ready, _, _ = select.select([terminal], [], [], self._timeout)
            if not ready:
                raise Blocked(f"no operator confirmation within {self._timeout:.0f} s for: {instruction}")
            return terminal.readline().strip()

    def accept_client(self, spiffe_id: SpiffeId) -> None:
        self._ask(f"add {spiffe_id} to the WFM's accepted-client policy")

    def retire_client(self, spiffe_id: SpiffeId) -> None:
        self._ask(f"retire the client {spiffe_id} (keep its SVID valid)")

    def deploy(
        self, *, client: SpiffeId, device_id: str, description: Path, parameters: Mapping[str, Any]
    ) -> str:
        reply = self._ask(
            f"deploy {description} with parameters {json.dumps(dict(parameters))} "
            f"to device {device_id!r} of client {client}",
            answer="type the new deploymentId",
        )
        return deployment_id_from(reply)

    def deploy_package(
        self, *, client: SpiffeId, device_id: str, package_ref: str, parameters: Mapping[str, Any]
    ) -> str:
        reply = self._ask(
            f"deploy the package {package_ref} with parameters {json.dumps(dict(parameters))} "
            f"to device {device_id!r} of client {client}",
            answer="type the new deploymentId, or 'refused: <why>' if the WFM refused the package",
        )
        if reply.lower().startswith("refused"):
            raise Refused(reply.partition(":")[2].strip() or "the operator reports a refusal")
        return deployment_id_from(reply)

    def install_trust(self, *, trust_policy: Path, trust_store: Path) -> None:
        self._ask(
            f"make the WFM verify packages under the Notary trust policy {trust_policy} with the trust "
            f"store {trust_store} (replacing what it used before)"
        )

    def update(self, deployment_id: str, *, description: Path, parameters: Mapping[str, Any]) -> None:
        self._ask(
            f"update deployment {deployment_id} to {description} "
            f"with parameters {json.dumps(dict(parameters))}"
        )

    def undeploy(self, deployment_id: str) -> None:
        self._ask(f"remove deployment {deployment_id}")

    def overload(self, *, status: int, retry_after: int) -> None:
        raise Blocked("overloading a WFM on purpose cannot be done by hand reliably")

    def restart(self) -> None:
        self._ask("restart the WFM (keep its data) and wait until it serves again")


def make_provisioner(config: Mapping[str, Any], *, admin_url: str | None = None) -> Provisioner:
    kind = config.get("type")
    if kind == "reference":
        if admin_url is None:
            raise UsageError(
                "provisioner type 'reference' works only with the suite's reference WFM (wfm.reference: true)"
            )
        return ReferenceProvisioner(admin_url)
    if kind == "command":
        return CommandProvisioner(config)
    if kind == "manual":
        return ManualProvisioner(timeout_s=float(config.get("timeout_s", 300.0)))
    raise UsageError(f"unknown provisioner type {kind!r}")
