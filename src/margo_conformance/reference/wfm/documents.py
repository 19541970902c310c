"""Byte-exact documents of the Desired State API: digests, the manifest JSON and the bundle archive.

Exact Bytes Rule (DS-021): every digest is SHA-256 over exactly the bytes a 200 answer carries, so the
bytes are produced once here and stored or cached as bytes, never re-serialised on the way out.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MANIFEST_MEDIA_TYPE = "application/vnd.margo.manifest.v1+json"
BUNDLE_MEDIA_TYPE = "application/vnd.margo.bundle.v1+tar+gzip"
YAML_MEDIA_TYPE = "application/yaml"
IMMUTABLE = "private, max-age=31536000, immutable"  # DS-015
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")  # DS-020 (errata INC-009)


def digest_of(data: bytes) -> str:
    """``sha256:<64 lowercase hex>`` of exactly these bytes (DS-020, DS-021)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512_digest(data: bytes) -> str:
    """``sha512:<hex>``: a digest a device must refuse as an unsupported algorithm (DS-023)."""
    return "sha512:" + hashlib.sha512(data).hexdigest()


def canonical_json(document: Any) -> bytes:
    """RFC 8785-style serialisation (DS-008): sorted keys, no insignificant whitespace, UTF-8.

    The manifest holds only ASCII keys, strings and integers, for which this equals JCS."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class Entry:
    """One deployment as the manifest references it."""

    deployment_id: str
    digest: str
    body: bytes


def set_digest(entries: Sequence[Entry]) -> str:
    """Identity of a client's deployment set: which ids at which digests (order does not matter)."""
    return digest_of(canonical_json(sorted([e.deployment_id, e.digest] for e in entries)))


def bundle_archive(members: Sequence[tuple[str, bytes]]) -> bytes:
    """A gzip'd tar with the given root files, deterministic: sorted names, mtime 0, uid/gid 0, no
    owner names, mode 0644, ustar format, gzip header mtime 0 and no file name.

    Layout (errata INC-104, unspecified upstream): one ``<deploymentId>.yaml`` per deployment at the
    archive root, holding exactly the bytes served at that deployment's URL (DS-027)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(data))
    return _gzipped(raw.getvalue(), mtime=0)


def regzipped(bundle: bytes, *, mtime: int) -> bytes:
    """The same archive gzip'd again with another header mtime: equal content, other bytes."""
    return _gzipped(gzip.decompress(bundle), mtime=mtime)


def bundle_deployment_ids(bundle: bytes) -> set[str]:
    """The deploymentIds of a bundle built by ``bundle_archive`` (its ``<id>.yaml`` member names)."""
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as tar:
        return {name.removesuffix(".yaml") for name in tar.getnames()}


def _gzipped(data: bytes, *, mtime: int) -> bytes:
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=mtime, compresslevel=9) as zipped:
        zipped.write(data)
    return packed.getvalue()


def manifest_document(
    version: int, entries: Sequence[Entry], bundle: bytes | None, *, omit_null_bundle: bool = False
) -> dict[str, Any]:
    """The UnsignedAppStateManifest (protocol digest §4.2); ``bundle`` is the archive's exact bytes."""
    document: dict[str, Any] = {"manifestVersion": version}
    if bundle is not None:
        digest = digest_of(bundle)
        document["bundle"] = {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "digest": digest,
            "sizeBytes": len(bundle),
            "url": f"/api/v1/bundles/{digest}",
        }
    elif not omit_null_bundle:
        document["bundle"] = None  # DS-012: present and null without deployments
    document["deployments"] = [
        {
            "deploymentId": e.deployment_id,
            "digest": e.digest,
            "sizeBytes": len(e.body),
            "url": f"/api/v1/deployments/{e.deployment_id}/{e.digest}",
        }
        for e in entries
    ]
    return document
