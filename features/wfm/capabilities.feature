@persona:wfm
Feature: Device capabilities reported to a WFM
  As a device vendor,
  I want every WFM to register, update and remove my devices' capabilities the same way,
  so that one WFM client works with any vendor's WFM.

  Source: specification/margo-management-interface/device-capabilities and the rc.3 OpenAPI
  (PUT/DELETE /api/v1/capabilities/{deviceId}); problem-types; margo-problem-statements.md I1, I5.

  Background:
    Given a WFM client accepted by the WFM

  @req:CAP-101 @level:must @profile:core
  Scenario: A first report creates the device and a second one updates it
    When the client reports the capabilities of device "edge-1"
    Then the WFM answers 201
    When the client reports the capabilities of device "edge-1" again
    Then the WFM answers 200

  @req:CAP-102 @level:must @profile:core @negative
  Scenario: A report that is not JSON is an invalid request
    Given the client reported the capabilities of device "edge-1"
    When the client reports a body that is not JSON for device "edge-1"
    Then the WFM answers 400 with the problem "invalid-request"

  @req:CAP-102 @level:must @profile:core @negative
  Scenario: A report in the old envelope is a semantic error
    Given the client reported the capabilities of device "edge-1"
    When the client reports capabilities in the rc.1 envelope for device "edge-1"
    Then the WFM answers 422 with the problem "semantic-error"

  @req:CAP-102 @level:should @profile:core @negative
  Scenario: A semantic error says what is wrong
    Given the client reported the capabilities of device "edge-1"
    When the client reports capabilities in the rc.1 envelope for device "edge-1"
    Then the problem lists the errors it found

  @req:CAP-008 @level:must @profile:gateway @negative
  Scenario: A child reported before its gateway is refused
    Given the client reported the capabilities of device "edge-1"
    When the client reports the capabilities of device "gw-1/sensor-1"
    Then the WFM answers 404 with the problem "gateway-not-found"

  @req:CAP-103 @level:must @profile:core
  Scenario: A device is unregistered, and an unknown one cannot be
    When the client reports the capabilities of device "edge-1"
    And the client unregisters device "edge-1"
    Then the WFM answers 204
    When the client unregisters device "edge-1"
    Then the WFM answers 404 with the problem "device-not-found"

  @req:API-SEC-005 @level:must @profile:core
  Scenario: The same deviceId under two clients is two devices
    Given another WFM client accepted by the WFM
    When the client reports the capabilities of device "shared-1"
    And the other client reports the capabilities of device "shared-1"
    Then the WFM answers 201
