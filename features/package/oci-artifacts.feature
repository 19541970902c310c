@persona:package
Feature: Packages and components in an OCI registry
  As a WFM vendor,
  I want every package and Compose component in a registry to have the Margo artifact shape,
  so that I can resolve, verify and pull any vendor's application with one OCI client.

  Source: specification/applications/application-registry (P-REG) and SUP-01;
  margo-problem-statements.md B2, C3.

  Background:
    Given the application packages under test, published in an OCI registry
    When each published package is checked

  @req:REG-007 @level:must @profile:core
  Scenario: Each package version has its own OCI image manifest
    Then no package breaks requirement REG-007

  @req:REG-008 @level:must @profile:core
  Scenario: The package manifest has the Margo artifact type and the empty config
    Then no package breaks requirement REG-008

  @req:REG-009 @level:must @profile:core
  Scenario: Package layers carry the Margo media types and resource annotations
    Then no package breaks requirement REG-009

  @req:REG-005 @level:must @profile:core
  Scenario: The package tag equals the description's version
    Then no package breaks requirement REG-005

  @req:REG-010 @level:must @profile:compose
  Scenario: Every component reference resolves in the registry
    Then no package breaks requirement REG-010

  @req:REG-011 @level:must @profile:compose
  Scenario: A Compose component is one layer of the Margo Compose media type
    Then no package breaks requirement REG-011

  @req:REG-012 @level:must @profile:compose
  Scenario: Compose layers are annotated with their type and version
    Then no package breaks requirement REG-012

  @req:REG-016 @level:must @profile:compose
  Scenario: Every pulled blob matches its OCI digest before anything is extracted
    Then no package breaks requirement REG-016

  @req:REG-017 @level:must @profile:compose
  Scenario: Compose components are not in the docker compose publish format
    Then no package breaks requirement REG-017

  @req:CUST-001 @level:must @profile:custom
  Scenario: Custom components are single OCI blobs at their repository and revision
    Then no package breaks requirement CUST-001
