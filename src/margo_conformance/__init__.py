"""margo-conformance: the conformance test suite for Margo 1.0.0-rc.3."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("margo-conformance")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"

DEFAULT_PIN = "margo-1.0.0-rc.3"
