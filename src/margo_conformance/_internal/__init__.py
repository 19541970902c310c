"""Plumbing the public modules build on (OCI transport, a local registry); not a stable API."""
