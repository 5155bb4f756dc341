"""S3 actions on moto: real buckets, Block Public Access, ACLs, ownership controls and policies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.actions import REGISTRY, ActionContext, Status
from chalicelib.evidence import MemoryEvidenceStore
from chalicelib.findings import Resource, normalize
from chalicelib.guardrails import Guardrails
from tests.conftest import ACCOUNT, REGION, corpus_event
from tests.functional.actions.lifecycle import assert_lifecycle

BUCKET = "exposed-data"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
ALL_FOUR = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


@pytest.fixture
def finding() -> Any:
    """A real GuardDuty S3 finding: the context the actions run in."""
    return normalize(corpus_event("guardduty/gd_awssamples-autoresp_PenTest-S3-ParrotLinux.json"))[0]


@pytest.fixture
def s3(boto_session: Any) -> Any:
    return boto_session.client("s3")


def bucket(s3: Any, name: str = BUCKET) -> Resource:
    s3.create_bucket(Bucket=name)
    return Resource("s3-bucket", name=name, arn=f"arn:aws:s3:::{name}", account=ACCOUNT, region=REGION)


@pytest.fixture
def aws_rules(boto_session: Any, s3: Any) -> None:
    """Two rules of S3 that moto does not enforce, injected as AWS would answer (botocore hooks):
    a public bucket policy is refused while Block Public Access blocks public policies, and
    BucketOwnerEnforced is refused while the bucket ACL grants access to others (and ACLs then are)."""
    from botocore.exceptions import ClientError

    from chalicelib.actions import _policy

    def refuse(model: Any, code: str) -> None:
        raise ClientError({"Error": {"Code": code, "Message": "refused as AWS would"}}, model.name)

    def policy_rule(model: Any, params: Any, **_: Any) -> None:
        block = bucket_state(s3)["public_access_block"]
        public = _policy.split_public(_policy.load(params["body"]))[1]
        if isinstance(block, dict) and block.get("BlockPublicPolicy") and public:
            refuse(model, "AccessDenied")

    def ownership_rule(model: Any, params: Any, **_: Any) -> None:
        owner = s3.get_bucket_acl(Bucket=BUCKET)["Owner"]["ID"]
        grants = s3.get_bucket_acl(Bucket=BUCKET)["Grants"]
        if b"BucketOwnerEnforced" in params["body"] and any(g["Grantee"].get("ID") != owner for g in grants):
            refuse(model, "InvalidBucketAclWithObjectOwnership")

    def acl_rule(model: Any, **_: Any) -> None:
        ownership = bucket_state(s3)["ownership"]
        if isinstance(ownership, dict) and ownership["Rules"][0]["ObjectOwnership"] == "BucketOwnerEnforced":
            refuse(model, "AccessControlListNotSupported")

    boto_session.events.register("before-call.s3.PutBucketPolicy", policy_rule)
    boto_session.events.register("before-call.s3.PutBucketOwnershipControls", ownership_rule)
    boto_session.events.register("before-call.s3.PutBucketAcl", acl_rule)


def context(finding: Any, aws_clients: Any, **extra: Any) -> ActionContext:
    return ActionContext(finding=finding, playbook="test", incident_id="inc-9", aws=aws_clients, **extra)


def statement(sid: str, principal: Any, condition: Any = None) -> dict[str, Any]:
    out = {"Sid": sid, "Effect": "Allow", "Principal": principal, "Action": "s3:GetObject"}
    out["Resource"] = f"arn:aws:s3:::{BUCKET}/*"
    if condition:
        out["Condition"] = condition
    return out


PUBLIC = statement("Public", "*")
PUBLIC_AWS = statement("PublicAws", {"AWS": ["*"]})
FROM_ACCOUNT = statement("FromMyAccount", "*", {"StringEquals": {"aws:SourceAccount": ACCOUNT}})
PARTNER = statement("Partner", {"AWS": "arn:aws:iam::111122223333:root"})


def put_policy(s3: Any, *statements: dict[str, Any]) -> None:
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))


def bucket_state(s3: Any) -> dict[str, Any]:
    """Everything these actions may change, read the way an operator would."""

    def read(call: Any, key: str) -> Any:
        try:
            return call(Bucket=BUCKET)[key]
        except s3.exceptions.ClientError as exc:
            return exc.response["Error"]["Code"]

    policy = read(s3.get_bucket_policy, "Policy")
    return {
        "public_access_block": read(s3.get_public_access_block, "PublicAccessBlockConfiguration"),
        "ownership": read(s3.get_bucket_ownership_controls, "OwnershipControls"),
        "grants": sorted(json.dumps(g, sort_keys=True) for g in s3.get_bucket_acl(Bucket=BUCKET)["Grants"]),
        "policy": json.loads(policy) if policy.startswith("{") else policy,
    }


@pytest.mark.parametrize("previous", [None, {"BlockPublicAcls": True}])
def test_block_public_access(previous: Any, s3: Any, aws_clients: Any, recorder: Any, finding: Any) -> None:
    target = bucket(s3)
    if previous:
        full = {"BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False}
        s3.put_public_access_block(
            Bucket=BUCKET, PublicAccessBlockConfiguration={**full, "RestrictPublicBuckets": False, **previous}
        )
    action = REGISTRY["s3.block-public-access"]({})
    result = assert_lifecycle(action, context(finding, aws_clients), target, lambda: bucket_state(s3), recorder)
    assert (result.after or {})["public_access_block"] == dict.fromkeys(ALL_FOUR, True)
    assert (result.before or {})["public_access_block"] == (
        None if previous is None else {**dict.fromkeys(ALL_FOUR, False), **previous}
    )


def test_deny_public_policy_removes_only_public_statements(
    s3: Any, aws_clients: Any, recorder: Any, finding: Any, aws_rules: None
) -> None:
    target = bucket(s3)
    put_policy(s3, PUBLIC, FROM_ACCOUNT, PARTNER, PUBLIC_AWS)
    action = REGISTRY["s3.deny-public-policy"]({})
    ctx = context(finding, aws_clients)
    result = assert_lifecycle(action, ctx, target, lambda: bucket_state(s3), recorder)
    assert [c.operation for c in result.calls_made] == ["PutBucketPolicy"]
    assert (result.before or {})["policy"]["Statement"] == [PUBLIC, FROM_ACCOUNT, PARTNER, PUBLIC_AWS]

    action.apply(ctx, target)
    assert bucket_state(s3)["policy"]["Statement"] == [FROM_ACCOUNT, PARTNER], "restricted statements stay"


def test_deny_public_policy_deletes_a_policy_that_is_all_public(
    s3: Any, aws_clients: Any, recorder: Any, finding: Any
) -> None:
    target = bucket(s3)
    put_policy(s3, PUBLIC, PUBLIC_AWS)
    action = REGISTRY["s3.deny-public-policy"]({})
    result = assert_lifecycle(action, context(finding, aws_clients), target, lambda: bucket_state(s3), recorder)
    assert [c.operation for c in result.calls_made] == ["DeleteBucketPolicy"]
    assert recorder.permissions() >= {"s3:DeleteBucketPolicy", "s3:PutBucketPolicy"}  # rollback put it back


def make_exposed(s3: Any) -> Resource:
    target = bucket(s3)
    s3.put_bucket_acl(Bucket=BUCKET, ACL="public-read")
    put_policy(s3, PUBLIC, PARTNER)
    return target


def test_lockdown_bucket(s3: Any, aws_clients: Any, recorder: Any, finding: Any, aws_rules: None) -> None:
    target = make_exposed(s3)
    guard = Guardrails(
        allowed_principals=("arn:aws:iam::*:role/BreakGlass",),
        own_role_arns=("arn:aws:iam::*:role/clampdown-responder-*",),
        own_role_names=("ClampdownMember",),
    )
    action = REGISTRY["s3.lockdown-bucket"]({"allow_principals": ["arn:aws:iam::123456789012:role/ir/Forensics"]})
    ctx = context(finding, aws_clients, guard=guard)
    original = bucket_state(s3)
    result = assert_lifecycle(action, ctx, target, lambda: bucket_state(s3), recorder)
    assert [c.operation for c in result.calls_made] == [
        "PutPublicAccessBlock",
        "PutBucketAcl",  # the public-read grant would make BucketOwnerEnforced fail on AWS
        "PutBucketOwnershipControls",
        "PutBucketPolicy",
    ]
    assert bucket_state(s3) == original, "rollback restored ACL grants, policy, ownership and BPA"

    action.apply(ctx, target)
    locked = bucket_state(s3)
    assert locked["ownership"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert all(ALL_USERS not in g for g in locked["grants"])
    (deny,) = locked["policy"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert deny["Resource"] == [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]
    # Allow-listed principals keep access: the deny does not apply to them.
    assert deny["Condition"] == {
        "ArnNotLike": {
            "aws:PrincipalArn": [
                "arn:aws:iam::*:role/BreakGlass",
                "arn:aws:iam::*:role/clampdown-responder-*",
                "arn:aws:iam::123456789012:role/*/ClampdownMember",  # the member role, whatever its path
                "arn:aws:iam::123456789012:role/ClampdownMember",
                "arn:aws:iam::123456789012:role/ir/Forensics",
                "arn:aws:iam::123456789012:user/moto",  # the responder itself (moto's caller identity)
            ]
        }
    }


def test_lockdown_keeps_an_assumed_role_responder_whatever_its_path(
    s3: Any, boto_session: Any, aws_clients: Any, finding: Any
) -> None:
    """The responder acting through an assumed role: its role stays allowed, with or without a path."""
    iam = boto_session.client("iam")
    role = iam.create_role(RoleName="Responder", Path="/ir/", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    creds = boto_session.client("sts").assume_role(RoleArn=role, RoleSessionName="inc-9")["Credentials"]
    import boto3

    assumed = boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )
    from chalicelib.aws import AwsClients

    clients = AwsClients(home_account=ACCOUNT, default_region=REGION, session_factory=lambda: assumed)
    target = make_exposed(s3)
    result = REGISTRY["s3.lockdown-bucket"]({}).apply(context(finding, clients), target)
    assert result.status == Status.CONTAINED, result.to_dict()
    condition = bucket_state(s3)["policy"]["Statement"][0]["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    assert condition == ["arn:aws:iam::123456789012:role/*/Responder", "arn:aws:iam::123456789012:role/Responder"]
    assert role == "arn:aws:iam::123456789012:role/ir/Responder"


def test_lockdown_big_policy_goes_to_the_evidence_store(s3: Any, aws_clients: Any, recorder: Any, finding: Any) -> None:
    """A policy document does not bloat the incident record: before-states, after-states and calls over
    4 KB go to the evidence store (applying and rolling back), and rollback reads them back."""
    target = bucket(s3)
    many = [statement(f"Partner{i:04d}", {"AWS": f"arn:aws:iam::{100000000000 + i}:root"}) for i in range(300)]
    put_policy(s3, *many)
    evidence = MemoryEvidenceStore()
    action = REGISTRY["s3.lockdown-bucket"]({})
    ctx = context(finding, aws_clients, evidence=evidence)
    result = assert_lifecycle(action, ctx, target, lambda: bucket_state(s3), recorder)
    assert set(result.before or {}) == {"evidence_key", "bytes", "sha256"}
    assert result.before["evidence_key"] in result.evidence_keys  # type: ignore[index]
    assert len(json.dumps(result.to_dict())) < 4096
    assert len(bucket_state(s3)["policy"]["Statement"]) == 300

    # Rolling back puts the 300 statements back in one call: the record keeps references, not the document.
    action.apply(ctx, target)
    rolled = action.rollback(ctx, target, result.before or {})
    assert rolled.status == Status.ROLLED_BACK, rolled.to_dict()
    record = rolled.to_dict()
    assert len(json.dumps(record)) < 4096, len(json.dumps(record))
    assert set(record["after"]) == {"evidence_key", "bytes", "sha256"}
    (put,) = [c for c in record["calls_made"] if c["call"] == "s3:PutBucketPolicy"]
    calls_ref = next(k for k in rolled.evidence_keys if "rollback-calls" in k)
    assert put["params"]["Policy"].endswith(f"in full in {calls_ref})")
    stored = json.loads(evidence.get(calls_ref))
    assert (
        len(json.loads(next(c for c in stored if c["call"] == "s3:PutBucketPolicy")["params"]["Policy"])["Statement"])
        == 300
    )
    assert len(bucket_state(s3)["policy"]["Statement"]) == 300


@pytest.mark.parametrize("action_name", ["s3.block-public-access", "s3.deny-public-policy", "s3.lockdown-bucket"])
def test_missing_bucket_fails_with_the_aws_error(action_name: str, aws_clients: Any, finding: Any) -> None:
    target = Resource("s3-bucket", name="no-such-bucket-here", account=ACCOUNT, region=REGION)
    result = REGISTRY[action_name]({}).apply(context(finding, aws_clients), target)
    assert result.status == Status.FAILED and result.error_code == "NoSuchBucket"
    assert result.calls_made == [] and result.undo == []


def test_access_denied_part_way_lists_undo_steps(s3: Any, boto_session: Any, aws_clients: Any, finding: Any) -> None:
    from botocore.exceptions import ClientError

    target = make_exposed(s3)

    def deny(model: Any, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, model.name)

    boto_session.events.register("before-call.s3.PutBucketOwnershipControls", deny)
    result = REGISTRY["s3.lockdown-bucket"]({}).apply(context(finding, aws_clients), target)
    assert result.status == Status.FAILED and result.error_code == "AccessDenied"
    assert [c.operation for c in result.calls_made] == ["PutPublicAccessBlock", "PutBucketAcl"]
    # Undo steps for what the two calls changed, nothing for the policy they never reached.
    assert result.undo[0] == f's3:DeletePublicAccessBlock(Bucket="{BUCKET}")'
    assert len(result.undo) == 2 and result.undo[1].startswith("s3:PutBucketAcl(")
    assert "AccessControlPolicy" in result.undo[1] and ALL_USERS in result.undo[1], result.undo


def test_offline_plans_show_calls_with_placeholders(finding: Any) -> None:
    target = Resource("s3-bucket", name=BUCKET)
    offline = ActionContext(finding=finding, aws=None)
    plans = {name: REGISTRY[name]({}).plan(offline, target) for name in REGISTRY if name.startswith("s3.")}
    assert [c.operation for c in plans["s3.lockdown-bucket"].calls] == [
        "PutPublicAccessBlock",
        "PutBucketAcl",
        "PutBucketOwnershipControls",
        "PutBucketPolicy",
    ]
    assert "only if the bucket ACL grants" in plans["s3.lockdown-bucket"].notes[0]
    lockdown_policy = json.loads(plans["s3.lockdown-bucket"].calls[-1].params["Policy"])
    assert lockdown_policy["Statement"][0]["Condition"]["ArnNotLike"]["aws:PrincipalArn"] == [
        "<the responder's own role (GetCallerIdentity)>"
    ]
    assert "<the bucket policy without its public statements>" in str(plans["s3.deny-public-policy"].calls[0])
    assert all(plan.before is None for plan in plans.values())


def test_attacker_controlled_bucket_names_are_refused(finding: Any, aws_clients: Any) -> None:
    target = Resource("s3-bucket", name="evil.com/../x?")
    result = REGISTRY["s3.block-public-access"]({}).apply(context(finding, aws_clients), target)
    assert result.status == Status.FAILED and result.error_code == "InvalidTarget"
