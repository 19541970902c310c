"""``margo-conformance package …``: check an application package, and sign one (SUP-03)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._internal.oci import Reach, registry_reach
from ..errors import EnvironmentProblem, UsageError
from ..package.check import KINDS, PackageReport, check_package
from ..signing.package_check import Trust, check_signatures

app = typer.Typer(help="Application packages: check them against the pin, sign them.", no_args_is_help=True)

EXIT_CONFORMANT, EXIT_NON_CONFORMANT, EXIT_INCOMPLETE = 0, 1, 2
EXIT_BY_VERDICT = {
    "conformant": EXIT_CONFORMANT,
    "non-conformant": EXIT_NON_CONFORMANT,
    "incomplete": EXIT_INCOMPLETE,
}
TIMEOUT_HELP = "Seconds to wait for each registry connect and each read"
PlainHttp = Annotated[
    bool, typer.Option("--plain-http", help="Reach every registry over plain HTTP instead of HTTPS (as oras)")
]
Resolve = Annotated[
    list[str] | None,
    typer.Option(
        "--resolve",
        metavar="HOST:PORT:ADDRESS[:PORT]",
        help="Connect to ADDRESS:PORT for registry HOST:PORT (repeatable; TLS still checks HOST), as oras",
    ),
]


@app.command("check")
def check(
    target: Annotated[
        str,
        typer.Argument(
            help="Package folder or .tar.gz, Compose archive, Helm chart (.tgz or folder), or oci://HOST/REPO:TAG"
        ),
    ],
    trust_policy: Annotated[
        Path | None, typer.Option(help="Notary trust policy (trustpolicy.json, version 1.0); see below")
    ] = None,
    trust_store: Annotated[
        Path | None, typer.Option(help="Notary trust store folder (x509/ca/NAME/*.pem); see below")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    timeout: Annotated[float, typer.Option(help=TIMEOUT_HELP)] = 10.0,
    kind: Annotated[
        str | None,
        typer.Option("--as", metavar="KIND", help=f"Read the target as KIND: {', '.join(KINDS)} (see below)"),
    ] = None,
    plain_http: PlainHttp = False,
    resolve: Resolve = None,
) -> None:
    """Check a package or one component artifact: exit 0 conformant, 1 non-conformant (any MUST
    finding), 2 incomplete (no MUST finding, but a reference could not be fetched) or usage/I/O error.

    The target is told apart by its content (files inside; an oci:// manifest's artifactType and
    media types); --as KIND forces one of:
      package          a package folder: the Application Description at its root, components/ beside it
      package-archive  a package folder as a gzip'd tar (.tar.gz)
      compose          one Compose archive: a .tar.gz of one folder holding compose.yaml (SUP-01 alone)
      helm             one Helm chart: packaged (.tgz) or a chart folder
      oci-package      oci://… an application package (artifactType application/vnd.margo.app.v1+json)
      oci-component    oci://… one Compose or Helm component artifact
    A package folder finds a component's archive as components/NAME.tar.gz (.tgz for Helm) or
    components/NAME-REVISION.tar.gz, else packs components/NAME/.

    A part that cannot be fetched (unknown host, connection refused, timeout, a 404 from a --resolve
    mirror) is listed as not checked and never hides the findings on the rest; --json then gives
    "verdict": "incomplete" and the references under "unreachable". A package whose own manifest cannot
    be fetched is an error (exit 2, one line).

    With --trust-policy and --trust-store (oci:// targets only) the Notary Project signatures of the
    signing profile (SUP-03) are verified too: on the package manifest and on the manifest of every
    Compose archive and Helm chart it names. A failure the policy's level enforces is a MUST finding;
    one it only logs is reported at SHOULD level; level skip, or no policy for the registry scope,
    verifies nothing.

    Trust policy: Notary's trustpolicy.json, version 1.0, for example
    {"version": "1.0", "trustPolicies": [{"name": "acme", "registryScopes": ["registry.example/acme/app"],
    "signatureVerification": {"level": "strict"}, "trustStores": ["ca:acme"], "trustedIdentities": ["*"]}]}.
    A scope is a fully qualified registry/repository, or "*" alone. Levels: strict, permissive, audit,
    skip; an optional "override" sets authenticity, authenticTimestamp or expiry to enforce or log and
    revocation to enforce, log or skip. An identity is "*" alone or "x509.subject: C=.., ST=.., O=..".

    Trust store: a folder holding x509/ca/NAME/ with the publisher's root CA certificates (.pem, .crt
    or .cer; PEM or DER), and optionally x509/tsa/NAME/ and x509/signingAuthority/NAME/. Every store
    a policy names must exist and hold a certificate; symlinks are refused.
    """
    trust = _trust(target, trust_policy, trust_store)
    with registry_reach(Reach.parse(plain_http=plain_http or None, resolve=resolve or [])):
        report = check_package(target, timeout=timeout, kind=kind)
        if trust is not None:
            _check_signatures(report, target, trust, timeout)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        render(report, Console())
    raise typer.Exit(EXIT_BY_VERDICT[report.verdict])


@app.command("sign")
def sign(
    reference: Annotated[str, typer.Argument(help="The artifact to sign: oci://HOST/REPO:TAG or @sha256:…")],
    key: Annotated[Path, typer.Option(help="Unencrypted PEM private key: EC P-256, or RSA of 3072+ bits")],
    cert: Annotated[Path, typer.Option(help="PEM certificate chain: the key's certificate first, root last")],
    algorithm: Annotated[
        str | None, typer.Option(help="ES256 (EC key) or PS256 (RSA key); default: the one the key fits")
    ] = None,
    timeout: Annotated[float, typer.Option(help=TIMEOUT_HELP)] = 10.0,
    plain_http: PlainHttp = False,
    resolve: Resolve = None,
) -> None:
    """Sign an artifact's manifest with a Notary JWS signature and attach it as an OCI referrer.

    The chain must meet Notary's certificate requirements and be valid now; the signature is verified
    before it is pushed (SUP-03 §2). Without a Referrers API (distribution 2.8) the signature is listed
    in the referrers tag schema index (sha256-HEX). Nothing of the key is ever printed.
    """
    from ..signing.material import sign_reference  # cryptography's key loading only when asked for

    with registry_reach(Reach.parse(plain_http=plain_http or None, resolve=resolve or [])):
        signed, alg = sign_reference(reference, key, cert, algorithm=algorithm, timeout=timeout)
    listed = f"referrers tag {signed.referrers_tag}" if signed.referrers_tag else "the Referrers API"
    typer.echo(f"signed {signed.subject.digest} ({alg}) of {reference}")
    typer.echo(f"signature manifest {signed.signature_digest}, listed through {listed}")


def _check_signatures(report: PackageReport, target: str, trust: Trust, timeout: float) -> None:
    """SUP-03 on a package and the components it names; a registry that cannot be reached leaves the
    signatures unchecked (the verdict incomplete) instead of hiding the findings already made."""
    if report.kind != "oci-package":
        raise UsageError(
            f"{target} is an {report.kind}: signatures are verified from a package (oci-package), "
            "which names the components whose signatures are verified too"
        )
    try:
        check_signatures(target, trust, timeout=timeout).apply_to(report)
    except EnvironmentProblem as exc:
        report.unreachable.setdefault(target, str(exc))
        report.notes.append(f"signatures not checked: {exc}")


def _trust(target: str, policy: Path | None, store: Path | None) -> Trust | None:
    """The trust material, read and cross-checked before any registry is asked anything."""
    if policy is None and store is None:
        return None
    if policy is None or store is None:
        raise UsageError("--trust-policy and --trust-store go together")
    if not target.startswith("oci://"):
        raise UsageError(f"{target}: signatures are verified on oci:// references only")
    return Trust.load(policy, store)


def render(report: PackageReport, console: Console) -> None:
    """A table of findings, worst first, then notes and the verdict line."""
    if report.findings:
        table = Table(title=f"Findings for {escape(report.origin)}", show_lines=False)
        for column in ("Level", "Requirement", "Location", "Finding"):
            table.add_column(column, overflow="fold")
        for finding in sorted(report.findings, key=lambda f: (not f.level.breaks_conformance, f.requirement)):
            style = "red" if finding.level.breaks_conformance else "yellow"
            table.add_row(
                f"[{style}]{finding.level.value}[/]",
                escape(finding.requirement),
                escape(finding.location),  # package text is never markup: '^[a-z0-9-]+$' prints as is
                escape(finding.message),
            )
        console.print(table)
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    must = sum(1 for f in report.findings if f.level.breaks_conformance)
    weaker = len(report.findings) - must
    checked = len(report.verdicts())
    if report.verdict == "conformant":
        console.print(
            f"[green]conformant[/]: {escape(report.origin)} "
            f"({checked} requirements checked, {weaker} warnings)"
        )
    elif report.verdict == "incomplete":
        console.print(
            f"[yellow]incomplete[/]: {report.origin} ({len(report.unreachable)} references not fetched: "
            f"{', '.join(sorted(report.unreachable))}; no MUST finding on the rest, {weaker} warnings)",
            soft_wrap=True,
        )
    else:
        console.print(
            f"[red]non-conformant[/]: {escape(report.origin)} "
            f"({must} MUST findings, {weaker} warnings, {checked} requirements checked)"
        )
