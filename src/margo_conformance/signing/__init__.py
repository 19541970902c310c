"""Notary Project signatures for OCI artifacts (SUP-03): envelopes, certificate rules, trust policy,
signing and verification against a registry, the signature fixtures of the signing profile, and the
signature findings of a package check (``package_check``) with the scenarios' subjects and expectations.
"""
