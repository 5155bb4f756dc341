"""Security Hub OCSF findings (``Findings Imported V2``), real captures and the constructed 2006 one."""

from __future__ import annotations

import pytest

from chalicelib.findings import InvalidEvent, canonical_event, normalize

OCSF = "securityhub-ocsf/"


def only(event):
    findings = normalize(event)
    assert len(findings) == 1
    return findings[0]


@pytest.mark.parametrize(
    ("name", "type_", "account", "region", "severity", "label", "origin_id", "kinds"),
    [
        (
            OCSF + "sh2_sumologic-docs_2004_GuardDuty-Stealth-IAMUser-CloudTrailLoggingDisabled.json",
            "Stealth:IAMUser/CloudTrailLoggingDisabled",
            "869728294964",
            "us-east-1",
            1.0,
            "LOW",
            "06c95f0cfdfd3b579b977e20e9da1aa4",
            [("access-key", "ASIA4U76YS3TB3MEOA3O"), ("iam-role", "cis_automation")],
        ),
        (
            OCSF + "sh2_cruxstack_2004_GuardDuty-Execution-Runtime-NewBinaryExecuted.json",
            "Execution:Runtime/NewBinaryExecuted",
            "123456789012",
            "us-east-1",
            4.0,
            "MEDIUM",
            "ffffffffffffffffffffffffffffffff",
            [("ec2-instance", "i-0123456789abcdef0")],
        ),
        (
            OCSF + "sh2_cruxstack_2004_GuardDuty-PrivilegeEscalation-Runtime-ContainerMountsHostDirectory.json",
            "PrivilegeEscalation:Runtime/ContainerMountsHostDirectory",
            "123456789012",
            "us-east-1",
            4.0,
            "MEDIUM",
            "d6cd5459c241b902f2aaff9db607c941",
            [
                ("container", "287ae865fc4257511514453a78a03743c5c63a40ab2a2a2f81579745b1febf41"),
                ("ec2-instance", "i-0d7663df710a0f17a"),
            ],
        ),
        (
            OCSF + "sh2_cruxstack_2003_SecurityHub-Config.1-CIS-2.5.json",
            "Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark",
            "123456789012",
            "us-east-1",
            9.0,
            "CRITICAL",
            "arn:aws:securityhub:us-east-1:123456789012:subscription/cis-aws-foundations-benchmark/v/1.2.0/2.5/finding/aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa",
            [("other", "123456789012")],
        ),
        (
            OCSF + "sh2_asr_2003_SecurityHub-Coverage-GuardDuty-Foundational.json",
            "Coverage",
            "123456789012",
            "us-east-1",
            0.0,
            "INFORMATIONAL",
            "8c4b7f689d35377f5ac8d5f317c620058b54029ee4a56a644e6e88c87ac19a60",
            [("other", "123456789012")],
        ),
        (
            OCSF + "sh2_asr_2004_PARTIAL-RAW_GuardDuty-IAMUser-AccessKey.json",
            "unknown",  # the fragment has neither finding_info.types nor class_name
            "123456789012",
            "us-east-1",  # only on the resource
            0.0,
            "INFORMATIONAL",
            "v2-789",
            [("access-key", "AKIAEXAMPLEKEYIDV2X1"), ("iam-user", "compromised-user")],
        ),
        (
            OCSF + "sh2_asr_2002_PARTIAL-RAW_Inspector-EC2-CVE-2022-3235.json",
            "Vulnerability Finding",
            "123456789012",
            "us-east-1",
            0.0,
            "INFORMATIONAL",
            "arn:aws:inspector2:us-east-1:123456789012:finding/abc-123",
            [("ec2-instance", "i-0abcdef1234567890")],
        ),
        (
            "constructed/sh2_constructed_2006_Macie-SensitiveData-S3Object-Personal.json",
            "SensitiveData:S3Object/Personal",
            "123456789012",
            "us-east-1",
            7.0,
            "HIGH",
            "arn:aws:macie2:us-east-1:123456789012:finding/b4e1c0a5d3f24f6e8a9b7c6d5e4f3a21",
            [
                ("s3-bucket", "customer-records-prod"),
                ("other", "customer-records-prod/exports/2025-09/customers.csv"),
            ],
        ),
    ],
    ids=lambda v: v.split("/")[-1][:40] if isinstance(v, str) and v.endswith(".json") else None,
)
def test_ocsf_findings(load, name, type_, account, region, severity, label, origin_id, kinds) -> None:
    finding = only(load(name))
    assert finding.source == "securityhub"
    assert finding.type == type_
    assert (finding.account, finding.region) == (account, region)
    assert (finding.severity, finding.severity_label) == (severity, label)
    assert finding.origin_id == origin_id
    assert [(r.kind, r.id or r.name) for r in finding.resources] == kinds


def test_suppressed_guardduty_finding_from_sumologic(load) -> None:
    finding = only(load(OCSF + "sh2_sumologic-docs_2004_GuardDuty-Stealth-IAMUser-CloudTrailLoggingDisabled.json"))
    assert finding.archived is True  # status Suppressed
    assert finding.id == (
        "arn:aws:guardduty:us-east-1:869728294630:detector/b4c71b47fb852d3fc0e99a82fa2841aa"
        "/finding/06c95f0cfdfd3b579b977e20e9da1aa4"
    )
    assert finding.time == "2025-07-22T03:02:34.272Z"
    assert (finding.first_seen, finding.last_seen) == ("2024-10-24T10:21:26Z", "2025-07-22T02:52:14Z")
    assert finding.count == 264
    assert finding.product == "GuardDuty"
    key, role = finding.resources
    # The real capture's uid is shortened; data.access_key_id holds the full key id.
    assert key.details == {
        "user_name": "cis_automation",
        "user_type": "AssumedRole",
        "principal_id": "AROA4U76YS3THXXBAIOOA:aws-go-sdk-1753152318418995274",
    }
    assert role.account == "869728294964"
    assert finding.actor.user_name == "cis_automation"
    assert finding.actor.user_type == "AssumedRole"
    assert finding.actor.access_key_id == "ASIA4U76YS3TB3MEOA3O"
    assert finding.details["api"] == "DeleteTrail"
    assert finding.details["affected_resources"] == {"AWS::CloudTrail::Trail": "Aws-Observability-e2esumoqeui"}
    assert finding.details["class_uid"] == 2004


def test_runtime_instance_details_from_data_and_device(load) -> None:
    from_data = only(load(OCSF + "sh2_cruxstack_2004_GuardDuty-Execution-Runtime-NewBinaryExecuted.json"))
    (instance,) = from_data.resources
    assert instance.arn == "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"
    assert instance.details["security_groups"] == ["sg-0123456789abcdef0"]
    assert instance.details["vpc_id"] == "vpc-0123456789abcdef0"
    assert instance.details["iam_instance_profile_arn"] == (
        "arn:aws:iam::123456789012:instance-profile/example-instance-profile/example-runner-profile"
    )
    assert dict(instance.tags) == {
        "Name": "example-action-runner",
        "component-type": "github-action-runners",
        "environment": "production",
    }
    assert from_data.details["feature"] == "RuntimeMonitoring"

    from_device = only(
        load(OCSF + "sh2_cruxstack_2004_GuardDuty-PrivilegeEscalation-Runtime-ContainerMountsHostDirectory.json")
    )
    container, instance = from_device.resources
    assert container.details["image"].startswith("kindest/node:v1.30.6")
    assert container.details["runtime"] == "docker"
    assert instance.details["security_groups"] == ["sg-0c9f4484176f9ea9c"]
    assert instance.details["network_interface_ids"] == ["eni-09b95b87c322afee4"]
    assert instance.details["image_id"] == "ami-05c5514f9b7e67f21"
    assert instance.details["iam_instance_profile_arn"].endswith(
        ":instance-profile/mpz-core-use1-tools-runs-on-EC2InstanceProfile-6TBpBHJ2Hwrr"
    )
    assert instance.details["availability_zone"] == "us-east-1b"
    assert dict(instance.tags)["Name"] == "runs-on-ci-runner"
    assert from_device.actor.to_dict() == {}  # the process user in evidences is not an AWS principal


def test_compliance_and_vulnerability_details(load) -> None:
    config = only(load(OCSF + "sh2_cruxstack_2003_SecurityHub-Config.1-CIS-2.5.json"))
    assert config.details["compliance_status"] == "Fail"
    assert config.details["control"] == "Config.1"
    assert config.details["class_name"] == "Compliance Finding"
    assert config.product == "Security Hub"
    inspector = only(load(OCSF + "sh2_asr_2002_PARTIAL-RAW_Inspector-EC2-CVE-2022-3235.json"))
    assert inspector.details["vulnerabilities"] == ["CVE-2022-3235"]
    assert inspector.time == ""  # the fragment has no time at all
    assert inspector.product == "Inspector"


def test_macie_data_security_finding(load) -> None:
    finding = only(load("constructed/sh2_constructed_2006_Macie-SensitiveData-S3Object-Personal.json"))
    bucket, obj = finding.resources
    assert bucket.arn == "arn:aws:s3:::customer-records-prod"
    assert obj.arn == "arn:aws:s3:::customer-records-prod/exports/2025-09/customers.csv"
    assert finding.details["data_security_category"] == "Personal"
    assert finding.details["class_uid"] == 2006
    assert finding.product == "Macie"


def test_raw_partial_fragment_is_wrapped_without_inventing_fields(load) -> None:
    raw = load(OCSF + "sh2_asr_2004_PARTIAL-RAW_GuardDuty-IAMUser-AccessKey.json")
    event = canonical_event(raw)
    assert (event["source"], event["detail-type"], event["account"]) == (
        "aws.securityhub",
        "Findings Imported V2",
        "123456789012",
    )
    assert "time" not in event and "region" not in event  # the fragment has neither
    assert event["detail"]["findings"] == [raw]


@pytest.mark.parametrize(
    ("status", "status_id", "archived"), [("Archived", 5, True), ("Resolved", 4, False), ("New", 1, False)]
)
def test_archived_status(load, status, status_id, archived) -> None:
    event = load(OCSF + "sh2_cruxstack_2003_SecurityHub-Config.1-CIS-2.5.json")
    event["detail"]["findings"][0].update(status=status, status_id=status_id)
    assert only(event).archived is archived


@pytest.mark.parametrize(
    ("severity_id", "score", "label"),
    [(0, 0.0, "INFORMATIONAL"), (2, 1.0, "LOW"), (6, 10.0, "CRITICAL"), (99, 9.0, "CRITICAL")],
)
def test_severity_id_mapping(load, severity_id, score, label) -> None:
    event = load(OCSF + "sh2_cruxstack_2003_SecurityHub-Config.1-CIS-2.5.json")
    event["detail"]["findings"][0]["severity_id"] = severity_id  # 99 "Other" falls back to "Critical"
    finding = only(event)
    assert (finding.severity, finding.severity_label) == (score, label)


def test_missing_uid(load) -> None:
    event = load(OCSF + "sh2_cruxstack_2003_SecurityHub-Config.1-CIS-2.5.json")
    del event["detail"]["findings"][0]["finding_info"]["uid"]
    with pytest.raises(InvalidEvent, match=r"^OCSF finding \[0\]: finding_info\.uid is missing or invalid$"):
        normalize(event)
