@persona:mis
Feature: The identity service's discovery document
  As a device that is joining a Margo trust domain,
  I want the identity service to tell me, over HTTPS I can authenticate without an SVID, which trust
  domain it serves and where that domain's trust bundle is,
  so that I learn the anchors from the one authority for them and never trust on first use.

  Source: specification/identity (MIAF: trust-bundle-distribution), trust-bundle-api-1.0.0-rc.3.yaml
  (GET /.well-known/margo); protocol digest §3.7. The suite is a bootstrapping client: it presents no
  client certificate and authenticates the identity service with the configured anchors (TLS-006).

  @req:TB-102 @level:must @profile:core
  Scenario: The discovery document names the trust domain and an absolute https bundle URI
    Given a client that trusts only the identity service's initial anchors
    When the client asks for the discovery document
    Then the identity service answers 200 with an application/json DiscoveryDocument
    And the document's trustDomain is the configured trust domain
    And the document's trustBundleUri is an absolute https URL

  @req:TB-102 @level:must @profile:core
  Scenario: The trust endpoints serve a client that presents no certificate
    Given a client that trusts only the identity service's initial anchors
    When the client asks for the discovery document
    Then the identity service answers over HTTP

  @req:TB-103 @level:should @profile:core
  Scenario: Asking again for the discovery document with its ETag gets 304
    Given a client that trusts only the identity service's initial anchors
    When the client asks for the discovery document
    And the client asks for it again with the ETag it got
    Then the identity service answers 304 without a body

  @req:TB-106 @level:must @profile:core
  Scenario: A path the identity service does not serve is a 404 problem
    Given a client that trusts only the identity service's initial anchors
    When the client asks for a path the identity service does not serve
    Then the identity service answers 404 with an application/problem+json ProblemDetail
