@persona:device @profile:compose
Feature: A device installs, updates and removes what its desired state says
  As an end user, I want the device to run exactly the applications my WFM assigns to it, and to say
  what it did, so that what I see in the WFM is what runs on the shop floor.
  Source: Margo 1.0.0-rc.3 Desired State, Deployment Status, SUP-01 (DS-002, DS-026, STAT-001..008,
  STAT-102, STAT-103, REG-016, REG-018); margo-rc3-protocol.md §4.5, §9.

  Background:
    Given a device connected to the instrument WFM

  @req:DS-026 @req:DS-002 @req:STAT-001 @req:REG-018 @level:must
  Scenario: A new deployment is installed and reported
    When the operator deploys vendor-a's application to the device
    Then the device reports the deployment "installed"
    And the reports of the deployment went through "installing" before "installed"
    And vendor-a's application runs on the device and serves on its published port

  @req:STAT-102 @req:STAT-002 @req:STAT-004 @req:STAT-008 @level:must
  Scenario: Status reports have the rc.3 shape
    When the operator deploys vendor-a's application to the device
    Then the device reports the deployment "installed"
    And every report of the deployment validates against the rc.3 DeploymentStatusManifest
    And every report lists exactly the deployment's components
    And every report adopts the manifestVersion that brought the deployment

  @req:STAT-103 @level:should
  Scenario: Status reports carry no legacy apiVersion or kind
    When the operator deploys vendor-a's application to the device
    Then the device reports the deployment "installed"
    And no report of the deployment carries the legacy apiVersion or kind

  @req:DS-026 @req:DS-002 @req:STAT-008 @level:must
  Scenario: An update under the same deploymentId is applied and reported
    Given vendor-a's application installed on the device
    When the operator sets the deployment's parameter "listenPort" to 9090
    Then the device reports the deployment "installed" for the new manifestVersion
    And vendor-a's application runs with LISTEN_PORT "9090"

  @req:DS-026 @req:DS-002 @level:must
  Scenario: A deployment no longer in the desired state is removed and reported
    Given vendor-a's application installed on the device
    When the operator removes the deployment
    Then the device reports the deployment "removed"
    And nothing of the deployment is left on the device

  @req:STAT-003 @req:STAT-005 @level:must
  Scenario: The overall state is the most severe component state
    When the operator deploys vendor-a's application with a second component that exits at once
    Then the device reports the deployment "failed"
    And the last report shows component "sensor-hub" "installed" and component "exits-at-once" "failed"
    And the overall error names the application as its source and the component error names the component
