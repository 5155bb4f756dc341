"""Fuzzing the Lambda SQS handler end to end on the sandbox deployment (moto in-process).

Bodies are mutated real events (mostly pointed at the sandbox account, so they pass intake and reach the
normalizer and the playbooks), the demo's scenarios mutated, random envelopes and JSON, non-JSON,
huge and deeply nested payloads, unicode and nulls. For each delivery:

- the handler returns ``{"batchItemFailures": [...]}`` naming only records of the batch, or raises
  Powertools' ``BatchProcessingError`` when every record failed, and nothing else;
- a record fails exactly when its body cannot be an event (not JSON, not an object) or does not
  normalize (``InvalidEvent``); an event refused by intake is acknowledged;
- an event that does not normalize, or is refused, changes nothing in AWS: not even the responder's
  own tables (every API call of the responder's session is recorded).

The offline oracle is the same planner the handler uses (``chalicelib.planner.evaluate``); it must
itself raise nothing but ``InvalidEvent``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from hypothesis import event, given
from hypothesis import strategies as st

from chalicelib.findings import InvalidEvent
from chalicelib.handlers import handle_sqs
from chalicelib.intake import Intake
from chalicelib.planner import evaluate
from chalicelib.responder import COMMAND_KEY
from clampdown import sandbox as sb
from tests.reliability.conftest import PROFILE
from tests.reliability.harness import Deployment, deployment, sqs_event
from tests.reliability.strategies import message_bodies, scenario_events


@dataclass(frozen=True)
class Expected:
    fails: bool  # the record is reported in batchItemFailures
    may_act: bool  # it may change AWS (it normalizes, passes intake and matches a playbook)
    command: bool = False  # a forged approval command: never acts, may fail (ids too long for DynamoDB)


@dataclass
class Oracle:
    library: Any
    intake: Intake

    def expect(self, body: str) -> Expected:
        from chalicelib.handlers import parse_body

        try:
            message = parse_body(body)
        except ValueError:
            return Expected(fails=True, may_act=False)
        if COMMAND_KEY in message:  # approvals, canaries: ids only, read from the store
            return Expected(fails=False, may_act=False, command=True)
        if self.intake.check_envelope(message):
            return Expected(fails=False, may_act=False)
        try:
            evaluation = evaluate(message, self.library)
        except InvalidEvent:
            return Expected(fails=True, may_act=False)
        acting = [p for p in evaluation.plans if not self.intake.check_finding(p.finding)]
        return Expected(fails=False, may_act=bool(acting))


@pytest.fixture(scope="module")
def handler_stage() -> Iterator[tuple[Deployment, Oracle]]:
    from chalicelib import wiring
    from chalicelib.settings import Settings

    with deployment() as stage:
        settings = Settings.from_env()
        library = wiring.load_bundled_library().with_overrides(settings.overrides)
        intake = Intake(sb.ACCOUNT, settings.accounts, settings.custom_sources, wiring.guardrails_for(settings))
        yield stage, Oracle(library, intake)


def known_incidents(stage: Deployment) -> set[str]:
    """The incidents' keys (``INC#…``) in the stage's table now."""
    from chalicelib.settings import Settings

    pages = (
        stage.box.session.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=Settings.from_env().incidents_table,
            FilterExpression="sk = :meta",
            ExpressionAttributeValues={":meta": {"S": "META"}},
            ProjectionExpression="pk",
        )
    )
    return {item["pk"]["S"] for page in pages for item in page["Items"]}


def changes_of_a_delivery_that_does_not_act(stage: Deployment, known: set[str]) -> list[str]:
    """Every write, except the delivery recorded on an incident that already existed: a finding's new
    shape that no playbook acts on (archived, below a threshold) still counts on its incident."""
    from chalicelib.settings import Settings

    table = Settings.from_env().incidents_table
    changes = []
    for call in stage.calls.calls:
        key = call.params.get("Key") or call.params.get("Item") or {}
        pk = key.get("pk", {}).get("S") if isinstance(key.get("pk"), dict) else None
        if not call.writes or (call.service == "dynamodb" and call.params.get("TableName") == table and pk in known):
            continue
        changes.append(f"{call.service}:{call.operation}")
    return changes


def deliver(bodies: list[str]) -> set[str]:
    """The handler's answer as the ids of the failed records (all of them when Powertools raised)."""
    event = sqs_event(bodies)
    ids = [r["messageId"] for r in event["Records"]]
    try:
        response = handle_sqs(event, sb.LambdaContext())
    except BatchProcessingError:
        return set(ids)
    assert isinstance(response, dict) and set(response) == {"batchItemFailures"}, response
    failures = response["batchItemFailures"]
    assert isinstance(failures, list)
    failed = [f["itemIdentifier"] for f in failures]
    assert all(set(f) == {"itemIdentifier"} for f in failures)
    assert len(failed) == len(set(failed)) and set(failed) <= set(ids), (failed, ids)
    assert len(failed) < len(ids), "Powertools raises when every record failed"
    return set(failed)


@PROFILE
@given(data=st.data())
def test_fuzz_one_message_at_a_time(handler_stage: tuple[Deployment, Oracle], data: st.DataObject) -> None:
    stage, oracle = handler_stage
    body = data.draw(message_bodies(scenario_events(stage.box.env)), label="body")
    expected = oracle.expect(body)
    event(f"expected: {'fails' if expected.fails else 'acts' if expected.may_act else 'handled, no action'}")
    known = known_incidents(stage)
    stage.calls.clear()

    failed = deliver([body])

    assert (failed == {"m0"}) is expected.fails or expected.command, (expected, body[:300])
    if expected.command:
        assert stage.calls.aws_writes() == [], f"a forged command changed AWS: {stage.calls.aws_writes()}"
    elif not expected.may_act:
        changes = changes_of_a_delivery_that_does_not_act(stage, known)
        assert changes == [], f"an event that does not act changed AWS: {changes}"


@PROFILE
@given(data=st.data())
def test_fuzz_batches_fail_only_their_bad_records(
    handler_stage: tuple[Deployment, Oracle], data: st.DataObject
) -> None:
    stage, oracle = handler_stage
    bodies = data.draw(st.lists(message_bodies(scenario_events(stage.box.env)), min_size=1, max_size=6), label="batch")
    expected = [oracle.expect(body) for body in bodies]
    known = known_incidents(stage)
    stage.calls.clear()

    failed = deliver(bodies)

    for index, (body, want) in enumerate(zip(bodies, expected, strict=True)):
        if not want.command:
            assert (f"m{index}" in failed) is want.fails, (index, want, body[:300])
    if not any(e.may_act for e in expected):
        if any(e.command for e in expected):
            writes = stage.calls.aws_writes()
        else:
            writes = changes_of_a_delivery_that_does_not_act(stage, known)
        assert writes == [], f"a batch that does not act changed AWS: {writes}"


def test_huge_and_deep_bodies_fail_cleanly(handler_stage: tuple[Deployment, Oracle]) -> None:
    """Explicit cases of what the strategies draw rarely: each fails alone, nothing is written."""
    stage, _ = handler_stage
    event = {"source": "aws.guardduty", "detail-type": "GuardDuty Finding", "account": sb.ACCOUNT}
    cases = [
        "[" * 200_000 + "]" * 200_000,
        json.dumps({**event, "detail": {"id": "A" * 1_000_000}}),
        json.dumps({**event, "detail": "NEST"}).replace('"NEST"', '{"a":' * 990 + "{}" + "}" * 990),
        "9" * 10_000,
        "\x00" * 1000,
        "",
    ]
    stage.calls.clear()
    assert deliver([*cases, json.dumps({"source": "com.attacker", "detail-type": "x", "detail": {}})]) == {
        f"m{i}" for i in range(len(cases))
    }
    assert stage.calls.writes == []
