"""The Management Interface (rc.3 OpenAPI, protocol digest §3.1–§3.6) over mutual TLS.

Request flow: ``_identity`` (recognise the client SVID or reject the connection, WIP-005) ->
``_guard`` (overload switch, accepted-client policy, problem+json for every error, request log) ->
the operation. Every operation looks things up only in the caller's scope (API-SEC-004).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ...findings import Level
from ...pki import SpiffeId, SvidError
from ...pki.tls import peer_chain
from .core import DEVICE_ID, Connection, RequestRecord, Wfm
from .documents import (
    BUNDLE_MEDIA_TYPE,
    DIGEST,
    IMMUTABLE,
    MANIFEST_MEDIA_TYPE,
    YAML_MEDIA_TYPE,
    bundle_deployment_ids,
    digest_of,
    regzipped,
)
from .problems import PROBLEM_MEDIA_TYPE, Problem

LOG = logging.getLogger("margo_conformance.reference.wfm")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LOGGED_REQUEST_HEADERS = ("Accept", "If-None-Match", "Content-Type")
LOGGED_RESPONSE_HEADERS = ("ETag", "Retry-After")
MAX_LOGGED_BODY = 64 * 1024


@dataclass(frozen=True)
class LoggedBody:
    """What the transcript keeps of a JSON request body: the document, or why not."""

    document: Any = None
    note: str = ""


CALLER = web.RequestKey("caller", SpiffeId)
BODY = web.RequestKey("body", LoggedBody)


class Southbound:
    """aiohttp application of the Management Interface for one ``Wfm``."""

    def __init__(self, wfm: Wfm, *, read_timeout: float, max_body: int) -> None:
        self.wfm = wfm
        self.read_timeout = read_timeout
        self.max_body = max_body

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._identity, self._guard], client_max_size=self.max_body)
        routes = app.router
        # DeviceId may contain '/' (gateway/child): one greedy path parameter (errata INC-102).
        routes.add_put("/api/v1/capabilities/{deviceId:.+}", self.put_capabilities)
        routes.add_delete("/api/v1/capabilities/{deviceId:.+}", self.delete_capabilities)
        routes.add_get("/api/v1/deployments", self.get_manifest)
        routes.add_post("/api/v1/deployments/{deploymentId}/status", self.post_status)
        # errata INC-181: "status" is no digest, /deployments/{id}/status is the status resource alone
        # (POST), so a 405 there names only POST in Allow (RFC 9110 §15.5.6).
        routes.add_get("/api/v1/deployments/{deploymentId}/{digest:(?!status$)[^/]+}", self.get_deployment)
        routes.add_get("/api/v1/bundles/{digest}", self.get_bundle)
        return app

    # -- identity -----------------------------------------------------------------------------------

    def admit_connection(self, transport: asyncio.BaseTransport, connection: Connection) -> bool:
        """Connection gate, right after the handshake (WIP-005): only recognised clients get HTTP.
        The connection learns who it is, or why it was rejected."""
        try:
            connection.client = str(self._recognise(transport.get_extra_info("ssl_object")))
        except Exception as refusal:  # fail closed: whatever goes wrong, no HTTP for this peer
            connection.note = f"connection rejected: {refusal}"
            return False
        return True

    def _recognise(self, ssl_object: ssl.SSLObject | None) -> SpiffeId:
        if ssl_object is None:
            raise SvidError("API-SEC-002: the connection is not TLS")
        chain = peer_chain(ssl_object)
        if not chain and self.wfm.faults.active("accepts-anonymous"):
            return self.wfm.anonymous
        caller = self.wfm.recognition.recognise(chain)
        refusal = self.wfm.refuses_at_handshake(caller)
        if refusal is not None:
            raise SvidError(refusal)
        return caller

    # -- middlewares ------------------------------------------------------------------------------

    @web.middleware
    async def _identity(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Recognition again on every request (TLS-010: an SVID may expire while the connection lives;
        faults may change at run time): a peer that fails gets no HTTP answer, only a reset."""
        transport = request.transport
        try:
            caller = self._recognise(
                transport.get_extra_info("ssl_object") if transport is not None else None
            )
        except Exception as refusal:  # fail closed, as in admit_connection
            self._log(request, None, None, f"connection rejected: {refusal}")
            if transport is not None:
                transport.abort()  # reset, nothing written: the response below cannot reach the wire
            return web.Response(status=403)
        request[CALLER] = caller
        return await handler(request)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        caller = request[CALLER]
        try:
            overload = self.wfm.take_overload()
            if overload is not None:
                raise Problem(
                    status=overload.status,
                    detail="the WFM is overloaded; retry later",
                    retry_after=overload.retry_after,
                )
            self.wfm.authorise(caller)
            response = await handler(request)
        except Problem as problem:
            response = self.problem_response(problem)
        except web.HTTPException as exc:  # routing (404/405) and aiohttp's own limits (413)
            response = self.problem_response(Problem.of_http(exc))
        except Exception:  # bad input never crashes the server (API-RETRY-003 shape)
            LOG.exception("southbound %s %s failed", request.method, request.path)
            response = self.problem_response(Problem(status=500, detail="internal error", retry_after=1))
        self._log(request, str(caller), response)
        return response

    def _log(
        self, request: web.Request, caller: str | None, response: web.StreamResponse | None, note: str = ""
    ) -> None:
        """One transcript record: selected headers both ways, and the JSON body a handler read."""
        logged = request.get(BODY)
        record = RequestRecord(
            time.time(),
            caller,
            request.method,
            request.path,
            None if response is None else response.status,
            note or (logged.note if logged is not None else ""),
            request_headers=_picked(request.headers, LOGGED_REQUEST_HEADERS),
            response_headers={} if response is None else _picked(response.headers, LOGGED_RESPONSE_HEADERS),
        )
        if logged is not None and not logged.note:
            record.body, record.has_body = logged.document, True
        self.wfm.log(record, request.transport)

    def problem_response(self, problem: Problem) -> web.Response:
        """ERR-001/API-ERR-001: application/problem+json with the registered type; retry table."""
        faults = self.wfm.faults
        headers = {
            "Content-Type": "application/json" if faults.active("problem-as-json") else PROBLEM_MEDIA_TYPE,
            "Cache-Control": "private",  # DS-010
            **problem.headers,
        }
        if problem.status in (429, 503) and problem.retry_after is not None:
            if not (problem.status == 429 and faults.active("overload-without-retry-after")):
                headers["Retry-After"] = str(problem.retry_after)
        elif problem.status == 500 and problem.retry_after is not None:
            headers["Retry-After"] = str(problem.retry_after)  # API-RETRY-003: recommended
        if faults.active("problem-type-about-blank"):  # ERR-001 broken: no registered type
            problem = dataclasses.replace(problem, kind=None)
        body = problem.encoded(with_type=not faults.active("problem-without-type"))
        response = web.Response(status=problem.status, body=body, headers=headers)
        if problem.close:
            response.force_close()
        return response

    async def _json_body(self, request: web.Request, *, malformed: str) -> Any:
        """The request body as JSON; ``malformed`` is the problem kind of an unparseable body. Content-Type
        is not consulted: a body is judged by its content whatever its label (errata INC-182)."""
        try:
            raw = await asyncio.wait_for(request.read(), timeout=self.read_timeout)
        except TimeoutError:
            raise Problem(status=408, detail="the request body did not arrive in time", close=True) from None
        try:
            document = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as exc:
            request[BODY] = LoggedBody(note=f"the body ({len(raw)} bytes) is not JSON")
            raise Problem.of(malformed, f"the body is not JSON: {exc}") from None
        too_big = f"the body ({len(raw)} bytes) is over {MAX_LOGGED_BODY} bytes: not kept"
        request[BODY] = LoggedBody(document) if len(raw) <= MAX_LOGGED_BODY else LoggedBody(note=too_big)
        return document

    def _schema_errors(self, document: Any, document_type: str) -> list[dict[str, str]]:
        return [
            {"field": f.location, "message": f"{f.requirement}: {f.message}"}
            for f in self.wfm.schemas.validate(document, document_type)
            if f.level is Level.MUST
        ]

    # -- capabilities (§3.1, §3.2) ----------------------------------------------------------------

    async def put_capabilities(self, request: web.Request) -> web.StreamResponse:
        faults, store = self.wfm.faults, self.wfm.store
        caller = str(request[CALLER])
        device_id = request.match_info["deviceId"]
        document = await self._json_body(
            request, malformed="semantic-error" if faults.active("malformed-body-422") else "invalid-request"
        )
        errors = self._schema_errors(document, "DeviceCapabilitiesManifest")
        if not DEVICE_ID.match(device_id):
            errors.append({"field": "{deviceId}", "message": f"{device_id!r} is not a Margo DeviceId"})
        elif not errors and document["properties"]["id"] != device_id:  # errata INC-180: 422
            errors.append(
                {"field": "$.properties.id", "message": f"does not equal the path deviceId {device_id!r}"}
            )
        if errors:
            raise Problem.of(
                "invalid-request" if faults.active("semantic-error-400") else "semantic-error",
                "the capabilities document is not acceptable",
                errors=None if faults.active("semantic-error-without-errors") else errors,
            )
        scope = self.wfm.device_scope(caller)
        gateway, slash, _ = device_id.rpartition("/")
        if (
            slash
            and store.device(scope, gateway) is None
            and not faults.active("child-before-gateway-accepted")
        ):
            raise Problem.of(
                "gateway-not-found", f"no gateway {gateway!r} is registered for this client (CAP-008)"
            )
        created = store.put_device(scope, device_id, caller, document)
        status = 201 if created else 200  # CAP-101
        if created and faults.active("capabilities-create-200"):
            status = 200
        elif not created and faults.active("capabilities-update-201"):
            status = 201
        return web.Response(status=status, headers={"Cache-Control": "private"})

    async def delete_capabilities(self, request: web.Request) -> web.StreamResponse:
        faults = self.wfm.faults
        device_id = request.match_info["deviceId"]
        removed = self.wfm.store.delete_device(self.wfm.device_scope(str(request[CALLER])), device_id)
        if not removed and not faults.active("delete-unknown-204"):
            raise Problem.of("device-not-found", f"no device {device_id!r} is registered for this client")
        return web.Response(status=200 if faults.active("delete-200") else 204)

    # -- desired state (§3.3–§3.5) ----------------------------------------------------------------

    async def get_manifest(self, request: web.Request) -> web.StreamResponse:
        faults = self.wfm.faults
        accept = request.headers.get("Accept")
        acceptable = accepts_manifest(accept)
        if accept is None and faults.active("accept-missing-406"):
            acceptable = False
        elif not acceptable and faults.active("accept-unsupported-200"):
            acceptable = True
        if not acceptable:
            raise Problem.of("server-cannot-generate-response", f"cannot produce any of: {accept}")
        view = self.wfm.manifest(str(request[CALLER]))
        digest = digest_of(view.body + b"\n") if faults.active("etag-not-body-digest") else view.digest
        etag = f'"{digest}"'  # DS-007: strong, quoted digest of the exact body
        if faults.active("etag-weak"):
            etag = "W/" + etag
        cache_control = "private"  # DS-009: never immutable, no long max-age
        if faults.active("manifest-cache-public"):
            cache_control = "public"
        elif faults.active("manifest-immutable"):
            cache_control = IMMUTABLE
        elif faults.active("short-private-max-age"):  # the variant: a short lifetime (errata INC-126)
            cache_control = "private, max-age=5"
        headers = {"ETag": etag, "Cache-Control": cache_control}
        if none_match(request.headers.get("If-None-Match"), etag) and not faults.active(
            "if-none-match-ignored"
        ):
            if faults.active("not-modified-with-body"):
                return await _not_modified_with_body(request, headers, view.body)
            return web.Response(status=304, headers=headers)  # DS-006
        self.wfm.served_manifest(str(request[CALLER]), view.version)
        return web.Response(body=view.body, headers={**headers, "Content-Type": MANIFEST_MEDIA_TYPE})

    async def get_deployment(self, request: web.Request) -> web.StreamResponse:
        faults, store = self.wfm.faults, self.wfm.store
        caller = str(request[CALLER])
        deployment_id, digest = request.match_info["deploymentId"], request.match_info["digest"]
        owner = None if faults.active("cross-client-deployments") else caller
        stored = self.wfm.stored_digest(caller, digest)
        body = store.revision(owner, deployment_id, stored) if DIGEST.match(stored) else None
        if body is None and faults.active("unknown-digest-200"):
            current = store.deployment(deployment_id)
            body = current.body if current is not None and current.client == caller else None
        if body is None or self.wfm.served.for_deployment("deployment-404", deployment_id):
            # DS-018: cannot produce bytes with that digest for this caller (or: a DS-019 probe)
            raise Problem.of(
                "deployment-not-found", f"no deployment {deployment_id} at {digest} for this client"
            )
        body = self.wfm.served_yaml(deployment_id, body)
        if faults.active("yaml-trailing-newline"):
            body += b"\n"
        headers = {
            "ETag": digest if faults.active("deployment-etag-unquoted") else f'"{digest}"',  # DS-015
            "Cache-Control": "private, no-cache" if faults.active("deployment-not-immutable") else IMMUTABLE,
            "Vary": "Accept-Encoding",
        }
        if none_match(request.headers.get("If-None-Match"), f'"{digest}"'):
            return web.Response(status=304, headers=headers)  # DS-017 (errata INC-101: allowed)
        return web.Response(body=body, headers={**headers, "Content-Type": YAML_MEDIA_TYPE})

    async def get_bundle(self, request: web.Request) -> web.StreamResponse:
        faults, served = self.wfm.faults, self.wfm.served
        caller = str(request[CALLER])
        digest = request.match_info["digest"]
        stored = self.wfm.stored_digest(caller, digest)
        body = self.wfm.store.bundle(caller, stored) if DIGEST.match(stored) else None
        gone = served.deployments("deployment-404")  # DS-019 probe: so is every bundle holding one
        if body is None or (gone and not gone.isdisjoint(bundle_deployment_ids(body))):
            raise Problem.of("invalid-bundle", f"no bundle {digest} for this client")
        if served.for_client("bundle-digest-mismatch", caller):  # DS-022 probe
            body = regzipped(body, mtime=1)
        headers = {"ETag": f'"{digest}"', "Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding"}
        if none_match(request.headers.get("If-None-Match"), f'"{digest}"'):
            return web.Response(status=304, headers=headers)
        media_type = "application/gzip" if faults.active("bundle-wrong-content-type") else BUNDLE_MEDIA_TYPE
        return web.Response(body=body, headers={**headers, "Content-Type": media_type})  # DS-014

    # -- deployment status (§3.6) -----------------------------------------------------------------

    async def post_status(self, request: web.Request) -> web.StreamResponse:
        faults = self.wfm.faults
        caller = str(request[CALLER])
        deployment_id = request.match_info["deploymentId"]
        document = await self._json_body(request, malformed="invalid-request")
        errors = self._schema_errors(document, "DeploymentStatusManifest")
        body_id = document.get("deploymentId") if isinstance(document, dict) else None
        if body_id != deployment_id and not errors and not faults.active("status-mismatched-id-accepted"):
            # errata INC-103: a refusal, 400 or 422; we answer 422 #semantic-error
            if faults.active("status-id-mismatch-400"):  # the variant: the other allowed answer
                raise Problem.of("invalid-request", f"body deploymentId is not the path's {deployment_id!r}")
            errors.append(
                {"field": "$.deploymentId", "message": f"does not equal the path's {deployment_id!r}"}
            )
        if errors:
            raise Problem.of("semantic-error", "the status report is not acceptable", errors=errors)
        if faults.active("cross-client-status"):  # API-SEC-003 broken: the path's owner is the caller
            caller = self.wfm.owner_of(deployment_id) or caller
        if not self.wfm.store.ever_issued(caller, deployment_id):
            # errata INC-022: no 404 is defined; an unknown deployment is a semantic error
            raise Problem.of(
                "semantic-error",
                f"deployment {deployment_id} was never assigned to this client",
                errors=[{"field": "{deploymentId}", "message": "unknown deployment for this client"}],
            )
        created = self.wfm.store.save_status(caller, deployment_id, document)
        status = 201 if created and not faults.active("status-create-200") else 200
        return web.Response(status=status, headers={"Cache-Control": "private"})


def accepts_manifest(header: str | None) -> bool:
    """Content negotiation for the manifest (DS-003, DS-004).

    Our reading of what the spec leaves open (errata INC-108): an absent or empty Accept, the manifest
    type, ``application/*`` and ``*/*`` are all satisfiable (RFC 9110 §12.5.1 media ranges); a range with
    ``q=0`` is "not acceptable"; parameters other than q are ignored. Only when no range can be met is
    the answer 406."""
    if header is None or not header.strip():
        return True
    for item in header.split(","):
        media_range, *parameters = (part.strip() for part in item.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and media_range.lower() in (MANIFEST_MEDIA_TYPE, "application/*", "*/*"):
            return True
    return False


def none_match(header: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: If-None-Match uses weak comparison; ``*`` matches any current representation."""
    if header is None:
        return False
    opaque = etag.removeprefix("W/")
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == opaque:
            return True
    return False


def _picked(headers: Any, names: tuple[str, ...]) -> dict[str, str]:
    """The headers among ``names`` that are present, by lower-case name."""
    return {name.lower(): headers[name] for name in names if name in headers}


async def _not_modified_with_body(
    request: web.Request, headers: dict[str, str], body: bytes
) -> web.StreamResponse:
    """Fault not-modified-with-body: aiohttp rightly refuses a 304 body, so write the exchange raw and
    close the connection (the stray bytes would corrupt the next response on it)."""
    transport = request.transport
    lines = [b"HTTP/1.1 304 Not Modified"]
    lines += [f"{name}: {value}".encode("latin-1") for name, value in headers.items()]
    lines += [b"Content-Type: " + MANIFEST_MEDIA_TYPE.encode(), f"Content-Length: {len(body)}".encode()]
    lines += [b"Connection: close"]
    if transport is not None:
        transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        transport.close()
    return web.Response(status=304)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
