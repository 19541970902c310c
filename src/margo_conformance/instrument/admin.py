"""A small typed client of the instrument WFM's admin interface (the reference WFM serves it:
``reference/wfm/admin.py`` has the endpoints). Part of the instrument contract: the checker drives the
instrument through this client and never imports the reference itself.

Standard library only (``urllib``, no proxies: the interface is on loopback), so that a stand-alone
script can use it without pulling in the server. Every failure is an ``AdminError`` that says what was
asked, of which URL, and what came back: a problem's ``detail``, or why the interface was unreachable.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import MargoError

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# Problem types of the admin interface itself (not Margo's): what became of a package deployment.
SIGNATURE_REFUSED = "urn:margo-conformance:admin:signature-refused"  # the trust policy refused it
PACKAGE_UNAVAILABLE = "urn:margo-conformance:admin:package-unavailable"  # the registry could not serve it


class AdminError(MargoError):
    """An admin call failed: ``status`` is the HTTP status (None: no answer), ``detail`` the reason,
    ``problem_type`` the answer's problem ``type`` ("" when there is none)."""

    def __init__(
        self, message: str, *, status: int | None = None, detail: str = "", problem_type: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail or message
        self.problem_type = problem_type

    @property
    def signature_refused(self) -> bool:
        """The WFM refused a package because its signatures failed verification under its policy."""
        return self.status == 422 and self.problem_type == SIGNATURE_REFUSED


class AdminClient:
    """One reference WFM's admin interface at ``admin_url`` (``http://127.0.0.1:<port>``)."""

    def __init__(self, admin_url: str, timeout_s: float = 10.0) -> None:
        self.admin_url = admin_url.rstrip("/")
        self.timeout_s = timeout_s

    # -- clients ----------------------------------------------------------------------------------

    def accept_client(self, spiffe_id: str) -> None:
        """Add a client to the accepted-client policy (WIP-008)."""
        self.call("POST", "/admin/clients/accept", {"spiffe_id": spiffe_id})

    def retire_client(self, spiffe_id: str) -> None:
        """Retire a client: its SVID stays valid, the WFM answers it 403 (API-SEC-007)."""
        self.call("POST", "/admin/clients/retire", {"spiffe_id": spiffe_id})

    # -- deployments ------------------------------------------------------------------------------

    def deploy(
        self, client_id: str, device_id: str, description_text: str, parameters: Mapping[str, Any]
    ) -> tuple[str, str]:
        """A new deployment of an Application Description; (deploymentId, digest)."""
        answer = self.call(
            "POST", "/admin/deployments", _deployment(client_id, device_id, description_text, parameters)
        )
        return str(answer["deploymentId"]), str(answer["digest"])

    def deploy_package(
        self, client_id: str, device_id: str, package: str, parameters: Mapping[str, Any]
    ) -> tuple[str, str]:
        """A new deployment of the package at ``oci://host/repository:tag``, which the WFM verifies under
        its trust policy first; (deploymentId, digest). A refusal is an AdminError whose
        ``signature_refused`` is true."""
        body = {"client_id": client_id, "device_id": device_id, "package": package}
        answer = self.call("POST", "/admin/deployments", body | {"parameters": dict(parameters)})
        return str(answer["deploymentId"]), str(answer["digest"])

    def update(
        self,
        deployment_id: str,
        client_id: str,
        device_id: str,
        description_text: str,
        parameters: Mapping[str, Any],
    ) -> str:
        """New content under the same deploymentId; the new digest."""
        body = _deployment(client_id, device_id, description_text, parameters)
        return str(self.call("PUT", f"/admin/deployments/{deployment_id}", body)["digest"])

    def undeploy(self, deployment_id: str) -> None:
        self.call("DELETE", f"/admin/deployments/{deployment_id}")

    def state(self) -> dict[str, Any]:
        """Everything the WFM holds (no key material)."""
        return _object(self.call("GET", "/admin/state"))

    # -- faults, served faults, overload ----------------------------------------------------------

    def set_faults(self, names: Sequence[str]) -> list[str]:
        """Switch on exactly these WFM faults (mutants); the previously active names."""
        return [str(n) for n in self.call("POST", "/admin/faults", {"faults": list(names)})["previous"]]

    def set_served(self, faults: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
        """Switch on exactly these served faults (``{"name", "client"?, "deployment"?}``); the previous."""
        answer = self.call("POST", "/admin/served", {"faults": [dict(f) for f in faults]})
        return [dict(entry) for entry in answer["previous"]]

    def served(self) -> dict[str, Any]:
        """``{"active": [...], "catalogue": [...]}`` of the served faults."""
        return _object(self.call("GET", "/admin/served"))

    def overload(self, status: int | None, retry_after: int = 1, requests: int | None = None) -> None:
        """Answer 429/503 to the next ``requests`` southbound requests (None: until switched off);
        ``status=None`` switches it off."""
        body: dict[str, Any] = {"status": status}
        if status is not None:
            body |= {"retry_after": retry_after, "requests": requests}
        self.call("POST", "/admin/overload", body)

    # -- the transcript ---------------------------------------------------------------------------

    def requests(self, since: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Transcript records with index ``since`` or above, and the ``since`` of the next call."""
        answer = self.call("GET", f"/admin/requests?since={int(since)}")
        return [dict(r) for r in answer["requests"]], int(answer["next"])

    def clear_requests(self) -> None:
        self.call("DELETE", "/admin/requests")

    # -- plumbing ---------------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One admin request with a JSON body; the JSON answer (None when empty). AdminError otherwise."""
        url = self.admin_url + path
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with _OPENER.open(request, timeout=self.timeout_s) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail, problem_type = _problem(exc.read())
            message = f"reference WFM admin {method} {path}: HTTP {exc.code}: {detail}"
            raise AdminError(message, status=exc.code, detail=detail, problem_type=problem_type) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise AdminError(
                f"reference WFM admin {method} {path}: cannot reach {self.admin_url} ({reason}); "
                "is the WFM running, and is this its admin_url?"
            ) from None
        try:
            return json.loads(payload) if payload else None
        except ValueError as exc:
            raise AdminError(f"reference WFM admin {method} {path}: the answer is not JSON ({exc})") from None


def _deployment(
    client_id: str, device_id: str, description_text: str, parameters: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "device_id": device_id,
        "application_description": description_text,
        "parameters": dict(parameters),
    }


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AdminError(f"the reference WFM admin interface answered {type(value).__name__}, not an object")
    return value


def _problem(body: bytes) -> tuple[str, str]:
    """A problem+json's detail (or title), else the start of the body; and its type ("" if none)."""
    try:
        problem = json.loads(body)
    except ValueError:
        problem = None
    kind = problem.get("type") if isinstance(problem, dict) else None
    kind = kind if isinstance(kind, str) else ""
    if isinstance(problem, dict):
        text = problem.get("detail") or problem.get("title")
        if isinstance(text, str) and text:
            return text, kind
    return body[:300].decode("utf-8", "replace") or "(no body)", kind
