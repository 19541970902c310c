@checker
Feature: The signature checker verifies the suite's signature fixtures under every policy level
  As a WFM vendor deploying applications from many developers,
  I want every application package, Compose archive and Helm chart to carry a Notary Project
  signature that verifies against the publisher's root under my trust policy,
  so that a tampered, foreign or badly signed package is refused before it reaches a device,
  and a lenient policy level reports what it lets through.

  Source: SUP-03 "OCI Artifact Signing for Margo" (margo/specification-enhancements
  proposals/oci-signature/sup-03-oci-signature.md @50c7fb09, draft) §2-§6, adopting the Notary
  Project specifications v1.1.0 (trust-store-trust-policy.md: the level table);
  margo-problem-statements.md A1-A3 (spec issues #36, #138). The suite plays the verifying WFM.
  Each fixture is vendor-a's package (helm-app for the Helm chart) published to the suite's
  registry with one signature fault; errata INC-120..INC-124 state the readings applied.
  These scenarios judge the suite's own fixtures, not the vendor's packages: they are the checker's
  proof (@checker), run by `selftest --persona package` and the project's tests, never by a vendor's
  `run` (features/package/signing.feature judges the vendor's own signatures).

  Background:
    Given the signature fixtures of the signing profile, published in an OCI registry
    And a trust store holding the root certificate of the publisher "vendor-a"

  @req:SIGN-101 @req:SIGN-102 @req:SIGN-106 @persona:package @level:must @profile:signing
  Scenario Outline: A package signed by its trusted publisher verifies at every enforcing level
    Given a trust policy of level "<level>" for every fixture repository
    When the package "<fixture>" is verified with the trust policy
    Then every signature of the package verifies and nothing is reported

    Examples:
      | fixture     | level      |
      | valid       | strict     |
      | valid       | permissive |
      | valid       | audit      |
      | valid-ps256 | strict     |
      | valid-ps256 | permissive |
      | valid-ps256 | audit      |

  @req:SIGN-107 @persona:package @level:must @profile:signing
  Scenario: A signature stays valid when the package is mirrored to another repository
    Given a trust policy of level "strict" for every fixture repository
    When the package "valid" is mirrored by digest with its signatures to another repository and verified there
    Then every signature of the package verifies and nothing is reported

  @req:SIGN-101 @persona:package @level:must @profile:signing @negative
  Scenario Outline: A package whose manifest has no signature is refused where authenticity is enforced
    Given a trust policy of level "<level>" for every fixture repository
    When the package "<fixture>" is verified with the trust policy
    Then the package is refused, breaking requirement SIGN-101 in the Notary "authenticity" validation

    Examples:
      | fixture  | level      |
      | unsigned | strict     |
      | unsigned | permissive |
      | tampered | strict     |
      | tampered | permissive |

  @req:SIGN-102 @persona:package @level:must @profile:signing @negative
  Scenario Outline: A package whose Compose archive manifest has no signature is refused
    Given a trust policy of level "<level>" for every fixture repository
    When the package "component-unsigned" is verified with the trust policy
    Then the package is refused, breaking requirement SIGN-102 in the Notary "authenticity" validation

    Examples:
      | level      |
      | strict     |
      | permissive |

  @req:SIGN-103 @persona:package @level:must @profile:signing @negative
  Scenario Outline: A package whose Helm chart manifest has no signature is refused
    Given a trust policy of level "<level>" for every fixture repository
    When the package "helm-chart-unsigned" is verified with the trust policy
    Then the package is refused, breaking requirement SIGN-103 in the Notary "authenticity" validation

    Examples:
      | level      |
      | strict     |
      | permissive |

  @req:SIGN-108 @persona:package @level:must @profile:signing @negative
  Scenario Outline: A package signed under a root the operator does not trust is refused
    Given a trust policy of level "<level>" for every fixture repository
    When the package "untrusted-ca" is verified with the trust policy
    Then the package is refused, breaking requirement SIGN-108 in the Notary "authenticity" validation

    Examples:
      | level      |
      | strict     |
      | permissive |

  @req:SIGN-109 @persona:package @level:must @profile:signing @negative
  Scenario Outline: A package signed with a TLS server certificate is refused
    Given a trust policy of level "<level>" for every fixture repository
    When the package "forbidden-eku" is verified with the trust policy
    Then the package is refused, breaking requirement SIGN-109 in the Notary "authenticity" validation

    Examples:
      | level      |
      | strict     |
      | permissive |

  @req:SIGN-110 @persona:package @level:must @profile:signing @negative
  Scenario: A package signed with a since-expired certificate and no timestamp is refused under strict
    Given a trust policy of level "strict" for every fixture repository
    When the package "expired-no-timestamp" is verified with the trust policy
    Then the package is refused, breaking requirement SIGN-110 in the Notary "authenticTimestamp" validation

  @req:SIGN-106 @persona:package @level:must @profile:signing @negative
  Scenario Outline: An RS256 signature is refused at every verifying level
    Given a trust policy of level "<level>" for every fixture repository
    When the package "rs256" is verified with the trust policy
    Then the package is refused, breaking requirement SIGN-106 in the Notary "integrity" validation

    Examples:
      | level      |
      | strict     |
      | permissive |
      | audit      |

  @req:SIGN-107 @persona:package @level:must @profile:signing @negative
  Scenario Outline: A signature over another artifact's manifest is refused at every verifying level
    Given a trust policy of level "<level>" for every fixture repository
    When the package "other-digest" is verified with the trust policy
    Then the package is refused, breaking requirement SIGN-107 in the Notary "integrity" validation

    Examples:
      | level      |
      | strict     |
      | permissive |
      | audit      |

  @req:SIGN-111 @req:SIGN-101 @req:SIGN-102 @req:SIGN-103 @req:SIGN-108 @req:SIGN-109 @req:SIGN-110
  @persona:package @level:must @profile:signing
  Scenario Outline: A lenient level reports a failed validation it does not enforce, and lets the package through
    Given a trust policy of level "<level>" for every fixture repository
    When the package "<fixture>" is verified with the trust policy
    Then the package is accepted, with a logged finding of requirement <requirement>

    Examples:
      | fixture              | level      | requirement |
      | expired-no-timestamp | permissive | SIGN-110    |
      | expired-no-timestamp | audit      | SIGN-110    |
      | unsigned             | audit      | SIGN-101    |
      | tampered             | audit      | SIGN-101    |
      | component-unsigned   | audit      | SIGN-102    |
      | helm-chart-unsigned  | audit      | SIGN-103    |
      | untrusted-ca         | audit      | SIGN-108    |
      | forbidden-eku        | audit      | SIGN-109    |

  @req:SIGN-111 @persona:package @level:must @profile:signing
  Scenario Outline: The skip level examines no signature, not even a broken one
    Given a trust policy of level "skip" for every fixture repository
    When the package "<fixture>" is verified with the trust policy
    Then no signature is examined and the package is not refused

    Examples:
      | fixture      |
      | unsigned     |
      | rs256        |
      | other-digest |

  @req:SIGN-111 @persona:package @level:must @profile:signing
  Scenario: A package outside every trust policy's registry scope is not verified
    Given a trust policy of level "strict" for another registry scope only
    When the package "unsigned" is verified with the trust policy
    Then no signature is examined and the package is not refused
