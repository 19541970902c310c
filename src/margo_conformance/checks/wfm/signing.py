"""What a WFM did with a package it was asked to deploy under a trust policy (SUP-03 §4 and §6, SIGN-113):
deployed and dispatched, or refused with nothing dispatched. Each check says what the WFM did instead."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...wfm.client import Exchange
from .. import Violation

if TYPE_CHECKING:  # only for annotations: the signing driver must not be imported by a check
    from ...wfm.conversation import Deployed
    from ...wfm.signing import PackageAttempt


def deployment_ids(manifest: Mapping[str, Any]) -> list[str]:
    return [str(d.get("deploymentId")) for d in manifest.get("deployments") or [] if isinstance(d, Mapping)]


def ensure_package_deployed(attempt: PackageAttempt) -> Deployed:
    """The WFM took the package: it answered with a deploymentId."""
    if attempt.deployed is None:
        raise Violation(
            "SIGN-113",
            f"expected the WFM to deploy {attempt.reference} ({attempt.fixture}), whose signatures verify "
            f"under its trust policy; {attempt.describe()}",
        )
    return attempt.deployed


def ensure_package_refused(attempt: PackageAttempt) -> None:
    """The WFM refused the package (SIGN-113: it does not dispatch what fails verification)."""
    if attempt.refusal is not None:
        return
    raise Violation(
        "SIGN-113",
        f"expected the WFM to refuse {attempt.reference} ({attempt.fixture}), whose signatures fail "
        f"verification under its strict trust policy; {attempt.describe()}",
    )


def ensure_package_listed(manifest: Mapping[str, Any], deployed: Deployed) -> None:
    """The deployment the WFM made from the package is in the client's State Manifest."""
    listed = deployment_ids(manifest)
    if deployed.deployment_id not in listed:
        raise Violation(
            "",
            f"the WFM deployed {deployed.package} as {deployed.deployment_id}, but the client's State "
            f"Manifest (version {manifest.get('manifestVersion')}) lists {listed or 'no deployment'}",
        )


def ensure_package_served(
    served: Mapping[str, bytes], deployed: Deployed, fetches: Sequence[Exchange]
) -> bytes:
    """The YAML the client fetched for the deployment (the WFM listed it, so it must serve it)."""
    if deployed.deployment_id in served:
        return served[deployed.deployment_id]
    transcript = fetches[-1].transcript() if fetches else "(nothing was fetched)"
    raise Violation(
        "", f"the manifest lists {deployed.deployment_id}, but its YAML was not served:\n{transcript}"
    )


def ensure_no_new_deployment(before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    """Nothing was dispatched: the client's State Manifest lists no deployment it did not list before."""
    new = sorted(set(deployment_ids(after)) - set(deployment_ids(before)))
    if new:
        raise Violation(
            "SIGN-113",
            f"a refused package must not reach the client, but its State Manifest now lists {new} "
            f"(version {before.get('manifestVersion')} → {after.get('manifestVersion')})",
        )
