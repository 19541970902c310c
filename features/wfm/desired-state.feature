@persona:wfm
Feature: Desired state served by a WFM
  As a device vendor,
  I want every WFM to serve the State Manifest, deployment YAMLs and bundles exactly as rc.3 says,
  so that my device can poll cheaply, verify every byte and never be rolled back.

  Source: specification/margo-management-interface/desired-state and the rc.3 OpenAPI
  (GET /api/v1/deployments, /api/v1/deployments/{deploymentId}/{digest}, /api/v1/bundles/{digest});
  margo-problem-statements.md G1, G2, G5.

  Background:
    Given a WFM client accepted by the WFM

  @req:DS-004 @level:must @profile:core
  Scenario: Without an Accept header the WFM answers with the manifest type
    When the client asks for its desired state without an Accept header
    Then the WFM answers with a State Manifest

  @req:DS-005 @req:DS-103 @level:must @profile:core
  Scenario: Asking for the manifest type gets a valid State Manifest
    When the client asks for its desired state
    Then the WFM answers with a State Manifest

  @req:DS-003 @level:must @profile:core @negative
  Scenario: Asking only for unsupported types is refused with 406
    Given the WFM serves an accepted client its desired state
    When the client asks for its desired state accepting only "application/json"
    Then the WFM answers 406 with the problem "server-cannot-generate-response"

  @req:DS-007 @level:must @profile:core
  Scenario: The manifest ETag is the strong, quoted digest of the exact body
    When the client asks for its desired state
    Then the ETag is the strong, quoted digest of the exact body

  @req:DS-006 @level:must @profile:core
  Scenario: Asking again with the current ETag gets 304 without a body
    When the client asks for its desired state
    And the client asks again with that ETag in If-None-Match
    Then the WFM answers 304 without a body

  @req:DS-009 @req:DS-010 @level:must @profile:core
  Scenario: The manifest is cached privately and never as immutable
    When the client asks for its desired state
    Then the manifest is cached privately and never as immutable

  @req:DS-011 @req:DS-012 @level:must @profile:core
  Scenario: A client's first manifest is version 1, with no bundle and no deployments
    When the client asks for its desired state
    Then the manifest version is 1
    And the bundle is null and there are no deployments

  @req:DS-011 @level:must @profile:core
  Scenario: The manifest version increases on every change
    Given the client reported the capabilities of device "edge-1"
    When the client asks for its desired state
    And the client asks for its desired state
    Then the manifest version did not decrease
    When the operator deploys "vendor-a-compose" to device "edge-1"
    And the client asks for its desired state
    Then the manifest version increased
    When the operator updates that deployment with the parameter "listenPort" set to 9191
    And the client asks for its desired state
    Then the manifest version increased
    When the operator removes that deployment
    And the client asks for its desired state
    Then the manifest version increased

  @req:DS-011 @level:must @profile:core
  Scenario: The manifest version survives a restart of the WFM
    Given the client reported the capabilities of device "edge-1"
    When the client asks for its desired state
    And the operator deploys "vendor-a-compose" to device "edge-1"
    And the client asks for its desired state
    And the WFM restarts
    And the client asks for its desired state
    Then the manifest version did not decrease

  @req:DS-101 @level:must @profile:core
  Scenario: Every url in the manifest names the digest beside it
    Given the client reported the capabilities of device "edge-1"
    And the operator deployed "vendor-a-compose" to device "edge-1"
    When the client asks for its desired state
    Then every url in the manifest names the digest beside it

  @req:DS-015 @req:DS-021 @level:must @profile:core
  Scenario: Each deployment YAML is served byte-exact, with its digest as ETag and immutable private caching
    Given the client reported the capabilities of device "edge-1"
    And the operator deployed "vendor-a-compose" to device "edge-1"
    When the client asks for its desired state
    And the client fetches every deployment the manifest lists
    Then each deployment is served byte-exact with its digest as ETag and immutable private caching

  @req:DS-013 @req:DS-014 @req:DS-027 @level:must @profile:core
  Scenario: The bundle holds exactly the deployments the manifest lists
    Given the client reported the capabilities of device "edge-1"
    And the operator deployed "vendor-a-compose" to device "edge-1"
    And the operator deployed "vendor-b-compose" to device "edge-1"
    When the client asks for its desired state
    Then the manifest offers a bundle beside its deployments
    When the client fetches the bundle
    Then the bundle is served byte-exact with its digest as ETag and immutable private caching
    And the bundle holds exactly the deployments the manifest lists

  @req:DS-018 @level:must @profile:core @negative
  Scenario: A deployment or bundle the WFM cannot serve with that digest is a 404 problem
    Given the client reported the capabilities of device "edge-1"
    And the operator deployed "vendor-a-compose" to device "edge-1"
    When the client asks for its desired state
    And the client fetches the first deployment with another digest
    Then the WFM answers 404 with the problem "deployment-not-found"
    When the client fetches a bundle with an unknown digest
    Then the WFM answers 404 with the problem "invalid-bundle"

  @req:API-SEC-004 @level:must @profile:core @negative
  Scenario: A client cannot see another client's deployments or devices
    Given another WFM client accepted by the WFM
    And the other client reported the capabilities of device "edge-1"
    And the operator deployed "vendor-a-compose" to device "edge-1" of the other client
    When the other client asks for its desired state
    And the client asks for its desired state
    Then the client's manifest lists none of the other client's deployments
    When the client fetches the other client's first deployment
    Then the WFM answers 404 with the problem "deployment-not-found"
    When the client fetches the other client's bundle
    Then the WFM answers 404 with the problem "invalid-bundle"
    When the client unregisters device "edge-1"
    Then the WFM answers 404 with the problem "device-not-found"
