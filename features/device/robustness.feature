@persona:device @profile:core
Feature: A device keeps working through the ordinary troubles of the field
  As an end user, I want devices that survive restarts, busy WFMs, odd sizes, missing files and
  extensions they do not know, so that my lines keep running while the fleet changes around them.
  Source: Margo 1.0.0-rc.3 Desired State (DS-019, DS-025, DS-104), Management Interface retry rules
  (API-RETRY-005), ApplicationDeployment (ADEP-003, ADEP-006); margo-rc3-protocol.md §5, §8, §9.

  Background:
    Given a device connected to the instrument WFM

  @req:DS-104 @level:must
  Scenario: A wrong sizeBytes next to a right digest is accepted
    Given the instrument WFM advertises sizes that differ from the bytes it serves
    When the operator deploys vendor-a's application to the device
    Then the device reports the deployment "installed"

  @req:DS-022 @level:must @negative
  Scenario: A bundle whose bytes miss its digest is not used
    Given the instrument WFM serves a bundle whose bytes miss its digest
    When the operator deploys vendor-a's application to the device
    Then the device fetches the bundle and finishes its cycle
    And vendor-a's application is not deployed

  @req:DS-019 @level:must @negative
  Scenario: A 404 on a deployment's YAML is not a deletion
    Given vendor-a's application installed on the device
    And the instrument WFM answers 404 for the deployment's YAML
    When the operator sets the deployment's parameter "listenPort" to 9098
    Then the device fetches the changed deployment and finishes its cycle
    And vendor-a's application is untouched

  @req:DS-025 @req:DS-024 @level:must
  Scenario: A restarted device keeps its state: it polls with the stored ETag, and a rollback is still refused
    Given vendor-a's application installed on the device
    When the device restarts
    Then the device's first poll after the restart carries the ETag it was last given in If-None-Match
    When the device stops
    And the instrument WFM serves a manifestVersion lower than the device holds
    And the operator sets the deployment's parameter "listenPort" to 9099
    And the device starts again
    Then the device receives the manifest and finishes its cycle
    And vendor-a's application still runs as installed

  @req:ADEP-003 @level:must @negative
  Scenario: A deployment whose eligibility rules the device does not meet is not deployed
    When the operator deploys vendor-a's application with an eligibility rule the device does not meet
    Then the device fetches the deployment and finishes its cycle
    And the device reports the deployment neither "installing" nor "installed"
    And vendor-a's application is not deployed

  @req:API-RETRY-005 @level:must
  Scenario: Retry-After is honoured
    Given the instrument WFM answers the device's next request with 429 and Retry-After 4
    Then the device sends no request until 4 seconds after that answer
    And the device asks for its desired state again

  @req:ADEP-006 @level:must
  Scenario: Unknown extensions in a deployment are ignored
    When the operator deploys vendor-a's application, whose deployment carries x-vendor-a-extensions
    Then the device reports the deployment "installed"
