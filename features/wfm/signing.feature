@persona:wfm
Feature: A WFM deploys only packages whose signatures verify under its trust policy
  As an operator of a plant,
  I want my WFM to verify the Notary signatures of every application package it deploys from a
  registry under the trust policy I gave it,
  so that an unsigned, tampered, foreign or expired package never reaches my devices.

  Source: SUP-03 "OCI Artifact Signing for Margo" (margo/specification-enhancements
  proposals/oci-signature/sup-03-oci-signature.md @50c7fb09, draft) §4 Verification and §6 (a WFM
  MUST verify unless the level is skip); margo-problem-statements.md A3 ("WFM with a strict trust
  policy rejects bad signatures") and A2 (spec issue #138). The suite is the operator: it publishes
  vendor-a's package once per signature fixture to its registry, writes the trust policy and trust
  store, and asks the WFM to deploy each package through its provisioner. One fault per fixture:
  unsigned (no signature on the package manifest), tampered (the tag re-pushed after signing),
  untrusted-ca (signed under a root the trust store does not hold), expired-no-timestamp (the
  signing certificate expired since, no RFC 3161 timestamp), component-unsigned (the Compose
  archive's manifest carries no signature).

  Background:
    Given the signature fixtures of the signing profile, published in an OCI registry
    And the WFM verifies packages under a trust policy of level "strict" for every fixture repository, trusting the publisher "vendor-a"
    And a WFM client accepted by the WFM
    And the client reported the capabilities of device "edge-1"

  @req:SIGN-113 @req:SIGN-116 @level:must @profile:signing
  Scenario: A WFM with a strict trust policy deploys a package signed by its trusted publisher
    When the operator deploys the package "valid" from the registry to device "edge-1"
    Then the WFM accepts the package
    When the client asks for its desired state
    And the client fetches every deployment the manifest lists
    Then the client's desired state lists the deployment, made from the package's description

  @req:SIGN-113 @req:SIGN-116 @level:must @profile:signing @negative
  Scenario Outline: A WFM with a strict trust policy refuses a package whose signatures fail verification
    When the client asks for its desired state
    And the operator deploys the package "<fixture>" from the registry to device "edge-1"
    Then the WFM refuses the package
    And the client's desired state lists no new deployment

    Examples:
      | fixture              |
      | unsigned             |
      | tampered             |
      | untrusted-ca         |
      | expired-no-timestamp |
      | component-unsigned   |
