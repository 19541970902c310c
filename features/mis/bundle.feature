@persona:mis
Feature: The identity service's SPIFFE trust bundle
  As a device or WFM of a Margo trust domain,
  I want the trust bundle at trustBundleUri to hold that domain's X.509 anchors in the SPIFFE bundle
  format, and to change only forwards,
  so that every SVID of the domain validates against it and nothing else does.

  Source: trust-bundle-api-1.0.0-rc.3.yaml (the SpiffeBundle at trustBundleUri), the SPIFFE Trust Domain
  and Bundle format §4 (errata INC-197); protocol digest §3.7.

  @req:TB-104 @level:must @profile:core
  Scenario: The bundle holds the trust domain's X.509 anchors as CA certificates
    Given a client that knows the bundle URI from the discovery document
    When the client asks for the trust bundle
    Then the identity service answers 200 with an application/json SpiffeBundle
    And every x509-svid key carries one CA certificate, and there is at least one

  @req:TB-104 @level:must @profile:core
  Scenario: The bundle's sequence never goes backwards
    Given a client that knows the bundle URI from the discovery document
    When the client asks for the trust bundle twice
    Then the second bundle's spiffe_sequence is not lower than the first's

  @req:TB-103 @level:should @profile:core
  Scenario: Asking again for the bundle with its ETag gets 304
    Given a client that knows the bundle URI from the discovery document
    When the client asks for the trust bundle
    And the client asks for it again with the ETag it got
    Then the identity service answers 304 without a body

  @req:TB-104 @level:must @profile:core
  Scenario: The bundle's anchors validate the WFM's SVID
    Given a client that holds the anchors of the identity service's bundle
    When the client connects to a WFM of the trust domain trusting only those anchors
    Then the WFM's chain validates against them
    And the WFM's SPIFFE ID is in the discovery document's trust domain
