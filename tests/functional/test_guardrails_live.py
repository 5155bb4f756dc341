"""Guardrails on the live resource (moto): a protection tag set on the resource itself, or a protected ARN
pattern that only its real ARN (with its path) matches, holds containment back, whatever the finding says.

Findings often name a resource without its tags (CloudTrail never carries them; a GuardDuty access key
names its role by name only): the actions read the tags and ARN before any change, through one reader per
kind, and those reads are among the permissions each action declares.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.actions import REGISTRY, ActionContext, Status
from chalicelib.evidence import MemoryEvidenceStore
from chalicelib.findings import Resource, normalize
from chalicelib.guardrails import Guardrails, suppression_key
from tests.conftest import ACCOUNT, REGION, corpus_event
from tests.functional.actions.permission_table import needed

TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})
PROTECTED = [{"Key": "clampdown:protected", "Value": "true"}]
#: Calls that change something: none may be made for a protected resource.
WRITES = ("Put", "Delete", "Create", "Update", "Attach", "Detach", "Modify", "Tag", "Untag", "Remove", "Stop", "Enter")


@pytest.fixture
def finding() -> Any:
    return normalize(corpus_event("guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"))[0]


def role(session: Any) -> Resource:
    session.client("iam").create_role(RoleName="prod-db-role", AssumeRolePolicyDocument=TRUST, Tags=PROTECTED)
    # As a GuardDuty access key names it: a name, no ARN, no tags.
    return Resource("iam-role", name="prod-db-role", account=ACCOUNT, details={"from_access_key": True})


def user(session: Any) -> Resource:
    session.client("iam").create_user(UserName="svc-backup", Tags=PROTECTED)
    return Resource("iam-user", name="svc-backup", account=ACCOUNT)


def access_key(session: Any) -> Resource:
    iam = session.client("iam")
    iam.create_user(UserName="svc-deploy", Tags=PROTECTED)
    key = iam.create_access_key(UserName="svc-deploy")["AccessKey"]["AccessKeyId"]
    return Resource("access-key", id=key, account=ACCOUNT)  # not even the user's name


def function(session: Any) -> Resource:
    arn = session.client("iam").create_role(RoleName="fn-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(e, c):\n    return e\n")
    session.client("lambda").create_function(
        FunctionName="payments",
        Runtime="python3.11",
        Role=arn,
        Handler="index.handler",
        Code={"ZipFile": buffer.getvalue()},
        Tags={"clampdown:protected": "true"},
    )
    return Resource("lambda-function", name="payments", account=ACCOUNT, region=REGION)


def bucket(session: Any) -> Resource:
    s3 = session.client("s3")
    s3.create_bucket(Bucket="www.example.com")
    s3.put_bucket_tagging(Bucket="www.example.com", Tagging={"TagSet": PROTECTED})
    return Resource("s3-bucket", name="www.example.com", account=ACCOUNT)


def instance(session: Any) -> Resource:
    ec2 = session.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    iid = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": PROTECTED}],
    )["Instances"][0]["InstanceId"]
    return Resource("ec2-instance", id=iid, account=ACCOUNT, region=REGION)


def security_group(session: Any) -> Resource:
    ec2 = session.client("ec2")
    group = ec2.create_security_group(GroupName="bastion", Description="bastion")["GroupId"]
    ec2.create_tags(Resources=[group], Tags=PROTECTED)
    return Resource("security-group", id=group, account=ACCOUNT, region=REGION)


#: Every kind an action changes, with one action that would change it.
CASES: dict[str, tuple[Callable[[Any], Resource], str]] = {
    "iam-role": (role, "iam.quarantine-role"),
    "iam-user": (user, "iam.disable-console-login"),
    "access-key": (access_key, "iam.deactivate-access-key"),
    "lambda-function": (function, "lambda.zero-concurrency"),
    "s3-bucket": (bucket, "s3.block-public-access"),
    "ec2-instance": (instance, "ec2.stop-instance"),
    "security-group": (security_group, "tag"),
}


def test_every_kind_an_action_changes_has_a_case() -> None:
    from chalicelib.actions._live import READERS

    changed = {kind for action in REGISTRY.values() if action.changes_aws for kind in action.resource_kinds}
    assert changed <= set(CASES) == set(READERS)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_a_protection_tag_on_the_live_resource_holds_containment_back(
    kind: str, boto_session: Any, aws_clients: Any, recorder: Any, finding: Any
) -> None:
    make, name = CASES[kind]
    target = make(boto_session)
    assert not target.tags, "the finding does not carry the tag"
    action = REGISTRY[name]({})
    ctx = ActionContext(finding=finding, incident_id="inc-1", aws=aws_clients, guard=Guardrails())
    recorder.clear()
    result = action.apply(ctx, target)
    assert result.status == Status.SKIPPED, result.to_dict()
    assert "tagged clampdown:protected=true (read from AWS just now)" in (result.reason or "")
    assert not [op for _, op, _ in recorder.calls if op.startswith(WRITES)], recorder.operations
    # The reads the guardrails made are declared by the action (they feed the least-privilege policy).
    assert needed((s, o) for s, o, _ in recorder.calls) <= set(action.permissions)
    # Planned (dry-run mode) it is refused too, and says why.
    assert "protected" in (action.plan(ctx, target).refused or "")


def test_a_protected_arn_with_a_path_is_matched_on_the_live_arn(
    boto_session: Any, aws_clients: Any, recorder: Any, finding: Any
) -> None:
    """``arn:aws:iam::*:role/prod/*``: the finding names the role without its path; its real ARN has it."""
    boto_session.client("iam").create_role(RoleName="db", Path="/prod/", AssumeRolePolicyDocument=TRUST)
    target = Resource("iam-role", name="db", account=ACCOUNT)
    guard = Guardrails(protected_resources=("arn:aws:iam::*:role/prod/*",))
    ctx = ActionContext(finding=finding, incident_id="inc-1", aws=aws_clients, guard=guard)
    assert guard.refuse(REGISTRY["iam.quarantine-role"]({}), target, ctx) is None, "the path is not in the finding"
    result = REGISTRY["iam.quarantine-role"]({}).apply(ctx, target)
    assert result.status == Status.SKIPPED, result.to_dict()
    assert "protected resource arn:aws:iam::*:role/prod/* (read from AWS just now)" in (result.reason or "")
    assert boto_session.client("iam").list_role_policies(RoleName="db")["PolicyNames"] == []


def test_a_resource_named_without_an_arn_matches_arn_patterns(finding: Any) -> None:
    """Offline (simulate, plans): the ARN is derived from kind, account, region and name."""
    guard = Guardrails(
        protected_resources=(
            "arn:aws:iam::123456789012:role/prod-*",
            "arn:aws:iam::*:user/breakglass",
            "arn:aws:lambda:us-east-1:*:function:payments",
            "arn:aws:ec2:*:123456789012:instance/i-0123456789abcdef0",
        )
    )
    ctx = ActionContext(finding=dataclasses.replace(finding, account=ACCOUNT))  # resources in its account and region
    cases = [
        ("iam.quarantine-role", Resource("iam-role", name="prod-db-role")),
        ("iam.deactivate-access-key", Resource("access-key", id="AKIAEXAMPLE", details={"user_name": "breakglass"})),
        ("lambda.zero-concurrency", Resource("lambda-function", name="payments")),
        ("ec2.stop-instance", Resource("ec2-instance", id="i-0123456789abcdef0")),
    ]
    for name, target in cases:
        plan = REGISTRY[name]({}).plan(dataclasses.replace(ctx, guard=guard), target)
        assert plan.calls == [] and "protected resource" in (plan.refused or ""), (name, plan.to_dict())
    other = REGISTRY["iam.quarantine-role"]({}).plan(
        dataclasses.replace(ctx, guard=guard), Resource("iam-role", name="dev")
    )
    assert other.refused is None and other.calls


def test_a_suppression_from_a_rollback_refuses_the_same_containment(
    boto_session: Any, aws_clients: Any, finding: Any
) -> None:
    """What a rollback released is never contained again for the finding: the guardrails read the incident's
    suppressions (step keys of rolled-back steps, whatever their playbook or parameters)."""
    boto_session.client("iam").create_user(UserName="alice")
    target = Resource("iam-user", name="alice", account=ACCOUNT)
    rolled_back = f"{ACCOUNT}:{finding.id}/iam.quarantine-user/{target.key}#0123456789ab"
    ctx = ActionContext(
        finding=finding, incident_id="inc-1", aws=aws_clients, guard=Guardrails(), suppressions=(rolled_back,)
    )
    result = REGISTRY["iam.quarantine-user"]({}).apply(ctx, target)
    assert result.status == Status.SKIPPED and "released by a rollback" in (result.reason or "")
    assert boto_session.client("iam").list_user_policies(UserName="alice")["PolicyNames"] == []
    # Another containment of the same user was not released.
    ctx.evidence = MemoryEvidenceStore()
    assert REGISTRY["iam.disable-console-login"]({}).apply(ctx, target).status == Status.ALREADY_CONTAINED
    assert suppression_key("iam.quarantine-user", target) == f"iam.quarantine-user/{target.key}"
