@persona:device @profile:compose
Feature: A Compose device says that it hosts Compose workloads on an OCI runtime
  As a WFM vendor, I want a Compose-enabled device to report the Compose deployment type and the OCI
  runtime, so that my WFM sends Compose applications only to devices that can run them.
  Source: Margo 1.0.0-rc.3 Device Capabilities (DEV-007; OA3 supportedRuntimes enum [oci, custom],
  supportedDeploymentTypes); margo-rc3-protocol.md §4.4.

  @req:DEV-007 @level:must
  Scenario: The capabilities report of a Compose device names the deployment type compose and the runtime oci
    Given a device connected to the instrument WFM
    Then it reports the deployment type "compose" and the runtime "oci"
