@persona:mis
Feature: TLS on the identity service's trust endpoints
  As a device that fetches trust material before it holds any,
  I want the identity service to speak TLS 1.3 by default and never an obsolete version,
  so that the channel that bootstraps all trust is itself sound.

  Source: specification/identity (MIAF: tls-requirements, Minimum TLS Baseline).

  @req:TLS-003 @level:must @profile:core
  Scenario: The identity service negotiates TLS 1.3 when the client offers it
    Given a client that trusts only the identity service's initial anchors
    When the client asks for the discovery document
    Then the connection uses TLS 1.3

  @req:TLS-005 @level:must @profile:core @negative
  Scenario: A client that offers only TLS 1.1 is refused by the identity service
    Given a client that trusts only the identity service's initial anchors
    And the client was served the discovery document
    When the client asks for it again offering only TLS 1.1
    Then the identity service refuses the connection
