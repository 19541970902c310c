@persona:package
Feature: The Application Description of a package
  As a WFM vendor,
  I want every application package to describe itself exactly as the Margo rc.3 model says,
  so that I can import any vendor's application without special cases.

  Source: specification/applications/application-description (pre-draft, rc.3 era);
  margo-problem-statements.md B2 and G4. Requirement texts: `margo-conformance requirements`.

  Background:
    Given the application packages under test
    When each package is checked

  @req:PKG-001 @level:must @profile:core
  Scenario: The package root holds exactly one Application Description
    Then no package breaks requirement PKG-001

  @req:APPD-101 @level:must @profile:core
  Scenario: The description has the fields and types of the rc.3 model
    Then no package breaks requirement APPD-101

  @req:APPD-102 @level:must @profile:core
  Scenario: The application id and apiVersion have the rc.3 form
    Then no package breaks requirement APPD-102

  @req:APPD-103 @level:must @profile:core
  Scenario: Deployment profiles have a known type and distinct ids
    Then no package breaks requirement APPD-103

  @req:APPD-104 @level:must @profile:core
  Scenario: Component names are well-formed and distinct within a profile
    Then no package breaks requirement APPD-104

  @req:APPD-105 @level:must @profile:core
  Scenario: Components are OCI repositories at SemVer revisions
    Then no package breaks requirement APPD-105

  @req:APPD-106 @level:must @profile:core
  Scenario: Component timeouts have the minutes-and-seconds form
    Then no package breaks requirement APPD-106

  @req:APPD-107 @level:must @profile:core
  Scenario: Parameter targets name components the description defines
    Then no package breaks requirement APPD-107

  @req:APPD-108 @level:must @profile:core
  Scenario: Configuration settings refer to defined parameters and schemas
    Then no package breaks requirement APPD-108

  @req:APPD-109 @level:must @profile:core
  Scenario: Capacity requirements use Margo units and architectures
    Then no package breaks requirement APPD-109

  @req:APPD-009 @level:must @profile:core
  Scenario: A profile that allows the "other" architecture describes it
    Then no package breaks requirement APPD-009

  @req:EXT-003 @level:must @profile:core
  Scenario: Extensions are named x-<name>-extensions
    Then no package breaks requirement EXT-003

  @req:EXT-004 @level:must @profile:core
  Scenario: Extension values are objects
    Then no package breaks requirement EXT-004

  @req:PKG-101 @level:must @profile:core
  Scenario: Catalog resources are in the package, in an allowed format
    Then no package breaks requirement PKG-101

  @req:PKG-002 @level:should @profile:core
  Scenario: Catalog resources live in the resources folder
    Then no package departs from the recommendation of requirement PKG-002

  @req:PKG-003 @level:must @profile:core
  Scenario: The package offers at least one deployment profile
    Then no package breaks requirement PKG-003

  @req:EXT-005 @level:must @profile:core
  Scenario: Extensions sit only at the root, a deployment profile or a component
    Then no package breaks requirement EXT-005

  @req:APPD-006 @level:must @profile:custom
  Scenario: A custom profile selects its devices by labels
    Then no package breaks requirement APPD-006
