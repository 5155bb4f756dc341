"""Approve/Deny clicks posted to the real Chalice route (chalice.test.Client) with real signatures.

AWS is in-process moto; Slack is the fake server (response_url, usergroups.users.list); the
responder is the deployed one, fed from the queue the route writes to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import slack_interactions
from chalicelib.responder import approval_command
from clampdown.local_slack.server import approval_ids, block_actions_body, sign
from tests.conftest import CallRecorder
from tests.functional.notify.stage import ALICE, BOB, MALLORY, SIGNING_SECRET, Stage

APPROVE, DENY = "clampdown.approve", "clampdown.deny"


@pytest.fixture
def client(stage: Stage, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    for name, value in stage.environ().items():
        monkeypatch.setenv(name, value)
    with stage.chalice_client() as test_client:
        yield test_client


def pending(stage: Stage, responder: Any) -> tuple[Any, str]:
    """Raise an approval request through the responder; its id as read from the Slack button."""
    step = responder.handle(stage.finding()).steps[0]
    assert step.status == "pending-approval"
    [approval_id] = approval_ids(stage.slack)
    assert approval_id == step.approval_id
    return step, approval_id


def click(
    client: Client,
    stage: Stage,
    approval_id: str,
    *,
    user: str = ALICE,
    action: str = APPROVE,
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
    response: str = "1",
) -> Any:
    body = block_actions_body(
        action_id=action,
        value=approval_id,
        user_id=user,
        user_name=user.lower(),
        response_url=stage.slack.response_url(response),
    )
    return client.http.post("/slack/interactions", headers=sign(secret, body, timestamp), body=body)


def run_queue(stage: Stage, responder: Any) -> list[Any]:
    """What the deployed SQS handler does: each queued message through the responder."""
    return [responder.handle(message) for message in stage.drain()]


def responses(stage: Stage, name: str = "1") -> list[dict[str, Any]]:
    return [r.json for r in stage.slack.to(f"/actions/T0FAKE/{name}/")]


def updates_of(recorder: CallRecorder) -> int:
    return sum(1 for _, op, _ in recorder.calls if op == "UpdateAccessKey")


def test_an_approval_runs_the_step_once(stage: Stage, client: Client, recorder: CallRecorder) -> None:
    responder = stage.responder()
    step, approval_id = pending(stage, responder)
    reply = click(client, stage, approval_id)
    assert reply.status_code == 200
    assert stage.key_status() == "Active", "the click only records and queues; the responder acts"
    assert stage.drain() == [approval_command(step.incident_id, approval_id)]
    # the message says who approved, at once, through response_url (buttons gone)
    [ack] = responses(stage)
    assert ack["replace_original"] is True
    assert "✅ *Approved* by <@U0ALICE> — running…" in str(ack["blocks"])
    assert all(b["type"] != "actions" for b in ack["blocks"])

    responder.handle(approval_command(step.incident_id, approval_id))
    assert stage.key_status() == "Inactive"
    assert updates_of(recorder) == 1
    done = responder.store.get_step(step.incident_id, step.key)
    assert done.status == "contained" and done.approved_by == "slack:U0ALICE (u0alice)"
    approval = responder.store.get_approval(approval_id)
    assert (approval.status, approval.decided_by) == ("approved", "slack:U0ALICE (u0alice)")


def test_deny_closes_the_step_without_touching_aws(stage: Stage, client: Client, recorder: CallRecorder) -> None:
    responder = stage.responder()
    step, approval_id = pending(stage, responder)
    assert click(client, stage, approval_id, action=DENY).status_code == 200
    run_queue(stage, responder)
    assert stage.key_status() == "Active" and updates_of(recorder) == 0
    done = responder.store.get_step(step.incident_id, step.key)
    assert done.status == "denied"
    assert done.reason == "denied by slack:U0ALICE (u0alice): denied in Slack"
    assert "🚫 *Denied* by <@U0ALICE>" in str(responses(stage)[0]["blocks"])


@pytest.mark.parametrize(
    ("secret", "age_s"),
    [("not-the-signing-secret", 0), (SIGNING_SECRET, 301), (SIGNING_SECRET, -330)],
    ids=["forged", "stale", "from-the-future"],
)
def test_unsigned_or_stale_requests_are_refused_with_no_effect(
    stage: Stage, client: Client, secret: str, age_s: int
) -> None:
    responder = stage.responder()
    _step, approval_id = pending(stage, responder)
    reply = click(client, stage, approval_id, secret=secret, timestamp=int(time.time()) - age_s)
    assert reply.status_code == 401
    assert responder.store.get_approval(approval_id).status == "pending"
    assert stage.drain() == [] and responses(stage) == []


def test_replays_change_nothing(stage: Stage, client: Client, recorder: CallRecorder) -> None:
    responder = stage.responder()
    _step, approval_id = pending(stage, responder)
    body = block_actions_body(
        action_id=APPROVE, value=approval_id, user_id=ALICE, user_name="alice", response_url=stage.slack.response_url()
    )
    signed_at = int(time.time())
    headers = sign(SIGNING_SECRET, body, signed_at)
    assert client.http.post("/slack/interactions", headers=headers, body=body).status_code == 200
    run_queue(stage, responder)
    # The same signed request again, within 5 minutes: the decision is already recorded.
    assert client.http.post("/slack/interactions", headers=headers, body=body).status_code == 200
    assert stage.drain() == []
    assert "Already approved by <@U0ALICE>" in responses(stage)[-1]["text"]
    # The same bytes and signature replayed later than 5 minutes: refused before anything is read.
    stale = sign(SIGNING_SECRET, body, signed_at - 301)
    assert client.http.post("/slack/interactions", headers=stale, body=body).status_code == 401
    assert updates_of(recorder) == 1


def test_someone_not_an_approver_gets_an_ephemeral_refusal(stage: Stage, client: Client) -> None:
    responder = stage.responder()
    _step, approval_id = pending(stage, responder)
    assert click(client, stage, approval_id, user=MALLORY).status_code == 200
    [refusal] = responses(stage)
    assert refusal == {
        "response_type": "ephemeral",
        "replace_original": False,
        "text": "Not allowed: you are not one of the approvers of this request. Nothing was changed.",
    }
    assert responder.store.get_approval(approval_id).status == "pending"
    assert stage.drain() == [] and stage.key_status() == "Active"


def test_members_of_an_approver_group_may_decide(stage: Stage, client: Client) -> None:
    responder = stage.responder()
    _step, approval_id = pending(stage, responder)
    assert click(client, stage, approval_id, user=BOB).status_code == 200  # BOB is in S0ONCALL
    [lookup] = stage.slack.calls("usergroups.users.list")
    assert lookup.params == {"usergroup": "S0ONCALL"}
    assert responder.store.get_approval(approval_id).decided_by == "slack:U0BOB (u0bob)"
    run_queue(stage, responder)
    assert stage.key_status() == "Inactive"


def test_group_membership_is_cached(stage: Stage, client: Client) -> None:
    responder = stage.responder()
    _step, approval_id = pending(stage, responder)
    for _ in range(3):
        click(client, stage, approval_id, user=MALLORY)  # not in the group: looked up each time... once
    assert len(stage.slack.calls("usergroups.users.list")) == 1


def test_a_double_click_records_one_decision(stage: Stage, client: Client, recorder: CallRecorder) -> None:
    responder = stage.responder()
    step, approval_id = pending(stage, responder)
    click(client, stage, approval_id)
    click(client, stage, approval_id, response="2")
    assert len(stage.drain()) == 1
    assert responses(stage, "2")[0]["text"].startswith("Already approved by <@U0ALICE>")
    responder.handle(approval_command(step.incident_id, approval_id))
    responder.handle(approval_command(step.incident_id, approval_id))  # and a redelivered command
    assert updates_of(recorder) == 1


def test_two_approvers_racing_produce_one_decision_and_one_execution(stage: Stage, recorder: CallRecorder) -> None:
    """Threads click at the same moment. The store is the in-memory one (its conditional write is
    atomic; moto's DynamoDB is not under threads); the rest is the deployed code."""
    from chalicelib.incidents import MemoryIncidentStore
    from chalicelib.notify.decisions import Decisions, SqsCommands

    responder = stage.responder()
    memory = MemoryIncidentStore()
    responder.store = responder.runner.store = memory
    if hasattr(responder.notifier, "channels"):
        for channel in responder.notifier.channels:
            channel.store = memory
    step, approval_id = pending(stage, responder)
    settings = stage.settings()
    queue = SqsCommands(lambda: stage.session.client("sqs"), stage.queue_url)
    handler = slack_interactions.build(settings, session=stage.session)
    handler.store, handler.decisions = memory, Decisions(memory, queue)
    barrier = threading.Barrier(2)
    replies: list[int] = []

    def approve(user: str, name: str) -> None:
        body = block_actions_body(
            action_id=APPROVE,
            value=approval_id,
            user_id=user,
            user_name=user,
            response_url=stage.slack.response_url(name),
        )
        headers = sign(SIGNING_SECRET, body)
        barrier.wait()
        replies.append(handler.interaction(body, headers).status)

    threads = [threading.Thread(target=approve, args=(u, n)) for u, n in ((ALICE, "a"), (BOB, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert replies == [200, 200]
    commands = stage.drain()
    assert len(commands) == 1
    winner = memory.get_approval(approval_id).decided_by
    loser = "b" if winner.startswith("slack:U0ALICE") else "a"
    assert responses(stage, loser)[0]["text"].startswith("Already approved by")
    for command in commands * 2:
        responder.handle(command)
    assert updates_of(recorder) == 1 and stage.key_status() == "Inactive"
    assert memory.get_step(step.incident_id, step.key).approved_by == winner


def test_an_expired_request_is_refused_and_marked_expired(stage: Stage, client: Client) -> None:
    responder = stage.responder()
    responder.runner.clock = lambda: datetime.now(UTC) - timedelta(days=2)  # requested two days ago
    step, approval_id = pending(stage, responder)
    assert click(client, stage, approval_id).status_code == 200
    approval = responder.store.get_approval(approval_id)
    assert (approval.status, approval.decided_by) == ("expired", "clampdown")
    assert responses(stage)[-1]["text"] == "This request had expired: nothing was run."
    run_queue(stage, responder)
    assert responder.store.get_step(step.incident_id, step.key).status == "expired"
    assert stage.key_status() == "Active"


def test_the_sweep_expires_overdue_requests_and_updates_slack(stage: Stage, client: Client) -> None:
    responder = stage.responder()
    responder.runner.clock = lambda: datetime.now(UTC) - timedelta(days=2)
    step, approval_id = pending(stage, responder)
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={}, resources=[])
    assert client.lambda_.invoke("expire_approvals", event).payload == {
        "expired": 1,
        "requeued": 0,
        "resent": 0,
        "failed": 0,
    }
    run_queue(stage, responder)
    assert responder.store.get_step(step.incident_id, step.key).status == "expired"
    state = responder.store.get_incident(step.incident_id).notification["slack"]
    ref = state["approvals"][approval_id]
    [closed] = [u for u in stage.slack.calls("chat.update") if u.params["ts"] == ref["ts"]]
    banner = "⌛ *Expired* — expired: `expired by clampdown: no decision before the request expired`"
    assert banner in str(closed.params["blocks"])


def test_the_sweep_sends_an_approval_request_slack_never_got(stage: Stage, client: Client) -> None:
    stage.slack.fail("/api/chat.postMessage", 500, times=3)  # the request's message: every attempt fails
    responder = stage.responder()
    step = responder.handle(stage.finding()).steps[0]
    assert approval_ids(stage.slack) == []
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={}, resources=[])
    assert client.lambda_.invoke("expire_approvals", event).payload["resent"] == 1
    assert approval_ids(stage.slack) == [step.approval_id]
    assert client.lambda_.invoke("expire_approvals", event).payload["resent"] == 0  # once


def test_separation_of_duties_refuses_the_actor(stage: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    stage.extra.update(separation_of_duties=True, slack_identities={ALICE: stage.user, BOB: "bob"})
    for name, value in stage.environ().items():
        monkeypatch.setenv(name, value)
    responder = stage.responder()
    _step, approval_id = pending(stage, responder)
    with stage.chalice_client() as client:
        click(client, stage, approval_id, user=ALICE)  # ALICE is "mallory", the finding's actor
        assert responses(stage)[-1]["text"] == (
            "Not allowed: you are the actor of this finding (separation of duties). Nothing was changed."
        )
        assert responder.store.get_approval(approval_id).status == "pending"
        click(client, stage, approval_id, user=BOB)
    assert responder.store.get_approval(approval_id).status == "approved"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"payload=%7Bnot+json",
        b"payload=%5B1%2C2%5D",
        b"\xff\xfe\x00garbage",
        b"payload="
        + b"%7B%22type%22%3A%22block_actions%22%2C%22actions%22%3A%5B%7B%22action_id%22%3A%22clampdown.approve%22%2C%22value%22%3A%22..%2F..%22%7D%5D%2C%22user%22%3A%7B%22id%22%3A%22U0ALICE%22%7D%7D",
    ],
    ids=["empty", "not-json", "not-an-object", "not-utf8", "bad-approval-id"],
)
def test_malformed_signed_bodies_are_400_never_500(stage: Stage, client: Client, body: bytes) -> None:
    reply = client.http.post("/slack/interactions", headers=sign(SIGNING_SECRET, body), body=body)
    assert reply.status_code == 400
    assert stage.drain() == []


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "1e9", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": str(int(time.time()))},
        {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=ünïcode"},
    ],
    ids=["non-numeric-timestamp", "float-timestamp", "no-timestamp", "no-signature", "non-ascii-signature"],
)
def test_bad_signature_headers_are_401_never_500(client: Client, headers: dict[str, str]) -> None:
    body = b"\xff\xfe not utf-8"
    reply = client.http.post(
        "/slack/interactions", headers={"Content-Type": "application/x-www-form-urlencoded", **headers}, body=body
    )
    assert reply.status_code == 401


def test_a_wrong_content_type_is_refused_by_chalice(client: Client) -> None:
    body = b'{"payload": {}}'
    reply = client.http.post(
        "/slack/interactions", headers={**sign(SIGNING_SECRET, body), "Content-Type": "application/json"}, body=body
    )
    assert reply.status_code == 415
