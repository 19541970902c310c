"""`python -m margo_conformance.cli`: the same as the margo-conformance command."""

from . import main

main()
