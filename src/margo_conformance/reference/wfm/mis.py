"""The MIS trust endpoints (Trust Bundle API, protocol digest §3.7): discovery and the SPIFFE bundle.

Served over server-only TLS (no client certificate: a bootstrapping client has no SVID it could use
yet). Both answers carry a strong ETag and honour If-None-Match (TB-103); anything else is a 404
problem+json (TB-106; no Margo type is registered for it, errata INC-012, so ``about:blank``).

The MIS faults and variants of the catalogue (``mis_faults``) act here, one ``faults.active`` each.
"""

from __future__ import annotations

import base64
import itertools
import json
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization

from ...pki import Pki
from ...pki.bundle import jwk_of
from ..faults import FaultSet as SharedFaultSet
from .documents import canonical_json, digest_of
from .problems import PROBLEM_MEDIA_TYPE, Problem
from .southbound import Handler, none_match

DISCOVERY_PATH = "/.well-known/margo"
BUNDLE_PATH = "/.well-known/spiffe/bundle.json"
ELSEWHERE_PATH = "/trust/bundle.json"  # the mis-bundle-elsewhere variant: the path is illustrative
FOREIGN_TRUST_DOMAIN = "other.example"
EXTRA = {"x-vendor-note": "a member the spec does not define"}


class TrustEndpoints:
    def __init__(
        self,
        trust_domain: str,
        bundle_json: Path,
        *,
        faults: SharedFaultSet | None = None,
        pki: Pki | None = None,
    ) -> None:
        self.trust_domain = trust_domain
        self.bundle_json = bundle_json
        self.base_url = ""  # set once the listener is bound
        self.faults, self.pki = faults, pki
        self._countdown = itertools.count(1_000_000, -1)  # mis-sequence-backwards

    def active(self, name: str) -> bool:
        return self.faults is not None and self.faults.active(name)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._not_found])
        app.router.add_get(DISCOVERY_PATH, self.discovery)
        app.router.add_get(self.bundle_path, self.bundle)
        return app

    @property
    def bundle_path(self) -> str:
        return ELSEWHERE_PATH if self.active("mis-bundle-elsewhere") else BUNDLE_PATH

    async def discovery(self, request: web.Request) -> web.StreamResponse:
        uri = self.base_url + self.bundle_path
        if self.active("mis-bundle-uri-http"):
            uri = "http://" + uri.split("://", 1)[1]
        if self.active("mis-bundle-uri-relative"):
            uri = self.bundle_path
        domain = FOREIGN_TRUST_DOMAIN if self.active("mis-wrong-trust-domain") else self.trust_domain
        document: dict[str, Any] = {"trustDomain": domain, "trustBundleUri": uri}
        if self.active("mis-extra-fields"):
            document |= EXTRA
        media_type = "text/plain" if self.active("mis-discovery-text-plain") else "application/json"
        return self._json(request, canonical_json(document), media_type)

    async def bundle(self, request: web.Request) -> web.StreamResponse:
        """The bundle file as written by the PKI, read per request so a rotated bundle is served at once."""
        try:
            body = self.bundle_json.read_bytes()
            document = json.loads(body)
        except (OSError, ValueError):
            return _problem(Problem(status=404, detail="no trust bundle is available"))
        if self.faults is not None and self.faults.names:
            body = canonical_json(self._faulty(document))
        return self._json(request, body, "application/json")

    def _faulty(self, document: dict[str, Any]) -> dict[str, Any]:
        """The bundle with the switched-on bundle faults and variants applied."""
        if self.active("mis-zero-anchors"):
            document["keys"] = [k for k in document.get("keys", []) if k.get("use") != "x509-svid"]
        if self.pki is not None and self.active("mis-jwt-only"):
            document["keys"] = [_jwt_key(self.pki)]
        if self.pki is not None and self.active("mis-anchor-not-ca"):
            document["keys"] = [jwk_of(self.pki.wfm_svid.certificate)]
        if self.pki is not None and self.active("mis-foreign-anchor"):
            document["keys"] = [jwk_of(root) for root in self.pki.foreign().anchors]
        if self.active("mis-jwt-key-too") and self.pki is not None:
            document["keys"] = [*document.get("keys", []), _jwt_key(self.pki)]
        if self.active("mis-sequence-backwards"):
            document["spiffe_sequence"] = next(self._countdown)
        if self.active("mis-refresh-hint-string"):
            document["spiffe_refresh_hint"] = str(document.get("spiffe_refresh_hint", 3600))
        if self.active("mis-no-sequence-or-hint"):
            document.pop("spiffe_sequence", None)
            document.pop("spiffe_refresh_hint", None)
        if self.active("mis-extra-fields"):
            document |= EXTRA
        return document

    def _json(self, request: web.Request, body: bytes, media_type: str) -> web.StreamResponse:
        etag = f'W/"{digest_of(body)}"' if self.active("mis-weak-etag") else f'"{digest_of(body)}"'
        headers = {"Cache-Control": "no-cache"}
        if not self.active("mis-no-etag"):
            headers["ETag"] = etag
        matched = none_match(request.headers.get("If-None-Match"), etag)
        if matched and not self.active("mis-etag-ignored") and not self.active("mis-no-etag"):
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, headers={**headers, "Content-Type": media_type})

    @web.middleware
    async def _not_found(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if self.active("mis-404-html") and exc.status == 404:
                return web.Response(
                    status=404, text="<html><body>Not Found</body></html>", content_type="text/html"
                )
            return _problem(Problem.of_http(exc))
        return response


def _jwt_key(pki: Pki) -> dict[str, Any]:
    """A jwt-svid JWK (the intermediate's public key stands in for a JWT signing key)."""
    key = jwk_of(pki.intermediate)
    key.pop("x5c", None)
    key["use"] = "jwt-svid"
    der = pki.intermediate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key["kid"] = base64.urlsafe_b64encode(der[-12:]).decode("ascii").rstrip("=")
    return key


def _problem(problem: Problem) -> web.Response:
    return web.Response(
        status=problem.status,
        body=problem.encoded(),
        headers={"Content-Type": PROBLEM_MEDIA_TYPE, **problem.headers},
    )
