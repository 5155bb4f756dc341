"""`clampdown doctor` on the moto server: a healthy stage passes; each fault is named."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from clampdown.cli import cli
from tests.conftest import REGION

ROOT = Path(__file__).resolve().parents[2]
MEMBER = "111111111111"


@pytest.fixture
def deployed(aws_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The dev stage's resources as its template creates them (names from clampdown.deploy.stage),
    with a thread acting as Lambda's event source mapping on the queue."""
    import boto3

    from chalicelib import wiring
    from chalicelib.incidents import TABLE_DEFINITION
    from clampdown import sandbox as sb
    from clampdown.deploy.rules import generate_rules
    from clampdown.deploy.stage import Stage
    from clampdown.playbooks.loader import load_library

    stage = Stage.load(ROOT, "dev")
    library = load_library([ROOT / "playbooks"])
    session = boto3.session.Session(region_name=REGION)
    dynamodb, sqs, events = session.client("dynamodb"), session.client("sqs"), session.client("events")
    dynamodb.create_table(TableName=stage.incidents_table, **TABLE_DEFINITION)
    dynamodb.create_table(
        TableName=stage.idempotency_table,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dlq_url = sqs.create_queue(QueueName=stage.dead_letter_queue_name)["QueueUrl"]
    queue_url = sqs.create_queue(QueueName=stage.queue_name, Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rules = generate_rules(library, stage.settings.custom_sources)
    for rule in rules.rules:
        name = f"{stage.prefix}-{rule.name}"[:64]
        events.put_rule(Name=name, EventPattern=json.dumps(rule.pattern), State="ENABLED")
        events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    cloudwatch = session.client("cloudwatch")
    for alarm, namespace, metric, dimension, value in (
        ("dlq", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", stage.dead_letter_queue_name),
        ("errors", "AWS/Lambda", "Errors", "FunctionName", stage.function_name("respond")),
    ):
        cloudwatch.put_metric_alarm(
            AlarmName=f"{stage.prefix}-{alarm}", Namespace=namespace, MetricName=metric, Statistic="Maximum",
            Dimensions=[{"Name": dimension, "Value": value}], Period=60, EvaluationPeriods=1, Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        )  # fmt: skip
    session.client("ssm").put_parameter(Name=stage.kill_switch_parameter, Value="off", Type="String")
    bundle = sb.write_bundle(ROOT / "playbooks", tmp_path)
    for key, value in {**stage.environment, "CLAMPDOWN_BUNDLE": str(bundle), "CLAMPDOWN_HOME_ACCOUNT": sb.ACCOUNT,
                       "CLAMPDOWN_ACCOUNTS": MEMBER, "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "CRITICAL"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    wiring.reset()
    box = sb.Sandbox(session, queue_url, dlq_url, bundle, sb.Environment())
    stop = threading.Event()

    def lambda_event_source() -> None:
        while not stop.is_set():
            sb.pump(box)
            stop.wait(0.2)

    worker = threading.Thread(target=lambda_event_source, daemon=True)
    worker.start()
    yield {"session": session, "stage": stage, "rules": rules, "queue_url": queue_url, "dlq_url": dlq_url}
    stop.set()
    worker.join(timeout=10)
    wiring.reset()


def doctor(*extra: str) -> tuple[int, dict[str, Any]]:
    out = CliRunner().invoke(
        cli,
        [
            "doctor",
            "--stage",
            "dev",
            "--region",
            REGION,
            "--format",
            "json",
            "--canary-timeout",
            "20",
            "--member-account",
            MEMBER,
            *extra,
        ],
    )
    assert out.output.startswith("{"), out.output
    return out.exit_code, json.loads(out.output)


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


def test_a_healthy_stage_passes(deployed: dict[str, Any]) -> None:
    code, report = doctor()
    assert code == 0, [c for c in report["checks"] if c["status"] != "ok"]
    assert report["healthy"] is True
    checks = statuses(report)
    assert checks["canary"] == "ok" and checks["dead-letter queue"] == "ok" and checks["kill switch"] == "ok"
    assert checks[f"member role {MEMBER} {REGION}"] == "ok"
    assert sum(1 for name in checks if name.startswith("rule ")) == len(deployed["rules"].rules)
    canary = next(c for c in report["checks"] if c["name"] == "canary")
    assert canary["detail"].startswith("reached the responder in ")


def test_each_fault_is_named(deployed: dict[str, Any]) -> None:
    session, stage = deployed["session"], deployed["stage"]
    events = session.client("events")
    first = f"{stage.prefix}-{deployed['rules'].rules[0].name}"[:64]
    events.disable_rule(Name=first)
    second = f"{stage.prefix}-{deployed['rules'].rules[-1].name}"[:64]
    events.remove_targets(Rule=second, Ids=["queue"])
    session.client("sqs").send_message(QueueUrl=deployed["dlq_url"], MessageBody="this is not JSON")
    session.client("cloudwatch").delete_alarms(AlarmNames=[f"{stage.prefix}-dlq"])
    session.client("ssm").put_parameter(Name=stage.kill_switch_parameter, Value="on", Type="String", Overwrite=True)

    code, report = doctor("--no-canary")
    assert code == 1 and report["healthy"] is False
    details = {c["name"]: (c["status"], c["detail"]) for c in report["checks"]}
    assert details[f"rule {first}"][0] == "fail" and "state is DISABLED" in details[f"rule {first}"][1]
    assert details[f"rule {second}"][0] == "fail" and "does not target the queue" in details[f"rule {second}"][1]
    assert details["dead-letter queue"] == ("fail", "1 message(s) failed; e.g. not JSON")
    assert details["dead-letter queue alarm"][0] == "fail"
    assert details["kill switch"][0] == "warn" and "is ON" in details["kill switch"][1]


def test_a_rule_that_does_not_pin_its_source_is_refused(deployed: dict[str, Any]) -> None:
    stage = deployed["stage"]
    name = f"{stage.prefix}-{deployed['rules'].rules[0].name}"[:64]
    deployed["session"].client("events").put_rule(
        Name=name, EventPattern=json.dumps({"detail-type": ["GuardDuty Finding"]})
    )
    code, report = doctor("--no-canary")
    assert code == 1
    detail = next(c["detail"] for c in report["checks"] if c["name"] == f"rule {name}")
    assert "does not pin source and detail-type" in detail


def test_missing_stage_resources(aws_endpoint: str) -> None:
    code, report = doctor("--no-canary")
    assert code == 1
    assert statuses(report)["queue"] == "fail"
