"""SNS (moto) and generic webhook (a fake receiver over real HTTP) channels, and the fan-out to all of them."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.responder import approval_command
from clampdown.local_slack.server import WebhookReceiver
from tests.functional.notify.stage import AUTO_PLAYBOOK, Stage

NO_SLACK = {"slack_token_secret": None, "slack_signing_secret": None}


def sns_queue(stage: Stage) -> tuple[str, str]:
    """A topic with an SQS subscriber (what SNS delivers is read back from the queue)."""
    sns, sqs = stage.session.client("sns"), stage.session.client("sqs")
    topic = sns.create_topic(Name="clampdown-alerts")["TopicArn"]
    url = sqs.create_queue(QueueName="alerts-subscriber")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return topic, url


def delivered(stage: Stage, url: str) -> list[dict[str, Any]]:
    got = stage.session.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def test_sns_publishes_a_summary_and_the_document_with_filterable_attributes(stage: Stage) -> None:
    topic, url = sns_queue(stage)
    responder = stage.responder(AUTO_PLAYBOOK, sns_topic_arn=topic, **NO_SLACK)
    responder.handle(stage.finding())
    [envelope] = delivered(stage, url)
    assert envelope["Subject"] == "[MEDIUM] API GeneratedFindingAPIName was invoked from a Tor exit node."
    attributes = {k: v["Value"] for k, v in envelope["MessageAttributes"].items()}
    [incident] = responder.store.list_incidents()
    assert attributes == {
        "event": "incident.changed",
        "severity": "MEDIUM",
        "severity_score": "5",
        "status": "contained",
        "incident_id": incident.id,
        "account": "123456789012",
        "region": "us-east-1",
        "finding_type": "UnauthorizedAccess:IAMUser/TorIPCaller",
    }
    document = json.loads(envelope["Message"])  # the SQS protocol gets the JSON document
    assert document["event"] == "incident.changed"
    assert document["incident"]["id"] == incident.id
    assert [(s["action"], s["status"]) for s in document["incident"]["steps"]] == [
        ("iam.deactivate-access-key", "contained")
    ]
    # a redelivery that changes nothing publishes nothing
    responder.handle(stage.finding(count=2, event_id="again"))
    assert delivered(stage, url) == []


def test_sns_approval_requests_name_the_cli_fallback(stage: Stage) -> None:
    topic, url = sns_queue(stage)
    responder = stage.responder(sns_topic_arn=topic, **NO_SLACK)
    step = responder.handle(stage.finding()).steps[0]
    approval, alert = delivered(stage, url)
    document = json.loads(approval["Message"])
    assert approval["Subject"].startswith("Approval needed: [MEDIUM]")
    assert document["approval"]["cli"] == f"clampdown approve {step.approval_id}"
    assert document["approval"]["plan"]["calls"][0]["call"] == "iam:UpdateAccessKey"
    assert json.loads(alert["Message"])["incident"]["status"] == "awaiting-approval"


def test_the_webhook_posts_json_per_change_with_retries(stage: Stage, receiver: WebhookReceiver) -> None:
    stage.session.client("ssm").put_parameter(
        Name="/clampdown/test/webhook", Value=f"{receiver.url}/hooks/T1/secret-path", Type="SecureString"
    )
    receiver.fail("/hooks/", 503, times=1)
    receiver.fail("/hooks/", 429, times=1, retry_after=0)
    responder = stage.responder(webhook_url_secret="/clampdown/test/webhook", **NO_SLACK)
    step = responder.handle(stage.finding()).steps[0]
    attempts = receiver.to("/hooks/T1/secret-path")
    assert [a.status for a in attempts] == [503, 429, 202, 202]  # approval (after 2 retries), then the alert
    approval, alert = (a.json for a in attempts[2:])
    assert attempts[2].headers["content-type"] == "application/json"
    assert approval["event"] == "approval.requested" and approval["approval"]["id"] == step.approval_id
    assert alert["event"] == "incident.changed" and alert["incident"]["status"] == "awaiting-approval"
    assert alert["text"].startswith("[MEDIUM] API GeneratedFindingAPIName")

    assert responder.store.decide_approval(step.approval_id, "approved", "cli:ops", "2026-01-01T00:00:00Z")
    responder.handle(approval_command(step.incident_id, step.approval_id))
    last = receiver.to("/hooks/")[-1].json
    assert last["incident"]["status"] == "contained"
    assert last["incident"]["steps"][0]["approved_by"] == "cli:ops"


def test_a_failing_webhook_is_reported_without_its_url(stage: Stage, receiver: WebhookReceiver) -> None:
    url = f"{receiver.url}/hooks/T1/very-secret-path"
    stage.session.client("secretsmanager").create_secret(Name="clampdown/test/webhook", SecretString=url)
    receiver.fail("/hooks/", 500, times=100)
    responder = stage.responder(
        AUTO_PLAYBOOK, webhook_url_secret="clampdown/test/webhook", notify_retries=1, **NO_SLACK
    )
    responder.handle(stage.finding())
    assert stage.key_status() == "Inactive"
    [incident] = responder.store.list_incidents()
    assert incident.notes == [
        "notification failed: NotificationFailed: webhook: WebhookError: webhook: HTTP 500 after 2 attempt(s)"
    ]
    assert "very-secret-path" not in json.dumps(incident.to_dict())


def test_pagerduty_events_v2_shape(stage: Stage, receiver: WebhookReceiver) -> None:
    secret = {"url": f"{receiver.url}/v2/enqueue", "format": "pagerduty", "routing_key": "R0UTINGKEY"}
    stage.session.client("secretsmanager").create_secret(Name="clampdown/test/pd", SecretString=json.dumps(secret))
    responder = stage.responder(AUTO_PLAYBOOK, webhook_url_secret="clampdown/test/pd", **NO_SLACK)
    responder.handle(stage.finding())
    [event] = [r.json for r in receiver.to("/v2/enqueue")]
    [incident] = responder.store.list_incidents()
    assert event["routing_key"] == "R0UTINGKEY" and event["event_action"] == "trigger"
    assert event["dedup_key"] == incident.id
    assert event["payload"]["severity"] == "warning"
    assert event["payload"]["summary"] == "[MEDIUM] API GeneratedFindingAPIName was invoked from a Tor exit node."
    assert event["payload"]["custom_details"]["incident"]["status"] == "contained"


def test_one_failing_channel_does_not_stop_the_others(stage: Stage, receiver: WebhookReceiver) -> None:
    topic, url = sns_queue(stage)
    stage.session.client("secretsmanager").create_secret(
        Name="clampdown/test/webhook", SecretString=f"{receiver.url}/h"
    )
    stage.slack.fail("/api/", 500, times=100)
    responder = stage.responder(
        AUTO_PLAYBOOK, sns_topic_arn=topic, webhook_url_secret="clampdown/test/webhook", notify_retries=0
    )
    responder.handle(stage.finding())
    assert len(delivered(stage, url)) == 1
    assert [r.status for r in receiver.to("/h")] == [202]
    [incident] = responder.store.list_incidents()
    assert incident.notes == ["notification failed: NotificationFailed: slack: SlackError: chat.postMessage: HTTP 500"]
    counts = responder.telemetry.counts
    assert (counts["NotificationsFailed"], counts["NotificationsFailedSlack"], counts["NotificationsFailedSns"]) == (
        1,
        1,
        0,
    )
