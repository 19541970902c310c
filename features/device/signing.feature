@persona:device @profile:signing
Feature: A device verifies the signature of every Compose archive it deploys, as its trust policy says
  As a plant operator who gave my devices a Notary trust policy and my publishers' roots,
  I want a device's WFM client to verify the signature of every Compose archive it pulls before it
  runs anything of it, so that a tampered, foreign or badly signed component never runs on my device
  whatever the WFM sends, while a lenient policy level only logs what it lets through.

  Source: SUP-03 "OCI Artifact Signing for Margo" (margo/specification-enhancements
  proposals/oci-signature/sup-03-oci-signature.md @50c7fb09, draft) §4 and §6 (the WFM client SHOULD
  verify), adopting the Notary Project specifications v1.1.0 (trust-store-trust-policy.md: the level
  table); margo-problem-statements.md A2 (spec #138: "device verifies at deploy time", the scenario
  "Device refuses to deploy a component whose OCI manifest was altered after signing") and A3.
  The suite plays the WFM and the registry: each signed application is vendor-a's, published with one
  signature fault on its Compose archive manifest; the device is started with a trust policy of the
  scenario's level for those repositories and a trust store holding vendor-a's root.

  @req:SIGN-114 @req:SIGN-116 @level:should
  Scenario Outline: A device with a strict trust policy deploys a validly signed application
    Given a device connected to the instrument WFM with a trust policy of level "strict" for the suite's registry
    When the operator deploys vendor-a's application signed as "<fixture>"
    Then the device reports the deployment "installed"
    And the deployment runs on the device and serves on its published port

    Examples:
      | fixture     |
      | valid       |
      | valid-ps256 |

  @req:SIGN-114 @req:SIGN-116 @level:should @negative
  Scenario Outline: A device with a strict trust policy refuses a badly signed application
    Given a device connected to the instrument WFM with a trust policy of level "strict" for the suite's registry
    When the operator deploys vendor-a's application signed as "<fixture>"
    Then the device reports the deployment "failed"
    And nothing of the deployment runs on the device

    Examples:
      | fixture              |
      | unsigned             |
      | tampered             |
      | untrusted-ca         |
      | expired-no-timestamp |
      | rs256                |
      | forbidden-eku        |
      | other-digest         |

  @req:SIGN-114 @req:SIGN-116 @level:should @negative
  Scenario: A component altered after signing is refused and what the device runs stays untouched
    Given a device connected to the instrument WFM with a trust policy of level "strict" for the suite's registry
    And vendor-b's validly signed application installed on the device
    When the operator deploys vendor-a's application signed as "tampered"
    Then the device reports the deployment "failed"
    And nothing of the deployment runs on the device
    And vendor-b's application is untouched

  @req:SIGN-114 @req:SIGN-116 @level:should
  Scenario: A device with an audit trust policy deploys an application signed under an untrusted root
    Given a device connected to the instrument WFM with a trust policy of level "audit" for the suite's registry
    When the operator deploys vendor-a's application signed as "untrusted-ca"
    Then the device reports the deployment "installed"
    And the deployment runs on the device and serves on its published port

  @req:SIGN-114 @req:SIGN-116 @level:should @negative
  Scenario: A device with an audit trust policy still refuses an RS256 signature
    Given a device connected to the instrument WFM with a trust policy of level "audit" for the suite's registry
    When the operator deploys vendor-a's application signed as "rs256"
    Then the device reports the deployment "failed"
    And nothing of the deployment runs on the device
