"""The identity-service (MIS) persona's checker side: the subject (where its trust endpoints are and what
the suite trusts them with) and a client for the two Trust Bundle API endpoints (protocol digest §3.7)."""
