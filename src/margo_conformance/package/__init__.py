"""The package persona: Application Descriptions, package layout and component artifacts (SUP-01)."""
