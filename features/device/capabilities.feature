@persona:device @profile:core
Feature: A device introduces itself before it asks for work
  As a WFM vendor, I want every device to tell my WFM what it can host before it asks for work,
  so that my WFM places applications only where they can run.
  Source: Margo 1.0.0-rc.3 Management Interface, Device Capabilities and Desired State
  (CAP-001, CAP-004, CAP-104, ONB-004, DS-001); margo-rc3-protocol.md §3, §4.4, §9.

  @req:CAP-001 @req:ONB-004 @level:must
  Scenario: The capabilities report is the device's first exchange
    Given a device connected to the instrument WFM
    Then the device's first request was a PUT of its capabilities, answered 201
    And the device then asked for its desired state

  @req:CAP-104 @req:CAP-004 @req:DEV-004 @level:must
  Scenario: The capabilities report describes a device that hosts workloads
    Given a device connected to the instrument WFM
    Then the capabilities report validates against the rc.3 DeviceCapabilitiesManifest
    And it reports otelCollector true, at least one runtime and at least one deployment type

  @req:DS-001 @level:must
  Scenario: The device keeps polling for its desired state
    Given a device connected to the instrument WFM
    Then the device asks for its desired state again within three polling periods
