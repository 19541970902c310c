"""Notary Project signatures for OCI artifacts (SUP-03): envelopes, certificate rules, trust policy,
signing and verification against a registry, and the signature fixtures of the signing profile."""
