"""The provisioning/control interface of the reference WFM: plain HTTP + JSON on loopback only.

It is what an operator (or the suite's ``reference`` provisioner) uses; it is never part of the
southbound API and never reachable over the Management Interface listener.

  POST   /admin/clients/accept   {"spiffe_id"} | {"client_id"} | {"pattern": ".../client/*"}
  POST   /admin/clients/retire   {"spiffe_id"} | {"client_id"}
  POST   /admin/deployments      {"client_id", "device_id", "application_description", "parameters"}
                                 -> 201 {"deploymentId", "digest"}
                                 or {"client_id", "device_id", "package": "oci://host/repo:tag",
                                 "parameters"}: the tag is resolved to a digest, that digest's signatures
                                 (and its components') are verified under the trust policy, the description
                                 is read from it -> 201 {"deploymentId", "digest", "package": "oci://…@digest"};
                                 422 urn:margo-conformance:admin:signature-refused (detail and ``failures``
                                 name each failed Notary check), 422/502 …:package-unavailable (registry
                                 content or reachability), 400 invalid-request (not an oci:// reference)
  PUT    /admin/deployments/{id} same body: new content, same id -> 200 {"deploymentId", "digest"}
  DELETE /admin/deployments/{id} -> 204
  GET    /admin/state            everything the WFM holds, no key material
  GET    /admin/faults           active faults and the catalogue
  POST   /admin/faults           {"faults": [names]} replaces the active set
  GET    /admin/served           served faults (instrument WFM): {"active": [...], "catalogue": [...]}
  POST   /admin/served           {"faults": [{"name", "client"?, "deployment"?}]} replaces the active set
                                 -> {"active": [...], "previous": [...]}; 400 bad shape or name, 404 no
                                 such deployment
  POST   /admin/overload         {"status": 429|503|null, "retry_after": 2, "requests": N|null}
  GET    /admin/requests         the transcript: {"requests": [records], "next": N}; ?since=<index> gives
                                 the records with that index or above, ``next`` is the index to ask for next
  DELETE /admin/requests         forget them (indexes go on counting)

Served faults (``instrument.py``) make the WFM an instrument for testing a device: a client-scoped one
needs ``client`` (SPIFFE ID or client-id), a deployment-scoped one ``deployment`` (its client is the
deployment's), a listener-scoped one neither. Active entries read ``{"name", "client"?, "deployment"?}``.

Transcript records (bounded; the oldest drop out) carry a monotonic ``index`` and a ``kind``:
  * ``request``: time, connection (its number), client, method, path, status (null: the connection was
    reset, see note), request_headers (accept, if-none-match, content-type), response_headers (etag,
    retry-after), body (the JSON of a capabilities PUT or status POST, up to 64 KiB), note;
  * ``connection``: one per TCP connection on the Management Interface, written when it ends: connection,
    time (accepted), ended, peer, client, tls_version, requests, received_bytes, outcome
    (``handshake-failed``, ``rejected`` by the WFM, ``no-request``, ``requests``) and note (the reason).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ...errors import EnvironmentProblem, MargoError, UsageError
from ...instrument.admin import PACKAGE_UNAVAILABLE, SIGNATURE_REFUSED
from ...pki import SvidError
from .appdeploy import Package, PackageRefused
from .core import Overload, Wfm
from .faults import FAULTS
from .identity import client_spiffe_id, policy_entry
from .instrument import SERVED, ServedError, UnknownDeployment, parse_targets
from .problems import PROBLEM_MEDIA_TYPE, Problem
from .southbound import Handler

LOG = logging.getLogger("margo_conformance.reference.wfm.admin")
MAX_ADMIN_BODY = 4 * 1024 * 1024


class Admin:
    def __init__(self, wfm: Wfm, *, on_faults_changed: Callable[[], None] | None = None) -> None:
        self.wfm = wfm
        self.on_faults_changed = on_faults_changed  # the server re-applies TLS faults to live contexts

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_errors], client_max_size=MAX_ADMIN_BODY)
        r = app.router
        r.add_post("/admin/clients/accept", self.accept)
        r.add_post("/admin/clients/retire", self.retire)
        r.add_post("/admin/deployments", self.create_deployment)
        r.add_put("/admin/deployments/{id}", self.replace_deployment)
        r.add_delete("/admin/deployments/{id}", self.delete_deployment)
        r.add_get("/admin/state", self.state)
        r.add_get("/admin/faults", self.get_faults)
        r.add_post("/admin/faults", self.set_faults)
        r.add_get("/admin/served", self.get_served)
        r.add_post("/admin/served", self.set_served)
        r.add_post("/admin/overload", self.set_overload)
        r.add_get("/admin/requests", self.get_requests)
        r.add_delete("/admin/requests", self.clear_requests)
        return app

    async def accept(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        try:
            entry = policy_entry(body, self.wfm.trust_domain, self.wfm.wfm_id)
        except (ValueError, SvidError) as exc:
            raise Problem.of("semantic-error", str(exc)) from None
        self.wfm.accept(entry)
        return web.json_response({"accepted": {entry.kind: entry.value}})

    async def retire(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        value = (body.get("spiffe_id") or body.get("client_id")) if isinstance(body, dict) else None
        if not isinstance(value, str):
            raise Problem.of("semantic-error", 'expected {"spiffe_id"} or {"client_id"}')
        try:
            spiffe_id = client_spiffe_id(value, self.wfm.trust_domain, self.wfm.wfm_id)
        except SvidError as exc:
            raise Problem.of("semantic-error", str(exc)) from None
        self.wfm.retire(spiffe_id)
        return web.json_response({"retired": spiffe_id})

    async def create_deployment(self, request: web.Request) -> web.StreamResponse:
        arguments, package = await self._deployment(await _body(request))
        deployment = self.wfm.deploy(**arguments)
        answer = {"deploymentId": deployment.id, "digest": deployment.digest}
        return web.json_response(answer | package, status=201)

    async def replace_deployment(self, request: web.Request) -> web.StreamResponse:
        arguments, package = await self._deployment(await _body(request))
        deployment = self.wfm.deploy(**arguments, deployment_id=request.match_info["id"])
        return web.json_response({"deploymentId": deployment.id, "digest": deployment.digest} | package)

    async def _deployment(self, body: Any) -> tuple[dict[str, Any], dict[str, str]]:
        """``Wfm.deploy`` arguments from a description given inline, or read (and verified) from a
        package in a registry: that happens on a worker thread, so the WFM keeps serving meanwhile."""
        arguments = _deployment_arguments(body)
        reference = arguments.pop("package", None)
        if reference is None:
            return arguments, {}
        package = await asyncio.to_thread(self._fetch, reference)
        return arguments | {"description_text": package.description_text}, {"package": package.reference}

    def _fetch(self, reference: str) -> Package:
        try:
            return self.wfm.fetch_package(reference)
        except PackageRefused as exc:
            title, failures = "Signature Refused", list(exc.failures)
            raise AdminProblem(422, SIGNATURE_REFUSED, title, str(exc), failures=failures) from None
        except UsageError as exc:
            raise Problem.of("invalid-request", f"package: {exc.diagnostics()}") from None
        except EnvironmentProblem as exc:
            raise AdminProblem(502, PACKAGE_UNAVAILABLE, "Package Unavailable", exc.diagnostics()) from None
        except MargoError as exc:  # what the registry holds: not found, unreadable, digest mismatch
            raise AdminProblem(422, PACKAGE_UNAVAILABLE, "Package Unavailable", exc.diagnostics()) from None

    async def delete_deployment(self, request: web.Request) -> web.StreamResponse:
        self.wfm.undeploy(request.match_info["id"])
        return web.Response(status=204)

    async def state(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.wfm.state(), dumps=_dumps)

    async def get_faults(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "active": sorted(self.wfm.faults.names),
                "catalogue": [
                    {"name": f.name, "requirement": f.requirement, "area": f.area, "summary": f.summary}
                    for f in FAULTS.values()
                ],
            },
            dumps=_dumps,
        )

    async def set_faults(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        names = body.get("faults") if isinstance(body, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise Problem.of("semantic-error", 'expected {"faults": [names]}')
        try:
            previous = self.wfm.replace_faults(names)
        except UsageError as exc:
            raise Problem.of("semantic-error", exc.diagnostics()) from None
        self._tls_changed()
        return web.json_response({"active": sorted(self.wfm.faults.names), "previous": sorted(previous)})

    async def get_served(self, request: web.Request) -> web.StreamResponse:
        catalogue = [served.as_dict() for served in SERVED.values()]
        return web.json_response({"active": self.wfm.served.as_list(), "catalogue": catalogue}, dumps=_dumps)

    async def set_served(self, request: web.Request) -> web.StreamResponse:
        try:
            targets = parse_targets(
                await _body(request), client_of=self._client_of, owner_of=self.wfm.owner_of
            )
        except ServedError as exc:
            raise Problem.of("invalid-request", str(exc)) from None
        except UnknownDeployment as exc:
            raise Problem(status=404, detail=str(exc.args[0])) from None
        previous = self.wfm.replace_served(targets)
        self._tls_changed()
        return web.json_response(
            {"active": self.wfm.served.as_list(), "previous": [t.as_dict() for t in previous]}
        )

    def _client_of(self, value: str) -> str:
        try:
            return client_spiffe_id(value, self.wfm.trust_domain, self.wfm.wfm_id)
        except SvidError as exc:
            raise ValueError(str(exc)) from None

    def _tls_changed(self) -> None:
        if self.on_faults_changed is not None:
            self.on_faults_changed()

    async def set_overload(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        if not isinstance(body, dict):
            raise Problem.of("semantic-error", 'expected {"status": 429|503|null, "retry_after", "requests"}')
        status = body.get("status")
        if status is None:
            self.wfm.overload = None
            return web.json_response({"overload": None})
        retry_after, remaining = body.get("retry_after", 1), body.get("requests")
        if (
            status not in (429, 503)
            or not _count(retry_after, minimum=0)
            or not (remaining is None or _count(remaining, minimum=1))
        ):
            raise Problem.of("semantic-error", "status 429|503, retry_after >= 0 and requests >= 1 (or null)")
        self.wfm.overload = Overload(status=status, retry_after=retry_after, remaining=remaining)
        return web.json_response(
            {"overload": {"status": status, "retry_after": retry_after, "requests": remaining}}
        )

    async def get_requests(self, request: web.Request) -> web.StreamResponse:
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            raise Problem.of("invalid-request", "since must be an integer") from None
        records, following = self.wfm.requests.since(since)
        return web.json_response({"requests": [r.as_dict() for r in records], "next": following})

    async def clear_requests(self, request: web.Request) -> web.StreamResponse:
        self.wfm.requests.clear()
        return web.Response(status=204)


def _deployment_arguments(body: Any) -> dict[str, Any]:
    """client_id, device_id, parameters, and either ``description_text`` or ``package`` (a reference)."""
    if not isinstance(body, dict):
        raise Problem.of("invalid-request", "expected a JSON object")
    sources = [k for k in ("application_description", "package") if k in body]
    if len(sources) != 1:
        raise Problem.of("semantic-error", "give exactly one of application_description and package")
    missing = [k for k in ("client_id", "device_id", *sources) if not isinstance(body.get(k), str)]
    if missing:
        raise Problem.of("semantic-error", f"missing or not strings: {', '.join(missing)}")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise Problem.of("semantic-error", "parameters must be an object {name: value}")
    source = {"package": body["package"]} if "package" in body else {}
    return {
        "client_id": body["client_id"],
        "device_id": body["device_id"],
        "description_text": body.get("application_description", ""),
        "parameters": parameters,
        **source,
    }


def _count(value: Any, *, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


async def _body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except ValueError as exc:
        raise Problem.of("invalid-request", f"the body is not JSON: {exc}") from None


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


class AdminProblem(Exception):
    """A problem of the admin interface itself, typed with one of the suite's URNs (``admin_client``)."""

    def __init__(self, status: int, kind: str, title: str, detail: str, **members: Any) -> None:
        super().__init__(detail)
        self.document = {"type": kind, "title": title, "status": status, "detail": detail, **members}

    def response(self) -> web.Response:
        body = json.dumps(self.document, sort_keys=True, ensure_ascii=False).encode("utf-8")
        status = int(self.document["status"])
        return web.Response(status=status, body=body, headers={"Content-Type": PROBLEM_MEDIA_TYPE})


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AdminProblem as problem:
        return problem.response()
    except Problem as problem:
        failure = problem
    except web.HTTPException as exc:
        failure = Problem.of_http(exc)
    except Exception:
        LOG.exception("admin %s %s failed", request.method, request.path)
        failure = Problem(status=500, detail="internal error")
    return web.Response(
        status=failure.status,
        body=failure.encoded(),
        headers={"Content-Type": PROBLEM_MEDIA_TYPE, **failure.headers},
    )
