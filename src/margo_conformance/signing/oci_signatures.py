"""Notary Project signatures as OCI referrers: signing, discovery, verification of one artifact.

Storage (Notary ``signature-specification.md``, "Storage"): a signature is an OCI image manifest
with ``config.mediaType`` = ``artifactType`` = ``application/vnd.cncf.notary.signature`` (config
content ``{}``), exactly one layer holding the envelope (``application/jose+json``), a ``subject``
naming the signed manifest, and the annotation ``io.cncf.notary.x509chain.thumbprint#S256``.

Discovery (OCI distribution spec 1.1): ``GET /v2/<name>/referrers/<digest>`` where the registry has
the Referrers API; a 404 there means "unavailable", and the client falls back to the *referrers tag
schema*: an image index tagged ``<alg>-<encoded digest>`` (``sha256-<hex>``) whose ``manifests``
list the referrers (each with its ``artifactType``). Signing maintains that index when the API is
absent (Debian's docker-registry 2.8 has none).

Verification always happens against the manifest DIGEST: a tag is resolved once, and everything
after (referrers, the payload comparison) uses the digest it resolved to. All reads are bounded
(signature manifest, envelope blob — a layer that declares more than ``MAX_ENVELOPE_BYTES`` is
refused without being fetched, and a fetch stops at the cap — referrers index, number of
signatures examined). Every problem of the subject becomes a ``Failure`` in the verdict; only an
unusable registry (``EnvironmentProblem``) is raised.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from cryptography import x509

from .._internal.oci import (
    EMPTY_DATA,
    EMPTY_DIGEST,
    OCI_INDEX,
    OCI_MANIFEST,
    DigestMismatch,
    NotFound,
    OciClient,
    OciReference,
    compute_digest,
)
from ..errors import EnvironmentProblem, InputError, UsageError
from .certificates import TrustStore, describe, validate_chain
from .envelope import (
    COSE_MEDIA_TYPE,
    JWS_MEDIA_TYPE,
    MAX_ENVELOPE_BYTES,
    Descriptor,
    EnvelopeError,
    SigningKey,
    chain_thumbprints,
    sign_envelope,
    verify_envelope,
)
from .policy import Check, Failure, Level, Outcome, SignatureVerdict, TrustPolicy, TrustPolicyDocument

NOTARY_SIGNATURE = "application/vnd.cncf.notary.signature"
THUMBPRINT_ANNOTATION = "io.cncf.notary.x509chain.thumbprint#S256"
MAX_SIGNATURE_MANIFEST_BYTES = 64 * 1024
MAX_INDEX_BYTES = 1024 * 1024
MAX_SIGNATURES = 16  # signatures examined per artifact; more are reported, not read


@dataclass(frozen=True)
class SignedArtifact:
    subject: Descriptor
    signature_digest: str  # the signature manifest
    envelope_digest: str
    referrers_tag: str | None  # the tag-schema index updated, None when the Referrers API is used


@dataclass(frozen=True)
class ReferrerListing:
    signatures: tuple[Descriptor, ...]
    source: str  # "referrers-api" | "tag-schema"
    notes: tuple[str, ...] = ()


def referrers_tag(digest: str) -> str:
    """The referrers tag schema's tag for ``digest``: ``<alg>-<encoded, at most 64 chars>``."""
    algorithm, _, encoded = digest.partition(":")
    if not algorithm or not encoded:
        raise UsageError(f"not a digest: {digest!r}")
    return f"{algorithm}-{encoded[:64]}"


def manifest_descriptor(client: OciClient, repository: str, reference: str) -> Descriptor:
    """The descriptor (media type, digest, size) of the manifest ``reference`` (tag or digest)."""
    body, media_type, digest = client.get_manifest(repository, reference)
    artifact_type: str | None = None
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict) and isinstance(parsed.get("artifactType"), str):
            artifact_type = parsed["artifactType"]
    except ValueError:
        pass
    return Descriptor(media_type or OCI_MANIFEST, digest, len(body), artifact_type)


# -- signing ------------------------------------------------------------------------------------------


def sign_artifact(
    client: OciClient,
    repository: str,
    manifest_digest: str,
    key: SigningKey,
    chain: Sequence[x509.Certificate],
    *,
    alg: str | None = None,
    signing_time: datetime.datetime | None = None,
    expiry: datetime.datetime | None = None,
    target: Descriptor | None = None,
    allow_forbidden: bool = False,
) -> SignedArtifact:
    """Sign the manifest ``manifest_digest`` and attach the signature as its referrer.

    ``target`` replaces the signed descriptor (a negative fixture: a signature over another
    artifact, still attached to this one); ``allow_forbidden`` lets ``alg="RS256"`` through.
    """
    subject = manifest_descriptor(client, repository, manifest_digest)
    envelope = sign_envelope(
        target or subject,
        key,
        chain,
        alg=alg,
        signing_time=signing_time,
        expiry=expiry,
        allow_forbidden=allow_forbidden,
    )
    envelope_digest = client.push_blob(repository, envelope)
    client.push_blob(repository, EMPTY_DATA)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": NOTARY_SIGNATURE,
        "config": {"mediaType": NOTARY_SIGNATURE, "digest": EMPTY_DIGEST, "size": len(EMPTY_DATA)},
        "layers": [{"mediaType": JWS_MEDIA_TYPE, "digest": envelope_digest, "size": len(envelope)}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": {THUMBPRINT_ANNOTATION: json.dumps(chain_thumbprints(chain))},
    }
    return attach_referrer(client, repository, subject, manifest, envelope_digest)


def attach_referrer(
    client: OciClient,
    repository: str,
    subject: Descriptor,
    manifest: dict[str, Any],
    envelope_digest: str = "",
) -> SignedArtifact:
    """Push a referrer manifest by digest and, without a Referrers API, add it to the tag index."""
    body = json.dumps(manifest, separators=(",", ":")).encode()
    digest = client.push_manifest(repository, compute_digest(body), body)
    if _referrers_api(client, repository, subject.digest) is not None:
        return SignedArtifact(subject, digest, envelope_digest, None)
    tag = referrers_tag(subject.digest)
    entries: list[dict[str, Any]] = []
    try:
        index_body, _, _ = client.get_manifest(repository, tag, max_bytes=MAX_INDEX_BYTES)
        existing = json.loads(index_body)
        if isinstance(existing, dict) and isinstance(existing.get("manifests"), list):
            entries = [m for m in existing["manifests"] if isinstance(m, dict) and m.get("digest") != digest]
    except NotFound:
        pass
    except (ValueError, InputError, DigestMismatch):
        entries = []  # an unreadable index is replaced (the spec's client rewrites the whole index)
    entry: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body)}
    if isinstance(manifest.get("artifactType"), str):
        entry["artifactType"] = manifest["artifactType"]
    if isinstance(manifest.get("annotations"), dict):
        entry["annotations"] = manifest["annotations"]
    entries.append(entry)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    client.push_manifest(repository, tag, index)
    return SignedArtifact(subject, digest, envelope_digest, tag)


# -- discovery ----------------------------------------------------------------------------------------


def _referrers_api(client: OciClient, repository: str, digest: str) -> dict[str, Any] | None:
    """The Referrers API's index for ``digest``, or None when the registry has no such API (404).

    ``OciClient`` has no public call for this endpoint yet; its request/read helpers are reused so
    the same timeouts, bounds and error mapping apply.
    """
    where = f"oci://{client.registry}/{repository}@{digest} (referrers)"
    url = f"{client._base}/v2/{repository}/referrers/{digest}"
    response = client._request("GET", url, where, headers={"Accept": OCI_INDEX}, stream=True)
    if response.status_code in (404, 400, 405):
        response.close()
        return None
    client._check(response, where, "listing referrers", (200,))
    content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
    body = client._read_body(response, where, MAX_INDEX_BYTES)
    if content_type != OCI_INDEX:
        return None  # not a Referrers API answer (some registries serve HTML or errors with 200)
    try:
        parsed = json.loads(body)
    except ValueError:
        raise InputError(f"{where}: the Referrers API answered with invalid JSON") from None
    if not isinstance(parsed, dict):
        raise InputError(f"{where}: the Referrers API answered with a non-object")
    return parsed


def find_signatures(client: OciClient, repository: str, digest: str) -> ReferrerListing:
    """The Notary signature referrers of ``digest``: Referrers API if present, else the tag schema.

    A malformed listing yields no signatures and a note (it is the subject's problem, not ours).
    """
    notes: list[str] = []
    try:
        index = _referrers_api(client, repository, digest)
        source = "referrers-api"
    except InputError as exc:
        index, source = None, "referrers-api"
        notes.append(str(exc))
        return ReferrerListing((), source, tuple(notes))
    if index is None:
        source = "tag-schema"
        tag = referrers_tag(digest)
        try:
            body, _, _ = client.get_manifest(repository, tag, max_bytes=MAX_INDEX_BYTES)
        except NotFound:
            return ReferrerListing((), source, ())
        except (InputError, DigestMismatch) as exc:
            return ReferrerListing((), source, (f"referrers index {tag} unreadable: {exc}",))
        try:
            index = json.loads(body)
        except ValueError:
            return ReferrerListing((), source, (f"referrers index {tag} is not JSON",))
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        return ReferrerListing((), source, ("referrers index has no manifests array",))
    found: list[Descriptor] = []
    for position, entry in enumerate(manifests):
        artifact_type = entry.get("artifactType") if isinstance(entry, dict) else None
        if artifact_type != NOTARY_SIGNATURE:
            continue
        try:
            found.append(Descriptor.from_dict(entry, where=f"referrers index entry {position}"))
        except EnvelopeError as exc:
            notes.append(str(exc))
    return ReferrerListing(tuple(found), source, tuple(notes))


# -- verification -------------------------------------------------------------------------------------


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def verify_artifact(
    client: OciClient,
    reference: OciReference | str,
    policy: TrustPolicyDocument | None,
    trust_store: TrustStore,
    *,
    now: datetime.datetime | None = None,
    unmatched: str = "skip",
) -> SignatureVerdict:
    """Verify the Notary signatures of the artifact ``reference`` under the applicable trust policy.

    ``unmatched`` decides when no policy applies (or ``policy`` is None): ``"skip"`` (SUP-03: no
    trust policy, no verification) or ``"fail"`` (Notary Project).
    """
    ref = OciReference.parse(reference) if isinstance(reference, str) else reference
    moment = now or datetime.datetime.now(datetime.UTC)
    scope = f"{ref.registry}/{ref.repository}"
    statement = policy.select(scope) if policy is not None else None
    if statement is None:
        if unmatched == "fail":
            failure = Failure(Check.AUTHENTICITY, f"no trust policy applies to {scope}")
            return SignatureVerdict(Outcome.FAILED, str(ref), ref.digest, None, None, enforced=(failure,))
        return SignatureVerdict(
            Outcome.SKIPPED,
            str(ref),
            ref.digest,
            None,
            None,
            notes=(f"no trust policy applies to {scope}: not verified (SUP-03)",),
        )
    base = SignatureVerdict(Outcome.SKIPPED, str(ref), ref.digest, statement.name, statement.level)
    if statement.level is Level.SKIP:
        return replace(base, notes=(f"policy {statement.name!r}: level skip",))
    try:
        subject = manifest_descriptor(client, ref.repository, ref.reference)
    except (InputError, DigestMismatch) as exc:
        failure = Failure(Check.INTEGRITY, f"the artifact's manifest cannot be read: {exc}")
        return replace(base, outcome=Outcome.FAILED, enforced=(failure,))
    listing = find_signatures(client, ref.repository, subject.digest)
    notes = list(listing.notes)
    candidates = listing.signatures
    if len(candidates) > MAX_SIGNATURES:
        notes.append(f"{len(candidates)} signatures listed; only the first {MAX_SIGNATURES} examined")
        candidates = candidates[:MAX_SIGNATURES]
    anchors = trust_store.certificates(statement.ca_stores())
    stores = ", ".join(statement.trust_stores)
    rejected: list[Failure] = []
    present = 0
    for candidate in candidates:
        failures = _check_signature(
            client, ref.repository, candidate, subject, statement, anchors, moment, stores
        )
        if failures is None:
            notes.append(f"referrer {candidate.digest} is listed but the registry does not have it")
            continue
        present += 1
        outcome, enforced, logged = statement.decide(failures)
        prefix = f"signature {_short(candidate.digest)}: "
        if outcome is Outcome.VERIFIED:
            return replace(
                base,
                outcome=Outcome.VERIFIED,
                digest=subject.digest,
                logged=tuple(Failure(f.check, prefix + f.message) for f in logged),
                signature=candidate.digest,
                notes=tuple(notes),
            )
        rejected.extend(Failure(f.check, prefix + f.message) for f in enforced)
    if present == 0:
        where = (
            "Referrers API" if listing.source == "referrers-api" else f"tag {referrers_tag(subject.digest)}"
        )
        missing = Failure(
            Check.AUTHENTICITY, f"no Notary signature for {subject.digest} (looked up via the {where})"
        )
        outcome, enforced, logged = statement.decide([missing])
        return replace(
            base, outcome=outcome, digest=subject.digest, enforced=enforced, logged=logged, notes=tuple(notes)
        )
    return replace(
        base, outcome=Outcome.FAILED, digest=subject.digest, enforced=tuple(rejected), notes=tuple(notes)
    )


def _check_signature(
    client: OciClient,
    repository: str,
    candidate: Descriptor,
    subject: Descriptor,
    statement: TrustPolicy,
    anchors: Sequence[x509.Certificate],
    now: datetime.datetime,
    stores: str,
) -> list[Failure] | None:
    """Every failure of one signature referrer; None when the registry does not have it."""
    integrity = Check.INTEGRITY
    try:
        body, _, _ = client.get_manifest(repository, candidate.digest, max_bytes=MAX_SIGNATURE_MANIFEST_BYTES)
    except NotFound:
        return None
    except (InputError, DigestMismatch) as exc:
        return [Failure(integrity, f"signature manifest unusable: {exc}")]
    try:
        manifest = json.loads(body)
    except ValueError:
        return [Failure(integrity, "signature manifest is not JSON")]
    if not isinstance(manifest, dict):
        return [Failure(integrity, "signature manifest is not a JSON object")]
    config = manifest.get("config")
    config_type = config.get("mediaType") if isinstance(config, dict) else None
    if NOTARY_SIGNATURE not in (manifest.get("artifactType"), config_type):
        return [Failure(integrity, "referrer is not a Notary signature manifest")]
    subject_field = manifest.get("subject")
    if not isinstance(subject_field, dict) or subject_field.get("digest") != subject.digest:
        named = subject_field.get("digest") if isinstance(subject_field, dict) else None
        return [Failure(integrity, f"signature manifest's subject is {named!r}, not {subject.digest}")]
    layers = manifest.get("layers")
    if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
        return [Failure(integrity, "a Notary signature manifest has exactly one layer")]
    try:
        layer = Descriptor.from_dict(layers[0], where="signature layer")
    except EnvelopeError as exc:
        return [Failure(integrity, str(exc))]
    if layer.media_type == COSE_MEDIA_TYPE:
        return [Failure(integrity, "COSE envelopes are not supported by this verifier (JWS only)")]
    if layer.media_type != JWS_MEDIA_TYPE:
        return [Failure(integrity, f"signature envelope media type {layer.media_type[:80]!r} is unknown")]
    if layer.size > MAX_ENVELOPE_BYTES:
        return [
            Failure(
                integrity,
                f"signature envelope declares {layer.size} bytes, over the limit of {MAX_ENVELOPE_BYTES}; "
                "not fetched",
            )
        ]
    try:
        envelope = client.get_blob(repository, layer.digest, max_bytes=MAX_ENVELOPE_BYTES)
    except NotFound:
        return [Failure(integrity, f"signature envelope blob {layer.digest} is missing")]
    except (InputError, DigestMismatch) as exc:
        return [Failure(integrity, f"signature envelope unusable: {exc}")]
    except EnvironmentProblem:
        raise
    try:
        verified = verify_envelope(envelope)
    except EnvelopeError as exc:
        return [Failure(integrity, str(exc))]
    target = verified.target
    if (target.digest, target.size, target.media_type) != (subject.digest, subject.size, subject.media_type):
        return [
            Failure(
                integrity,
                f"the signature is over {target.digest} ({target.size} bytes, {target.media_type}), "
                f"not over this artifact's manifest {subject.digest}",
            )
        ]
    failures = validate_chain(
        verified.chain,
        anchors,
        now=now,
        signing_time=verified.signing_time,
        timestamp_present=verified.timestamp_present,
        store_names=stores or "the trust store",
    )
    if not statement.identity_allowed(verified.chain[0]):
        failures.append(
            Failure(
                Check.AUTHENTICITY,
                f"signing certificate {describe(verified.chain[0])} is not among the policy's "
                "trustedIdentities",
            )
        )
    if verified.expiry is not None and now >= verified.expiry:
        failures.append(
            Failure(Check.EXPIRY, f"the signature expired at {verified.expiry:%Y-%m-%dT%H:%M:%SZ}")
        )
    return failures
