@persona:package
Feature: Helm chart components
  As a device vendor running Kubernetes,
  I want every Helm component to be a plain Chart apiVersion v2 without lookups, hooks or CRDs,
  so that a render-and-apply installation behaves like helm install.

  Source: specification/applications/application-description (DeploymentProfile type "helm");
  specification/applications/application-description "Helm" restrictions; device-requirements.

  Background:
    Given the application packages under test
    When each package is checked
    And their Helm charts were available to check

  @req:APPD-110 @level:must @profile:helm
  Scenario: Helm components are charts with apiVersion v2
    Then no package breaks requirement APPD-110

  @req:APPD-004 @level:must @profile:helm
  Scenario: Charts use no lookup function, hooks or Helm-managed CRDs
    Then no package breaks requirement APPD-004
