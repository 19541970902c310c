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

Reading the tag schema when the Referrers API is absent is errata INC-122's reading of SUP-03 §4
item 2. ``attach_envelope`` pushes any envelope as a signature (negative fixtures too);
``mirror_artifact`` copies an artifact and its signatures byte for byte, as a plant mirror does.

Verification always happens against the manifest DIGEST: a tag is resolved once, and everything
after (referrers, the payload comparison) uses the digest it resolved to. All reads are bounded
(signature manifest, envelope blob — a layer that declares more than ``MAX_ENVELOPE_BYTES`` is
refused without being fetched, and a fetch stops at the cap — referrers index, number of
signatures examined). Every problem of the subject becomes a ``Failure`` in the verdict; only an
unusable registry (``EnvironmentProblem``) is raised. Of several signatures, one in SUP-03's algorithm
profile is preferred to another that also verifies.
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
from ..errors import InputError, UsageError
from .certificates import TrustStore, describe, validate_chain
from .envelope import (
    COSE_MEDIA_TYPE,
    JWS_MEDIA_TYPE,
    MAX_ENVELOPE_BYTES,
    PROFILE_ALGORITHMS,
    Descriptor,
    EnvelopeError,
    SigningKey,
    VerifiedEnvelope,
    chain_thumbprints,
    sign_envelope,
    verify_envelope,
)
from .policy import (
    Check,
    Failure,
    Level,
    Outcome,
    Rule,
    SignatureVerdict,
    TrustPolicy,
    TrustPolicyDocument,
)

NOTARY_SIGNATURE = "application/vnd.cncf.notary.signature"
THUMBPRINT_ANNOTATION = "io.cncf.notary.x509chain.thumbprint#S256"
MAX_SIGNATURE_MANIFEST_BYTES = 64 * 1024
MAX_INDEX_BYTES = 1024 * 1024
MAX_SIGNATURES = 16  # signatures examined per artifact; more are reported, not read
MAX_MIRRORED_BLOB_BYTES = 64 * 1024 * 1024


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
    if not allow_forbidden:
        verify_envelope(envelope)  # SUP-03 §2: a developer verifies its own signature before publishing
    thumbprints = {THUMBPRINT_ANNOTATION: json.dumps(chain_thumbprints(chain))}
    return attach_envelope(client, repository, subject, envelope, annotations=thumbprints)


def attach_envelope(
    client: OciClient,
    repository: str,
    subject: Descriptor,
    envelope: bytes,
    *,
    media_type: str = JWS_MEDIA_TYPE,
    declared_size: int | None = None,
    annotations: dict[str, str] | None = None,
) -> SignedArtifact:
    """Push ``envelope`` as it is in a Notary signature manifest referring to ``subject``.

    ``media_type`` and ``declared_size`` exist for negative fixtures (a COSE envelope, a layer whose
    declared size lies).
    """
    envelope_digest = client.push_blob(repository, envelope)
    client.push_blob(repository, EMPTY_DATA)
    size = len(envelope) if declared_size is None else declared_size
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": NOTARY_SIGNATURE,
        "config": {"mediaType": NOTARY_SIGNATURE, "digest": EMPTY_DIGEST, "size": len(EMPTY_DATA)},
        "layers": [{"mediaType": media_type, "digest": envelope_digest, "size": size}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    return attach_referrer(client, repository, subject, manifest, envelope_digest)


def attach_referrer(
    client: OciClient,
    repository: str,
    subject: Descriptor,
    manifest: dict[str, Any] | bytes,
    envelope_digest: str = "",
) -> SignedArtifact:
    """Push a referrer manifest (a dict, or exact bytes) by digest and, without a Referrers API, add it
    to the tag index."""
    body = manifest if isinstance(manifest, bytes) else json.dumps(manifest, separators=(",", ":")).encode()
    parsed = json.loads(body)
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
    if isinstance(parsed.get("artifactType"), str):
        entry["artifactType"] = parsed["artifactType"]
    if isinstance(parsed.get("annotations"), dict):
        entry["annotations"] = parsed["annotations"]
    entries.append(entry)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    client.push_manifest(repository, tag, index)
    return SignedArtifact(subject, digest, envelope_digest, tag)


def mirror_artifact(client: OciClient, repository: str, digest: str, target_repository: str) -> OciReference:
    """Copy the manifest ``digest`` with its blobs, and its Notary signatures with theirs, byte for
    byte to ``target_repository`` of the same registry (as a plant mirror does); the copy's reference.

    Signatures bind to the digest, not the path (SUP-03 §4 item 5), so they verify there unchanged.
    """
    _copy_manifest(client, repository, digest, target_repository)
    subject = manifest_descriptor(client, target_repository, digest)
    for signature in find_signatures(client, repository, digest).signatures[:MAX_SIGNATURES]:
        body = _copy_manifest(client, repository, signature.digest, target_repository)
        attach_referrer(client, target_repository, subject, body)
    return OciReference(client.registry, target_repository, digest=digest)


def _copy_manifest(client: OciClient, repository: str, digest: str, target_repository: str) -> bytes:
    body, _, _ = client.get_manifest(repository, digest)
    manifest = json.loads(body)
    for descriptor in [manifest.get("config"), *(manifest.get("layers") or [])]:
        if isinstance(descriptor, dict) and isinstance(descriptor.get("digest"), str):
            data = client.get_blob(repository, descriptor["digest"], max_bytes=MAX_MIRRORED_BLOB_BYTES)
            client.push_blob(target_repository, data)
    client.push_manifest(target_repository, digest, body)
    return body


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
    trust policy, no verification) or ``"fail"`` (Notary Project). There is one verification here, with no
    switches: a reference device that is meant to be lenient decides around the verdict (DESIGN §3).
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
    accepted: SignatureVerdict | None = None  # the first that verified; one in SUP-03's profile wins
    for candidate in candidates:
        examined = _check_signature(
            client, ref.repository, candidate, subject, statement, anchors, moment, stores
        )
        if examined is None:
            notes.append(f"referrer {candidate.digest} is listed but the registry does not have it")
            continue
        failures, algorithm = examined
        present += 1
        outcome, enforced, logged = statement.decide(failures)
        prefix = f"signature {_short(candidate.digest)}: "
        if outcome is Outcome.VERIFIED:
            verified = replace(
                base,
                outcome=Outcome.VERIFIED,
                digest=subject.digest,
                logged=tuple(f.with_prefix(prefix) for f in logged),
                signature=candidate.digest,
                algorithm=algorithm,
            )
            if algorithm in PROFILE_ALGORITHMS:
                return replace(verified, examined=present, notes=tuple(notes))
            accepted = accepted or verified
            continue
        rejected.extend(f.with_prefix(prefix) for f in enforced)
    if accepted is not None:
        return replace(accepted, examined=present, notes=tuple(notes))
    if present == 0:
        where = (
            "Referrers API" if listing.source == "referrers-api" else f"tag {referrers_tag(subject.digest)}"
        )
        missing = Failure(
            Check.AUTHENTICITY,
            f"no Notary signature for {subject.digest} (looked up via the {where})",
            Rule.SIGNED,
        )
        outcome, enforced, logged = statement.decide([missing])
        return replace(
            base, outcome=outcome, digest=subject.digest, enforced=enforced, logged=logged, notes=tuple(notes)
        )
    return replace(
        base,
        outcome=Outcome.FAILED,
        digest=subject.digest,
        enforced=tuple(rejected),
        examined=present,
        notes=tuple(notes),
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
) -> tuple[list[Failure], str | None] | None:
    """Every failure of one signature referrer and its alg; None when the registry does not have it."""
    integrity = Check.INTEGRITY
    try:
        body, _, _ = client.get_manifest(repository, candidate.digest, max_bytes=MAX_SIGNATURE_MANIFEST_BYTES)
    except NotFound:
        return None
    except (InputError, DigestMismatch) as exc:
        return [Failure(integrity, f"signature manifest unusable: {exc}")], None
    try:
        manifest = json.loads(body)
    except ValueError:
        return [Failure(integrity, "signature manifest is not JSON")], None
    if not isinstance(manifest, dict):
        return [Failure(integrity, "signature manifest is not a JSON object")], None
    failure = _manifest_problem(manifest, subject)
    if failure is not None:
        return [failure], None
    layer = Descriptor.from_dict(manifest["layers"][0], where="signature layer")
    if layer.size > MAX_ENVELOPE_BYTES:
        return [
            Failure(
                integrity,
                f"signature envelope declares {layer.size} bytes, over the limit of {MAX_ENVELOPE_BYTES}; "
                "not fetched",
            )
        ], None
    try:
        envelope = client.get_blob(repository, layer.digest, max_bytes=MAX_ENVELOPE_BYTES)
    except NotFound:
        return [Failure(integrity, f"signature envelope blob {layer.digest} is missing")], None
    except (InputError, DigestMismatch) as exc:
        return [Failure(integrity, f"signature envelope unusable: {exc}")], None
    try:
        verified = verify_envelope(envelope)
    except EnvelopeError as exc:
        return [Failure(integrity, str(exc), exc.rule)], None
    target = verified.target
    signed = (target.digest, target.size, target.media_type)
    if signed != (subject.digest, subject.size, subject.media_type):
        return [
            Failure(
                integrity,
                f"the signature is over {target.digest} ({target.size} bytes, {target.media_type}), "
                f"not over this artifact's manifest {subject.digest}",
                Rule.BINDING,
            )
        ], verified.algorithm
    return _trust_failures(verified, statement, anchors, now, stores), verified.algorithm


def _manifest_problem(manifest: dict[str, Any], subject: Descriptor) -> Failure | None:
    """Why a referrer is not a Notary signature manifest of ``subject`` (Notary "Storage"), or None."""
    integrity = Check.INTEGRITY
    config = manifest.get("config")
    config_type = config.get("mediaType") if isinstance(config, dict) else None
    if NOTARY_SIGNATURE not in (manifest.get("artifactType"), config_type):
        return Failure(integrity, "referrer is not a Notary signature manifest")
    subject_field = manifest.get("subject")
    if not isinstance(subject_field, dict) or subject_field.get("digest") != subject.digest:
        named = subject_field.get("digest") if isinstance(subject_field, dict) else None
        return Failure(
            integrity, f"signature manifest's subject is {named!r}, not {subject.digest}", Rule.BINDING
        )
    layers = manifest.get("layers")
    if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
        return Failure(integrity, "a Notary signature manifest has exactly one layer")
    try:
        layer = Descriptor.from_dict(layers[0], where="signature layer")
    except EnvelopeError as exc:
        return Failure(integrity, str(exc))
    if layer.media_type == COSE_MEDIA_TYPE:
        return Failure(
            integrity, "COSE envelopes are not supported by this verifier (JWS only)", judged=False
        )
    if layer.media_type != JWS_MEDIA_TYPE:
        return Failure(integrity, f"signature envelope media type {layer.media_type[:80]!r} is unknown")
    return None


def _trust_failures(
    verified: VerifiedEnvelope,
    statement: TrustPolicy,
    anchors: Sequence[x509.Certificate],
    now: datetime.datetime,
    stores: str,
) -> list[Failure]:
    """Chain, identity and expiry failures of an envelope whose signature verified over the subject."""
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
