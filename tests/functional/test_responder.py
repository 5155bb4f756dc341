"""The deployed responder's path on moto: exactly-once effect, guardrails, retries, resume."""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from chalicelib.executor import RetryableStepError
from chalicelib.findings import InvalidEvent
from chalicelib.notify import RecordingNotifier
from chalicelib.responder import Responder, approval_command
from chalicelib.wiring import build_responder
from tests.conftest import ACCOUNT, CallRecorder, inject_fault, member_client
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
    # Approval ids are typed on command lines (clampdown approve ID): never one that reads as an option.
    assert re.fullmatch(r"[0-9a-f]{32}", approval.id), approval.id
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
    assert report.steps[1].status == "skipped"
    assert report.steps[1].reason == "step 1 (iam.deactivate-access-key) failed and on_error is stop", (
        "numbered from 1, as every view of an incident numbers its steps"
    )
    [incident] = responder.store.list_incidents()
    assert incident.status == "failed"


def test_cross_account_target_is_reached_through_the_member_role(
    boto_session: Any, tmp_path: Path, recorder: CallRecorder
) -> None:
    env.create_tables(boto_session.client("dynamodb"))
    member = "111111111111"
    member_iam = member_client(boto_session, member)
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


TWO_TAGS = """\
name: two-tags
description: Two tag steps on the same user with different tags.
match:
  source: [aws.guardduty]
  detail-type: [GuardDuty Finding]
steps:
  - action: tag
    target: iam-user
    params: {tags: {"clampdown:first": "a"}}
  - action: tag
    target: iam-user
    params: {tags: {"clampdown:second": "b"}}
"""


def test_two_steps_on_one_target_with_different_parameters_both_run(
    world: dict[str, Any], tmp_path: Path, recorder: CallRecorder
) -> None:
    responder = make(world, tmp_path, TWO_TAGS)
    event = env.tor_user_finding(user="mallory", key=world["key"])
    report = responder.handle(event)
    assert [s.status for s in report.steps] == ["contained", "contained"]
    tags = {t["Key"]: t["Value"] for t in world["iam"].list_user_tags(UserName="mallory")["Tags"]}
    assert (tags["clampdown:first"], tags["clampdown:second"]) == ("a", "b")
    [incident] = responder.store.list_incidents()
    records = responder.store.list_steps(incident.id)
    assert [(r.step, r.params) for r in records] == [
        (0, {"tags": {"clampdown:first": "a"}}),
        (1, {"tags": {"clampdown:second": "b"}}),
    ]
    responder.handle(env.tor_user_finding(user="mallory", key=world["key"], count=5, event_id="update"))
    assert writes(recorder, "TagUser") == 2


BAD_TEMPLATES = """\
name: bad-templates
description: Parameters that only break once the finding fills them in.
match:
  source: [aws.guardduty]
  detail-type: [GuardDuty Finding]
steps:
  - action: notify.log
    params: {level: "{{ finding.type }}"}
  - action: iam.deactivate-access-key
  - action: tag
    target: iam-user
    params: {tags: {"clampdown:event": "{{ event | json }}"}}
  - action: iam.quarantine-user
    target: iam-user
"""


def test_a_rendered_parameter_the_action_refuses_fails_its_step_and_on_error_decides(
    world: dict[str, Any], tmp_path: Path
) -> None:
    responder = make(world, tmp_path, BAD_TEMPLATES)
    report = responder.handle(env.tor_user_finding(user="mallory", key=world["key"]))
    level, deactivate, tag, quarantine = report.steps
    assert (level.status, level.result and level.result["error_code"]) == ("failed", "InvalidParameter")
    assert level.reason == (
        "invalid parameter after templates were filled in: params.level: "
        "'UnauthorizedAccess:IAMUser/TorIPCaller' is not one of debug, error, info, warning"
    )
    assert deactivate.status == "contained", "a notification step continues by default"
    assert key_status(world) == "Inactive"
    assert tag.status == "failed"
    assert "params.tags.clampdown:event: the value is longer than 1024 characters" in (tag.reason or "")
    assert quarantine.status == "skipped" and "on_error is stop" in (quarantine.reason or "")
    assert world["iam"].list_user_policies(UserName="mallory")["PolicyNames"] == []
    assert responder.telemetry.counts["StepsInvalidParameter"] == 2


def test_archived_findings_are_not_acted_on_unless_the_stage_says_so(
    world: dict[str, Any], tmp_path: Path, recorder: CallRecorder
) -> None:
    event = env.tor_user_finding(user="mallory", key=world["key"])
    event["detail"]["service"]["archived"] = True
    responder = make(world, tmp_path)
    report = responder.handle(event)
    assert report.steps == [] and report.incidents == []
    assert key_status(world) == "Active"
    assert responder.telemetry.counts["FindingsArchivedNotActedOn"] == 1
    assert (
        "finding not acted on",
        {
            "reason": "the finding is archived or suppressed (CLAMPDOWN_ACT_ON_ARCHIVED is off)",
            "finding_id": event["detail"]["id"],
            "finding_type": "UnauthorizedAccess:IAMUser/TorIPCaller",
        },
    ) in responder.telemetry.events

    # An incident that exists records the archived update of its finding, with the reason.
    active = env.tor_user_finding(user="mallory", key=world["key"])
    responder.handle(active)
    archived_update = env.tor_user_finding(user="mallory", key=world["key"], count=9, event_id="archived-update")
    archived_update["detail"]["service"]["archived"] = True
    assert responder.handle(archived_update).incidents != []
    [incident] = responder.store.list_incidents()
    assert incident.deliveries == 2
    last = responder.store.timeline(incident.id)[-1].message
    assert last.endswith("no playbook plans steps for it: the finding is archived or suppressed")

    acting = make(world, tmp_path, act_on_archived=True)
    other = "0" * 32
    event["detail"]["id"] = other
    world["iam"].update_access_key(UserName="mallory", AccessKeyId=world["key"], Status="Active")
    assert [s.status for s in acting.handle(event).steps] == ["contained", "already-contained", "done"]
    assert key_status(world) == "Inactive"


def test_a_detail_type_its_source_does_not_publish_is_refused(world: dict[str, Any], tmp_path: Path) -> None:
    responder = make(world, tmp_path)
    forged = env.tor_user_finding(user="mallory", key=world["key"])
    forged["detail-type"] = "Security Hub Findings - Imported"
    report = responder.handle(forged)
    assert report.refused == "detail-type 'Security Hub Findings - Imported' is not an event 'aws.guardduty' publishes"
    assert responder.telemetry.counts["EventsRefusedDetailType"] == 1
    assert key_status(world) == "Active" and responder.store.list_incidents() == []


class RacingRunners:
    """Two Lambda instances carrying out the same approval command at once.

    DynamoDB applies each request atomically; moto in-process does not across threads, so every DynamoDB
    request of the session is serialized here as the service would. Once armed, both runners are held
    right after they read the step record until both have read it, so both see it waiting for approval.
    """

    def __init__(self, session: Any) -> None:
        self.requests = threading.Lock()
        self.both_read = threading.Barrier(2, timeout=20)
        self.armed = False
        session.events.register("before-call.dynamodb", self.before)
        session.events.register("after-call.dynamodb", self.after)

    def before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        reads_step = model.name == "GetItem" and params.get("Key", {}).get("sk", {}).get("S", "").startswith("STEP#")
        if self.armed and reads_step:
            self.both_read.wait()
        if not self.requests.acquire(timeout=20):
            raise RuntimeError("a DynamoDB request never finished")

    def after(self, **_: Any) -> None:
        self.requests.release()


@pytest.mark.parametrize("idempotency", [True, False], ids=["with-idempotency-table", "without"])
def test_an_approved_step_runs_once_when_two_runners_get_the_command_at_once(
    idempotency: bool, world: dict[str, Any], tmp_path: Path, recorder: CallRecorder
) -> None:
    race = RacingRunners(world["session"])
    approval_playbook = PLAYBOOK.replace("steps:", "mode: approval\nsteps:")
    overrides: dict[str, Any] = {} if idempotency else {"idempotency_table": None}
    first = make(world, tmp_path, approval_playbook, **overrides)
    second = make(world, tmp_path, approval_playbook, **overrides)
    step = first.handle(env.tor_user_finding(user="mallory", key=world["key"])).steps[0]
    assert first.store.decide_approval(step.approval_id or "", "approved", "U123", "2026-11-23T12:00:00Z")
    command = approval_command(step.incident_id, step.approval_id or "")

    race.armed = True
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def carry_out(responder: Responder) -> None:
        try:
            outcomes.append(responder.handle(command).steps[0].status)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=carry_out, args=(r,)) for r in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert writes(recorder, "UpdateAccessKey") == 1
    assert key_status(world) == "Inactive"
    stored = first.store.get_step(step.incident_id, step.key)
    assert stored is not None and stored.status == "contained" and stored.attempts == 1
    assert [h["status"] for h in stored.history] == ["pending-approval", "contained"]
    contained = [e for e in first.store.timeline(step.incident_id) if e.message.endswith(": contained")]
    assert len(contained) == 1
    assert sorted(outcomes) in (["contained", "contained"], ["contained", "running"])


class PowertoolsLines(logging.Handler):
    """Every line the responder's Powertools logger writes, as the JSON it would print."""

    def __init__(self) -> None:
        super().__init__()
        from chalicelib.handlers import logger

        self.powertools = logger()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.powertools.registered_formatter.format(record)))

    def __enter__(self) -> PowertoolsLines:
        logging.getLogger(self.powertools.name).addHandler(self)
        return self

    def __exit__(self, *_: Any) -> None:
        logging.getLogger(self.powertools.name).removeHandler(self)
        self.powertools.remove_keys(["correlation_id"])


def test_log_lines_carry_the_incident_id_as_soon_as_it_is_known(
    world: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.handlers import PowertoolsTelemetry

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    responder = build_responder(
        env.settings(),
        library=env.library(tmp_path, PLAYBOOK),
        notifier=RecordingNotifier(),
        telemetry=PowertoolsTelemetry(),
        session=world["session"],
    )
    with PowertoolsLines() as captured:
        report = responder.handle(env.tor_user_finding(user="mallory", key=world["key"]))
        [incident_id] = report.incidents
        step_lines = [
            line
            for line in captured.lines
            if isinstance(line["message"], dict) and line["message"].get("incident") == incident_id
        ]
        assert step_lines, "the notify.log step wrote its line through the responder's logger"
        assert {line.get("correlation_id") for line in step_lines} == {incident_id}

        captured.lines.clear()
        stranger = env.tor_user_finding(account="999999999999", user="mallory", key=world["key"])
        responder.handle(stranger)
        [refused] = [line for line in captured.lines if line["message"] == "event refused"]
        assert "correlation_id" not in refused, "a later message's lines never carry an earlier incident's id"


def test_containment_through_an_approval_records_time_to_containment(world: dict[str, Any], tmp_path: Path) -> None:
    responder = make(world, tmp_path, PLAYBOOK.replace("steps:", "mode: approval\nsteps:"))
    telemetry = responder.telemetry
    steps = responder.handle(env.tor_user_finding(user="mallory", key=world["key"])).steps
    assert "TimeToContainmentSeconds" not in telemetry.timings
    for step in steps:
        assert responder.store.decide_approval(step.approval_id or "", "approved", "U123", "2026-11-23T12:00:00Z")
    responder.handle(env.tor_user_finding(account="999999999999", user="x", key="y"))  # clears the correlation
    assert telemetry.correlation_id is None
    for step in steps:
        responder.handle(approval_command(step.incident_id, step.approval_id or ""))
        assert telemetry.correlation_id == step.incident_id
    [incident] = responder.store.list_incidents()
    assert incident.status == "contained"
    [seconds] = telemetry.timings["TimeToContainmentSeconds"]
    assert seconds > 0  # the sample finding is from 2017: measured from the stored finding's time
    responder.handle(approval_command(steps[0].incident_id, steps[0].approval_id or ""))  # a duplicate
    assert len(telemetry.timings["TimeToContainmentSeconds"]) == 1
