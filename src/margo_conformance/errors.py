"""One error root for the suite.

Problems of the *environment* (bad configuration, unreadable input, Docker or a registry unreachable)
are errors; problems of the *subject under test* are findings (see ``findings``). The CLI prints
``diagnostics()`` for errors and exits 2, never a traceback.
"""

from __future__ import annotations


class MargoError(Exception):
    """Root of every error the suite raises on purpose."""

    def diagnostics(self) -> str:
        """One or a few lines a person can act on."""
        return str(self)


class UsageError(MargoError):
    """The command line or a configuration file is wrong."""


class InputError(MargoError):
    """An input (file, archive, reference) cannot be read at all."""


class EnvironmentProblem(MargoError):
    """Something the suite needs (Docker, a registry, a tool) is missing or unreachable."""


class RegistryError(MargoError):
    """The requirement registry of a pin is malformed or a lookup failed."""


class Blocked(MargoError):
    """A scenario's precondition could not be established: the verdict is blocked, not failed."""


class InternalError(MargoError):
    """The suite itself failed (a crashed scenario run, a missing report): exit 3, never a verdict."""
