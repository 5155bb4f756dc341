"""Faults at the AWS boundary, through the Lambda SQS handler on the sandbox deployment.

Every test ends the same way: nothing lost (the message was handled, or is still queued, or is in the
dead-letter queue), nothing done twice (each containment change reached AWS once), and the incident's
state consistent (its status follows from its steps; no step left running).

Faults are botocore hooks on the responder's own session (``tests.reliability.harness``): AWS error
responses parsed by botocore, connection errors raised where botocore raises them, and the Lambda
process dying (:class:`LambdaDied`, a ``BaseException`` like the runtime's kill) after a call succeeded.
Retries never sleep: botocore's backoff delays are recorded (``backoff``) instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

from chalicelib.responder import derive_status
from clampdown import sandbox as sb
from clampdown import scenarios
from tests.reliability.conftest import SleepLog
from tests.reliability.harness import PLAYBOOKS, Deployment, LambdaDied, deployment, table_is

TOR_USER, ROLE_SESSION, INSTANCE, BUCKET, LAMBDA = scenarios.DEMO


# -- checks shared by every test -----------------------------------------------------------------
def key_status(stage: Deployment) -> str:
    iam = stage.client("iam")
    return str(iam.list_access_keys(UserName=stage.box.env.user_name)["AccessKeyMetadata"][0]["Status"])


def assert_consistent(stage: Deployment) -> list[Any]:
    """Every incident's status follows from its steps, and no step is left half-done."""
    store = stage.store()
    incidents = store.list_incidents()
    for incident in incidents:
        steps = store.list_steps(incident.id)
        assert incident.status == derive_status(steps), (incident.status, [(s.action, s.status) for s in steps])
        assert all(s.status not in ("running", "planned") for s in steps), [(s.action, s.status) for s in steps]
        assert len({s.key for s in steps}) == len(steps)
    return incidents


def steps_by_action(stage: Deployment) -> dict[str, Any]:
    store = stage.store()
    [incident] = store.list_incidents()
    return {s.action: s for s in store.list_steps(incident.id)}


# -- throttling -----------------------------------------------------------------------------------
def test_a_throttling_storm_is_retried_with_backoff_within_one_delivery(stage: Deployment, backoff: SleepLog) -> None:
    """Every IAM call and every DynamoDB call is throttled twice before it goes through."""
    iam = stage.faults.error("iam", "*", "Throttling", attempts_below=2)
    dynamodb = stage.faults.error(
        "dynamodb", "*", "ProvisionedThroughputExceededException", protocol="json", attempts_below=2
    )
    stage.send(TOR_USER.build(stage.box.env))
    stats = stage.drain()

    assert (stats.delivered, stats.failed, stats.acknowledged) == (1, 0, 1), stats.errors
    assert iam.hits >= 2 and dynamodb.hits >= 2
    assert len(backoff.delays) == iam.hits + dynamodb.hits, "every throttled attempt was followed by a backoff"
    assert all(0 <= d <= 20 for d in backoff.delays)  # botocore's standard mode: jittered, capped at 20 s
    assert key_status(stage) == "Inactive"
    assert stage.sent("UpdateAccessKey") == 1
    assert_consistent(stage)
    assert stage.queued() == 0 and stage.dead_letters() == []


@pytest.mark.parametrize(("code", "status"), [("Throttling", 400), ("ServiceFailure", 500)])
def test_a_storm_longer_than_the_retries_fails_the_delivery_then_completes_once(
    stage: Deployment, backoff: SleepLog, code: str, status: int
) -> None:
    """botocore makes 6 attempts; 7 throttles (or IAM 500s) fail the first delivery and one of the redelivery."""
    storm = stage.faults.error("iam", "UpdateAccessKey", code, status=status, times=7)
    stage.send(TOR_USER.build(stage.box.env))
    stats = stage.drain()

    assert storm.hits == 7
    assert (stats.delivered, stats.failed, stats.acknowledged) == (2, 1, 1), "failed once, then completed"
    assert stage.sent("UpdateAccessKey") == 1, "the key was deactivated once"
    assert key_status(stage) == "Inactive"
    step = steps_by_action(stage)["iam.deactivate-access-key"]
    assert (step.status, step.attempts) == ("contained", 2)
    assert step.result is not None and step.result["before"]["status"] == "Active"
    assert_consistent(stage)
    assert stage.queued() == 0 and stage.dead_letters() == []


def test_a_storm_that_never_ends_puts_the_message_in_the_dead_letter_queue(stage: Deployment) -> None:
    stage.faults.error("iam", "UpdateAccessKey", "Throttling")
    event = TOR_USER.build(stage.box.env)
    stage.send(event)
    stats = stage.drain()

    receives = sb.MAX_RECEIVE_COUNT  # the deployed template's maxReceiveCount, then the DLQ
    assert (stats.delivered, stats.failed, stats.acknowledged) == (receives, receives, 0)
    assert [json.loads(body)["id"] for body in stage.dead_letters()] == [event["id"]]
    assert stage.queued() == 0
    assert stage.sent("UpdateAccessKey") == 0 and key_status(stage) == "Active"
    step = steps_by_action(stage)["iam.deactivate-access-key"]
    assert step.status == "running" and step.attempts == receives, "the record says where it stopped"


# -- AccessDenied ---------------------------------------------------------------------------------
PLAYBOOK = """\
name: tor-user
description: Deactivate the key, then quarantine the user.
match:
  source: [aws.guardduty]
  detail-type: [GuardDuty Finding]
  detail:
    type: [{{prefix: "UnauthorizedAccess:IAMUser/"}}]
steps:
  - action: iam.deactivate-access-key
    on_error: {on_error}
  - action: iam.quarantine-user
    target: iam-user
"""


@pytest.mark.parametrize("on_error", ["stop", "continue"])
def test_access_denied_fails_the_step_with_its_code_and_respects_on_error(
    tmp_path: Path, backoff: SleepLog, on_error: str
) -> None:
    (tmp_path / "tor-user.yaml").write_text(PLAYBOOK.format(on_error=on_error))
    with deployment(tmp_path) as stage:
        denied = stage.faults.error("iam", "UpdateAccessKey", "AccessDenied", status=403)
        event = TOR_USER.build(stage.box.env)
        stage.send(event)
        stats = stage.drain()

        assert (stats.delivered, stats.failed, stats.acknowledged) == (1, 0, 1), "no retry loop: handled"
        assert denied.hits == 1 and backoff.delays == [], "AccessDenied is not retried by botocore"
        steps = steps_by_action(stage)
        key_step, quarantine = steps["iam.deactivate-access-key"], steps["iam.quarantine-user"]
        assert key_step.status == "failed" and key_step.result is not None
        assert key_step.result["error_code"] == "AccessDenied"
        policies = stage.client("iam").list_user_policies(UserName=stage.box.env.user_name)["PolicyNames"]
        if on_error == "stop":
            assert quarantine.status == "skipped" and "on_error is stop" in (quarantine.reason or "")
            assert policies == []
        else:
            assert quarantine.status == "contained" and policies == ["clampdown-quarantine"]
        [incident] = assert_consistent(stage)
        assert incident.status == "failed"

        stage.send(event)  # a redelivery does not try the failed step again
        assert stage.drain().failed == 0
        assert denied.hits == 1 and steps_by_action(stage)["iam.deactivate-access-key"].attempts == 1
        assert stage.queued() == 0 and stage.dead_letters() == []


# -- timeouts -------------------------------------------------------------------------------------
def read_timeout(request: Any) -> ReadTimeoutError:
    return ReadTimeoutError(endpoint_url=request.url)


def connect_timeout(request: Any) -> ConnectTimeoutError:
    return ConnectTimeoutError(endpoint_url=request.url)


def test_timeouts_are_retried(stage: Deployment, backoff: SleepLog) -> None:
    reads = stage.faults.raise_("iam", "UpdateAccessKey", read_timeout, times=2)
    connects = stage.faults.raise_("dynamodb", "PutItem", connect_timeout, times=2)
    stage.send(TOR_USER.build(stage.box.env))
    stats = stage.drain()

    assert (stats.delivered, stats.failed, stats.acknowledged) == (1, 0, 1), stats.errors
    assert (reads.hits, connects.hits) == (2, 2) and len(backoff.delays) == 4
    assert stage.sent("UpdateAccessKey") == 1 and key_status(stage) == "Inactive"
    assert_consistent(stage)
    assert stage.queued() == 0 and stage.dead_letters() == []


def test_timeouts_longer_than_the_retries_fail_the_delivery_then_complete_once(stage: Deployment) -> None:
    stage.faults.raise_("iam", "UpdateAccessKey", read_timeout, times=7)
    stage.send(TOR_USER.build(stage.box.env))
    stats = stage.drain()

    assert (stats.delivered, stats.failed, stats.acknowledged) == (2, 1, 1)
    assert stage.sent("UpdateAccessKey") == 1 and key_status(stage) == "Inactive"
    assert steps_by_action(stage)["iam.deactivate-access-key"].attempts == 2
    assert_consistent(stage)
    assert stage.queued() == 0 and stage.dead_letters() == []


CONSOLE_PLAYBOOK = """\
name: tor-user-console
description: Take the console password away at once.
match:
  source: [aws.guardduty]
  detail-type: [GuardDuty Finding]
  detail:
    type: [{prefix: "UnauthorizedAccess:IAMUser/"}]
steps:
  - action: iam.disable-console-login
"""
LOST_RESPONSES = [
    # (scenario, service, operation, the step that makes the call, a playbook instead of the shipped ones)
    (ROLE_SESSION, "iam", "PutRolePolicy", "iam.revoke-role-sessions", None),
    (TOR_USER, "iam", "UpdateAccessKey", "iam.deactivate-access-key", None),
    (TOR_USER, "iam", "DeleteLoginProfile", "iam.disable-console-login", CONSOLE_PLAYBOOK),
    (INSTANCE, "ec2", "CreateSecurityGroup", "ec2.isolate-instance", None),
    (INSTANCE, "ec2", "ModifyNetworkInterfaceAttribute", "ec2.isolate-instance", None),
    (LAMBDA, "lambda", "RemovePermission", "lambda.remove-public-access", None),
    (LAMBDA, "lambda", "DeleteFunctionUrlConfig", "lambda.remove-public-access", None),
    (BUCKET, "s3", "PutPublicAccessBlock", "s3.block-public-access", None),
]


@pytest.mark.parametrize(
    ("scenario", "service", "operation", "action", "playbook"), LOST_RESPONSES, ids=[c[2] for c in LOST_RESPONSES]
)
def test_a_timeout_after_aws_applied_the_change_is_retried_and_contained_once(
    tmp_path: Path, backoff: SleepLog, scenario: Any, service: str, operation: str, action: str, playbook: str | None
) -> None:
    """The worst timeout: the request reached AWS and made the change, but the response was lost.
    botocore retries the call (which may now fail: the thing it removes is gone, the group it creates
    exists); the step must still end contained, with the state from before the first attempt."""
    from moto.core.models import botocore_stubber

    from tests.reliability.harness import Rule

    def applied_then_lost(request: Any, event_name: str) -> Any:
        botocore_stubber(event_name=event_name, request=request)  # AWS applies it...
        raise ReadTimeoutError(endpoint_url=request.url)  # ...and the response never arrives

    if playbook:
        (tmp_path / "playbook.yaml").write_text(playbook)
    with deployment(tmp_path if playbook else PLAYBOOKS) as stage:
        lost = stage.faults.add(Rule(service, operation, applied_then_lost, times=1))
        before = stage.state()
        stage.send(scenario.build(stage.box.env))
        stats = stage.drain()

        assert lost.hits == 1, stats.errors
        step = steps_by_action(stage)[action]
        assert step.status == "contained", ((step.result or {}).get("error_code"), step.reason)
        assert stats.failed <= 1 and stage.queued() == 0 and stage.dead_letters() == []
        after = stage.state()
        assert after != before
        ours = [g for g in after.get("security_groups", []) if g.startswith("clampdown-")]
        assert len(ours) == len(set(ours)), "one isolation group, not two"
        assert_consistent(stage)


# -- the Lambda process dies ----------------------------------------------------------------------
def die_after(operation: str, *, times: int = 1, when: Any = None) -> tuple[Any, dict[str, int]]:
    """An ``after-call`` hook: the call succeeded in AWS, then the process is killed."""
    died = {"count": 0}

    def hook(context: Any = None, **_: Any) -> None:
        if died["count"] < times and (when is None or when(context)):
            died["count"] += 1
            raise LambdaDied(f"killed after {operation}")

    return hook, died


def test_lambda_dies_after_the_change_before_the_record_then_the_redelivery_completes_once(
    tmp_path: Path, backoff: SleepLog
) -> None:
    """Killed right after PutRolePolicy succeeded (a timeout at the deadline): the step record still says
    running and Powertools' idempotency record is in progress. The redelivery finds the role already
    contained, does not put the policy again, and keeps the state from before the first attempt."""
    hook, died = die_after("PutRolePolicy")
    with deployment(hooks=(("after-call.iam.PutRolePolicy", hook),)) as stage:
        stage.send(ROLE_SESSION.build(stage.box.env))
        # The first invocation is at its deadline (no time left), as a Lambda timeout is.
        stats = stage.drain(context=sb.LambdaContext(budget_ms=0))

        assert died["count"] == 1
        assert (stats.delivered, stats.failed, stats.acknowledged) == (2, 1, 1), stats.errors
        assert stage.sent("PutRolePolicy") == 1, "the session revocation was applied once"
        revoke = steps_by_action(stage)["iam.revoke-role-sessions"]
        assert revoke.status == "contained" and revoke.attempts == 2
        assert revoke.result is not None and revoke.result["before"]["policy"] is None, (
            "the before-state is the role before the first attempt, so rollback removes the policy"
        )
        assert_consistent(stage)
        assert stage.queued() == 0 and stage.dead_letters() == []


def test_lambda_dies_between_steps_then_the_redelivery_resumes(tmp_path: Path, backoff: SleepLog) -> None:
    """Killed after the first containment step was recorded: the redelivery runs only what is left."""

    def mark(params: Any, context: Any, **_: Any) -> None:
        item = params.get("Item", {})
        if item.get("sk", {}).get("S", "").startswith("STEP#") and item.get("status", {}).get("S") == "contained":
            context["die_after"] = True

    hook, died = die_after("PutItem", when=lambda context: bool(context and context.get("die_after")))
    (tmp_path / "tor-user.yaml").write_text(PLAYBOOK.format(on_error="stop"))
    hooks = (("before-parameter-build.dynamodb.PutItem", mark), ("after-call.dynamodb.PutItem", hook))
    with deployment(tmp_path, hooks=hooks) as stage:
        stage.send(TOR_USER.build(stage.box.env))
        stats = stage.drain(context=sb.LambdaContext(budget_ms=0))

        assert died["count"] == 1
        assert (stats.failed, stats.acknowledged) == (1, 1), stats.errors
        assert stage.sent("UpdateAccessKey") == 1 and stage.sent("PutUserPolicy") == 1
        steps = steps_by_action(stage)
        assert steps["iam.deactivate-access-key"].attempts == 1, "the finished step was not run again"
        assert steps["iam.quarantine-user"].status == "contained"
        assert_consistent(stage)
        assert stage.queued() == 0 and stage.dead_letters() == []


# -- DynamoDB unavailable -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "table", [sb.INCIDENTS_TABLE, sb.IDEMPOTENCY_TABLE], ids=["incident-store", "idempotency-store"]
)
def test_dynamodb_unavailable_means_no_action_and_a_retry(stage: Deployment, table: str) -> None:
    outage = stage.faults.error("dynamodb", "*", "InternalServerError", protocol="json", when=table_is(table))
    stage.send(TOR_USER.build(stage.box.env))
    stats = stage.drain(max_batches=1)

    assert (stats.delivered, stats.failed) == (1, 1) and outage.hits > 0
    assert stage.calls.aws_writes() == [], "no action without its record"
    assert key_status(stage) == "Active" and stage.queued() == 1, "the message waits for its redelivery"

    stage.faults.clear()  # DynamoDB is back
    stats = stage.drain()
    assert (stats.failed, stats.acknowledged) == (0, 1)
    assert stage.sent("UpdateAccessKey") == 1 and key_status(stage) == "Inactive"
    assert_consistent(stage)
    assert stage.queued() == 0 and stage.dead_letters() == []


def test_no_change_is_made_when_the_before_state_cannot_be_recorded(stage: Deployment) -> None:
    """The step's before-state is written just before the first change; if that write fails, no change."""

    def recording_the_before_state(request: Any) -> bool:
        item = json.loads(request.body or b"{}").get("Item", {})
        return item.get("sk", {}).get("S", "").startswith("STEP#") and '"started_at"' in item.get("data", {}).get(
            "S", ""
        )

    outage = stage.faults.error(
        "dynamodb", "PutItem", "InternalServerError", protocol="json", when=recording_the_before_state
    )
    stage.send(TOR_USER.build(stage.box.env))
    stats = stage.drain(max_batches=1)

    assert (stats.delivered, stats.failed) == (1, 1) and outage.hits > 0
    assert stage.calls.aws_writes() == [] and key_status(stage) == "Active", "no action without its record"

    stage.faults.clear()
    assert stage.drain().failed == 0
    assert stage.sent("UpdateAccessKey") == 1 and key_status(stage) == "Inactive"
    assert_consistent(stage)
    assert stage.queued() == 0 and stage.dead_letters() == []


def test_dynamodb_down_for_good_ends_in_the_dead_letter_queue_with_nothing_done(stage: Deployment) -> None:
    stage.faults.error("dynamodb", "*", "InternalServerError", protocol="json")
    event = TOR_USER.build(stage.box.env)
    stage.send(event)
    stats = stage.drain()

    assert (stats.failed, stats.acknowledged) == (sb.MAX_RECEIVE_COUNT, 0)
    assert stage.calls.aws_writes() == [] and key_status(stage) == "Active"
    assert [json.loads(b)["id"] for b in stage.dead_letters()] == [event["id"]]


# -- the kill switch cannot be read -----------------------------------------------------------------
@pytest.mark.parametrize("code", ["AccessDeniedException", "ThrottlingException", "InternalServerError"])
def test_an_unreadable_kill_switch_means_no_action_and_a_retry(stage: Deployment, code: str) -> None:
    unreadable = stage.faults.error("ssm", "GetParameter", code, protocol="json")
    stage.send(TOR_USER.build(stage.box.env))
    stats = stage.drain(max_batches=1)

    assert (stats.delivered, stats.failed) == (1, 1) and unreadable.hits >= 1
    assert stage.calls.aws_writes() == [] and key_status(stage) == "Active"
    assert stage.queued() == 1

    stage.faults.clear()
    stats = stage.drain()
    assert (stats.failed, stats.acknowledged) == (0, 1)
    assert stage.sent("UpdateAccessKey") == 1 and key_status(stage) == "Inactive"
    assert_consistent(stage)
    assert stage.queued() == 0 and stage.dead_letters() == []
