"""IAM actions on moto: real roles, users, keys and policies; apply, idempotency and rollback."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.actions import REGISTRY, ActionContext, Status
from chalicelib.findings import Resource, normalize
from chalicelib.findings.model import Actor
from chalicelib.guardrails import Guardrails
from tests.conftest import ACCOUNT, REGION, corpus_event, member_client
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
    extra.setdefault("incident_id", "inc-1")
    extra.setdefault("now", NOW)
    return ActionContext(finding=finding, playbook="test", aws=aws_clients, **extra)


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

    # The same finding delivered again a minute (or a day) later: its activity is covered, nothing is written.
    assert action.apply(context(finding, aws_clients), target).status == Status.CONTAINED
    for later in (NOW + timedelta(minutes=1), NOW + timedelta(days=1)):
        again = action.apply(context(finding, aws_clients, now=later), target)
        assert again.status == Status.ALREADY_CONTAINED and again.calls_made == [], again.to_dict()
    earlier = REGISTRY["iam.revoke-role-sessions"]({"issued_before": "last_seen"})
    assert earlier.apply(context(finding, aws_clients), target).status == Status.ALREADY_CONTAINED

    # An update of the finding with activity after the cut-off: sessions issued since are revoked too.
    updated = dataclasses.replace(finding, last_seen="2026-11-23T18:30:00.250Z")
    tomorrow = NOW + timedelta(days=1)
    assert action.apply(context(updated, aws_clients, now=tomorrow), target).status == Status.CONTAINED
    doc = inline_policies(iam, "role", "ec2-role")["clampdown-revoke-older-sessions"]
    assert doc["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"] == "2026-11-24T12:00:00Z"
    pinned = REGISTRY["iam.revoke-role-sessions"]({"issued_before": "last_seen"})
    # last_seen cut-offs round up to the second, so the session active at .250 is revoked too
    document = pinned.plan(ActionContext(finding=updated), target).calls[0].params["PolicyDocument"]
    assert "2026-11-23T18:30:01Z" in document


def test_rolling_back_an_earlier_incident_leaves_a_later_deny(iam: Any, aws_clients: Any, finding: Any) -> None:
    """Incidents share the role's deny policy: a rollback restores it only while it is what its step wrote."""
    target = role(iam, "shared-role")
    action = REGISTRY["iam.revoke-role-sessions"]({})
    first = action.apply(context(finding, aws_clients, incident_id="inc-a"), target)
    later_finding = dataclasses.replace(finding, id="later", last_seen="2026-11-23T13:00:00Z")
    second = action.apply(
        context(later_finding, aws_clients, incident_id="inc-b", now=NOW + timedelta(hours=2)), target
    )
    assert (first.status, second.status) == (Status.CONTAINED, Status.CONTAINED)

    def cutoff() -> str | None:
        doc = inline_policies(iam, "role", "shared-role").get("clampdown-revoke-older-sessions")
        return doc["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"] if doc else None

    ctx = context(finding, aws_clients, incident_id="inc-a")
    plan = action.plan_rollback(ctx, target, first.before or {}, wrote=first.after)
    assert plan.calls == [] and "left as it is" in (plan.refused or "")
    left = action.rollback(ctx, target, first.before or {}, wrote=first.after)
    assert left.status == Status.SKIPPED and "later incident" in (left.reason or ""), left.to_dict()
    assert cutoff() == "2026-11-23T14:00:00Z", "incident B's deny is still there"

    # B's rollback puts back what B found (A's deny); then A's deny is A's again and goes.
    ctx_b = context(later_finding, aws_clients, incident_id="inc-b")
    assert action.rollback(ctx_b, target, second.before or {}, wrote=second.after).status == Status.ROLLED_BACK
    assert cutoff() == "2026-11-23T12:00:00Z"
    assert action.rollback(ctx, target, first.before or {}, wrote=first.after).status == Status.ROLLED_BACK
    assert cutoff() is None


def member_iam(boto_session: Any, account: str) -> Any:
    """IAM in another (moto) account, through the role the responder assumes there."""
    return member_client(boto_session, account)


CT_ASSUMED_ROLE = "cloudtrail/ct_eb_c7n_CreateBucket_AssumedRole_event-cloud-trail-s3.json"


def test_revoke_targets_the_role_behind_a_cloudtrail_caller(boto_session: Any, aws_clients: Any) -> None:
    """A CloudTrail event by an assumed-role session names no role resource: the session issuer is the target,
    reached in its own account through the member role."""
    event = corpus_event(CT_ASSUMED_ROLE)
    found = normalize(event)[0]
    action = REGISTRY["iam.revoke-role-sessions"]
    assert found.resources_of("iam-role") == ()
    (target,) = action.targets(found, ("iam-role",))
    assert (target.kind, target.name, target.account) == ("iam-role", "Sandbox_Dev", "101010101111")
    assert target.arn == "arn:aws:iam::101010101111:role/Sandbox_Dev"

    member = member_iam(boto_session, "101010101111")
    member.create_role(RoleName="Sandbox_Dev", AssumeRolePolicyDocument=TRUST)
    ctx = ActionContext(finding=found, incident_id="inc-ct", aws=aws_clients.for_incident("inc-ct"), now=NOW)
    plan = action({}).plan(ctx, target)
    assert any("sessionIssuer" in note and "assumed-role/Sandbox_Dev/user" in note for note in plan.notes), plan.notes
    assert action({}).apply(ctx, target).status == Status.CONTAINED
    assert member.list_role_policies(RoleName="Sandbox_Dev")["PolicyNames"] == ["clampdown-revoke-older-sessions"]


def test_revoke_resolves_an_assumed_role_session_arn_without_an_issuer(finding: Any) -> None:
    actor = Actor(principal_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/alice", user_type="AssumedRole")
    found = dataclasses.replace(finding, actor=actor, actors=(actor,), resources=())
    (target,) = REGISTRY["iam.revoke-role-sessions"].targets(found, ("iam-role",))
    assert (target.name, target.account, target.arn) == ("ops", ACCOUNT, None)
    # An IAM user's long-term key, or a user's federation token, has no role behind it.
    user = Actor(
        principal_arn=f"arn:aws:iam::{ACCOUNT}:user/bob", session_issuer_arn=f"arn:aws:iam::{ACCOUNT}:user/bob"
    )
    assert (
        REGISTRY["iam.revoke-role-sessions"].targets(dataclasses.replace(found, actor=user, actors=()), ("iam-role",))
        == ()
    )


def test_revoke_skips_a_service_linked_caller_and_the_responder_itself(aws_clients: Any, recorder: Any) -> None:
    found = normalize(corpus_event(CT_ASSUMED_ROLE))[0]
    linked = "arn:aws:iam::101010101111:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"
    service_actor = dataclasses.replace(found.actor, session_issuer_arn=linked)
    by_service = dataclasses.replace(found, actor=service_actor, actors=(service_actor,))
    action = REGISTRY["iam.revoke-role-sessions"]
    (target,) = action.targets(by_service, ("iam-role",))
    plan = action({}).plan(ActionContext(finding=by_service), target)
    assert plan.calls == [] and "service-linked role" in (plan.refused or ""), plan.to_dict()

    (own,) = action.targets(found, ("iam-role",))
    guard = Guardrails(own_role_names=("Sandbox_Dev",))
    ctx = ActionContext(finding=found, aws=aws_clients, guard=guard, now=NOW)
    recorder.clear()
    result = action({}).apply(ctx, own)
    assert result.status == Status.SKIPPED and "responder's own role" in (result.reason or "")
    assert recorder.calls == []


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


def test_detach_policies_judges_customer_managed_policies_by_their_document(
    iam: Any, aws_clients: Any, recorder: Any, finding: Any
) -> None:
    """A customer managed policy that grants everything is admin-like whatever its name; a narrow one is not."""
    documents = {
        "god-mode": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
        "iam-anything": {
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": ["iam:*"], "Resource": ["*"]},
        },
        "all-but-billing": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "NotAction": ["aws-portal:*"], "Resource": "*"}],
        },
        "reader": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]},
    }
    target = role(iam, "x")
    arns = {}
    for name, document in documents.items():
        arns[name] = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"]["Arn"]
        iam.attach_role_policy(RoleName="x", PolicyArn=arns[name])
    # Only the default version counts: a non-default admin-like version of "reader" does not make it admin-like.
    iam.create_policy_version(
        PolicyArn=arns["reader"], PolicyDocument=json.dumps(documents["god-mode"]), SetAsDefault=False
    )

    def attached() -> list[str]:
        return sorted(p["PolicyName"] for p in iam.list_attached_role_policies(RoleName="x")["AttachedPolicies"])

    action = REGISTRY["iam.detach-policies"]({})
    result = assert_lifecycle(action, context(finding, aws_clients), target, attached, recorder)
    admin = sorted(arns[n] for n in ("god-mode", "iam-anything", "all-but-billing"))
    assert sorted((result.before or {})["attached"]) == admin
    action.apply(context(finding, aws_clients), target)
    assert attached() == ["reader"]


def test_disable_console_login_of_a_missing_user_fails(aws_clients: Any, finding: Any) -> None:
    """No such user is not "no console password": it fails with AWS's code, as every other action does."""
    ghost = Resource("iam-user", name="ghost", account=ACCOUNT)
    for action in ("iam.disable-console-login", "iam.detach-policies"):
        result = REGISTRY[action]({}).apply(context(finding, aws_clients), ghost)
        assert result.status == Status.FAILED and result.error_code == "NoSuchEntity", result.to_dict()
        assert result.calls_made == []


def test_console_login_rollback_requires_a_password_reset(
    iam: Any, aws_clients: Any, recorder: Any, finding: Any
) -> None:
    """The restored login profile has an unknown random password and a reset required, and says so.

    moto 5.2 keeps ``PasswordResetRequired`` only from ``UpdateLoginProfile`` (its ``CreateLoginProfile``
    drops the flag), so the flag is checked on the request botocore sent, validated against the API model;
    the profile itself is read back from moto.
    """
    target = user(iam, "frank")
    iam.create_login_profile(UserName="frank", Password="Old-Password-123!")
    action = REGISTRY["iam.disable-console-login"]({})
    ctx = context(finding, aws_clients)
    contained = action.apply(ctx, target)
    recorder.clear()
    rolled = action.rollback(ctx, target, contained.before or {}, wrote=contained.after)
    assert rolled.status == Status.ROLLED_BACK, rolled.to_dict()
    (create,) = [params for _, op, params in recorder.calls if op == "CreateLoginProfile"]
    assert create["PasswordResetRequired"] is True and create["UserName"] == "frank"
    assert create["Password"] != "Old-Password-123!" and len(create["Password"]) >= 20
    assert iam.get_login_profile(UserName="frank")["LoginProfile"]["UserName"] == "frank"
    (call,) = rolled.to_dict()["calls_made"]
    assert call["params"]["Password"] == "***" and "password reset required" in call["purpose"]


def test_simulate_plans_the_callers_role(tmp_path: Any) -> None:
    """The offline path (``clampdown simulate``) asks the action for its targets: the CloudTrail caller's role."""
    from chalicelib.planner import evaluate
    from tests.functional import responder_env as env

    playbook = """\
name: ct-revoke
description: Revoke the sessions of the caller of CreateBucket.
match:
  source: [aws.s3]
steps:
  - action: iam.revoke-role-sessions
"""
    evaluation = evaluate(corpus_event(CT_ASSUMED_ROLE), env.library(tmp_path, playbook))
    (step,) = [s for plan in evaluation.plans for s in plan.steps]
    assert step.skipped is None and step.target is not None and step.target.name == "Sandbox_Dev"
    assert step.plan is not None and [c.operation for c in step.plan.calls] == ["PutRolePolicy"]
