"""The MIS trust endpoints (Trust Bundle API, protocol digest §3.7): discovery and the SPIFFE bundle.

Served over server-only TLS (no client certificate: a bootstrapping client has no SVID it could use
yet). Both answers carry a strong ETag and honour If-None-Match (TB-103); anything else is a 404
problem+json (TB-106; no Margo type is registered for it, errata INC-012, so ``about:blank``).
"""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from .documents import canonical_json, digest_of
from .problems import PROBLEM_MEDIA_TYPE, Problem
from .southbound import Handler, none_match

DISCOVERY_PATH = "/.well-known/margo"
BUNDLE_PATH = "/.well-known/spiffe/bundle.json"


class TrustEndpoints:
    def __init__(self, trust_domain: str, bundle_json: Path) -> None:
        self.trust_domain = trust_domain
        self.bundle_json = bundle_json
        self.base_url = ""  # set once the listener is bound

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_not_found])
        app.router.add_get(DISCOVERY_PATH, self.discovery)
        app.router.add_get(BUNDLE_PATH, self.bundle)
        return app

    async def discovery(self, request: web.Request) -> web.StreamResponse:
        document = {"trustDomain": self.trust_domain, "trustBundleUri": self.base_url + BUNDLE_PATH}
        return _json(request, canonical_json(document))

    async def bundle(self, request: web.Request) -> web.StreamResponse:
        """The bundle file as written by the PKI, read per request so a rotated bundle is served at once."""
        try:
            body = self.bundle_json.read_bytes()
            json.loads(body)
        except (OSError, ValueError):
            return _problem(Problem(status=404, detail="no trust bundle is available"))
        return _json(request, body)


def _json(request: web.Request, body: bytes) -> web.StreamResponse:
    etag = f'"{digest_of(body)}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if none_match(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers={**headers, "Content-Type": "application/json"})


def _problem(problem: Problem) -> web.Response:
    return web.Response(
        status=problem.status,
        body=problem.encoded(),
        headers={"Content-Type": PROBLEM_MEDIA_TYPE, **problem.headers},
    )


@web.middleware
async def _not_found(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        return _problem(Problem.of_http(exc))
    return response
