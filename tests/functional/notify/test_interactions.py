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
from chalicelib.settings import Settings
from chalicelib.slack_interactions import COULD_NOT_CHECK, SlackInteractions, verify_signature
from clampdown.local_slack.server import approval_ids, block_actions_body, sign
from tests.conftest import CallRecorder
from tests.functional.notify.stage import ALICE, BOB, MALLORY, SIGNING_SECRET, Stage
from tests.reliability.test_attacks import emitted_metrics

APPROVE, DENY = "clampdown.approve", "clampdown.deny"


def steady() -> SlackInteractions:
    """The deployed handler (built from the environment) with a clock that does not move, so how
    loaded the test machine is never decides whether a group lookup fits in the request's time
    (the budget has its own tests)."""
    handler = slack_interactions.service()
    handler.monotonic = lambda: 0.0
    return handler


@pytest.fixture
def client(stage: Stage, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    for name, value in stage.environ().items():
        monkeypatch.setenv(name, value)
    with stage.chalice_client() as test_client:
        steady()
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


def test_a_cached_group_membership_needs_no_slack_call(stage: Stage, client: Client) -> None:
    responder = stage.responder()
    _step, approval_id = pending(stage, responder)
    for n in range(3):
        click(client, stage, approval_id, user=MALLORY, response=f"m{n}")  # not in the group: read once
    stage.slack.fail("/api/usergroups", 500, times=100)  # Slack's user groups now fail...
    click(client, stage, approval_id, user=BOB)  # ...and BOB, a member, decides from the cached membership
    assert [r.status for r in stage.slack.to("/api/usergroups")] == [200]
    assert responder.store.get_approval(approval_id).decided_by == "slack:U0BOB (u0bob)"


def test_a_rate_limited_group_lookup_is_tried_once_and_the_user_asked_to_try_again(
    stage: Stage, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack wants an answer within 3 s: the click path never retries nor waits out a 429, whatever
    the alert delivery bounds are (here: the deployed ones, which would wait a 4 s Retry-After twice)."""
    monkeypatch.setenv("CLAMPDOWN_NOTIFY_MAX_WAIT_S", "5")
    slack_interactions.reset()  # built again from this environment
    steady()
    responder = stage.responder()
    _step, approval_id = pending(stage, responder)
    stage.slack.fail("/api/usergroups", 429, times=2, retry_after=4)
    assert click(client, stage, approval_id, user=BOB).status_code == 200
    assert [r.status for r in stage.slack.to("/api/usergroups")] == [429], "one attempt, no retry"
    assert responses(stage) == [{"response_type": "ephemeral", "replace_original": False, "text": COULD_NOT_CHECK}]
    assert responder.store.get_approval(approval_id).status == "pending"
    assert stage.drain() == []

    stage.slack.heal()  # the click is tried again: the group is read, BOB decides
    click(client, stage, approval_id, user=BOB, response="2")
    assert responder.store.get_approval(approval_id).decided_by == "slack:U0BOB (u0bob)"
    assert len(stage.drain()) == 1


def test_a_slow_group_lookup_is_not_waited_for(stage: Stage, client: Client) -> None:
    responder = stage.responder()
    _step, approval_id = pending(stage, responder)
    stage.slack.slow("/api/usergroups", 2.5, times=1)  # would answer (BOB is a member), too late for Slack
    assert click(client, stage, approval_id, user=BOB).status_code == 200
    assert [r.json["text"] for r in stage.slack.to("/actions/")] == [COULD_NOT_CHECK]
    assert responder.store.get_approval(approval_id).status == "pending"
    assert stage.drain() == []


def test_no_slack_call_is_made_once_the_budget_is_spent(stage: Stage, client: Client) -> None:
    """A request whose time went elsewhere (a cold start reading secrets, a slow DynamoDB) makes no call
    to Slack that could outlast Slack's patience: not the group lookup, not the response_url message."""
    responder = stage.responder()
    _step, approval_id = pending(stage, responder)
    handler = slack_interactions.service()
    readings = iter([0.0])  # the request starts at 0 s; every later reading says 2.4 s have gone
    handler.monotonic = lambda: next(readings, 2.4)
    assert click(client, stage, approval_id, user=BOB).status_code == 200
    assert stage.slack.to("/api/usergroups") == [] and stage.slack.to("/actions/") == []
    assert responder.store.get_approval(approval_id).status == "pending"
    assert stage.drain() == []


def test_a_double_click_reaches_the_conditional_write_and_records_one_decision(
    stage: Stage, client: Client, recorder: CallRecorder
) -> None:
    """Both clicks read the request as pending; the second one's write lands between the first one's
    read and write. The first write is then refused by DynamoDB's condition: one decision, one command."""
    responder = stage.responder()
    step, approval_id = pending(stage, responder)
    writes: list[str] = []

    def second_click_lands_first(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key", {}).get("pk", {}).get("S") != f"APPROVAL#{approval_id}":
            return
        writes.append(params["ExpressionAttributeValues"][":by"]["S"])
        if len(writes) == 1:
            assert click(client, stage, approval_id, user=BOB, response="2").status_code == 200

    dynamodb = slack_interactions.service().store.client
    dynamodb.meta.events.register("before-parameter-build.dynamodb.UpdateItem", second_click_lands_first)
    assert click(client, stage, approval_id, user=ALICE).status_code == 200
    assert writes == ["slack:U0ALICE (u0alice)", "slack:U0BOB (u0bob)"], "both clicks reached the write"
    assert responder.store.get_approval(approval_id).decided_by == "slack:U0BOB (u0bob)"
    assert responses(stage)[-1]["text"] == "Already approved by <@U0BOB>: nothing more to do."
    commands = stage.drain()
    assert commands == [approval_command(step.incident_id, approval_id)]
    for command in commands * 2:  # and a redelivered command
        responder.handle(command)
    assert updates_of(recorder) == 1 and stage.key_status() == "Inactive"


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
    handler.monotonic = lambda: 0.0  # as steady(): the machine's load never decides the group lookup
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
        "resend_failed": 0,
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


def test_a_resend_that_fails_is_counted_and_noted_on_the_incident(
    stage: Stage, client: Client, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from chalicelib.handlers import metrics

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("CLAMPDOWN_NOTIFY_RETRIES", "0")
    slack_interactions.reset()  # the sweep's function, built from this environment
    metrics().clear_metrics()
    stage.slack.fail("/api/chat.postMessage", 500, times=1000)  # Slack stays down
    responder = stage.responder(notify_retries=0)
    step = responder.handle(stage.finding()).steps[0]
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={}, resources=[])
    capfd.readouterr()
    for _ in range(2):
        sweep = client.lambda_.invoke("expire_approvals", event).payload
        assert (sweep["resent"], sweep["resend_failed"]) == (0, 1)
    counted = emitted_metrics(capfd.readouterr().out)
    assert (counted["NotificationsFailed"], counted["NotificationsFailedSlack"]) == (2, 2)
    notes = responder.store.get_incident(step.incident_id).notes
    note = (
        f"notification failed (approval request {step.approval_id}, sent again by the sweep): "
        "NotificationFailed: slack: SlackError: chat.postMessage: HTTP 500"
    )
    assert notes.count(note) == 1, notes  # each failure counted; the same failure noted once

    stage.slack.heal()
    assert client.lambda_.invoke("expire_approvals", event).payload["resent"] == 1
    assert approval_ids(stage.slack) == [step.approval_id]


def test_separation_of_duties_refuses_the_actor(stage: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    stage.extra.update(separation_of_duties=True, slack_identities={ALICE: stage.user, BOB: "bob"})
    for name, value in stage.environ().items():
        monkeypatch.setenv(name, value)
    responder = stage.responder()
    _step, approval_id = pending(stage, responder)
    with stage.chalice_client() as client:
        steady()
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


#: Slack's worked example ("Verifying requests from Slack", docs.slack.dev/authentication/verifying-requests-from-slack).
SLACK_DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_DOC_TIMESTAMP = "1531420618"
SLACK_DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
    b"channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
    b"response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
    b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def test_slacks_published_example_verifies() -> None:
    at = int(SLACK_DOC_TIMESTAMP)
    assert verify_signature(SLACK_DOC_SECRET, SLACK_DOC_BODY, SLACK_DOC_TIMESTAMP, SLACK_DOC_SIGNATURE, at + 60)
    tampered = SLACK_DOC_BODY.replace(b"roadrunner", b"roadrunnes")
    assert not verify_signature(SLACK_DOC_SECRET, tampered, SLACK_DOC_TIMESTAMP, SLACK_DOC_SIGNATURE, at)
    assert not verify_signature(SLACK_DOC_SECRET[:-1], SLACK_DOC_BODY, SLACK_DOC_TIMESTAMP, SLACK_DOC_SIGNATURE, at)
    assert not verify_signature(SLACK_DOC_SECRET, SLACK_DOC_BODY, SLACK_DOC_TIMESTAMP, SLACK_DOC_SIGNATURE, at + 301)

    # The same request as the slash-command handler sees it, at the time Slack sent it.
    handler = SlackInteractions(
        settings=Settings(), store=None, decisions=None, signing_secret=lambda: SLACK_DOC_SECRET, clock=lambda: at
    )
    headers = {"X-Slack-Request-Timestamp": SLACK_DOC_TIMESTAMP, "X-Slack-Signature": SLACK_DOC_SIGNATURE}
    reply = handler.command(SLACK_DOC_BODY, headers)
    assert (reply.status, reply.body["text"]) == (
        200,
        "Usage: `/clampdown contain <resource ARN or instance/security-group id> [playbook]`",
    )
    assert handler.command(tampered, headers).status == 401


def test_a_wrong_content_type_is_refused_by_chalice(client: Client) -> None:
    body = b'{"payload": {}}'
    reply = client.http.post(
        "/slack/interactions", headers={**sign(SIGNING_SECRET, body), "Content-Type": "application/json"}, body=body
    )
    assert reply.status_code == 415
