@persona:wfm
Feature: Deployment status reported to a WFM
  As a WFM vendor's customer,
  I want every WFM to accept well-formed status reports and refuse broken ones the same way,
  so that the fleet view is right whatever device reports it.

  Source: specification/margo-management-interface/deployment-status and the rc.3 OpenAPI
  (POST /api/v1/deployments/{deploymentId}/status); api-requirements-and-security (errors, retries);
  problem-types; margo-problem-statements.md H1.

  Background:
    Given a WFM client accepted by the WFM
    And the client reported the capabilities of device "edge-1"
    And the operator deployed "vendor-a-compose" to device "edge-1"
    When the client asks for its desired state

  @req:STAT-101 @level:must @profile:core
  Scenario: A first status report is created and a second one updates it
    When the client reports the status "installing" of its first deployment
    Then the WFM answers 201
    When the client reports the status "installed" of its first deployment
    Then the WFM answers 200

  @req:API-SEC-003 @req:API-SEC-004 @level:must @profile:core @negative
  Scenario: A client cannot report the status of another client's deployment
    Given another WFM client accepted by the WFM
    And the other client reported the capabilities of device "edge-1"
    And the operator deployed "vendor-a-compose" to device "edge-1" of the other client
    When the other client asks for its desired state
    And the client reports the status "installing" of its first deployment
    Then the WFM answers 201
    When the client reports the status "installed" of the other client's first deployment
    Then the WFM refuses the status report
    When the other client reports the status "installing" of its first deployment
    Then the WFM answers 201

  @req:STAT-101 @level:must @profile:core @negative
  Scenario: A status report that is not JSON is an invalid request
    Given the WFM accepted the status "installing" of the client's first deployment
    When the client reports a status body that is not JSON for its first deployment
    Then the WFM answers 400 with the problem "invalid-request"

  @req:STAT-101 @level:must @profile:core @negative
  Scenario: A status report for another deployment id than the path is refused
    Given the WFM accepted the status "installing" of the client's first deployment
    When the client reports a status whose deploymentId differs from the path
    Then the WFM answers 400 with the problem "invalid-request" or 422 with the problem "semantic-error"

  @req:ERR-001 @req:API-ERR-001 @req:API-ERR-002 @req:API-RETRY-004 @level:must @profile:core @negative
  Scenario: A refused status report is a registered problem document without retry advice
    Given the WFM accepted the status "installing" of the client's first deployment
    When the client reports a status body that is not JSON for its first deployment
    Then the error is a problem document of a registered type that says not to retry

  @req:API-RETRY-001 @level:must @profile:core @negative
  Scenario: An overloaded WFM tells the client when to retry
    Given the WFM serves an accepted client its desired state
    And the WFM is overloaded and answers 429 with Retry-After 2
    When the client asks for its desired state
    Then the WFM answers 429 with a Retry-After header and exponential backoff advice
