"""Slack alerts from the responder on moto, delivered over real HTTP to the fake Slack."""

from __future__ import annotations

from typing import Any

from chalicelib.responder import approval_command
from tests.functional.notify.stage import AUTO_PLAYBOOK, Stage

QUARANTINE = (
    AUTO_PLAYBOOK
    + """\
  - action: iam.quarantine-user
    target: iam-user
"""
)


def incident_of(responder: Any) -> Any:
    [incident] = responder.store.list_incidents()
    return incident


def test_an_alert_is_posted_once_then_updated_in_place(stage: Stage) -> None:
    responder = stage.responder(AUTO_PLAYBOOK)
    report = responder.handle(stage.finding())
    assert [s.status for s in report.steps] == ["contained"]
    assert stage.key_status() == "Inactive"
    [post] = stage.slack.calls("chat.postMessage")
    assert post.params["channel"] == "#security-alerts"
    assert post.headers["authorization"] == f"Bearer {stage.slack.token}"
    assert post.params["unfurl_links"] is False
    text = str(post.params["blocks"])
    assert "✅ *1. iam.deactivate-access-key* on `" + stage.key + "` — contained" in text
    incident = incident_of(responder)
    remembered = incident.notification["slack"]
    assert remembered["channel"] == stage.slack.channel_id("#security-alerts")
    assert remembered["ts"] == post.answer["ts"]
    assert (remembered["channel"], remembered["ts"]) in stage.slack.messages

    # The same finding again (a redelivery that changes nothing): no second message, no edit.
    responder.handle(stage.finding(count=5, event_id="another-delivery"))
    assert len(stage.slack.calls("chat.postMessage")) == 1
    assert stage.slack.to("/api/chat.update") == []


def decide_and_run(responder: Any, step: Any, by: str = "slack:U0ALICE (alice)") -> None:
    assert responder.store.decide_approval(step.approval_id, "approved", by, "2026-01-01T00:00:00Z")
    responder.handle(approval_command(step.incident_id, step.approval_id))


def test_step_changes_are_thread_replies_and_the_approval_message_is_closed(stage: Stage) -> None:
    responder = stage.responder()  # approval mode
    step = responder.handle(stage.finding()).steps[0]
    assert step.status == "pending-approval"
    posts = stage.slack.calls("chat.postMessage")
    assert [("actions" in str(p.params["blocks"])) for p in posts] == [True, False]  # approval, then the alert
    decide_and_run(responder, step)
    assert stage.key_status() == "Inactive"

    incident = incident_of(responder)
    state = incident.notification["slack"]
    # the alert updated in place, with who approved
    alert_update = [u for u in stage.slack.calls("chat.update") if u.params["ts"] == state["ts"]]
    assert alert_update and "approved by <@U0ALICE>" in str(alert_update[-1].params["blocks"])
    # a thread reply under the alert names the changed step
    [reply] = [p for p in stage.slack.calls("chat.postMessage") if p.params.get("thread_ts")]
    assert reply.params["thread_ts"] == state["ts"]
    assert "— contained · approved by <@U0ALICE>" in str(reply.params["blocks"])
    # the approval message lost its buttons and says what happened
    ref = state["approvals"][step.approval_id]
    [closed] = [u for u in stage.slack.calls("chat.update") if u.params["ts"] == ref["ts"]]
    blocks = closed.params["blocks"]
    assert all(b["type"] != "actions" for b in blocks)
    assert "✅ *Approved* by <@U0ALICE> — contained" in str(blocks)
    assert ref["closed"] == "contained"
    assert ref["ts"] == posts[0].answer["ts"]


def test_a_deleted_alert_is_posted_again(stage: Stage) -> None:
    responder = stage.responder()
    step = responder.handle(stage.finding()).steps[0]
    stage.slack.messages.clear()  # someone deleted the messages in Slack
    decide_and_run(responder, step)
    updates = stage.slack.to("/api/chat.update")
    assert updates and all(u.answer == {"ok": False, "error": "message_not_found"} for u in updates)
    alerts = [p for p in stage.slack.calls("chat.postMessage") if "*Steps*" in str(p.params["blocks"])]
    first, second = alerts
    assert incident_of(responder).notification["slack"]["ts"] == second.answer["ts"] != first.answer["ts"]
    assert "contained" in str(second.params["blocks"])


def test_rate_limits_are_honoured_then_the_alert_goes_through(stage: Stage) -> None:
    stage.slack.fail("/api/chat.postMessage", 429, times=1, retry_after=1)
    responder = stage.responder(AUTO_PLAYBOOK, notify_max_wait_s=2.0)
    responder.handle(stage.finding())
    attempts = stage.slack.to("/api/chat.postMessage")
    assert [a.status for a in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.0, "the retry came before the Retry-After Slack asked for"
    assert incident_of(responder).notes == []
    assert responder.telemetry.counts["NotificationsFailed"] == 0


def test_slack_down_the_incident_is_still_contained_and_the_failure_recorded(stage: Stage) -> None:
    # A 429 storm asking for longer than we may wait: no sleeping through it, a fast failure.
    stage.slack.fail("/api/chat.postMessage", 429, times=100, retry_after=30)
    responder = stage.responder(QUARANTINE)
    report = responder.handle(stage.finding())
    assert [s.status for s in report.steps] == ["contained", "contained"]
    assert stage.key_status() == "Inactive"
    incident = incident_of(responder)
    assert incident.status == "contained"
    assert incident.notes == [
        "notification failed: NotificationFailed: slack: SlackError: chat.postMessage: ratelimited (HTTP 429)"
    ]
    assert responder.telemetry.counts["NotificationsFailed"] == 1
    assert responder.telemetry.counts["NotificationsFailedSlack"] == 1
    assert len(stage.slack.to("/api/chat.postMessage")) == 1


def test_server_errors_are_retried_a_bounded_number_of_times(stage: Stage) -> None:
    stage.slack.fail("/api/chat.postMessage", 500, times=100)
    responder = stage.responder(AUTO_PLAYBOOK, notify_retries=2)
    responder.handle(stage.finding())
    assert [a.status for a in stage.slack.to("/api/chat.postMessage")] == [500, 500, 500]
    incident = incident_of(responder)
    assert incident.status == "contained" and stage.key_status() == "Inactive"
    assert "chat.postMessage" in incident.notes[0] and "HTTP 500" in incident.notes[0]
    assert responder.telemetry.counts["NotificationsFailed"] == 1


def test_an_alert_that_failed_goes_out_with_the_next_change(stage: Stage) -> None:
    stage.slack.fail("/api/chat.postMessage", 500, times=100)
    responder = stage.responder(notify_retries=1)
    step = responder.handle(stage.finding()).steps[0]
    assert "HTTP 500" in incident_of(responder).notes[0]
    stage.slack.heal()  # Slack is back
    decide_and_run(responder, step)
    [alert] = stage.slack.calls("chat.postMessage")
    assert "approved by <@U0ALICE>" in str(alert.params["blocks"])
    assert incident_of(responder).notification["slack"]["ts"] == alert.answer["ts"]


def test_without_a_channel_the_failure_is_explicit(stage: Stage) -> None:
    responder = stage.responder(AUTO_PLAYBOOK, slack_channel=None)
    responder.handle(stage.finding())
    assert stage.key_status() == "Inactive"
    assert "no Slack channel configured" in incident_of(responder).notes[0]


def test_an_incoming_webhook_gets_one_message_per_change(stage: Stage) -> None:
    stage.session.client("secretsmanager").create_secret(
        Name="clampdown/test/slack-webhook", SecretString=stage.slack.webhook_url
    )
    stage.slack.fail("/services/", 429, times=1, retry_after=0)
    responder = stage.responder(slack_token_secret=None, slack_webhook_secret="clampdown/test/slack-webhook")
    step = responder.handle(stage.finding()).steps[0]
    posts = stage.slack.to("/services/T0FAKE/B0FAKE/webhook-secret-path-XYZ")
    assert [p.status for p in posts] == [429, 200, 200]  # the approval request (retried), then the alert
    approval, alert = (p.json for p in posts[1:])
    assert approval["blocks"][-1]["elements"][0]["value"] == step.approval_id
    assert "⏳ awaiting-approval" in str(alert["blocks"])
    responder.handle(stage.finding(count=2, event_id="same-state"))
    assert len(stage.slack.to("/services/")) == 3, "nothing changed: nothing posted"
    decide_and_run(responder, step)
    last = stage.slack.to("/services/")[-1].json
    assert "update: the incident changed" in str(last["blocks"]) and "✅ contained" in str(last["blocks"])
    assert stage.slack.to("/api/") == [], "no Web API call without a token"
