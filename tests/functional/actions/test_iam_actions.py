"""IAM actions on moto: real roles, users, keys and policies; apply, idempotency and rollback."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.actions import REGISTRY, ActionContext, Status
from chalicelib.findings import Resource, normalize
from chalicelib.guardrails import Guardrails
from tests.conftest import ACCOUNT, REGION, corpus_event
from tests.functional.actions.lifecycle import assert_lifecycle

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)
NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def iam(boto_session: Any) -> Any:
    return boto_session.client("iam")


@pytest.fixture
def finding() -> Any:
    """A real GuardDuty IAM finding: context for the actions (account, incident, times)."""
    found = normalize(corpus_event("guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"))[0]
    return found


def context(finding: Any, aws_clients: Any, **extra: Any) -> ActionContext:
    return ActionContext(finding=finding, playbook="test", incident_id="inc-1", aws=aws_clients, now=NOW, **extra)


def role(iam: Any, name: str = "app-role") -> Resource:
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST, Path="/apps/")["Role"]["Arn"]
    return Resource("iam-role", name=name, arn=arn, account=ACCOUNT, region=REGION)


def user(iam: Any, name: str = "alice") -> Resource:
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    return Resource("iam-user", name=name, arn=arn, account=ACCOUNT, region=REGION)


def inline_policies(iam: Any, kind: str, name: str) -> dict[str, Any]:
    lister = getattr(iam, f"list_{kind}_policies")
    getter = getattr(iam, f"get_{kind}_policy")
    key = {f"{kind.capitalize()}Name": name}
    return {p: getter(**key, PolicyName=p)["PolicyDocument"] for p in lister(**key)["PolicyNames"]}


def test_quarantine_role(iam: Any, aws_clients: Any, recorder: Any, finding: Any) -> None:
    target = role(iam)
    iam.put_role_policy(
        RoleName="app-role",
        PolicyName="app",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
        ),
    )
    action = REGISTRY["iam.quarantine-role"]({})
    result = assert_lifecycle(
        action, context(finding, aws_clients), target, lambda: inline_policies(iam, "role", "app-role"), recorder
    )
    assert result.before == {"policy_name": "clampdown-quarantine", "policy": None}
    assert result.after is not None
    assert result.after["policy"]["Statement"][0] == {
        "Sid": "ClampdownDenyAll",
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
    }


def test_quarantine_user_via_its_access_key(iam: Any, aws_clients: Any, recorder: Any, finding: Any) -> None:
    user(iam, "bob")
    key = iam.create_access_key(UserName="bob")["AccessKey"]["AccessKeyId"]
    target = Resource("access-key", id=key, account=ACCOUNT, details={"user_name": "bob", "user_type": "IAMUser"})
    action = REGISTRY["iam.quarantine-user"]({})
    assert_lifecycle(
        action, context(finding, aws_clients), target, lambda: inline_policies(iam, "user", "bob"), recorder
    )


def test_revoke_role_sessions_cutoff_and_idempotency(iam: Any, aws_clients: Any, recorder: Any, finding: Any) -> None:
    target = role(iam, "ec2-role")
    action = REGISTRY["iam.revoke-role-sessions"]({"issued_before": "now"})
    result = assert_lifecycle(
        action, context(finding, aws_clients), target, lambda: inline_policies(iam, "role", "ec2-role"), recorder
    )
    condition = result.after["policy"]["Statement"][0]["Condition"]  # type: ignore[index]
    assert condition == {"DateLessThan": {"aws:TokenIssueTime": "2026-11-23T12:00:00Z"}}

    # An earlier cut-off after a later one is already covered; a later one tightens it.
    action.apply(context(finding, aws_clients), target)
    earlier = REGISTRY["iam.revoke-role-sessions"]({"issued_before": "last_seen"})
    assert earlier.apply(context(finding, aws_clients), target).status == Status.ALREADY_CONTAINED
    later = ActionContext(finding=finding, aws=aws_clients, now=datetime(2026, 11, 24, tzinfo=UTC))
    assert action.apply(later, target).status == Status.CONTAINED
    doc = inline_policies(iam, "role", "ec2-role")["clampdown-revoke-older-sessions"]
    assert doc["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"] == "2026-11-24T00:00:00Z"


def test_revoke_uses_the_findings_last_seen(finding: Any) -> None:
    action = REGISTRY["iam.revoke-role-sessions"]({"issued_before": "last_seen"})
    plan = action.plan(ActionContext(finding=finding, now=NOW), Resource("iam-role", name="r"))
    document = json.loads(plan.calls[0].params["PolicyDocument"])
    assert document["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"] == "2017-12-08T15:32:49Z"
    assert finding.last_seen == "2017-12-08T15:32:49Z"


def test_deactivate_access_key(iam: Any, aws_clients: Any, recorder: Any, finding: Any) -> None:
    user(iam, "carol")
    key = iam.create_access_key(UserName="carol")["AccessKey"]["AccessKeyId"]
    other = iam.create_access_key(UserName="carol")["AccessKey"]["AccessKeyId"]

    def statuses() -> dict[str, str]:
        return {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="carol")["AccessKeyMetadata"]}

    # The finding may not name the key's owner: the action finds it.
    target = Resource("access-key", id=key, account=ACCOUNT)
    action = REGISTRY["iam.deactivate-access-key"]({})
    assert_lifecycle(action, context(finding, aws_clients), target, statuses, recorder)
    action.apply(context(finding, aws_clients), target)
    assert statuses() == {key: "Inactive", other: "Active"}, "only the named key is touched, and never deleted"


@pytest.mark.parametrize(
    ("key", "details", "reason"),
    [
        ("ASIAXXXXXXXXEXAMPLE", {"user_type": "AssumedRole"}, "temporary credentials"),
        ("AKIAXXXXXXXXEXAMPLE", {"user_type": "Root"}, "root access keys"),
    ],
)
def test_deactivate_skips_what_it_cannot_do(
    key: str, details: dict[str, str], reason: str, finding: Any, aws_clients: Any
) -> None:
    result = REGISTRY["iam.deactivate-access-key"]({}).apply(
        context(finding, aws_clients), Resource("access-key", id=key, details=details)
    )
    assert result.status == Status.SKIPPED and reason in (result.reason or "")


def test_deactivate_missing_key_fails_clearly(iam: Any, aws_clients: Any, finding: Any) -> None:
    user(iam, "dave")
    target = Resource("access-key", id="AKIAIOSFODNN7EXAMPLE", details={"user_name": "dave"})
    result = REGISTRY["iam.deactivate-access-key"]({}).apply(context(finding, aws_clients), target)
    assert result.status == Status.FAILED and result.error_code == "NoSuchEntity"
    assert result.calls_made == [] and result.undo == []


def test_detach_policies_role_and_user(iam: Any, aws_clients: Any, recorder: Any, finding: Any) -> None:
    admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    narrow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    for kind, make in (("role", role), ("user", user)):
        target = make(iam, f"admin-{kind}")
        key = {f"{kind.capitalize()}Name": target.name}
        custom = iam.create_policy(PolicyName=f"AdministratorAccess-{kind}", PolicyDocument=json.dumps(admin))[
            "Policy"
        ]["Arn"]
        readonly = iam.create_policy(PolicyName=f"ReadOnly-{kind}", PolicyDocument=json.dumps(narrow))["Policy"]["Arn"]
        getattr(iam, f"attach_{kind}_policy")(**key, PolicyArn=custom)
        getattr(iam, f"attach_{kind}_policy")(**key, PolicyArn=readonly)
        getattr(iam, f"put_{kind}_policy")(**key, PolicyName="god-mode", PolicyDocument=json.dumps(admin))
        getattr(iam, f"put_{kind}_policy")(**key, PolicyName="reader", PolicyDocument=json.dumps(narrow))

        def state(kind: str = kind, key: dict[str, Any] = key) -> tuple[list[str], list[str]]:
            attached = getattr(iam, f"list_attached_{kind}_policies")(**key)["AttachedPolicies"]
            return sorted(p["PolicyArn"] for p in attached), sorted(
                getattr(iam, f"list_{kind}_policies")(**key)["PolicyNames"]
            )

        action = REGISTRY["iam.detach-policies"]({"policies": [f"AdministratorAccess-{kind}"]})
        assert_lifecycle(action, context(finding, aws_clients), target, state, recorder)
        action.apply(context(finding, aws_clients), target)
        assert state() == ([readonly], ["reader"]), "only admin-like permissions are removed"


def test_disable_console_login(iam: Any, aws_clients: Any, recorder: Any, finding: Any) -> None:
    target = user(iam, "erin")
    iam.create_login_profile(UserName="erin", Password="Old-Password-123!", PasswordResetRequired=False)

    def profile() -> Any:
        try:
            return iam.get_login_profile(UserName="erin")["LoginProfile"]["UserName"]
        except iam.exceptions.NoSuchEntityException:
            return None

    action = REGISTRY["iam.disable-console-login"]({})
    result = assert_lifecycle(action, context(finding, aws_clients), target, profile, recorder)
    assert result.before == {"user_name": "erin", "login_profile": True, "password_reset_required": False}
    rollback = action.plan_rollback(context(finding, aws_clients), target, result.before)
    assert rollback.calls == []  # state is back: nothing more to roll back
    # The new password never appears in plans or records.
    action.apply(context(finding, aws_clients), target)
    plan = action.plan_rollback(context(finding, aws_clients), target, result.before)
    assert plan.to_dict()["calls"][0]["params"]["Password"] == "***"
    assert "reset" in plan.calls[0].purpose and "***" in str(plan.calls[0])


def test_guardrails_protect_principals(iam: Any, aws_clients: Any, recorder: Any, finding: Any) -> None:
    break_glass = role(iam, "BreakGlass")
    responder = role(iam, "clampdown-responder")
    tagged = role(iam, "tagged")
    tagged = Resource("iam-role", name="tagged", arn=tagged.arn, tags={"clampdown:protected": "true"})
    guard = Guardrails(allowed_principals=("arn:aws:iam::*:role/BreakGlass",), own_role_names=("clampdown-responder",))
    ctx = context(finding, aws_clients, guard=guard)
    recorder.clear()
    for target, reason in (
        (break_glass, "allow-listed"),
        (responder, "responder's own role"),
        (tagged, "tagged clampdown:protected"),
    ):
        result = REGISTRY["iam.quarantine-role"]({}).apply(ctx, target)
        assert result.status == Status.SKIPPED and reason in (result.reason or ""), result.to_dict()
        assert inline_policies(iam, "role", target.name or "") == {}
    assert not [op for op in recorder.operations if "Put" in op]


def test_access_denied_is_reported_with_undo_steps(iam: Any, aws_clients: Any, boto_session: Any, finding: Any) -> None:
    """A failure part-way lists what was changed and how to undo it."""
    target = role(iam, "half-done")
    admin = iam.create_policy(
        PolicyName="AdministratorAccess",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="half-done", PolicyArn=admin)
    iam.put_role_policy(
        RoleName="half-done",
        PolicyName="god",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}
        ),
    )

    from botocore.exceptions import ClientError

    def deny_delete(model: Any, **_: Any) -> None:
        if model.name == "DeleteRolePolicy":
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, model.name)

    boto_session.events.register("before-call.iam.DeleteRolePolicy", deny_delete)
    result = REGISTRY["iam.detach-policies"]({}).apply(context(finding, aws_clients), target)
    assert result.status == Status.FAILED and result.error_code == "AccessDenied"
    assert [c.operation for c in result.calls_made] == ["DetachRolePolicy"]
    assert any("AttachRolePolicy" in step and admin in step for step in result.undo), result.undo
