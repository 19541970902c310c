@persona:package
Feature: Compose component archives
  As a device vendor,
  I want every Compose component to arrive as a small, predictable archive that cannot escape its folder,
  so that my device can extract and run any vendor's application safely.

  Source: SUP-01 "Compose OCI Registry Publishing and Archive Structure" as merged into
  specification/applications/application-registry; margo-problem-statements.md B1, B2.

  Background:
    Given the application packages under test
    When each package is checked
    And their Compose archives were available to check

  @req:REG-013 @level:must @profile:compose
  Scenario: A Compose archive is a gzip'd tar with one folder holding compose.yaml
    Then no package breaks requirement REG-013

  @req:REG-013 @level:should @profile:compose
  Scenario: The archive folder is named after its component
    Then no package departs from the recommendation of requirement REG-013

  @req:REG-014 @level:must @profile:compose
  Scenario: Files the Compose file refers to are inside the archive, secret files and bind-mount sources are not
    Then no package breaks requirement REG-014

  @req:REG-015 @level:must @profile:compose
  Scenario: No archive member escapes the component folder or keeps special permission bits
    Then no package breaks requirement REG-015
