@persona:package
Feature: Eligibility rules in the Application Description
  As a device vendor,
  I want every eligibility expression to use a defined operator with the values it takes,
  so that my device evaluates each rule the same way every other device does.

  Source: specification/margo-management-interface/desired-state, "Device constraints"
  (matchExpressions, operators); the device-constraints SUP as integrated in rc.3.

  Background:
    Given the application packages under test
    When each package is checked

  @req:ELIG-011 @level:must @profile:core
  Scenario: Eligibility expressions use the defined operators
    Then no package breaks requirement ELIG-011

  @req:ELIG-012 @level:must @profile:core
  Scenario: In and NotIn carry values of one type
    Then no package breaks requirement ELIG-012

  @req:ELIG-013 @level:must @profile:core
  Scenario: Exists and DoesNotExist carry no values
    Then no package breaks requirement ELIG-013

  @req:ELIG-014 @level:must @profile:core
  Scenario: Gt and Lt carry exactly one number
    Then no package breaks requirement ELIG-014

  @req:ELIG-015 @level:must @profile:core
  Scenario: ContainsAll and ContainsAny carry an item selector and no values
    Then no package breaks requirement ELIG-015

  @req:ELIG-007 @level:should @profile:core
  Scenario: Capacity is not restated as a property selector
    Then no package departs from the recommendation of requirement ELIG-007
