@persona:package @negative @checker
Feature: Packages with a known fault are refused
  As a conformance lead,
  I want every rule the package checker enforces to be shown refusing a package that breaks it,
  so that a vendor can trust that a "conformant" verdict means each rule was really applied.

  These scenarios judge the suite's own bundled faults, not the vendor's packages: they are the
  checker's proof (@checker), run by `selftest --persona package` and the project's tests, never by
  a vendor's `run`.

  Source: fixtures/packages/faults.yaml — each fault is one violation of one requirement, applied
  to a reference package (vendor-a-compose, vendor-b-compose or helm-app).

  @req:PKG-001 @level:must @profile:core
  Scenario Outline: A package root with more than one YAML file is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement PKG-001

    Examples:
      | fault |
      | two-descriptions |

  @req:PKG-101 @level:must @profile:core
  Scenario Outline: A package whose catalog resources are missing or of the wrong format is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement PKG-101

    Examples:
      | fault |
      | resource-missing  |
      | icon-not-an-image |

  @req:APPD-101 @level:must @profile:core
  Scenario Outline: A description outside the rc.3 model is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement APPD-101

    Examples:
      | fault |
      | description-not-yaml        |
      | description-without-version |
      | description-with-kind       |

  @req:APPD-102 @level:must @profile:core
  Scenario Outline: A description with a malformed id or apiVersion is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement APPD-102

    Examples:
      | fault |
      | id-not-lowercase   |
      | api-version-not-v1 |

  @req:APPD-103 @level:must @profile:core
  Scenario Outline: A description with an unknown profile type or repeated profile ids is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement APPD-103

    Examples:
      | fault |
      | profile-type-unknown |
      | profile-id-duplicate |

  @req:APPD-104 @level:must @profile:core
  Scenario Outline: A description with malformed or repeated component names is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement APPD-104

    Examples:
      | fault |
      | component-name-uppercase |
      | component-name-duplicate |

  @req:APPD-105 @level:must @profile:core
  Scenario Outline: A component that is not an OCI repository at a SemVer revision is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement APPD-105

    Examples:
      | fault |
      | repository-not-oci |
      | revision-leading-v |

  @req:APPD-106 @level:must @profile:core
  Scenario Outline: A component timeout in another form is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement APPD-106

    Examples:
      | fault |
      | timeout-malformed |

  @req:APPD-107 @level:must @profile:core
  Scenario Outline: A parameter target naming an unknown component is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement APPD-107

    Examples:
      | fault |
      | target-unknown-component |

  @req:APPD-108 @level:must @profile:core
  Scenario Outline: A configuration setting with a dangling reference is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement APPD-108

    Examples:
      | fault |
      | setting-undefined-parameter |
      | setting-undefined-schema    |

  @req:APPD-109 @level:must @profile:core
  Scenario Outline: A capacity requirement in non-Margo units is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement APPD-109

    Examples:
      | fault |
      | memory-unit-not-margo |

  @req:APPD-009 @level:must @profile:core
  Scenario Outline: An undescribed "other" architecture is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement APPD-009

    Examples:
      | fault |
      | other-architecture-undescribed |

  @req:EXT-003 @level:must @profile:core
  Scenario Outline: A misnamed extension is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement EXT-003

    Examples:
      | fault |
      | extension-misnamed |

  @req:EXT-004 @level:must @profile:core
  Scenario Outline: An extension whose value is not an object is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement EXT-004

    Examples:
      | fault |
      | extension-not-object |

  @req:ELIG-011 @level:must @profile:core
  Scenario Outline: An eligibility expression with an unknown operator is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement ELIG-011

    Examples:
      | fault |
      | operator-unknown |

  @req:ELIG-012 @level:must @profile:core
  Scenario Outline: An In expression without values of one type is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement ELIG-012

    Examples:
      | fault |
      | in-without-values    |
      | in-mixed-value-types |

  @req:ELIG-013 @level:must @profile:core
  Scenario Outline: A DoesNotExist expression with values is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement ELIG-013

    Examples:
      | fault |
      | does-not-exist-with-values |

  @req:ELIG-014 @level:must @profile:core
  Scenario Outline: A Gt expression without exactly one number is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement ELIG-014

    Examples:
      | fault |
      | gt-two-values |

  @req:ELIG-015 @level:must @profile:core
  Scenario Outline: A ContainsAny expression without an item selector is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement ELIG-015

    Examples:
      | fault |
      | contains-any-without-item-selector |

  @req:REG-013 @level:must @profile:compose
  Scenario Outline: A Compose archive of the wrong shape is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement REG-013

    Examples:
      | fault |
      | compose-not-gzip        |
      | compose-two-top-folders |
      | compose-file-misnamed   |
      | compose-invalid-spec    |

  @req:REG-014 @level:must @profile:compose
  Scenario Outline: A Compose archive missing a file it needs, or shipping a secret or bind-mount source, is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement REG-014

    Examples:
      | fault                           |
      | compose-env-file-missing        |
      | compose-ships-secret-file       |
      | compose-ships-bind-mount-source |

  @req:REG-015 @level:must @profile:compose
  Scenario Outline: A Compose archive member that could escape or keep special bits is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement REG-015

    Examples:
      | fault |
      | compose-absolute-path    |
      | compose-parent-reference |
      | compose-symlink-escape   |
      | compose-hardlink-escape  |
      | compose-setuid           |
      | compose-setgid           |
      | compose-sticky           |

  @req:APPD-110 @level:must @profile:helm
  Scenario Outline: A Helm chart that is not apiVersion v2 is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement APPD-110

    Examples:
      | fault |
      | chart-api-version-v1 |

  @req:APPD-004 @level:must @profile:helm
  Scenario Outline: A Helm chart or subchart using lookup, hooks or CRDs is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement APPD-004

    Examples:
      | fault |
      | chart-uses-lookup               |
      | chart-has-hook                  |
      | chart-ships-crds                |
      | chart-subchart-uses-lookup      |
      | chart-packaged-subchart-has-hook |
      | chart-subchart-ships-crds       |

  @req:REG-007 @level:must @profile:core
  Scenario Outline: A package manifest that is not an OCI image manifest is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement REG-007

    Examples:
      | fault |
      | oci-app-manifest-untyped |

  @req:REG-008 @level:must @profile:core
  Scenario Outline: A package manifest without the Margo artifact type or the empty config is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement REG-008

    Examples:
      | fault |
      | oci-app-artifact-type    |
      | oci-app-config-not-empty |

  @req:REG-009 @level:must @profile:core
  Scenario Outline: Package layers without the Margo media types or annotations are refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement REG-009

    Examples:
      | fault |
      | oci-description-media-type |
      | oci-resource-unannotated   |

  @req:REG-005 @level:must @profile:core
  Scenario Outline: A package tagged other than its version is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement REG-005

    Examples:
      | fault |
      | oci-tag-not-version |

  @req:REG-010 @level:must @profile:compose
  Scenario Outline: A component reference that does not resolve is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement REG-010

    Examples:
      | fault |
      | oci-component-missing |

  @req:REG-011 @level:must @profile:compose
  Scenario Outline: A Compose component of another artifact shape is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement REG-011

    Examples:
      | fault |
      | oci-compose-artifact-type |
      | oci-compose-two-layers    |

  @req:REG-012 @level:must @profile:compose
  Scenario Outline: A Compose layer without the right annotations is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement REG-012

    Examples:
      | fault |
      | oci-compose-type-annotation-missing |
      | oci-compose-version-mismatch        |

  @req:REG-016 @level:must @profile:compose
  Scenario Outline: A blob that does not match its OCI digest is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement REG-016

    Examples:
      | fault |
      | oci-compose-blob-tampered |

  @req:REG-017 @level:must @profile:compose
  Scenario Outline: A component in the docker compose publish format is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement REG-017

    Examples:
      | fault |
      | oci-compose-docker-publish-shape |

  @req:REG-013 @level:should @profile:compose
  Scenario: A Compose archive whose folder is not named after its component is conformant, with a warning
    Given the bundled package with the fault "compose-folder-misnamed"
    When the package is checked
    Then the package stays conformant but departs from the recommendation of requirement REG-013

  @req:PKG-002 @level:should @profile:core
  Scenario: A catalog resource outside the resources folder is conformant, with a warning
    Given the bundled package with the fault "resource-outside-resources-folder"
    When the package is checked
    Then the package stays conformant but departs from the recommendation of requirement PKG-002

  @req:PKG-003 @level:must @profile:core
  Scenario Outline: A package without any deployment profile is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement PKG-003

    Examples:
      | fault |
      | no-deployment-profiles |

  @req:EXT-005 @level:must @profile:core
  Scenario Outline: An extension placed where the model has no extension slot is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement EXT-005

    Examples:
      | fault |
      | extension-in-metadata |

  @req:APPD-006 @level:must @profile:custom
  Scenario Outline: A custom profile that does not select devices by labels is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement APPD-006

    Examples:
      | fault |
      | custom-profile-without-label-rules |

  @req:CUST-001 @level:must @profile:custom
  Scenario Outline: A custom component that is not an OCI blob at its reference is refused
    Given the bundled package with the fault "<fault>"
    When the package is checked
    Then the package is non-conformant, breaking requirement CUST-001

    Examples:
      | fault |
      | oci-custom-component-missing |

  @req:ELIG-007 @level:should @profile:core
  Scenario: A package restating capacity as a property selector is conformant, with a warning
    Given the bundled package with the fault "capacity-restated-in-property-selector"
    When the package is checked
    Then the package stays conformant but departs from the recommendation of requirement ELIG-007

  @req:SIGN-101 @level:must @profile:signing
  Scenario Outline: A package manifest without a signature that verifies is refused
    Given the bundled package with the fault "<fault>"
    When the package's signatures are verified under the publisher's trust policy
    Then the package is non-conformant, breaking requirement SIGN-101

    Examples:
      | fault                 |
      | sign-package-unsigned |
      | sign-package-retagged |

  @req:SIGN-102 @level:must @profile:signing
  Scenario Outline: A Compose archive manifest without a signature is refused
    Given the bundled package with the fault "<fault>"
    When the package's signatures are verified under the publisher's trust policy
    Then the package is non-conformant, breaking requirement SIGN-102

    Examples:
      | fault                 |
      | sign-compose-unsigned |

  @req:SIGN-103 @level:must @profile:signing
  Scenario Outline: A Helm chart manifest without a signature is refused
    Given the bundled package with the fault "<fault>"
    When the package's signatures are verified under the publisher's trust policy
    Then the package is non-conformant, breaking requirement SIGN-103

    Examples:
      | fault              |
      | sign-helm-unsigned |

  @req:SIGN-106 @level:must @profile:signing
  Scenario Outline: A package signed with RS256 is refused
    Given the bundled package with the fault "<fault>"
    When the package's signatures are verified under the publisher's trust policy
    Then the package is non-conformant, breaking requirement SIGN-106

    Examples:
      | fault      |
      | sign-rs256 |

  @req:SIGN-107 @level:must @profile:signing
  Scenario Outline: A signature over another artifact's descriptor is refused
    Given the bundled package with the fault "<fault>"
    When the package's signatures are verified under the publisher's trust policy
    Then the package is non-conformant, breaking requirement SIGN-107

    Examples:
      | fault             |
      | sign-other-digest |

  @req:SIGN-108 @level:must @profile:signing
  Scenario Outline: A package signed under a root outside the publisher's trust store is refused
    Given the bundled package with the fault "<fault>"
    When the package's signatures are verified under the publisher's trust policy
    Then the package is non-conformant, breaking requirement SIGN-108

    Examples:
      | fault               |
      | sign-untrusted-root |

  @req:SIGN-109 @level:must @profile:signing
  Scenario Outline: A vendor package signed with a TLS server certificate is refused
    Given the bundled package with the fault "<fault>"
    When the package's signatures are verified under the publisher's trust policy
    Then the package is non-conformant, breaking requirement SIGN-109

    Examples:
      | fault           |
      | sign-server-eku |

  @req:SIGN-110 @level:must @profile:signing
  Scenario Outline: A package signed with a since-expired certificate and no timestamp is refused
    Given the bundled package with the fault "<fault>"
    When the package's signatures are verified under the publisher's trust policy
    Then the package is non-conformant, breaking requirement SIGN-110

    Examples:
      | fault                     |
      | sign-expired-no-timestamp |
