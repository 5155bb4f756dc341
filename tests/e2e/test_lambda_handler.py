"""The Lambda SQS handler through Chalice's test client, on the moto server over real HTTP."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from clampdown import scenarios
from tests.e2e.conftest import (
    drain,
    incident_store,
    invoke,
    invoke_event,
    key_status,
    sqs_record_event,
    steps_of,
)
from tests.reliability.harness import Calls, Faults

KILL_SWITCH_REASON = "kill switch is on: nothing is applied"


def tor_event(stage: dict[str, Any]) -> dict[str, Any]:
    return scenarios.DEMO[0].build(stage["env"])


def count_incidents(stage: dict[str, Any]) -> int:
    return len(incident_store(stage).list_incidents())


@pytest.fixture
def handler_log() -> Iterator[list[logging.LogRecord]]:
    """What the handler logs (its Powertools logger, ``clampdown``), record by record."""
    from chalicelib.handlers import SERVICE

    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    collect = Collect()
    logging.getLogger(SERVICE).addHandler(collect)
    try:
        yield records
    finally:
        logging.getLogger(SERVICE).removeHandler(collect)


def failure_lines(records: list[logging.LogRecord]) -> list[dict[str, Any]]:
    """The "message failed" lines, as the handler's JSON formatter writes them to CloudWatch Logs."""
    from chalicelib.handlers import logger

    formatter = logger().registered_formatter
    return [json.loads(formatter.format(r)) for r in records if r.getMessage() == "message failed"]


def test_a_batch_with_a_poison_message_reports_only_that_one(
    stage: dict[str, Any], handler_log: list[logging.LogRecord]
) -> None:
    good = tor_event(stage)
    poison = copy.deepcopy(good)
    del poison["detail"]["type"]
    event = sqs_record_event([good, poison, "this is not JSON"])
    payload = invoke_event(event)
    ids = [r["messageId"] for r in event["Records"]]
    assert payload == {"batchItemFailures": [{"itemIdentifier": ids[1]}, {"itemIdentifier": ids[2]}]}
    assert key_status(stage) == "Inactive", "the good message was processed"
    assert count_incidents(stage) == 1
    # Each failure is one error line with the message id and the reason, never the message itself.
    logged = {line["message_id"]: line for line in failure_lines(handler_log)}
    assert set(logged) == set(ids[1:])
    assert logged[ids[1]]["level"] == "ERROR" and logged[ids[1]]["service"] == "clampdown"
    assert logged[ids[1]]["error"] == "InvalidEvent: GuardDuty finding: detail.type is missing or invalid"
    assert logged[ids[2]]["error"] == "JSONDecodeError: Expecting value: line 1 column 1 (char 0)"


def test_duplicate_delivery_acts_once(stage: dict[str, Any], responder_hooks: tuple[Calls, Faults]) -> None:
    calls, faults = responder_hooks
    event = tor_event(stage)
    assert invoke([event]) == {"batchItemFailures": []}
    assert key_status(stage) == "Inactive", "the first delivery contained the key"
    assert faults.sent["UpdateAccessKey"] == 1
    iam = stage["session"].client("iam")
    # a human re-activates the key; a redelivery of the same finding must not deactivate it again
    iam.update_access_key(UserName=stage["env"].user_name, AccessKeyId=stage["env"].access_key_id, Status="Active")
    assert invoke([event, event]) == {"batchItemFailures": []}
    assert key_status(stage) == "Active"
    assert faults.sent["UpdateAccessKey"] == 1, "exactly one UpdateAccessKey reached AWS"
    assert calls.count("UpdateAccessKey") == 1
    [incident] = incident_store(stage).list_incidents()
    assert incident.deliveries == 3
    steps = incident_store(stage).list_steps(incident.id)
    [deactivate] = [s for s in steps if s.action == "iam.deactivate-access-key"]
    assert (deactivate.status, deactivate.attempts) == ("contained", 1)
    assert len({s.key for s in steps}) == len(steps), "one record per step"


def test_kill_switch_over_http(stage: dict[str, Any], responder_hooks: tuple[Calls, Faults]) -> None:
    calls, _ = responder_hooks
    parameter = stage["stage_env"]["CLAMPDOWN_KILL_SWITCH_PARAMETER"]
    stage["session"].client("ssm").put_parameter(Name=parameter, Value="on", Type="String", Overwrite=True)
    assert invoke([tor_event(stage)]) == {"batchItemFailures": []}

    steps = steps_of(stage)
    held = {a: (s.status, s.reason) for a, s in steps.items() if s.reason == KILL_SWITCH_REASON}
    assert held["iam.deactivate-access-key"] == ("skipped", KILL_SWITCH_REASON)
    assert all(status == "skipped" for status, _ in held.values())
    assert [a for a, s in steps.items() if s.status in ("contained", "already-contained", "pending-approval")] == []
    # Nothing changed: no write reached AWS except the responder's own records.
    assert [c for c in calls.calls if c.writes and c.service not in ("dynamodb", "sqs")] == []
    iam = stage["session"].client("iam")
    user = stage["env"].user_name
    assert key_status(stage) == "Active"
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == []
    assert iam.get_login_profile(UserName=user)["LoginProfile"]["UserName"] == user


def test_a_message_that_keeps_failing_ends_in_the_dead_letter_queue(
    stage: dict[str, Any], handler_log: list[logging.LogRecord]
) -> None:
    sqs = stage["session"].client("sqs")
    redrive = json.loads(
        sqs.get_queue_attributes(QueueUrl=stage["queue_url"], AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )
    receives = int(redrive["maxReceiveCount"])
    poison = tor_event(stage)
    poison["detail"]["severity"] = {"not": "a number"}
    poison_id = sqs.send_message(QueueUrl=stage["queue_url"], MessageBody=json.dumps(poison))["MessageId"]
    sqs.send_message(QueueUrl=stage["queue_url"], MessageBody=json.dumps(tor_event(stage)))
    stats = drain(stage)
    assert stats.failed == receives and stats.acknowledged == 1
    dead = sqs.receive_message(QueueUrl=stage["dlq_url"], MaxNumberOfMessages=10).get("Messages", [])
    assert [m["MessageId"] for m in dead] == [poison_id]
    assert json.loads(dead[0]["Body"]) == poison, "the dead-letter queue keeps the message as it was sent"
    assert key_status(stage) == "Inactive"
    # One error line per receive, each with the reason.
    lines = failure_lines(handler_log)
    assert [line["message_id"] for line in lines] == [poison_id] * receives
    assert {line["error"] for line in lines} == {
        "InvalidEvent: GuardDuty finding: detail.severity is missing or invalid"
    }
