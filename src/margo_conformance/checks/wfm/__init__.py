"""The WFM persona's checks (issue 9: one check shape): small verb-named functions, each deciding one thing
about an exchange with the WFM or a document it served, raising :class:`~margo_conformance.checks.Violation`
(requirement, message, evidence: the transcript or the document). Split by what they judge; the readings
each applies where the spec leaves room are in its docstring and in errata.yaml.

A WFM that could not be reached at all (TCP refused, unresolvable host, the suite's client rejecting the
WFM's certificate) is not a finding: those raise ``Blocked``.
"""

from __future__ import annotations

from ._common import IMMUTABLE_MAX_AGE, LONG_MAX_AGE, NAMED_IN_PROSE, REGISTERED_PROBLEMS
from .deployment import (
    Deployment,
    ensure_application_deployment,
    ensure_application_id,
    ensure_components_copied,
    ensure_constraints_copied,
    ensure_deployment_id,
    ensure_deployment_ids,
    ensure_device_extensions_copied,
    ensure_parameter,
    ensure_parameters,
    ensure_root_extensions_not_forwarded,
    ensure_target_device,
    ensure_valid_application_deployment,
)
from .identity import (
    ensure_wfm_identity,
)
from .manifest import (
    ensure_bundle_null_iff_empty,
    ensure_deployments_listed,
    ensure_etag,
    ensure_lists_none_of,
    ensure_manifest,
    ensure_manifest_urls,
    ensure_manifest_version,
    ensure_manifest_version_advanced,
    ensure_not_modified,
    ensure_private_not_immutable,
    ensure_strong_digest_etag,
    ensure_two_versions,
)
from .problems import (
    ensure_http_refusal_form,
    ensure_problem,
    ensure_problem_among,
    ensure_problem_lists_errors,
    ensure_problem_media_type,
    ensure_problem_shape,
    ensure_refusal_among,
    ensure_registered_margo_type,
    ensure_registered_problem,
    ensure_report_refused,
    ensure_retry_semantics,
)
from .resources import (
    ensure_body_digest,
    ensure_bundle_holds_exactly,
    ensure_content_type,
    ensure_digest_resource,
    ensure_etag_is_digest,
    ensure_immutable_caching,
    ensure_vary_when_encoded,
)
from .signing import (
    ensure_no_new_deployment,
    ensure_package_deployed,
    ensure_package_listed,
    ensure_package_refused,
    ensure_package_served,
)
from .transport import (
    ensure_answered,
    ensure_control,
    ensure_not_served,
    ensure_refused,
    ensure_response,
    ensure_status,
    ensure_tls_version,
)

__all__ = [
    "Deployment",
    "IMMUTABLE_MAX_AGE",
    "LONG_MAX_AGE",
    "NAMED_IN_PROSE",
    "REGISTERED_PROBLEMS",
    "ensure_answered",
    "ensure_application_deployment",
    "ensure_application_id",
    "ensure_body_digest",
    "ensure_bundle_holds_exactly",
    "ensure_bundle_null_iff_empty",
    "ensure_components_copied",
    "ensure_constraints_copied",
    "ensure_content_type",
    "ensure_deployment_id",
    "ensure_deployment_ids",
    "ensure_deployments_listed",
    "ensure_device_extensions_copied",
    "ensure_digest_resource",
    "ensure_etag",
    "ensure_etag_is_digest",
    "ensure_http_refusal_form",
    "ensure_immutable_caching",
    "ensure_lists_none_of",
    "ensure_manifest",
    "ensure_manifest_urls",
    "ensure_manifest_version",
    "ensure_manifest_version_advanced",
    "ensure_no_new_deployment",
    "ensure_not_modified",
    "ensure_control",
    "ensure_not_served",
    "ensure_package_deployed",
    "ensure_package_listed",
    "ensure_package_refused",
    "ensure_package_served",
    "ensure_parameter",
    "ensure_parameters",
    "ensure_private_not_immutable",
    "ensure_problem",
    "ensure_problem_among",
    "ensure_problem_lists_errors",
    "ensure_problem_media_type",
    "ensure_problem_shape",
    "ensure_refusal_among",
    "ensure_refused",
    "ensure_registered_margo_type",
    "ensure_registered_problem",
    "ensure_report_refused",
    "ensure_response",
    "ensure_retry_semantics",
    "ensure_root_extensions_not_forwarded",
    "ensure_status",
    "ensure_strong_digest_etag",
    "ensure_target_device",
    "ensure_tls_version",
    "ensure_two_versions",
    "ensure_valid_application_deployment",
    "ensure_vary_when_encoded",
    "ensure_wfm_identity",
]
