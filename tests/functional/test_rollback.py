"""Rollback of an incident on moto: reverse order, state restored, never re-contained afterwards."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.actions import REGISTRY
from chalicelib.findings import Finding, Resource
from chalicelib.incidents import StepRecord
from chalicelib.rollback import UnknownIncident, _not_undone, rollback_candidates, rollback_incident
from chalicelib.wiring import build_responder
from tests.conftest import CallRecorder, corpus_event
from tests.functional import responder_env as env
from tests.functional.test_responder import PLAYBOOK


@pytest.fixture
def contained(boto_session: Any, recorder: CallRecorder, tmp_path: Path) -> dict[str, Any]:
    env.create_tables(boto_session.client("dynamodb"))
    iam = boto_session.client("iam")
    iam.create_user(UserName="mallory")
    key = iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
    responder = build_responder(env.settings(), library=env.library(tmp_path, PLAYBOOK), session=boto_session)
    event = env.tor_user_finding(user="mallory", key=key)
    report = responder.handle(event)
    assert [s.status for s in report.steps] == ["contained", "contained", "done"]
    return {"iam": iam, "responder": responder, "event": event, "incident": report.incidents[0], "recorder": recorder}


def state(iam: Any) -> tuple[str, list[str]]:
    return (
        iam.list_access_keys(UserName="mallory")["AccessKeyMetadata"][0]["Status"],
        iam.list_user_policies(UserName="mallory")["PolicyNames"],
    )


def test_dry_run_plans_the_undo_and_changes_nothing(contained: dict[str, Any]) -> None:
    report = rollback_incident(contained["responder"].runner, contained["incident"], by="tester", dry_run=True)
    assert [s["action"] for s in report.steps] == ["iam.quarantine-user", "iam.deactivate-access-key"]
    calls = [c["call"] for s in report.steps for c in s["result"]["calls"]]
    assert calls == ["iam:DeleteUserPolicy", "iam:UpdateAccessKey"]
    assert [s["reason"] for s in report.skipped] == []  # notify.log was "done", not containment
    assert state(contained["iam"]) == ("Inactive", ["clampdown-quarantine"])


def test_rollback_restores_and_the_finding_never_recontains(contained: dict[str, Any]) -> None:
    responder, recorder = contained["responder"], contained["recorder"]
    report = rollback_incident(responder.runner, contained["incident"], by="tester")
    assert not report.failed
    assert [s["result"]["status"] for s in report.steps] == ["rolled-back", "rolled-back"]
    assert state(contained["iam"]) == ("Active", [])
    incident = responder.store.get_incident(contained["incident"])
    assert incident is not None and incident.status == "rolled-back"
    assert len(incident.suppressed) == 2
    assert any(e.message.startswith("rolled back by tester") for e in responder.store.timeline(incident.id))

    recorder.clear()
    responder.handle(contained["event"])  # a redelivery after the human released the user
    assert state(contained["iam"]) == ("Active", [])
    assert not [op for _, op, _ in recorder.calls if op in ("UpdateAccessKey", "PutUserPolicy")]


def test_unknown_incident(contained: dict[str, Any]) -> None:
    with pytest.raises(UnknownIncident):
        rollback_incident(contained["responder"].runner, "inc-nope", by="tester")


def test_a_rollback_leaves_a_resource_changed_since_and_says_so(contained: dict[str, Any]) -> None:
    """Someone replaced the quarantine policy after containment: restoring would undo their change."""
    responder, iam = contained["responder"], contained["iam"]
    narrower = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="mallory", PolicyName="clampdown-quarantine", PolicyDocument=json.dumps(narrower))

    planned = rollback_incident(responder.runner, contained["incident"], by="tester", dry_run=True)
    by_action = {s["action"]: s["result"] for s in planned.steps}
    assert by_action["iam.quarantine-user"]["calls"] == []
    assert "left as it is" in by_action["iam.quarantine-user"]["reason"]

    report = rollback_incident(responder.runner, contained["incident"], by="tester")
    by_action = {s["action"]: s["result"] for s in report.steps}
    assert by_action["iam.quarantine-user"]["status"] == "skipped" and not report.failed
    assert by_action["iam.deactivate-access-key"]["status"] == "rolled-back"
    assert state(iam) == ("Active", ["clampdown-quarantine"]), "the key is back; the changed policy is untouched"
    steps = {s.action: s.status for s in responder.store.list_steps(contained["incident"])}
    assert steps["iam.quarantine-user"] == "contained"
    assert any(
        "left as they are: iam.quarantine-user" in e.message for e in responder.store.timeline(contained["incident"])
    )


FAILS_PART_WAY = """\
name: tor-user-admin
description: Take admin rights from a user whose key is used from Tor.
match:
  source: [aws.guardduty]
  detail-type: [GuardDuty Finding]
  detail:
    type: [{prefix: "UnauthorizedAccess:IAMUser/"}]
steps:
  - action: iam.detach-policies
    target: iam-user
    on_error: continue
  - action: notify.log
"""


def test_a_step_that_failed_part_way_is_rolled_back_too(
    boto_session: Any, recorder: CallRecorder, tmp_path: Path
) -> None:
    """Detached the admin policy, then was denied deleting the inline one: the rollback re-attaches the policy."""
    env.create_tables(boto_session.client("dynamodb"))
    iam = boto_session.client("iam")
    iam.create_user(UserName="mallory")
    key = iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
    admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    arn = iam.create_policy(PolicyName="AdministratorAccess", PolicyDocument=json.dumps(admin))["Policy"]["Arn"]
    iam.attach_user_policy(UserName="mallory", PolicyArn=arn)
    iam.put_user_policy(UserName="mallory", PolicyName="god", PolicyDocument=json.dumps(admin))

    def deny(model: Any, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, model.name)

    boto_session.events.register("before-call.iam.DeleteUserPolicy", deny)
    responder = build_responder(env.settings(), library=env.library(tmp_path, FAILS_PART_WAY), session=boto_session)
    report = responder.handle(env.tor_user_finding(user="mallory", key=key))
    (detach,) = [s for s in report.steps if s.action == "iam.detach-policies"]
    assert detach.status == "failed" and [c["call"] for c in detach.result["calls_made"]] == ["iam:DetachUserPolicy"]
    assert iam.list_attached_user_policies(UserName="mallory")["AttachedPolicies"] == []

    incident = report.incidents[0]
    planned = rollback_incident(responder.runner, incident, by="tester", dry_run=True)
    assert [c["call"] for s in planned.steps for c in s["result"]["calls"]] == ["iam:AttachUserPolicy"]
    rolled = rollback_incident(responder.runner, incident, by="tester")
    assert [(s["action"], s["was"], s["result"]["status"]) for s in rolled.steps] == [
        ("iam.detach-policies", "failed part-way", "rolled-back")
    ]
    assert [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName="mallory")["AttachedPolicies"]] == [arn]
    assert iam.list_user_policies(UserName="mallory")["PolicyNames"] == ["god"], "never deleted: nothing to put back"


def test_a_failed_irreversible_step_is_listed_with_its_manual_undo_steps() -> None:
    """Evidence is never deleted by a rollback: a snapshot step that failed part-way is listed, with its undo."""
    failed = StepRecord(
        incident_id="inc-1",
        key="k",
        playbook="p",
        step=1,
        action="ec2.snapshot-volumes",
        status="failed",
        mode="auto",
        result={
            "status": "failed",
            "calls_made": [{"call": "ec2:CreateSnapshots", "params": {}}],
            "undo": ["review and revert manually: ec2:CreateSnapshots(...)"],
        },
    )
    todo, irreversible = rollback_candidates([failed])
    assert todo == [] and irreversible == [failed]
    assert _not_undone(failed)["undo"] == ["review and revert manually: ec2:CreateSnapshots(...)"]
    assert "failed part-way" in _not_undone(failed)["reason"]


def test_a_released_containment_is_refused_whatever_step_asks_again(contained: dict[str, Any]) -> None:
    """The suppression is what stops re-containment: the runner's context carries it to the guardrails, so even
    a step with another key (another playbook's parameters) for the same action and target is refused."""
    responder = contained["responder"]
    rollback_incident(responder.runner, contained["incident"], by="tester")
    incident = responder.store.get_incident(contained["incident"])
    assert incident is not None
    finding = Finding.from_dict(incident.finding)
    ctx = responder.runner.context(incident, finding, "another-playbook")
    target = Resource("iam-user", name="mallory", account=finding.account)
    result = REGISTRY["iam.quarantine-user"]({}).apply(ctx, target)
    assert result.status == "skipped" and "released by a rollback" in (result.reason or "")
    assert state(contained["iam"]) == ("Active", [])


LOCKDOWN = """\
name: s3-pentest
description: Lock down a bucket a penetration-testing distribution touched.
match:
  source: [aws.guardduty]
  detail-type: [GuardDuty Finding]
  detail:
    type: [{prefix: "PenTest:S3/"}]
steps:
  - action: s3.lockdown-bucket
    target: s3-bucket
"""


def test_a_large_bucket_policy_lives_in_the_evidence_bucket_and_comes_back(
    boto_session: Any, recorder: CallRecorder, tmp_path: Path
) -> None:
    """The step record keeps references (the executor's first-attempt before-state and the action's states and
    calls, one key scheme), stays small, and rollback reads the 300-statement policy back from the bucket."""
    env.create_tables(boto_session.client("dynamodb"))
    s3 = boto_session.client("s3")
    s3.create_bucket(Bucket="clampdown-evidence")
    s3.put_bucket_versioning(Bucket="clampdown-evidence", VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(Bucket="exposed-data")
    statements = [
        {
            "Sid": f"Partner{i:04d}",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{100000000000 + i}:root"},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::exposed-data/*",
        }
        for i in range(300)
    ]
    s3.put_bucket_policy(Bucket="exposed-data", Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    # The real GuardDuty S3 finding, its bucket (documented s3BucketDetails fields) pointed at the moto bucket, active.
    event = copy.deepcopy(corpus_event("guardduty/gd_awssamples-autoresp_PenTest-S3-ParrotLinux.json"))
    event["detail"]["resource"]["s3BucketDetails"][0].update(name="exposed-data", arn="arn:aws:s3:::exposed-data")
    event["detail"]["service"]["archived"] = False  # the published sample is archived
    settings = env.settings(evidence_bucket="clampdown-evidence", accounts=(event["account"],))
    responder = build_responder(settings, library=env.library(tmp_path, LOCKDOWN), session=boto_session)
    report = responder.handle(event)

    (step,) = [s for s in report.steps if s.action == "s3.lockdown-bucket"]
    assert step.status == "contained", step.result
    assert set(step.result["before"]) == {"evidence_key", "bytes", "sha256"}
    assert len(json.dumps(step.result)) < 8192
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="clampdown-evidence")["Contents"]]
    assert all(k.startswith(f"incidents/{report.incidents[0]}/s3.lockdown-bucket/s3-bucket:") for k in keys), keys
    assert any("/first-attempt-before-" in k for k in keys) and any("/apply-before-" in k for k in keys), keys

    rolled = rollback_incident(responder.runner, report.incidents[0], by="tester")
    assert [s["result"]["status"] for s in rolled.steps] == ["rolled-back"]
    policy = json.loads(s3.get_bucket_policy(Bucket="exposed-data")["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == [s["Sid"] for s in statements]
    (record,) = [s for s in responder.store.list_steps(report.incidents[0]) if s.action == "s3.lockdown-bucket"]
    assert len(json.dumps(record.to_dict())) < 16384, "the rollback's states and calls are references too"
