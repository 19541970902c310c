@persona:device @profile:isolation
Feature: Two vendors' applications share one device without seeing each other
  As an end user running applications from several vendors on one device, I want each application
  confined to what it was given, so that one vendor's software cannot read, reach, starve or stop
  another's.
  Source: problem statements D1 (spec #37, non-root containers), D2 (multi-vendor isolation on one
  device: no dedicated Margo requirement exists), D3 (spec #142, namespaces); Compose specification
  defaults (one network per project, no host namespaces, no privilege). Margo 1.0.0-rc.3 states no
  isolation MUST: these scenarios are recommended practice (@level:should) except where a package
  asks for a setting, which a Compose device applies as Compose defines it.

  Background:
    Given a device connected to the instrument WFM
    And vendor-a's and vendor-b's applications installed on the device

  @req:ISO-101 @level:should
  Scenario: One vendor's containers cannot reach the other's unpublished services
    Then from vendor-a's network, vendor-a's own service answers and vendor-b's service cannot be reached

  @req:ISO-102 @level:should
  Scenario: No volume or host file is shared between the vendors
    Then no mount of vendor-a's containers shares a source with a mount of vendor-b's containers

  @req:ISO-103 @level:should
  Scenario: No workload runs privileged or in a host namespace
    Then no container of either application is privileged or uses the host's network, PID or IPC namespace

  @req:ISO-104 @level:must
  Scenario: A workload runs as the user its package asks for
    Then vendor-a's container runs as user 1000, as its package asks

  @req:ISO-105 @level:should
  Scenario: The CPU and memory limits a package asks for are in force
    Then vendor-b's container is limited to 0.25 CPUs and 64 MiB of memory, as its package asks

  @req:ISO-106 @level:should
  Scenario: One vendor's environment is invisible to the other
    Then vendor-a's container sees none of vendor-b's environment and vendor-b's none of vendor-a's

  @req:ISO-107 @level:must
  Scenario: Removing one vendor's application leaves the other untouched
    When the operator removes vendor-b's deployment
    Then the device reports vendor-b's deployment "removed"
    And vendor-a's application is untouched

  @req:ISO-108 @level:must @negative
  Scenario: A host-port clash fails the second deployment cleanly and the first keeps serving
    When the operator deploys a third application that publishes vendor-a's host port
    Then the device reports the third deployment "failed" with an error that says why
    And vendor-a's application is untouched
