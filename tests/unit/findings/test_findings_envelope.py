"""canonical_event (the shape patterns match), the generic EventBridge source and the ARN parser."""

from __future__ import annotations

import json

import pytest
from findings_testdata import CORPUS

from chalicelib.findings import InvalidEvent, canonical_event, normalize, parse_arn, resource_from_arn


def pattern_event(case: str) -> dict:
    """The ``event`` of a real, AWS-validated test case in the patterns corpus."""
    for line in (CORPUS / "patterns" / "localstack_aws_validated.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["case"] == case:
            return row["event"]
    raise LookupError(case)


def test_eventbridge_event_passes_through_unchanged(load) -> None:
    event = load("guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json")
    assert canonical_event(event) is event


def test_pascal_case_detail_is_camel_cased(load) -> None:
    event = load("guardduty/gd_blu371ck_PascalCase-detail_Discovery-RDS-TorIPCaller.json")
    canonical = canonical_event(event)
    detail = canonical["detail"]
    assert detail["id"] == "4d45b480b4504647b8096428a2ad4c82"
    assert detail["resource"]["rdsDbInstanceDetails"]["tags"][0] == {
        "key": "GeneratedFindingRDSDBInstanceTag1",
        "value": "GeneratedFindingRDSDBInstanceValue1",
    }
    assert detail["service"]["action"]["rdsLoginAttemptAction"]["remoteIpDetails"]["ipAddressV4"] == "1.2.3.4"
    # AdditionalInfo {"Value": "<json>", "Type": "default"} → the decoded object, as EventBridge delivers it
    assert detail["service"]["additionalInfo"] == {
        "sample": True,
        "value": '{"sample":true}',
        "type": "default",
    }
    assert {k: canonical[k] for k in ("source", "detail-type", "id")} == {
        k: event[k] for k in ("source", "detail-type", "id")
    }
    assert event["detail"]["Id"] == "4d45b480b4504647b8096428a2ad4c82"  # the input is not modified


def test_raw_api_shape_guardduty_finding_is_wrapped(load) -> None:
    raw = load("guardduty/gd_awscli_RAW-API-PascalCase_Recon-IAMUser-UserPermissions.json")
    event = canonical_event(raw)
    assert (event["source"], event["detail-type"]) == ("aws.guardduty", "GuardDuty Finding")
    assert (event["account"], event["region"], event["time"]) == (
        "111122223333",
        "us-east-1",
        "2020-05-26T22:55:21Z",
    )
    assert event["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] == "ASIASZ4SI7REEEXAMPLE"
    assert event["detail"]["service"]["action"]["awsApiCallAction"]["remoteIpDetails"]["geoLocation"] == {
        "lat": 51.5164,
        "lon": -0.093,
    }


def test_raw_asff_finding_is_wrapped_like_security_hub_does(load) -> None:
    native = load("securityhub/sh_c7n-placebo_guardduty_Recon-IAMUser-ResourcePermissions_4.json")
    raw = native["detail"]["findings"][0]
    event = canonical_event(raw)
    for key in ("source", "detail-type", "account", "region", "time", "resources"):
        assert event[key] == native[key], key
    assert normalize(raw)[0].to_dict() == normalize(native)[0].to_dict()


def test_raw_ocsf_finding_is_wrapped_like_security_hub_does(load) -> None:
    native = load("securityhub-ocsf/sh2_sumologic-docs_2004_GuardDuty-Stealth-IAMUser-CloudTrailLoggingDisabled.json")
    event = canonical_event(native["detail"]["findings"][0])
    for key in ("source", "detail-type", "account", "region", "resources"):
        assert event[key] == native[key], key
    # The native envelope's time is the delivery time; the wrap uses the finding's modified time.
    assert event["time"] == "2025-07-22T03:02:34Z"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (["a", "list"], "event must be a JSON object, not list"),
        ("text", "event must be a JSON object, not str"),
        ({"Records": []}, "unrecognised event"),
        ({}, "unrecognised event"),
    ],
)
def test_unrecognisable_input(event, message) -> None:
    with pytest.raises(InvalidEvent, match=f"^{message}"):
        normalize(event)


def test_generic_eventbridge_event_with_resources() -> None:
    event = pattern_event("arrays")
    (finding,) = normalize(event)
    assert finding.source == "eventbridge"
    assert (finding.id, finding.type, finding.account, finding.region) == (
        "1",
        "test-detail-type",
        "123456789012",
        "us-east-2",
    )
    assert finding.time == "2022-07-13T13:48:01Z"
    assert (finding.severity, finding.severity_label) == (0.0, "INFORMATIONAL")
    group, instance = finding.resources
    assert (group.kind, group.details["service"]) == ("other", "autoscaling")
    assert (instance.kind, instance.id) == ("ec2-instance", "i-b188560f")
    assert instance.arn == "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"
    assert finding.details == {"source": "test-source"}


def test_generic_event_without_resources() -> None:
    (finding,) = normalize(pattern_event("exists_list_empty_NEG"))
    assert (finding.type, finding.id) == (
        "EC2 Instance Launch Successful",
        "3e3c153a-8339-4e30-8c35-687ebef853fe",
    )
    assert finding.resources == ()


def test_generic_event_without_id_gets_a_stable_one() -> None:
    event = pattern_event("exists_list_empty_NEG")
    del event["id"]
    first, again = normalize(event)[0], normalize(dict(event))[0]
    assert first.id == again.id and len(first.id) == 36


def test_generic_event_missing_account() -> None:
    event = pattern_event("exists_list_empty_NEG")
    del event["account"]
    with pytest.raises(InvalidEvent, match=r"^EventBridge event: account is missing or invalid$"):
        normalize(event)


@pytest.mark.parametrize(
    ("arn", "kind", "fields"),
    [
        (
            "arn:aws:iam::1:role/path/Name",
            "iam-role",
            {"name": "Name", "arn": "arn:aws:iam::1:role/path/Name"},
        ),
        ("arn:aws:iam::123456789012:user/Bob", "iam-user", {"name": "Bob", "account": "123456789012"}),
        ("arn:aws:sts::1:assumed-role/Role/session", "iam-role", {"name": "Role", "arn": None}),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:fn:live",
            "lambda-function",
            {"name": "fn", "arn": "arn:aws:lambda:us-east-1:123456789012:function:fn"},
        ),
        ("arn:aws:s3:::my-bucket", "s3-bucket", {"name": "my-bucket", "account": None}),
        ("arn:aws:s3:::my-bucket/key/x", "other", {"id": "my-bucket/key/x"}),
        (
            "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc",
            "ec2-instance",
            {"id": "i-0abc", "region": "us-east-1"},
        ),
        ("arn:aws:ec2:us-east-1:123456789012:security-group/sg-1", "security-group", {"id": "sg-1"}),
        ("arn:aws:eks:us-east-1:1:cluster/prod", "eks-cluster", {"name": "prod"}),
        ("arn:aws:ecs:us-east-1:1:cluster/prod", "ecs-cluster", {"name": "prod"}),
        (
            "arn:aws:rds:eu-west-1:1:db:database-1-instance-1",
            "rds-instance",
            {"name": "database-1-instance-1"},
        ),
        ("arn:aws:cloudtrail:us-east-1:1:trail/skunk-trails", "cloudtrail-trail", {"name": "skunk-trails"}),
        ("arn:aws-cn:kms:cn-north-1:1:key/abc", "other", {"id": "abc", "region": "cn-north-1"}),
        # AWS's GuardDuty→Security Hub documentation sample has an extra colon.
        (
            "arn:aws::ec2:us-east-1:193043430472:instance/i-0c10",
            "ec2-instance",
            {"id": "i-0c10", "account": "193043430472"},
        ),
    ],
)
def test_arn_to_resource(arn, kind, fields) -> None:
    res = resource_from_arn(arn)
    assert res is not None and res.kind == kind
    for name, value in fields.items():
        assert getattr(res, name) == value, name


def test_arn_parts() -> None:
    arn = parse_arn("arn:aws:lambda:us-east-1:123456789012:function:fn:live")
    assert (arn.partition, arn.service, arn.region, arn.account) == (
        "aws",
        "lambda",
        "us-east-1",
        "123456789012",
    )
    assert (arn.resource_type, arn.resource_id) == ("function", "fn:live")
    sts = parse_arn("arn:aws:sts::1:assumed-role/Role/session")
    assert (sts.resource_type, sts.resource_id) == ("assumed-role", "Role/session")
    assert resource_from_arn("arn:aws:sts::1:assumed-role/Role/session").details["session_name"] == "session"


@pytest.mark.parametrize(
    "value", [None, 42, "", "not-an-arn", "arn:aws", "arn::s3:::b", "arn:aws:s3", "arn:" + "x" * 5000]
)
def test_not_an_arn(value) -> None:
    assert parse_arn(value) is None
    assert resource_from_arn(value) is None
