@persona:package @profile:signing
Feature: The vendor's packages carry Notary signatures that verify under the publisher's trust policy
  As a WFM vendor deploying applications from many developers,
  I want every application package manifest and every Compose archive and Helm chart manifest a
  developer publishes to carry a Notary Project signature that verifies against the publisher's root,
  so that a WFM enforcing a trust policy accepts the package and refuses any tampered copy.

  Source: SUP-03 "OCI Artifact Signing for Margo" (margo/specification-enhancements
  proposals/oci-signature/sup-03-oci-signature.md @50c7fb09, draft) §2-§4, adopting the Notary
  Project specifications v1.1.0. The trust store and trust policy are the SUT file's
  package.signing (the publisher's root certificates and a Notary trust policy v1.0); each oci://
  target (and each local target the suite publishes, signed with package.signing.sign_published)
  is verified at the strict level whatever level the policy names (erratum INC-155).

  Background:
    Given the application packages under test, published in an OCI registry
    When the signatures of each published package are verified under the publisher's trust policy

  @req:SIGN-101 @level:must
  Scenario: Every application package manifest carries a signature that verifies
    Then no package breaks requirement SIGN-101

  @req:SIGN-102 @level:must
  Scenario: Every Compose archive manifest carries a signature that verifies
    Then no package breaks requirement SIGN-102

  @req:SIGN-103 @level:must
  Scenario: Every Helm chart manifest carries a signature that verifies
    Then no package breaks requirement SIGN-103

  @req:SIGN-106 @level:must
  Scenario: The vendor signs with ES256 or PS256, never RS256
    Then no package breaks requirement SIGN-106

  @req:SIGN-107 @level:must
  Scenario: Each signature signs the descriptor of the manifest it is attached to
    Then no package breaks requirement SIGN-107

  @req:SIGN-108 @level:must
  Scenario: Each signing chain leads to a root certificate of the publisher's trust store
    Then no package breaks requirement SIGN-108

  @req:SIGN-109 @level:must
  Scenario: Each signing certificate is fit for code signing
    Then no package breaks requirement SIGN-109

  @req:SIGN-110 @level:must
  Scenario: Each signing certificate is valid when the signature is verified
    Then no package breaks requirement SIGN-110
