"""The Lambda SQS handler through Chalice's test client, on the moto server over real HTTP."""

from __future__ import annotations

import copy
import json
from typing import Any

from chalice.test import Client

from app import app
from clampdown import scenarios
from tests.e2e.conftest import STAGE, sqs_record_event


def tor_event(stage: dict[str, Any]) -> dict[str, Any]:
    return scenarios.DEMO[0].build(stage["env"])


def invoke(bodies: list[Any]) -> dict[str, Any]:
    with Client(app, stage_name=STAGE) as client:
        response = client.lambda_.invoke("respond", sqs_record_event(bodies))
    payload: dict[str, Any] = response.payload
    return payload


def key_status(stage: dict[str, Any]) -> str:
    iam = stage["session"].client("iam")
    return iam.list_access_keys(UserName=stage["env"].user_name)["AccessKeyMetadata"][0]["Status"]


def count_incidents(stage: dict[str, Any]) -> int:
    from chalicelib.incidents import DynamoIncidentStore

    table = stage["stage_env"]["CLAMPDOWN_INCIDENTS_TABLE"]
    return len(DynamoIncidentStore(stage["session"].client("dynamodb"), table).list_incidents())


def test_a_batch_with_a_poison_message_reports_only_that_one(stage: dict[str, Any]) -> None:
    good = tor_event(stage)
    poison = copy.deepcopy(good)
    del poison["detail"]["type"]
    event = sqs_record_event([good, poison, "this is not JSON"])
    with Client(app, stage_name=STAGE) as client:
        payload = client.lambda_.invoke("respond", event).payload
    ids = [r["messageId"] for r in event["Records"]]
    assert payload == {"batchItemFailures": [{"itemIdentifier": ids[1]}, {"itemIdentifier": ids[2]}]}
    assert key_status(stage) == "Inactive", "the good message was processed"
    assert count_incidents(stage) == 1


def test_duplicate_delivery_acts_once(stage: dict[str, Any]) -> None:
    event = tor_event(stage)
    assert invoke([event]) == {"batchItemFailures": []}
    iam = stage["session"].client("iam")
    # a human re-activates the key; a redelivery of the same finding must not deactivate it again
    iam.update_access_key(UserName=stage["env"].user_name, AccessKeyId=stage["env"].access_key_id, Status="Active")
    assert invoke([event, event]) == {"batchItemFailures": []}
    assert key_status(stage) == "Active"
    assert count_incidents(stage) == 1


def test_kill_switch_over_http(stage: dict[str, Any]) -> None:
    parameter = stage["stage_env"]["CLAMPDOWN_KILL_SWITCH_PARAMETER"]
    stage["session"].client("ssm").put_parameter(Name=parameter, Value="on", Type="String", Overwrite=True)
    assert invoke([tor_event(stage)]) == {"batchItemFailures": []}
    assert key_status(stage) == "Active"


def test_a_message_that_keeps_failing_ends_in_the_dead_letter_queue(stage: dict[str, Any]) -> None:
    from clampdown import sandbox as sb

    sqs = stage["session"].client("sqs")
    poison = tor_event(stage)
    poison["detail"]["severity"] = {"not": "a number"}
    sqs.send_message(QueueUrl=stage["queue_url"], MessageBody=json.dumps(poison))
    sqs.send_message(QueueUrl=stage["queue_url"], MessageBody=json.dumps(tor_event(stage)))
    box = sb.Sandbox(stage["session"], stage["queue_url"], stage["dlq_url"], stage["bundle"], stage["env"])
    stats = sb.pump(box)
    assert stats.failed == sb.MAX_RECEIVE_COUNT and stats.acknowledged == 1  # then the redrive policy moves it
    dead = sqs.receive_message(QueueUrl=stage["dlq_url"], MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["detail"]["severity"] for m in dead] == [{"not": "a number"}]
    assert key_status(stage) == "Inactive"
