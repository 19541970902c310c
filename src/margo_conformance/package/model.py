"""What a package loader hands to the checks, whatever the package came from (dir, archive, OCI)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..findings import Findings


@dataclass
class ComponentArtifact:
    """The artifact behind one component of the Application Description.

    ``archive`` holds the bytes of the Compose archive (gzip'd tar) or the packaged Helm chart
    (``.tgz``) once they were obtained *and* their OCI digest verified; None when the artifact
    could not be obtained (the loader then recorded a finding).
    """

    name: str
    deployment_type: str  # "compose" | "helm" | "custom", from the deployment profile
    location: str  # where it came from, for findings: a file path or an oci:// reference
    archive: bytes | None = None
    unreachable: bool = False  # its manifest or archive could not be fetched (not judged either way)


@dataclass
class LoadedPackage:
    """An application package as the checks see it."""

    origin: str  # the argument the user gave: a path or an oci:// reference
    description_location: str  # e.g. "margo.yaml" or "oci://host/repo:tag#margo.yaml"
    description_text: str | None  # None when no (single) description could be found
    resources: dict[str, bytes] = field(default_factory=dict)  # relative path -> bytes
    components: list[ComponentArtifact] = field(default_factory=list)
    findings: Findings = field(default_factory=Findings)  # found while loading (layout, OCI shape)
    kind: str = "package"  # what the target is, a name of package.check.KINDS
    unreachable: dict[str, str] = field(default_factory=dict)  # reference -> why it could not be fetched
    notes: list[str] = field(default_factory=list)  # how a verdict was reached where an erratum decided
