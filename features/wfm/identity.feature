@persona:wfm
Feature: Who may talk to a WFM
  As an operator of a Margo trust domain,
  I want a WFM to serve only the clients I provisioned and accepted, over modern TLS,
  so that no device, stolen credential or look-alike identity can read or change desired state.

  Source: specification/identity (MIAF: svids, tls-requirements, wfm-identity-profile),
  specification/margo-management-interface/api-requirements-and-security;
  margo-problem-statements.md J2, J6.

  @req:API-SEC-002 @req:API-SEC-001 @level:must @profile:core @negative
  Scenario: A client without a certificate is not served
    Given the WFM serves an accepted client its desired state
    And a WFM client without a certificate
    When the client asks for its desired state
    Then the WFM does not serve the client

  @req:SVID-006 @req:WIP-005 @req:TLS-002 @level:must @profile:core @negative
  Scenario Outline: A client SVID that breaks the SVID profile is not served
    Given the WFM serves an accepted client its desired state
    And an impersonator of the client whose SVID has the flaw "<flaw>"
    When the impersonator asks for its desired state
    Then the WFM does not serve the impersonator

    Examples:
      | flaw                 |
      | foreign-trust-domain |
      | wrong-path           |
      | two-uri-sans         |
      | ca-true              |
      | key-cert-sign        |

  @req:TLS-008 @level:must @profile:core @negative
  Scenario Outline: A client SVID outside its validity or trust is refused
    Given the WFM serves an accepted client its desired state
    And an impersonator of the client whose SVID has the flaw "<flaw>"
    When the impersonator asks for its desired state
    Then the WFM does not serve the impersonator

    Examples:
      | flaw           |
      | expired        |
      | not-yet-valid  |
      | unknown-issuer |

  @req:WIP-008 @level:must @profile:core @negative
  Scenario: A client the operator never accepted is not served
    Given the WFM serves an accepted client its desired state
    And a second WFM client with a valid SVID that the WFM has not accepted
    When the second client asks for its desired state
    Then the WFM does not serve the second client

  @req:API-SEC-008 @level:should @profile:core @negative
  Scenario: A client the operator never accepted is told so with a 403 not-authorized problem
    Given the WFM serves an accepted client its desired state
    And a second WFM client with a valid SVID that the WFM has not accepted
    When the second client asks for its desired state
    Then a refusal over HTTP is 403 with the problem "not-authorized"

  @req:API-SEC-007 @level:must @profile:core @negative
  Scenario: A retired client is not served although its SVID is still valid
    Given the WFM serves an accepted client its desired state
    And the operator retired the client
    When the client asks for its desired state
    Then the WFM does not serve the client

  @req:API-SEC-008 @level:should @profile:core @negative
  Scenario: A retired client is told so with a 403 not-authorized problem
    Given the WFM serves an accepted client its desired state
    And the operator retired the client
    When the client asks for its desired state
    Then a refusal over HTTP is 403 with the problem "not-authorized" or "wfm-client-relationship-retired"

  @req:WIP-004 @level:must @profile:core
  Scenario: The WFM presents the SPIFFE ID of its own wfm-id
    Given a WFM client accepted by the WFM
    When the client asks for its desired state
    Then the WFM presented exactly its own WFM SPIFFE ID

  @req:SVID-001 @level:must @profile:core
  Scenario: The WFM presents the intermediates a client needs
    Given a WFM client accepted by the WFM that trusts only the bundle's anchors
    When the client asks for its desired state
    Then the connection was established

  @req:TLS-005 @level:must @profile:core @negative
  Scenario: A client that offers only TLS 1.1 is refused
    Given the WFM serves an accepted client its desired state
    And the client offers only TLS 1.1
    When the client asks for its desired state
    Then the WFM refuses the connection

  @req:TLS-003 @level:must @profile:core
  Scenario: TLS 1.3 is negotiated when the client offers it
    Given a WFM client accepted by the WFM
    When the client asks for its desired state
    Then the connection uses TLS 1.3
