"""The notify.slack / notify.sns / notify.webhook playbook steps, through the same channels as the alerts."""

from __future__ import annotations

import json

from clampdown.local_slack.server import WebhookReceiver
from tests.functional.notify.stage import Stage

PLAYBOOK = """\
name: tor-user-notify
description: Tell people, then contain.
match:
  source: [aws.guardduty]
  detail-type: [GuardDuty Finding]
steps:
  - action: notify.slack
    params:
      channel: "#soc-oncall"
      text: "{{ finding.severity_label }}: {{ finding.title }} (user {{ finding.actor.user_name }})"
  - action: notify.sns
    params:
      text: "Containing {{ finding.actor.user_name }}"
  - action: notify.webhook
    params:
      text: "Containing {{ finding.actor.user_name }}"
  - action: iam.deactivate-access-key
"""


def test_notification_steps_use_the_configured_channels(stage: Stage, receiver: WebhookReceiver) -> None:
    sns = stage.session.client("sns")
    topic = sns.create_topic(Name="soc")["TopicArn"]
    sqs = stage.session.client("sqs")
    url = sqs.create_queue(QueueName="soc-mail")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    stage.session.client("secretsmanager").create_secret(Name="clampdown/test/hook", SecretString=f"{receiver.url}/in")
    responder = stage.responder(PLAYBOOK, sns_topic_arn=topic, webhook_url_secret="clampdown/test/hook")
    event = stage.finding()
    event["detail"]["title"] = "<!channel> Tor & friends"
    report = responder.handle(event)
    assert [(s.action, s.status) for s in report.steps] == [
        ("notify.slack", "done"),
        ("notify.sns", "done"),
        ("notify.webhook", "done"),
        ("iam.deactivate-access-key", "contained"),
    ]
    [message] = [p for p in stage.slack.calls("chat.postMessage") if p.params["channel"] == "#soc-oncall"]
    assert message.params["blocks"][0] == {
        "type": "section",
        "text": {
            "type": "plain_text",
            "text": "MEDIUM: &lt;!channel&gt; Tor &amp; friends (user mallory)",
            "emoji": False,
        },
    }
    assert report.steps[0].result["output"] == {"channel": "slack", **{k: message.answer[k] for k in ("channel", "ts")}}

    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
    documents = [json.loads(b) for b in bodies]  # raw delivery: the "sqs" entry, the JSON document
    assert {
        "event": "message",
        "text": "Containing mallory",
        "incident": report.incidents[0],
        "playbook": "tor-user-notify",
        "finding": "UnauthorizedAccess:IAMUser/TorIPCaller",
    } in documents
    [hook] = [r.json for r in receiver.to("/in") if r.json["event"] == "message"]
    assert hook["text"] == "Containing mallory" and hook["incident"] == report.incidents[0]


def test_a_step_for_a_channel_that_is_not_configured_fails_precisely(stage: Stage) -> None:
    playbook = PLAYBOOK.replace(
        '  - action: notify.slack\n    params:\n      channel: "#soc-oncall"\n',
        "  - action: notify.slack\n    on_error: continue\n    params:\n",
    )
    playbook = playbook.replace("  - action: notify.sns\n", "  - action: notify.sns\n    on_error: continue\n")
    playbook = playbook.replace("  - action: notify.webhook\n", "  - action: notify.webhook\n    on_error: continue\n")
    responder = stage.responder(playbook, slack_channel=None)
    report = responder.handle(stage.finding())
    results = [(s.action, s.status, (s.result or {}).get("error_code"), s.reason) for s in report.steps]
    assert results == [
        (
            "notify.slack",
            "failed",
            "NotificationFailed",
            "SlackError: no Slack channel configured (CLAMPDOWN_SLACK_CHANNEL)",
        ),
        ("notify.sns", "failed", "NotConfigured", "no sns channel is configured for this stage"),
        ("notify.webhook", "failed", "NotConfigured", "no webhook channel is configured for this stage"),
        ("iam.deactivate-access-key", "contained", None, None),
    ]
    assert stage.key_status() == "Inactive"
