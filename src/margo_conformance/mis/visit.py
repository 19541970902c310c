"""One MIS scenario's client and what it was sent: the state the steps share, and the fetches that
are preconditions of a scenario (a bundle scenario needs the bundle's URI; the consistency scenario the
bundle's anchors). A precondition the identity service fails is Blocked here, so that each flaw fails
the one scenario about it and leaves the others nothing to judge."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks import Violation
from ..checks import mis as checks
from ..errors import Blocked
from ..pki import SpiffeId
from ..wfm.client import Exchange
from .client import MisClient, unknown_url, validate_server, write_anchors
from .subject import MisSubject


@dataclass
class Visit:
    subject: MisSubject
    workdir: Path
    client: MisClient = field(init=False)
    exchanges: list[Exchange] = field(default_factory=list)
    bundle_url: str = ""
    anchors: Path | None = None
    wfm_check: tuple[str | None, SpiffeId | None] = (None, None)
    last_url: str = ""
    control: Exchange | None = None  # the positive control: a refusal counts only after it was served

    def __post_init__(self) -> None:
        self.client = MisClient(self.subject.anchors, timeout_s=self.subject.timeout_s)

    @property
    def last(self) -> Exchange:
        return self.exchanges[-1]

    def get(self, url: str, *, if_none_match: str | None = None) -> Exchange:
        exchange = self.client.get(url, if_none_match=if_none_match)
        self.exchanges.append(exchange)
        self.last_url = url
        return exchange

    def discovery(self) -> Exchange:
        return self.get(self.subject.discovery_url)

    def unknown_path(self) -> Exchange:
        return self.get(unknown_url(self.subject.discovery_url))

    def again_with_etag(self) -> Exchange:
        previous = self.last
        if previous.status != 200:
            raise Blocked(f"nothing to revalidate: GET {previous.path} got {previous.status}")
        etag = checks.ensure_etag(previous)  # TB-103: without one there is nothing to ask with
        return self.get(self.last_url, if_none_match=etag)

    def positive_control(self) -> Exchange:
        """The same request over the default connection is served first, so that a refusal that follows
        is for the flaw alone; Blocked when even this one is not served."""
        exchange = self.discovery()
        if exchange.status is None:
            raise Blocked(f"the identity service did not serve the positive control: {exchange.refused}")
        self.control = exchange
        return exchange

    def offer_only_tls11(self) -> Exchange:
        self.client.close()
        self.client = MisClient(self.subject.anchors, timeout_s=self.subject.timeout_s, tls11_only=True)
        return self.discovery()

    def learn_bundle_url(self) -> str:
        """trustBundleUri from the discovery document; Blocked when there is no usable one."""
        exchange = self.discovery()
        try:
            document = checks.ensure_json_document(exchange, "TB-102")
            self.bundle_url = checks.ensure_absolute_https(document.get("trustBundleUri"))
        except Violation as exc:
            raise Blocked(f"the discovery document gives no bundle to fetch: {exc.message}") from None
        return self.bundle_url

    def bundle(self) -> dict[str, Any]:
        return checks.ensure_json_document(self.get(self.bundle_url), "TB-104")

    def learn_anchors(self) -> Path:
        """The bundle's anchors as a PEM file; Blocked when the bundle has none to offer."""
        self.learn_bundle_url()
        try:
            anchors = checks.bundle_anchors(self.bundle())
        except Violation as exc:
            raise Blocked(f"the bundle offers no anchors to validate with: {exc.message}") from None
        self.anchors = write_anchors(anchors, self.workdir / "anchors.pem")
        return self.anchors

    def validate_wfm(self) -> None:
        if not self.subject.wfm_url:
            raise Blocked("the SUT names no WFM of the identity service's trust domain (mis.wfm_url)")
        assert self.anchors is not None
        self.wfm_check = validate_server(self.subject.wfm_url, self.anchors, timeout_s=self.subject.timeout_s)

    def close(self) -> None:
        self.client.close()
