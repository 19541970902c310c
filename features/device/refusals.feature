@persona:device @profile:core @negative
Feature: A device refuses a desired state it cannot trust, and keeps what it runs
  As a device owner, I want my device to apply only desired state whose every byte and version it has
  verified, from the WFM it belongs to, so that a broken or hostile WFM cannot make it run something else.
  Source: Margo 1.0.0-rc.3 Desired State (DS-019, DS-022..024), MIAF (WIP-007, TLS-005, TLS-008),
  margo-rc3-protocol.md §2, §5, §9; problem statements: rollback and tampering (signing entries).

  Background:
    Given a device connected to the instrument WFM
    And vendor-a's application installed on the device

  @req:DS-022 @level:must
  Scenario: A deployment whose bytes miss their digest aborts the whole update
    Given the instrument WFM serves the deployment's YAML with bytes that miss its digest
    When the operator sets the deployment's parameter "listenPort" to 9091 and deploys vendor-b's application
    Then the device fetches the changed deployment and finishes its cycle
    And vendor-a's application is untouched
    And vendor-b's application is not deployed

  @req:DS-024 @level:must
  Scenario: A manifestVersion lower than the stored one is rejected
    Given the instrument WFM serves a manifestVersion lower than the device holds
    When the operator sets the deployment's parameter "listenPort" to 9092
    Then the device receives the manifest and finishes its cycle
    And vendor-a's application is untouched

  @req:DS-024 @level:must
  Scenario: A manifestVersion equal to the stored one with other content is rejected
    Given the instrument WFM serves a manifestVersion equal to the one the device holds
    When the operator sets the deployment's parameter "listenPort" to 9093
    Then the device receives the manifest and finishes its cycle
    And vendor-a's application is untouched

  @req:DS-023 @level:must
  Scenario: A manifest naming an unsupported digest algorithm is not processed
    Given the instrument WFM writes the manifest's digests with the algorithm sha512
    When the operator sets the deployment's parameter "listenPort" to 9094
    Then the device receives the manifest and finishes its cycle
    And vendor-a's application is untouched

  @req:WIP-007 @req:API-SEC-001 @level:must
  Scenario: A WFM presenting another wfm-id is not talked to
    Given the instrument WFM presents an SVID of another wfm-id in the same trust domain
    When the operator sets the deployment's parameter "listenPort" to 9095
    Then the device connects again and sends no request
    And vendor-a's application is untouched

  @req:TLS-008 @req:API-SEC-001 @level:must
  Scenario: A WFM whose chain does not lead to the trust anchors is not talked to
    Given the instrument WFM presents a chain from a CA outside the trust bundle
    When the operator sets the deployment's parameter "listenPort" to 9096
    Then the device connects again and sends no request
    And vendor-a's application is untouched

  @req:TLS-005 @level:must
  Scenario: A WFM that offers only TLS 1.1 is not talked to
    Given the instrument WFM offers only TLS 1.1
    When the operator sets the deployment's parameter "listenPort" to 9097
    Then the device connects again and sends no request
    And vendor-a's application is untouched
