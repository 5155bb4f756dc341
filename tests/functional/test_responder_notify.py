"""Notifications never hold containment: a failing notify step, and one failing channel, on the Slack
stand-in (real HTTP) and SNS (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clampdown.local_slack.server import FakeSlack
from tests.functional.notify.stage import APPROVAL_PLAYBOOK, Stage, create_stage

NOTIFY_FIRST = """\
name: notify-then-contain
description: Tell the on-call channel, then deactivate the key.
match:
  source: [aws.guardduty]
  detail-type: [GuardDuty Finding]
steps:
  - action: notify.slack
    params:
      text: "heads up: {{ finding.title }}"
  - action: iam.deactivate-access-key
"""


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    """Secrets are cached per process (per Lambda instance): not across tests."""
    from chalicelib import secrets

    secrets.forget_all()
    yield
    secrets.forget_all()


@pytest.fixture
def stage(boto_session: Any, tmp_path: Path) -> Iterator[Stage]:
    with FakeSlack() as slack:
        yield create_stage(boto_session, slack, tmp_path)


def test_a_notify_step_that_fails_does_not_block_containment(stage: Stage) -> None:
    stage.slack.fail("/api/", 500, times=1000)
    responder = stage.responder(NOTIFY_FIRST, notify_retries=0)
    notify, contain = responder.handle(stage.finding()).steps
    assert (notify.action, notify.status) == ("notify.slack", "failed")
    assert notify.result is not None and notify.result["error_code"] == "NotificationFailed"
    assert (contain.action, contain.status) == ("iam.deactivate-access-key", "contained")
    assert stage.key_status() == "Inactive"


def test_a_playbook_can_still_make_a_notification_a_precondition(stage: Stage) -> None:
    stage.slack.fail("/api/", 500, times=1000)
    playbook = NOTIFY_FIRST.replace("  - action: notify.slack\n", "  - action: notify.slack\n    on_error: stop\n")
    responder = stage.responder(playbook, notify_retries=0)
    notify, contain = responder.handle(stage.finding()).steps
    assert notify.status == "failed"
    assert contain.status == "skipped" and "on_error is stop" in (contain.reason or "")
    assert stage.key_status() == "Active"


def test_one_channel_failing_an_approval_request_does_not_silence_the_others(stage: Stage) -> None:
    sns, sqs = stage.session.client("sns"), stage.session.client("sqs")
    topic = sns.create_topic(Name="clampdown-alerts")["TopicArn"]
    url = sqs.create_queue(QueueName="alerts-subscriber")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    stage.slack.fail("/api/", 500, times=1000)

    responder = stage.responder(APPROVAL_PLAYBOOK, sns_topic_arn=topic, notify_retries=0)
    responder.handle(stage.finding())

    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    events = sorted(json.loads(json.loads(m["Body"])["Message"])["event"] for m in got)
    assert events == ["approval.requested", "incident.changed"]
    [incident] = responder.store.list_incidents()
    assert [note.split(": ", 2)[:2] for note in incident.notes] == [
        ["notification failed", "NotificationFailed"],  # the approval request (Slack)
        ["notification failed", "NotificationFailed"],  # the incident update (Slack)
    ]
    counts = responder.telemetry.counts
    assert (counts["NotificationsFailed"], counts["NotificationsFailedSlack"], counts["NotificationsFailedSns"]) == (
        2,
        2,
        0,
    )
    # the request that never reached Slack is not taken for sent: the next change tries it again
    assert incident.notification.get("approvals_sent", []) == []
