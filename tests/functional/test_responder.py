"""The deployed responder's path on moto: exactly-once effect, guardrails, retries, resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chalicelib.executor import RetryableStepError
from chalicelib.findings import InvalidEvent
from chalicelib.notify import RecordingNotifier
from chalicelib.responder import Responder, approval_command
from chalicelib.wiring import build_responder
from tests.conftest import ACCOUNT, CallRecorder, inject_fault
from tests.functional import responder_env as env

PLAYBOOK = """\
name: tor-user
description: Quarantine a user whose key is used from Tor.
match:
  source: [aws.guardduty]
  detail-type: [GuardDuty Finding]
  detail:
    type: [{prefix: "UnauthorizedAccess:IAMUser/"}]
steps:
  - action: iam.deactivate-access-key
  - action: iam.quarantine-user
    target: iam-user
  - action: notify.log
"""


@pytest.fixture
def world(boto_session: Any, recorder: CallRecorder) -> dict[str, Any]:
    env.create_tables(boto_session.client("dynamodb"))
    iam = boto_session.client("iam")
    iam.create_user(UserName="mallory")
    key = iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
    return {"iam": iam, "key": key, "session": boto_session}


def make(world: dict[str, Any], tmp_path: Path, *playbooks: str, **settings: Any) -> Responder:
    library = env.library(tmp_path, *(playbooks or (PLAYBOOK,)))
    return build_responder(
        env.settings(**settings), library=library, notifier=RecordingNotifier(), session=world["session"]
    )


def writes(recorder: CallRecorder, operation: str) -> int:
    return sum(1 for _, op, _ in recorder.calls if op == operation)


def key_status(world: dict[str, Any]) -> str:
    return world["iam"].list_access_keys(UserName="mallory")["AccessKeyMetadata"][0]["Status"]


def test_contains_once_despite_redelivery_and_finding_updates(
    world: dict[str, Any], tmp_path: Path, recorder: CallRecorder
) -> None:
    responder = make(world, tmp_path)
    event = env.tor_user_finding(user="mallory", key=world["key"])
    report = responder.handle(event)
    assert [s.status for s in report.steps] == ["contained", "contained", "done"]
    assert key_status(world) == "Inactive"
    assert "clampdown-quarantine" in world["iam"].list_user_policies(UserName="mallory")["PolicyNames"]

    # The same event again (SQS at-least-once), then GuardDuty's update of the same finding.
    responder.handle(event)
    responder.handle(env.tor_user_finding(user="mallory", key=world["key"], count=7, event_id="another-event-id"))
    assert writes(recorder, "UpdateAccessKey") == 1
    assert writes(recorder, "PutUserPolicy") == 1
    [incident] = responder.store.list_incidents()
    assert incident.deliveries == 3 and incident.status == "contained"
    assert len(responder.store.list_steps(incident.id)) == 3
    timeline = [e.message for e in responder.store.timeline(incident.id)]
    assert timeline[0].startswith("incident opened from guardduty finding UnauthorizedAccess:IAMUser/TorIPCaller")
    assert any(m.startswith("delivery 3 of the same finding") for m in timeline)


def test_poison_event_raises_a_clear_error(world: dict[str, Any], tmp_path: Path) -> None:
    responder = make(world, tmp_path)
    event = env.tor_user_finding(user="mallory", key=world["key"])
    del event["detail"]["type"]
    with pytest.raises(InvalidEvent, match="type"):
        responder.handle(event)
    assert responder.store.list_incidents() == []


def test_kill_switch_applies_nothing_and_reports(world: dict[str, Any], tmp_path: Path, recorder: CallRecorder) -> None:
    world["session"].client("ssm").put_parameter(Name=env.KILL_SWITCH, Value="on", Type="String")
    responder = make(world, tmp_path)
    report = responder.handle(env.tor_user_finding(user="mallory", key=world["key"]))
    assert [(s.action, s.status, s.reason) for s in report.steps] == [
        ("iam.deactivate-access-key", "skipped", "kill switch is on: nothing is applied"),
        ("iam.quarantine-user", "skipped", "kill switch is on: nothing is applied"),
        ("notify.log", "done", None),
    ]
    assert key_status(world) == "Active"
    assert writes(recorder, "PutUserPolicy") == 0


def test_blast_radius_pushes_steps_to_approval(world: dict[str, Any], tmp_path: Path) -> None:
    iam = world["iam"]
    responder = make(world, tmp_path, blast_radius={"default": 100, "iam-user": 1})
    iam.create_user(UserName="trudy")
    other = iam.create_access_key(UserName="trudy")["AccessKey"]["AccessKeyId"]
    responder.handle(env.tor_user_finding(user="mallory", key=world["key"]))
    second = env.tor_user_finding(user="trudy", key=other)
    second["detail"]["id"] = "0" * 32
    report = responder.handle(second)
    quarantine = next(s for s in report.steps if s.action == "iam.quarantine-user")
    assert quarantine.status == "pending-approval"
    assert quarantine.reason == "blast radius: more than 1 iam-user actions in 3600 s"
    assert iam.list_user_policies(UserName="trudy")["PolicyNames"] == []
    [approval] = responder.store.list_approvals()
    assert approval.step_key == quarantine.key
    assert responder.notifier.sent[-2][0] == "approval"


def test_protected_resource_is_never_touched(world: dict[str, Any], tmp_path: Path, recorder: CallRecorder) -> None:
    responder = make(world, tmp_path, guardrails={"protected_resources": ["mallory"]})
    report = responder.handle(env.tor_user_finding(user="mallory", key=world["key"]))
    statuses = {s.action: (s.status, s.reason) for s in report.steps}
    assert statuses["iam.quarantine-user"] == ("skipped", "protected: it matches protected resource mallory")
    assert writes(recorder, "PutUserPolicy") == 0


def test_throttling_is_retried_then_the_step_completes(
    world: dict[str, Any], tmp_path: Path, recorder: CallRecorder
) -> None:
    """A throttle is first retried by botocore; a storm longer than its retries fails the delivery
    (the message is redelivered), and the redelivery resumes without redoing finished steps."""
    storm = inject_fault(world["session"], "iam", "PutUserPolicy", "Throttling", times=3)
    responder = make(world, tmp_path)
    responder.runner.aws.retry = {"mode": "standard", "total_max_attempts": 2}
    event = env.tor_user_finding(user="mallory", key=world["key"])
    with pytest.raises(RetryableStepError, match="Throttling"):
        responder.handle(event)
    assert storm.sent == 2, "botocore retried the throttled call once before giving up"
    assert world["iam"].list_user_policies(UserName="mallory")["PolicyNames"] == []
    [incident] = responder.store.list_incidents()
    steps = {s.action: s for s in responder.store.list_steps(incident.id)}
    assert steps["iam.deactivate-access-key"].status == "contained"
    assert steps["iam.quarantine-user"].status == "running" and steps["iam.quarantine-user"].attempts == 1

    report = responder.handle(event)  # the redelivery: one more throttle, retried, then success
    assert storm.sent == 3
    assert [s.status for s in report.steps] == ["contained", "contained", "done"]
    assert writes(recorder, "UpdateAccessKey") == 1
    final = responder.store.get_step(incident.id, steps["iam.quarantine-user"].key)
    assert final is not None and final.attempts == 2
    # rollback restores the state from before the first attempt
    assert final.result is not None and "before_this_attempt" in final.result
    assert final.result["before"] == {"policy_name": "clampdown-quarantine", "policy": None}


def test_access_denied_fails_the_step_and_stops_the_playbook(world: dict[str, Any], tmp_path: Path) -> None:
    from botocore.exceptions import ClientError

    def deny(model: Any, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, model.name)

    world["session"].events.register("before-call.iam.UpdateAccessKey", deny)
    responder = make(world, tmp_path)
    report = responder.handle(env.tor_user_finding(user="mallory", key=world["key"]))
    assert [(s.status, s.result and s.result.get("error_code")) for s in report.steps[:1]] == [
        ("failed", "AccessDenied")
    ]
    assert report.steps[1].status == "skipped" and "on_error is stop" in (report.steps[1].reason or "")
    [incident] = responder.store.list_incidents()
    assert incident.status == "failed"


def test_cross_account_target_is_reached_through_the_member_role(
    boto_session: Any, tmp_path: Path, recorder: CallRecorder
) -> None:
    env.create_tables(boto_session.client("dynamodb"))
    member = "111111111111"
    creds = boto_session.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{member}:role/ClampdownMemberResponder", RoleSessionName="setup"
    )["Credentials"]
    member_iam = boto_session.client(
        "iam",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    member_iam.create_user(UserName="remote")
    key = member_iam.create_access_key(UserName="remote")["AccessKey"]["AccessKeyId"]
    responder = build_responder(env.settings(), library=env.library(tmp_path, PLAYBOOK), session=boto_session)
    report = responder.handle(env.tor_user_finding(account=member, user="remote", key=key))
    assert [s.status for s in report.steps] == ["contained", "contained", "done"]
    assert member_iam.list_access_keys(UserName="remote")["AccessKeyMetadata"][0]["Status"] == "Inactive"
    assume = [p for _, op, p in recorder.calls if op == "AssumeRole" and p["RoleSessionName"] != "setup"]
    assert assume and assume[0]["RoleArn"] == f"arn:aws:iam::{member}:role/ClampdownMemberResponder"
    assert assume[0]["RoleSessionName"].startswith("clampdown-inc-")


def test_events_from_unknown_accounts_and_custom_sources_are_refused(world: dict[str, Any], tmp_path: Path) -> None:
    responder = make(world, tmp_path)
    stranger = env.tor_user_finding(account="999999999999", user="mallory", key=world["key"])
    assert "not a configured account" in (responder.handle(stranger).refused or "")
    forged = env.tor_user_finding(user="mallory", key=world["key"])
    forged["source"] = "com.attacker"
    assert "not an AWS source" in (responder.handle(forged).refused or "")
    assert key_status(world) == "Active"
    assert responder.telemetry.counts["EventsRefusedAccount"] == 1
    assert responder.telemetry.counts["EventsRefusedSource"] == 1


def test_approval_mode_waits_then_runs_once_when_approved(
    world: dict[str, Any], tmp_path: Path, recorder: CallRecorder
) -> None:
    responder = make(world, tmp_path, PLAYBOOK.replace("steps:", "mode: approval\nsteps:"))
    report = responder.handle(env.tor_user_finding(user="mallory", key=world["key"]))
    assert [s.status for s in report.steps] == ["pending-approval", "pending-approval", "pending-approval"]
    assert key_status(world) == "Active"
    step = report.steps[0]
    assert responder.store.decide_approval(step.approval_id or "", "approved", "U123", "2026-11-23T12:00:00Z")
    assert not responder.store.decide_approval(step.approval_id or "", "denied", "U999", "2026-11-23T12:00:01Z")
    command = approval_command(step.incident_id, step.approval_id or "")
    assert responder.handle(command).steps[0].status == "contained"
    responder.handle(command)  # a duplicate command changes nothing
    assert writes(recorder, "UpdateAccessKey") == 1
    assert key_status(world) == "Inactive"
    done = responder.store.get_step(step.incident_id, step.key)
    assert done is not None and done.approved_by == "U123"


def test_self_caused_cloudtrail_events_are_ignored(world: dict[str, Any], tmp_path: Path) -> None:
    from tests.conftest import corpus_event

    trail = """\
name: iam-policy-changes
description: Inline policies put on users.
match:
  source: [aws.iam]
  detail-type: [AWS API Call via CloudTrail]
steps:
  - action: notify.log
"""
    responder = make(world, tmp_path, trail)
    record = corpus_event("cloudtrail/ct_raw_panther_PutUserPolicy_An-AWS-IAM-Access-Key-was-Compromised.json")
    from chalicelib.findings import canonical_event

    event = canonical_event(record)
    event["account"] = ACCOUNT
    event["detail"]["recipientAccountId"] = ACCOUNT
    identity = event["detail"]["userIdentity"]
    identity.update(
        type="AssumedRole", arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/clampdown-dev/respond", accountId=ACCOUNT
    )
    identity["sessionContext"] = {
        "sessionIssuer": {
            "type": "Role",
            "arn": f"arn:aws:iam::{ACCOUNT}:role/clampdown-dev",
            "userName": "clampdown-dev",
        }
    }
    report = responder.handle(event)
    assert report.refused == "the responder's own API call (self-loop guard)"
    assert responder.telemetry.counts["EventsSelfCaused"] == 1
