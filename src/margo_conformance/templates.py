"""Command templates of the SUT file (provisioner operations, device launchers): checked when the file
is loaded, rendered without a shell, and shown in reports without the secrets they carry.

A template is split like a shell would (``shlex``) *before* placeholders are filled in, so a value can
never become a new argument. Placeholders are ``{name}`` (a fact of the operation, or a secret-named key
of the same SUT section) and ``{env:NAME}`` (the suite's environment variable NAME, read when the command
runs). A word that carries a secret (an ``{env:…}`` value or a secret-named key's value) is shown as the
template wrote it, never filled in.
"""

from __future__ import annotations

import os
import re
import shlex
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import UsageError

ENV = "env"
SECRET_NAME = re.compile(r"(key|secret|password|token|credential)", re.IGNORECASE)
# A secret written into a command after all (``API_TOKEN=…``, ``--password=…``): its value is hidden too.
INLINE_SECRET = re.compile(
    r"(?P<name>[\w-]*(?:key|secret|password|token|credential)[\w-]*=)(?P<value>(?!\{)[^\s'\"]+)",
    re.IGNORECASE,
)

# What each provisioner operation fills in (wfm/provisioners.py passes exactly these).
_CLIENT = ("spiffe_id", "client_id")
PROVISIONER_PLACEHOLDERS: Mapping[str, tuple[str, ...]] = {
    "accept_client": _CLIENT,
    "retire_client": _CLIENT,
    "deploy": (*_CLIENT, "device_id", "app_description", "parameters_file"),
    "deploy_package": (*_CLIENT, "device_id", "package_ref", "parameters_file"),
    "install_trust": ("trust_policy", "trust_store"),
    "update": ("deployment_id", "app_description", "parameters_file"),
    "undeploy": ("deployment_id",),
    "restart": (),
    "overload": ("status", "retry_after"),
}
# What a device launcher's start/stop commands may use (device/launchers.py LaunchFacts).
LAUNCHER_PLACEHOLDERS = (
    "wfm_url",
    "client_cert",
    "client_key",
    "trust_anchors",
    "state_dir",
    "device_id",
    "poll_interval_s",
    "trust_policy",
    "trust_store",
)


def fields(template: str) -> list[tuple[str, str]]:
    """Every ``(name, spec)`` placeholder of the template's words; ValueError for a malformed one."""
    found = []
    for word in shlex.split(template):
        for _, name, spec, _ in string.Formatter().parse(word):
            if name is not None:
                found.append((name, spec or ""))
    return found


def check_template(template: str, known: Iterable[str], *, where: str, environ: Mapping[str, str]) -> None:
    """A UsageError naming ``where`` for a template that could never run: unbalanced quotes or braces,
    a placeholder the operation does not fill in, an ``{env:NAME}`` whose variable is not set."""
    allowed = sorted(set(known))
    try:
        found = fields(template)
    except ValueError as exc:
        raise UsageError(f"{where}: malformed template {template!r}: {exc}") from None
    for name, spec in found:
        if name == ENV:
            if not spec:
                raise UsageError(f"{where}: '{{env:NAME}}' needs a variable name in {template!r}")
            if spec not in environ:
                raise UsageError(
                    f"{where}: {{env:{spec}}} names the environment variable {spec}, which is not set"
                )
        elif name not in allowed:
            offered = " ".join("{" + n + "}" for n in [*allowed, "env:NAME"])
            raise UsageError(
                f"{where}: unknown placeholder {{{name}}} in {template!r}; placeholders: {offered}"
            )


@dataclass(frozen=True)
class Rendered:
    """The argv to run, and the same command as reports may show it (secret-bearing words unfilled)."""

    argv: list[str]
    shown: str


def render(
    template: str,
    values: Mapping[str, str],
    *,
    secrets: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Rendered:
    """Fill each word of the template; KeyError/ValueError for a placeholder without a value."""
    environment = os.environ if environ is None else environ
    hidden = dict(secrets or {})
    argv, shown = [], []
    for word in shlex.split(template):
        names = {name for _, name, _, _ in string.Formatter().parse(word) if name is not None}
        argv.append(word.format(**values, **hidden, env=_Environment(environment)))
        shown.append(word if names & {ENV, *hidden} else argv[-1])
    return Rendered(argv=argv, shown=hide_inline(shlex.join(shown)))


def hide_inline(text: str) -> str:
    """``API_TOKEN=tok-1`` → ``API_TOKEN=***``: a secret someone wrote into a command line itself."""
    return INLINE_SECRET.sub(lambda m: m["name"] + "***", text)


def secret_values(section: Mapping[str, object]) -> dict[str, str]:
    """A SUT section's secret-named keys (``api_token: …``): placeholders whose values reports never show."""
    return {k: str(v) for k, v in section.items() if SECRET_NAME.search(k)}


class _Environment:
    """``{env:NAME}``: the suite's environment variable NAME, read when the command runs."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def __format__(self, name: str) -> str:
        if name not in self._environ:
            raise KeyError(f"env:{name} (the environment variable {name} is not set)")
        return self._environ[name]
