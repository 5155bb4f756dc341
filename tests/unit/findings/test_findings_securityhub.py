"""Security Hub ASFF findings (Imported and Custom Action events) from the real corpus."""

from __future__ import annotations

import pytest

from chalicelib.findings import InvalidEvent, normalize

SH = "securityhub/"


def only(event):
    findings = normalize(event)
    assert len(findings) == 1
    return findings[0]


def test_multi_select_custom_action_gives_one_finding_each(load) -> None:
    first, second = normalize(load(SH + "sh_asr_Custom-Action_CIS_1-6-multi-select.json"))
    assert first.id.endswith("/1.6/finding/3fe13eb6-b093-48b2-ba3b-b975347c3183")
    assert second.id.endswith("/1.6/finding/524d1058-d8af-4549-80e6-e85872ea571e")
    assert (first.severity, first.severity_label) == (4.0, "MEDIUM")
    assert (second.severity, second.severity_label) == (0.0, "INFORMATIONAL")
    assert (first.details["workflow_status"], second.details["workflow_status"]) == ("NEW", "RESOLVED")
    assert (first.details["compliance_status"], second.details["compliance_status"]) == ("WARNING", "PASSED")
    for finding in (first, second):
        assert finding.source == "securityhub"
        assert finding.account == "111111111111"
        assert finding.details["custom_action_name"] == "CIS 1.5 - 1.11 RR"
        assert finding.origin_id == finding.id  # not a GuardDuty finding
        assert [(r.kind, r.id) for r in finding.resources] == [("other", "111111111111")]
    assert first.time == "2020-06-02T16:00:52.989Z"


def test_guardduty_finding_via_security_hub(load) -> None:
    finding = only(load(SH + "sh_awsdocs-guardduty_UnauthorizedAccess-EC2-SSHBruteForce.json"))
    assert finding.product == "GuardDuty"
    assert finding.type == "UnauthorizedAccess:EC2/SSHBruteForce"
    assert finding.details["types"] == ["TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce"]
    assert finding.origin_id == "46ba0ac2845071e23ccdeb2ae03bfdea"  # the native GuardDuty finding id
    assert (finding.severity, finding.severity_label) == (4.0, "MEDIUM")
    assert finding.count == 74
    assert (finding.first_seen, finding.last_seen) == ("2020-08-22T09:15:57Z", "2020-09-30T11:56:49Z")
    (instance,) = finding.resources
    assert instance.kind == "ec2-instance"
    assert instance.id == "i-0c10c2c7863d1a356"
    # The documentation sample's ARN has an extra colon (arn:aws::ec2:…); the instance ARN is rebuilt.
    assert instance.arn == "arn:aws:ec2:us-east-1:193043430472:instance/i-0c10c2c7863d1a356"
    assert dict(instance.tags) == {"Name": "kubectl"}
    assert instance.details["vpc_id"] == "vpc-a0c2d7c7"
    assert instance.details["subnet_id"] == "subnet-4975b475"
    assert instance.details["image_id"] == "ami-02354e95b39ca8dec"
    assert finding.actor.source_ip == "199.241.229.197"  # inbound brute force: the attacker


@pytest.mark.parametrize(
    ("name", "key_id", "principal", "ip"),
    [
        (
            "sh_c7n-placebo_guardduty_Recon-IAMUser-ResourcePermissions_0.json",
            "AKIAIPRJCJL6BOF6DPMA",
            ("iam-user", "brent.clements"),
            "204.63.43.36",
        ),
        (
            "sh_c7n-placebo_guardduty_Recon-IAMUser-UserPermissions_2.json",
            "AKIAJEZJDQQX4TZNRMKQ",
            ("iam-user", "kapil"),
            "4.53.193.152",
        ),
        # An ASIA session key with only the legacy UserName: user or role is unknowable, no principal.
        (
            "sh_c7n-placebo_guardduty_Recon-IAMUser-ResourcePermissions_4.json",
            "ASIAZL6XWCR2ISQCR2PB",
            None,
            "199.244.219.40",
        ),
    ],
)
def test_guardduty_access_key_findings_via_asff(load, name, key_id, principal, ip) -> None:
    finding = only(load(SH + name))
    key = finding.resources[0]
    assert (key.kind, key.id) == ("access-key", key_id)
    others = [(r.kind, r.name) for r in finding.resources[1:]]
    assert others == ([principal] if principal else [])
    if principal:
        assert key.details["user_type_inferred"] is True  # from the AKIA prefix, no PrincipalType given
    assert finding.actor.access_key_id == key_id
    assert finding.actor.source_ip == ip
    assert finding.origin_id == finding.id.rsplit("/", 1)[-1]
    assert len(finding.origin_id) == 32


@pytest.mark.parametrize(
    ("principal_type", "kind"), [("AssumedRole", "iam-role"), ("IAMUser", "iam-user"), ("Root", None)]
)
def test_principal_type_from_asff_details(load, principal_type, kind) -> None:
    """The current ASFF fields (PrincipalName/PrincipalType) on a real GuardDuty ASFF finding."""
    event = load(SH + "sh_c7n-placebo_guardduty_Recon-IAMUser-ResourcePermissions_4.json")
    details = event["detail"]["findings"][0]["Resources"][0]["Details"]["AwsIamAccessKey"]
    details.update(PrincipalName="david.yun", PrincipalType=principal_type, PrincipalId="AROAEXAMPLEID:david.yun")
    finding = only(event)
    assert [(r.kind, r.name) for r in finding.resources[1:]] == ([(kind, "david.yun")] if kind else [])
    assert finding.actor.user_type == principal_type
    assert finding.actor.principal_id == "AROAEXAMPLEID:david.yun"


def test_console_login_finding_with_null_key(load) -> None:
    finding = only(load(SH + "sh_c7n_Custom-Action_event-securityhub-iamkey-finding-action.json"))
    assert finding.type == "UnauthorizedAccess:IAMUser/ConsoleLogin"
    # Id "AWS::IAM::AccessKey:null": no key; a named non-root owner without a key is an IAM user
    assert [(r.kind, r.name) for r in finding.resources] == [("iam-user", "kapil")]
    assert finding.actor.user_name == "kapil"
    assert finding.actor.access_key_id is None
    assert finding.actor.source_ip == "208.115.85.104"
    assert finding.origin_id == "4cb5a629e9757b650d102f683cdbcd7b"
    assert finding.details["custom_action_name"] == "Ec2 aws"


def test_other_resource_with_lambda_arn(load) -> None:
    finding = only(load(SH + "sh_c7n_Custom-Action_event-securityhub-lambda-cross.json"))
    assert (finding.severity, finding.severity_label) == (0.6, "LOW")
    (function,) = finding.resources
    assert function.kind == "lambda-function"
    assert function.name == "custodian-enterprise-ec2-instances-no-elastic-ip-isolate"
    assert function.arn == (
        "arn:aws:lambda:us-east-1:644160558196:function:custodian-enterprise-ec2-instances-no-elastic-ip-isolate"
    )
    assert dict(function.tags)["OwnerContact"] == "cloudmaid@capitalone.com"


@pytest.mark.parametrize(
    ("name", "expected", "severity", "label"),
    [
        (
            "sh_asr_Custom-Action_afsbp_rds6.json",
            ("rds-instance", "database-1-instance-1", "eu-west-1"),
            1.0,
            "LOW",
        ),
        (
            "sh_asr_Custom-Action_cis23.json",
            ("s3-bucket", "cloudtrail-awslogs-111111111111-kjfskljdfl", "us-east-2"),
            9.0,
            "CRITICAL",
        ),
        (
            "sh_awsdocs_sample-control-findings_Security-Hub_2-7_b1.json",
            ("cloudtrail-trail", "AWSMacieTrail-DO-NOT-EDIT", "us-east-2"),
            4.0,
            "MEDIUM",
        ),
        (
            "sh_c7n_Custom-Action_event-securityhub-cloudtrail-finding-action.json",
            ("cloudtrail-trail", "skunk-trails", "us-east-1"),
            0.0,
            "INFORMATIONAL",
        ),
        (
            "sh_c7n-placebo_default_Network-Reachability_0.json",
            ("s3-bucket", "c7n-test-public-bucket", "us-east-1"),
            0.0,
            "INFORMATIONAL",
        ),
        (
            "sh_c7n-placebo_inspector_CVE_0.json",
            (
                "other",
                "sas-log4j-test/sha256:1a65e73f85a7e2fc26ca1baa4cc9d4fbdbe9bbb46f7a2bf32db01de22759df94",
                "us-east-1",
            ),
            9.0,
            "CRITICAL",
        ),
    ],
)
def test_resource_kinds_and_severity(load, name, expected, severity, label) -> None:
    finding = only(load(SH + name))
    (res,) = finding.resources
    assert (res.kind, res.id or res.name, res.region) == expected
    assert (finding.severity, finding.severity_label) == (severity, label)


def test_bucket_arn_is_rebuilt_from_the_name(load) -> None:
    finding = only(load(SH + "sh_c7n-placebo_default_Network-Reachability_0.json"))
    assert finding.resources[0].arn == "arn:aws:s3:::c7n-test-public-bucket"  # the event says arn:aws:::…


@pytest.mark.parametrize(
    ("change", "archived"),
    [
        ({"Workflow": {"Status": "SUPPRESSED"}}, True),
        ({"RecordState": "ARCHIVED"}, True),
        ({"Workflow": {"Status": "NOTIFIED"}}, False),
    ],
)
def test_archived(load, change, archived) -> None:
    event = load(SH + "sh_asr_Imported_CIS-1.3.json")
    assert only(event).archived is False
    event["detail"]["findings"][0].update(change)
    assert only(event).archived is archived


def test_label_without_normalized_maps_to_the_band_floor(load) -> None:
    event = load(SH + "sh_c7n-placebo_inspector_CVE_0.json")
    event["detail"]["findings"][0]["Severity"] = {"Label": "HIGH"}
    assert (only(event).severity, only(event).severity_label) == (7.0, "HIGH")


def test_malformed_security_hub_events(load) -> None:
    event = load(SH + "sh_asr_Custom-Action_CIS_1-6-multi-select.json")
    del event["detail"]["findings"][1]["Id"]
    with pytest.raises(InvalidEvent, match=r"^Security Hub finding \[1\]: Id is missing or invalid$"):
        normalize(event)
    event["detail"]["findings"] = []
    with pytest.raises(InvalidEvent, match=r"detail\.findings is missing or empty"):
        normalize(event)
    event["detail"]["findings"] = ["not a finding"]
    with pytest.raises(InvalidEvent, match=r"Security Hub finding \[0\]: is not an object"):
        normalize(event)


@pytest.mark.parametrize(("count", "truncated"), [(2, False), (10, True)])
def test_attack_sequence_actors_in_asff(load, count, truncated) -> None:
    """ASFF ``Detection.Sequence.Actors`` (Security Hub API ``Actor``/``ActorUser``/``ActorSession``)."""
    event = load(SH + "sh_c7n-placebo_guardduty_Recon-IAMUser-ResourcePermissions_4.json")
    event["detail"]["findings"][0]["Detection"] = {
        "Sequence": {
            "Uid": "c5b8e2f0a1d34b6c9e7f0a2b4c6d8e01",
            "Actors": [
                {
                    "Id": f"actor-{i}",
                    "User": {
                        "Name": f"user-{i}",
                        "Uid": f"AIDAEXAMPLE{i}",
                        "Type": "IAMUser",
                        "CredentialUid": f"AKIAEXAMPLE{i:09d}",
                        "Account": {"Uid": "644160558196", "Name": "prod"},
                    },
                    "Session": {"MfaStatus": "DISABLED", "Issuer": "arn:aws:iam::644160558196:role/issuer"},
                }
                for i in range(count)
            ],
        }
    }
    finding = only(event)
    assert len(finding.actors) == count
    assert finding.actor.user_name == "user-0"
    assert finding.actor.access_key_id == "AKIAEXAMPLE000000000"
    assert finding.actor.account == "644160558196"
    assert finding.actor.session_issuer_arn == "arn:aws:iam::644160558196:role/issuer"
    assert finding.details["sequence_may_be_truncated"] is truncated
