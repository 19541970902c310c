@persona:wfm
Feature: ApplicationDeployments a WFM hands to devices
  As an application vendor,
  I want a WFM to turn my Application Description into ApplicationDeployments without changing my intent,
  so that every device receives the constraints, extensions and parameters I published.

  Source: specification/margo-management-interface/desired-state (ApplicationDeployment),
  specification/applications/application-description, specification-extensions;
  margo-problem-statements.md G2, I1.

  Background:
    Given a WFM client accepted by the WFM
    And the client reported the capabilities of device "edge-1"
    And the operator deployed "vendor-a-compose" to device "edge-1" with the parameter "listenPort" set to 9090
    When the client asks for its desired state
    And the client fetches every deployment the manifest lists

  @req:ADEP-103 @level:must @profile:core
  Scenario: Every ApplicationDeployment validates against the rc.3 model
    Then each deployment is a valid rc.3 ApplicationDeployment

  @req:DS-102 @req:ADEP-101 @level:must @profile:core
  Scenario: The deployment carries its id and the application's id
    Then the deployment's id is its deploymentId and its applicationId is the application's id

  @req:ADEP-001 @level:must @profile:core
  Scenario: Device constraints are copied unmodified
    Then the deployment carries the description's device constraints unmodified

  @req:ADEP-005 @req:APPD-008 @level:must @profile:core
  Scenario: Device-targeted extensions are copied exactly
    Then the deployment carries the description's profile and component extensions exactly

  @req:APPD-007 @level:must @profile:core
  Scenario: Extensions meant for the WFM are not forwarded to devices
    Then the deployment carries none of the description's root extensions

  @req:ADEP-102 @req:APPD-001 @level:must @profile:core
  Scenario: The components are the description's, with the parameter values applied
    Then the deployment's components are the description's, in order
    And the parameter "listenPort" has the value 9090 with the description's targets
