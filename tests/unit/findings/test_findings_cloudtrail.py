"""CloudTrail: raw log records and native EventBridge events, from the real corpus."""

from __future__ import annotations

import pytest
from findings_testdata import CORPUS

from chalicelib.findings import Actor, InvalidEvent, canonical_event, normalize

CT = "cloudtrail/"
NATIVE = sorted(p.name for p in (CORPUS / "cloudtrail").glob("ct_eb_*.json"))
#: Envelope fields that the publishers' fixtures got inconsistent with their own ``detail``
#: (c7n: an RDS envelope around a CloudSearch record; Sumo Logic: a different account id).
FIXTURE_INCONSISTENCIES = {
    "ct_eb_c7n_cloudsearch-CreateDomain.json": {"source", "time", "account"},
    "ct_eb_sumologic_guardduty-CreateSampleFindings.json": {"account"},
}


def only(event):
    findings = normalize(event)
    assert len(findings) == 1
    return findings[0]


def test_there_are_nine_native_events() -> None:
    assert len(NATIVE) == 9


@pytest.mark.parametrize("name", NATIVE)
def test_wrapping_the_record_rebuilds_the_eventbridge_envelope(load, name) -> None:
    native = load(CT + name)
    wrapped = canonical_event(native["detail"])
    assert wrapped["version"] == "0"
    assert wrapped["resources"] == native["resources"] == []
    assert wrapped["detail"] == native["detail"]
    odd = FIXTURE_INCONSISTENCIES.get(name, set())
    for key in ("source", "detail-type", "account", "region", "time"):
        if key in odd:
            assert wrapped[key] != native[key], f"{key} is listed as inconsistent but matches"
        else:
            assert wrapped[key] == native[key], key


@pytest.mark.parametrize("name", NATIVE)
def test_live_event_and_replayed_record_give_the_same_finding(load, name) -> None:
    native = load(CT + name)
    live, replayed = only(native), only(native["detail"])
    live_dict, replayed_dict = live.to_dict(), replayed.to_dict()
    if name in FIXTURE_INCONSISTENCIES:  # the live finding trusts the record, not the odd envelope
        for found in (live_dict, replayed_dict):
            found.pop("account")
            for res in found["resources"]:
                res.pop("account", None)  # a target without its own account is in the finding's
    assert live_dict == replayed_dict
    assert live.id == native["detail"]["eventID"] or native["detail"]["eventID"] == ""


def test_replayed_record_ids_are_deterministic(load) -> None:
    name = "ct_raw_stratus_aws.persistence.iam-create-admin-user_CreateAccessKey.json"
    other = "ct_raw_stratus_aws.persistence.iam-create-admin-user_CreateUser.json"
    first, again = canonical_event(load(CT + name)), canonical_event(load(CT + name))
    assert first["id"] == again["id"]
    assert first["id"] != canonical_event(load(CT + other))["id"]
    assert (first["source"], first["detail-type"]) == ("aws.iam", "AWS API Call via CloudTrail")
    assert (first["account"], first["region"], first["time"]) == (
        "229654561268",
        "ap-isob-central-3r",
        "2024-08-01T13:33:28Z",
    )


def test_create_access_key_targets_the_user_and_the_new_key(load) -> None:
    finding = only(load(CT + "ct_raw_stratus_aws.persistence.iam-create-admin-user_CreateAccessKey.json"))
    assert finding.source == "cloudtrail"
    assert finding.type == "iam:CreateAccessKey"
    assert finding.id == finding.origin_id == "94faedcc-0fa4-46e6-9322-022e8e934f04"
    assert (finding.severity, finding.severity_label) == (0.0, "INFORMATIONAL")
    assert finding.account == "229654561268"
    assert finding.time == "2024-08-01T13:33:28Z"
    assert [(r.kind, r.id or r.name) for r in finding.resources] == [
        ("iam-user", "malicious-iam-user"),
        ("access-key", "AKIAXAFZN8JEPF6L682H"),
    ]
    assert finding.resources[1].details == {"user_name": "malicious-iam-user", "user_type": "IAMUser"}
    assert finding.actor == Actor(
        principal_arn="arn:aws:iam::229654561268:user/christophe",
        user_name="christophe",
        user_type="IAMUser",
        principal_id="AIDAZ49AHUAJ9OEK73O5",
        access_key_id="AKIAOZUDECYXYM4ONAN4",
        account="229654561268",
        source_ip=None,  # published as "075.050.255.67", not a valid address
        user_agent="stratus-red-team_6bf00313-712c-4fd2-9bdd-88f48a4b1282",
    )
    assert finding.details["source_ip_address"] == "075.050.255.67"
    assert finding.details["read_only"] is False


def test_create_access_key_for_another_user(load) -> None:
    finding = only(load(CT + "ct_raw_panther_CreateAccessKey_user1-create-keys-for-user2.json"))
    assert [(r.kind, r.name) for r in finding.resources][:1] == [("iam-user", "user2")]
    assert finding.actor.user_name == "user1"


def test_root_console_login(load) -> None:
    record = load(CT + "ct_raw_awsdocs_ConsoleLogin_Root_Success_event-reference-aws-console-sign-in-events_b5.json")
    event = canonical_event(record)
    assert (event["source"], event["detail-type"]) == ("aws.signin", "AWS Console Sign In via CloudTrail")
    finding = only(record)
    assert finding.type == "signin:ConsoleLogin"
    assert finding.actor.user_type == "Root"
    assert finding.actor.principal_arn == "arn:aws:iam::111122223333:root"
    assert finding.actor.access_key_id is None  # "" in the record
    assert finding.details["console_login"] == "Success"
    assert finding.details["mfa_used"] == "No"
    assert finding.resources == ()


def test_failed_console_login(load) -> None:
    finding = only(
        load(CT + "ct_raw_awsdocs_ConsoleLogin_IAMUser_Failure_event-reference-aws-console-sign-in-events_b2.json")
    )
    assert finding.details["console_login"] == "Failure"
    assert finding.details["error_message"] == "Failed authentication"
    assert finding.actor.user_name == "anaya"
    assert finding.title == "ConsoleLogin by anaya"


def test_assumed_role_actor(load) -> None:
    finding = only(
        load(
            CT + "ct_raw_stratus_aws.credential-access.ec2-get-password-data_GetPasswordData_"
            "ERR-Client-UnauthorizedOperation.json"
        )
    )
    assert finding.actor.user_type == "AssumedRole"
    assert finding.actor.user_name == "stratus-red-team-ec2-get-password-data-role"
    assert (
        finding.actor.session_issuer_arn == "arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role"
    )
    assert finding.actor.principal_arn == (
        "arn:aws:sts::457448411975:assumed-role/stratus-red-team-ec2-get-password-data-role/aws-go-sdk-1722375070115152000"
    )
    assert finding.actor.access_key_id == "ASIANQQHHS551LWULIWD"
    assert finding.details["error_code"] == "Client.UnauthorizedOperation"
    assert finding.severity == 0.0  # a failed call is still just a record
    assert finding.title.endswith("failed: Client.UnauthorizedOperation")


def test_native_assumed_role_event(load) -> None:
    finding = only(load(CT + "ct_eb_c7n_CreateBucket_AssumedRole_event-cloud-trail-s3.json"))
    assert finding.actor.session_issuer_arn == "arn:aws:iam::101010101111:role/Sandbox_Dev"
    assert finding.actor.source_ip == "101.244.214.105"
    assert finding.account == "101010101111"  # no recipientAccountId: the envelope account
    (bucket,) = finding.resources
    assert (bucket.kind, bucket.name, bucket.arn) == ("s3-bucket", "cwe-test", "arn:aws:s3:::cwe-test")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "ct_raw_c7n_RunInstances_event-cloud-trail-run-instances.json",
            [
                ("ec2-instance", "i-784cdacd"),
                ("ec2-instance", "i-7b4cdace"),
                ("security-group", "sg-bd2d87d9"),
            ],
        ),
        ("ct_raw_awsdocs_StopInstances_IAMUser_log-file-examples_b3.json", [("ec2-instance", "i-ebeaf9e2")]),
        (
            "ct_raw_stratus_aws.execution.ssm-send-command_SendCommand.json",
            [
                ("ec2-instance", "i-00456A8D163f546Ff"),
                ("ec2-instance", "i-cfE23b1a7ceba6f86"),
                ("ec2-instance", "i-9D40CCFc0aE91CFa5"),
            ],
        ),
        (
            "ct_raw_stratus_aws.execution.ssm-start-session_StartSession.json",
            [("ec2-instance", "i-eA1d1296c1dE3Aa1f")],
        ),
        (
            "ct_raw_stratus_aws.exfiltration.ec2-security-group-open-port-22-ingress_AuthorizeSecurityGroupIngress.json",
            [("security-group", "sg-003dc7f1f1c686164")],
        ),
        (
            "ct_raw_panther_AttachRolePolicy_IAM-Role-Policy-Attached-with-Administrator-Access.json",
            [("iam-role", "new-role"), ("other", "AdministratorAccess")],
        ),
        ("ct_raw_panther_StopLogging_CloudTrail-Was-Stopped.json", [("cloudtrail-trail", "example-trail")]),
        (
            "ct_raw_stratus_aws.defense-evasion.cloudtrail-stop_StopLogging.json",
            [("cloudtrail-trail", "stratus-red-team-ct-stop-trail-buykxbqejv")],
        ),
        (
            "ct_raw_panther_DeleteBucketPublicAccessBlock_Public-Access-Block-Deleted-Successfully.json",
            [("s3-bucket", "corporate-documents")],
        ),
        (
            "ct_raw_c7n_CreateDBInstance_event-cloud-trail-create-db.json",
            [("rds-instance", "onenessdb"), ("security-group", "sg-64952a01")],
        ),
        (
            "ct_raw_stratus_aws.persistence.lambda-backdoor-function_AddPermission20150331v2.json",
            [("lambda-function", "stratus-red-team-backdoor-f-func")],
        ),
        (
            "ct_raw_stratus_aws.persistence.lambda-layer-extension_UpdateFunctionConfiguration20150331v2.json",
            [("lambda-function", "stratus-red-team-lambda-layer-simpleLambda")],
        ),
        (
            "ct_raw_stratus_aws.persistence.rolesanywhere-create-trust-anchor_CreateProfile.json",
            [("iam-role", "stratus-red-team-trust-anchor-role"), ("other", "910042eb-8463-427d-8095-6fd60ac303d9")],
        ),
        # the root MFA event's userName is "AWS ROOT USER": not an IAM user name
        ("ct_raw_awsdocs_EnableMFADevice_Root_event-reference-aws-console-sign-in-events_b8.json", []),
        ("ct_raw_stratus_aws.persistence.sts-federation-token_GetFederationToken.json", []),
    ],
)
def test_request_targets(load, name, expected) -> None:
    finding = only(load(CT + name))
    assert [(r.kind, r.id or r.name) for r in finding.resources] == expected


def test_lambda_function_arn_is_stripped_to_the_function(load) -> None:
    finding = only(
        load(
            CT + "ct_raw_stratus_aws.persistence.lambda-layer-extension_" + "UpdateFunctionConfiguration20150331v2.json"
        )
    )
    (function,) = finding.resources
    assert function.arn == (
        "arn:aws:lambda:eugov-eastcentral-1r:712967571683:function:stratus-red-team-lambda-layer-simpleLambda"
    )
    assert function.region == "eugov-eastcentral-1r"


def test_service_event_uses_cloudtrails_resources(load) -> None:
    record = load(CT + "ct_raw_awsdocs_RotateKey_none_non-api-aws-service-events_b0.json")
    assert canonical_event(record)["detail-type"] == "AWS Service Event via CloudTrail"
    assert canonical_event(record)["source"] == "aws.kms"
    finding = only(record)
    (key,) = finding.resources
    assert (key.kind, key.arn) == ("other", "arn:aws:kms:us-east-2:123456789012:key/7944f0ec-EXAMPLE")
    assert key.details["type"] == "AWS::KMS::Key"
    assert finding.actor.source_ip is None  # "AWS Internal"
    assert finding.details["invoked_by"] == "AWS Internal"


def test_big_event_with_empty_event_id(load) -> None:
    native = load(CT + "ct_eb_eventruler_route53-ChangeResourceRecordSets_BIG.json")
    finding = only(native)
    assert finding.id and finding.id == only(native["detail"]).id


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("eventName", "CloudTrail event: detail.eventName is missing or invalid"),
        ("eventSource", "unrecognised event"),
        ("eventTime", "CloudTrail event: detail.eventTime is missing or invalid"),
    ],
)
def test_malformed_records(load, field, message) -> None:
    record = load(CT + "ct_raw_awsdocs_CreateUser_IAMUser_log-file-examples_b5.json")
    del record[field]
    if field == "eventSource":  # still a CloudTrail record (eventVersion): wrapped, then rejected
        assert "eventVersion" in record
        message = "CloudTrail event: detail.eventSource is missing or invalid"
    with pytest.raises(InvalidEvent) as caught:
        normalize(record)
    assert str(caught.value) == message


def test_both_spellings_of_the_sign_in_detail_type(load) -> None:
    record = load(CT + "ct_raw_stratus_aws.initial-access.console-login-without-mfa_ConsoleLogin.json")
    event = canonical_event(record)
    assert event["detail-type"] == "AWS Console Sign In via CloudTrail"
    replayed = only(event)
    event["detail-type"] = "AWS Console Signin via CloudTrail"  # the EventBridge guide's spelling
    assert only(event).to_dict() == replayed.to_dict()
    assert replayed.source == "cloudtrail"
