"""The responder's hard cases end to end: the ``respond`` function through Chalice's test client, every
AWS call over real HTTP to the threaded moto server, the dev stage's settings and the shipped playbooks.

Faults are injected at the responder's own HTTP boundary with botocore hooks (``responder_hooks``):
botocore parses the injected throttles and retries them as it would AWS's. Nothing of Clampdown is
patched.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from clampdown import sandbox as sb
from clampdown import scenarios
from tests.conftest import member_client
from tests.e2e.conftest import (
    drain,
    incident_store,
    invoke,
    invoke_event,
    key_status,
    sqs_record_event,
    steps_of,
)
from tests.reliability.conftest import SleepLog
from tests.reliability.harness import Calls, Faults, LambdaDied, session_hooks

TOR_USER = scenarios.DEMO[0]
MEMBER = "111111111111"
KILL_SWITCH_REASON = "kill switch is on: nothing is applied"


def tor_event(stage: dict[str, Any], user: str | None = None, key: str | None = None) -> dict[str, Any]:
    """The Tor finding on the stage's user, or on another user and key (a finding of its own)."""
    event = TOR_USER.build(stage["env"])
    if user is not None:
        detail = event["detail"]
        detail["resource"]["accessKeyDetails"].update(userName=user, accessKeyId=key)
        detail["id"] = hashlib.sha256(user.encode()).hexdigest()[:32]
        event["id"] = f"event-{user}"
    return event


def new_user_with_key(iam: Any, name: str) -> str:
    iam.create_user(UserName=name)
    return str(iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"])


def send(stage: dict[str, Any], *events: dict[str, Any]) -> None:
    sqs = stage["session"].client("sqs")
    for event in events:
        sqs.send_message(QueueUrl=stage["queue_url"], MessageBody=json.dumps(event))


def queued(stage: dict[str, Any]) -> tuple[int, int]:
    """Messages on the queue and on its dead-letter queue."""
    sqs = stage["session"].client("sqs")
    counts = []
    for url in (stage["queue_url"], stage["dlq_url"]):
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        counts.append(sum(int(v) for v in attributes.values()))
    return counts[0], counts[1]


def iam_writes(calls: Calls) -> list[str]:
    return [c.operation for c in calls.calls if c.service == "iam" and c.writes]


# -- throttling during a step ---------------------------------------------------------------------
def test_throttles_within_botocores_retries_are_absorbed_in_one_delivery(
    stage: dict[str, Any], responder_hooks: tuple[Calls, Faults], backoff: SleepLog
) -> None:
    _, faults = responder_hooks
    throttle = faults.error("iam", "UpdateAccessKey", "Throttling", times=2)

    assert invoke([tor_event(stage)]) == {"batchItemFailures": []}
    assert throttle.hits == 2 and len(backoff.delays) == 2, "each throttle was followed by a backoff"
    assert faults.sent["UpdateAccessKey"] == 1, "the change reached AWS once"
    assert key_status(stage) == "Inactive"
    step = steps_of(stage)["iam.deactivate-access-key"]
    assert (step.status, step.attempts) == ("contained", 1)


def test_a_throttling_storm_longer_than_the_retries_fails_the_message_and_its_redelivery_completes_once(
    stage: dict[str, Any], responder_hooks: tuple[Calls, Faults], backoff: SleepLog
) -> None:
    _, faults = responder_hooks
    storm = faults.error("iam", "UpdateAccessKey", "Throttling", times=7)  # botocore makes 6 attempts
    send(stage, tor_event(stage))

    first = drain(stage, max_batches=1)
    assert (first.delivered, first.failed) == (1, 1), "the invocation failed: the message stays on the queue"
    assert storm.hits == 6 and faults.sent.get("UpdateAccessKey", 0) == 0
    assert key_status(stage) == "Active"
    assert steps_of(stage)["iam.deactivate-access-key"].status not in ("contained", "failed")

    redelivery = drain(stage)
    assert (redelivery.delivered, redelivery.failed, redelivery.acknowledged) == (1, 0, 1)
    assert storm.hits == 7 and faults.sent["UpdateAccessKey"] == 1
    assert key_status(stage) == "Inactive"
    steps = steps_of(stage)
    deactivate = steps["iam.deactivate-access-key"]
    assert (deactivate.status, deactivate.attempts) == ("contained", 2)
    assert len(steps) == len({s.key for s in steps.values()}), "no step recorded twice"
    assert queued(stage) == (0, 0), "nothing left on the queue, nothing in the dead-letter queue"


# -- blast radius ---------------------------------------------------------------------------------
def test_beyond_the_blast_radius_steps_wait_for_approval_then_run_once_approved(
    stage: dict[str, Any], responder_hooks: tuple[Calls, Faults], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls, _ = responder_hooks
    monkeypatch.setenv("CLAMPDOWN_BLAST_RADIUS", json.dumps({"default": 100, "access-key": 1}))
    iam = stage["session"].client("iam")
    other_key = new_user_with_key(iam, "build-bot")

    assert invoke([tor_event(stage)]) == {"batchItemFailures": []}
    assert invoke([tor_event(stage, "build-bot", other_key)]) == {"batchItemFailures": []}

    assert key_status(stage) == "Inactive", "the first key was within the limit"
    assert key_status(stage, "build-bot") == "Active", "the second waits"
    assert iam_writes(calls) == ["UpdateAccessKey"]
    store = incident_store(stage)
    second = next(i for i in store.list_incidents() if "build-bot" in json.dumps(i.finding, default=str))
    [waiting] = [s for s in store.list_steps(second.id) if s.action == "iam.deactivate-access-key"]
    assert waiting.status == "pending-approval"
    assert waiting.reason == "blast radius: more than 1 access-key actions in 3600 s"
    [approval] = [a for a in store.list_approvals() if a.step_key == waiting.key]

    # A human approves (as the Slack handler and `clampdown approve` do): the decision goes through the
    # queue to the responder, which applies the step once.
    from chalicelib import slack_interactions

    slack_interactions.reset()
    try:
        assert slack_interactions.service().decisions.decide(approval.id, "approved", "slack:U0TEST (test)").approval
    finally:
        slack_interactions.reset()
    stats = drain(stage)
    assert stats.failed == 0
    assert key_status(stage, "build-bot") == "Inactive"
    assert iam_writes(calls) == ["UpdateAccessKey", "UpdateAccessKey"]
    done = store.get_step(second.id, waiting.key)
    assert done is not None and done.status == "contained" and done.approved_by == "slack:U0TEST (test)"


# -- protected resources --------------------------------------------------------------------------
def test_a_protected_resource_is_never_touched(
    stage: dict[str, Any], responder_hooks: tuple[Calls, Faults], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls, _ = responder_hooks
    user, key = stage["env"].user_name, stage["env"].access_key_id
    monkeypatch.setenv("CLAMPDOWN_GUARDRAILS", json.dumps({"protected_resources": [user, key]}))

    assert invoke([tor_event(stage)]) == {"batchItemFailures": []}

    steps = steps_of(stage)
    for action, protected in (
        ("iam.deactivate-access-key", key),
        ("iam.quarantine-user", user),
        ("iam.disable-console-login", user),
    ):
        assert (steps[action].status, steps[action].reason) == (
            "skipped",
            f"protected: it matches protected resource {protected}",
        ), action
    assert iam_writes(calls) == [], "no change reached IAM"
    iam = stage["session"].client("iam")
    assert key_status(stage) == "Active"
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == []
    assert iam.get_login_profile(UserName=user)["LoginProfile"]["UserName"] == user


# -- cross-account --------------------------------------------------------------------------------
def test_a_finding_in_a_member_account_is_contained_there_through_the_member_role(
    stage: dict[str, Any], responder_hooks: tuple[Calls, Faults], monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto keeps state per account: the member's user exists only in the member account."""
    calls, _ = responder_hooks
    monkeypatch.setenv("CLAMPDOWN_ACCOUNTS", MEMBER)
    monkeypatch.setenv("CLAMPDOWN_EXTERNAL_ID", "e2e-external-id")
    member_iam = member_client(stage["session"], MEMBER)
    key = new_user_with_key(member_iam, "remote-dev")
    event = copy.deepcopy(tor_event(stage, "remote-dev", key))
    event["account"] = event["detail"]["accountId"] = MEMBER

    assert invoke([event]) == {"batchItemFailures": []}

    assert key_status(stage, "remote-dev", member_iam) == "Inactive"
    assert key_status(stage) == "Active", "nothing happened in the home account"
    [assume] = [c.params for c in calls.calls if c.operation == "AssumeRole"]
    assert assume["RoleArn"] == f"arn:aws:iam::{MEMBER}:role/ClampdownMemberResponder"
    assert assume["ExternalId"] == "e2e-external-id"
    [incident] = incident_store(stage).list_incidents()
    assert assume["RoleSessionName"] == f"clampdown-{incident.id}"
    assert incident.account == MEMBER


# -- an interrupted run ---------------------------------------------------------------------------
def test_a_run_killed_between_steps_resumes_without_redoing_them(stage: dict[str, Any]) -> None:
    """The function dies (a Lambda timeout) right after the first containment step was recorded; the
    redelivery, through Chalice's test client, runs only what is left."""
    from botocore import handlers as botocore_handlers

    killed: list[str] = []

    def mark(params: Any, context: Any, **_: Any) -> None:
        item = params.get("Item") or {}
        values = params.get("ExpressionAttributeValues") or {}
        recorded = [v.get("S") for v in (*item.values(), *values.values()) if isinstance(v, dict)]
        if "contained" in recorded and context is not None:
            context["clampdown-e2e-contained"] = True

    def die(context: Any = None, **_: Any) -> None:
        if not killed and context and context.get("clampdown-e2e-contained"):
            killed.append("after the step record")
            raise LambdaDied("killed after the first step was recorded")

    calls, faults = Calls(), Faults()
    hooks = (
        ("before-parameter-build", calls),
        ("before-send", faults, botocore_handlers.REGISTER_FIRST),
        ("before-parameter-build.dynamodb", mark),
        ("after-call.dynamodb", die),
    )
    from chalicelib import wiring

    event = sqs_record_event([tor_event(stage)])
    with session_hooks(*hooks):
        wiring.reset()
        with pytest.raises(LambdaDied):
            # As Lambda calls the handler, at its deadline: the idempotency record in progress expires now.
            from app import app

            app.handler_map["respond"](event, sb.LambdaContext(budget_ms=0))
        assert killed
        steps = steps_of(stage)
        assert steps["iam.deactivate-access-key"].status == "contained"
        assert key_status(stage) == "Inactive"

        assert invoke_event(event) == {"batchItemFailures": []}
    wiring.reset()

    assert faults.sent["UpdateAccessKey"] == 1, "the finished step was not run again"
    steps = steps_of(stage)
    assert steps["iam.deactivate-access-key"].attempts == 1
    assert steps["iam.quarantine-user"].status == "pending-approval"
    assert steps["notify.log"].status == "done"
    assert all(s.status not in ("running", "planned") for s in steps.values())
    [incident] = incident_store(stage).list_incidents()
    assert incident.deliveries == 2
