"""`clampdown doctor` on the moto server: a healthy stage passes; each fault is named."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from clampdown import sandbox as sb
from clampdown.cli import cli
from clampdown.deploy.stage import FUNCTION_POLICIES
from tests.conftest import REGION
from tests.e2e.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
MEMBER = "111111111111"


@pytest.fixture
def deployed(aws_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The dev stage's resources as its template creates them (names from clampdown.deploy.stage),
    with a thread acting as Lambda's event source mapping on the queue."""
    import boto3

    from chalicelib import wiring
    from chalicelib.incidents import TABLE_DEFINITION
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
    rule_arns = []
    for rule in rules.rules:
        name = f"{stage.prefix}-{rule.name}"[:64]
        rule_arns.append(events.put_rule(Name=name, EventPattern=json.dumps(rule.pattern), State="ENABLED")["RuleArn"])
        events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(queue_policy(queue_arn, rule_arns))})
    create_member_role(session, MEMBER, stage.settings.member_role_name)
    cloudwatch = session.client("cloudwatch")
    for alarm, namespace, metric, dimension, value in (
        ("dlq", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", stage.dead_letter_queue_name),
        *((f"{f}-errors", "AWS/Lambda", "Errors", "FunctionName", stage.function_name(f)) for f in FUNCTION_POLICIES),
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
    stop, paused = threading.Event(), threading.Event()

    def lambda_event_source() -> None:
        while not stop.is_set():
            if not paused.is_set():
                sb.pump(box)
            stop.wait(0.2)

    worker = threading.Thread(target=lambda_event_source, daemon=True)
    worker.start()
    yield {
        "session": session,
        "stage": stage,
        "rules": rules,
        "rule_arns": rule_arns,
        "queue_url": queue_url,
        "queue_arn": queue_arn,
        "dlq_url": dlq_url,
        "pause_event_source": paused.set,
    }
    stop.set()
    worker.join(timeout=10)
    wiring.reset()


def queue_policy(queue_arn: str, rule_arns: list[str]) -> dict[str, Any]:
    """The queue policy the merge template gives the queue: only the stage's rules may send."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OnlyClampdownRulesSendEvents",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns}},
            }
        ],
    }


def create_member_role(session: Any, account: str, role_name: str) -> None:
    """The member role in another account (moto keeps each account's IAM apart; its credentials
    come from assuming a role there, as the StackSet's would)."""
    sts = session.client("sts")
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/bootstrap", RoleSessionName="setup")[
        "Credentials"
    ]
    iam = session.client(
        "iam",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{sb.ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}  # fmt: skip
    iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))


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
    assert details(report)[f"member role {MEMBER} {REGION}"][1].endswith("and read it as itself")
    canary = next(c for c in report["checks"] if c["name"] == "canary")
    assert canary["detail"].startswith("queue → Lambda → incident table in ")


def details(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["name"]: (c["status"], c["detail"]) for c in report["checks"]}


def rule_name(deployed: dict[str, Any], index: int) -> str:
    return f"{deployed['stage'].prefix}-{deployed['rules'].rules[index].name}"[:64]


def test_each_fault_is_named(deployed: dict[str, Any]) -> None:
    session, stage = deployed["session"], deployed["stage"]
    assert len(deployed["rules"].rules) >= 4, "the shipped library needs several rules"
    events = session.client("events")
    disabled, untargeted, missing, unpermitted = (rule_name(deployed, i) for i in (0, -1, 1, 2))
    events.disable_rule(Name=disabled)
    events.remove_targets(Rule=untargeted, Ids=["queue"])
    events.remove_targets(Rule=missing, Ids=["queue"])
    events.delete_rule(Name=missing)
    # The queue policy no longer names one rule: EventBridge's deliveries for it would be refused.
    allowed = [arn for arn in deployed["rule_arns"] if not arn.endswith(f"/{unpermitted}")]
    policy = json.dumps(queue_policy(deployed["queue_arn"], allowed))
    session.client("sqs").set_queue_attributes(QueueUrl=deployed["queue_url"], Attributes={"Policy": policy})
    session.client("sqs").send_message(QueueUrl=deployed["dlq_url"], MessageBody="this is not JSON")
    session.client("cloudwatch").delete_alarms(
        AlarmNames=[f"{stage.prefix}-dlq", f"{stage.prefix}-expire_approvals-errors"]
    )
    session.client("ssm").put_parameter(Name=stage.kill_switch_parameter, Value="on", Type="String", Overwrite=True)

    code, report = doctor("--no-canary")
    assert code == 1 and report["healthy"] is False
    found = details(report)
    assert found[f"rule {disabled}"][0] == "fail" and "state is DISABLED" in found[f"rule {disabled}"][1]
    assert found[f"rule {untargeted}"] == ("fail", f"does not target the queue {stage.queue_name}")
    assert found[f"rule {missing}"][0] == "fail" and found[f"rule {missing}"][1].startswith("missing: redeploy")
    assert found[f"rule {unpermitted}"][0] == "fail"
    assert "does not let this rule send to it" in found[f"rule {unpermitted}"][1]
    assert found["dead-letter queue"][0] == "fail" and found["dead-letter queue"][1].startswith("1 message(s) failed")
    assert found["dead-letter queue alarm"][0] == "fail" and found["respond errors alarm"][0] == "ok"
    assert found["expire_approvals errors alarm"] == (
        "fail",
        f"no alarm on AWS/Lambda Errors for {stage.function_name('expire_approvals')}: redeploy the stage",
    )
    assert found["api_handler errors alarm"][0] == "ok"
    assert found["kill switch"][0] == "warn" and "is ON" in found["kill switch"][1]
    healthy_rules = [n for n in found if n.startswith("rule ") and n not in {f"rule {r}" for r in (disabled, untargeted, missing, unpermitted)}]  # fmt: skip
    assert healthy_rules and all(found[n][0] == "ok" for n in healthy_rules), "only the broken rules are named"


def test_the_dead_letter_queue_is_only_read_with_peek(deployed: dict[str, Any]) -> None:
    sqs = deployed["session"].client("sqs")
    sqs.send_message(QueueUrl=deployed["dlq_url"], MessageBody="this is not JSON")

    def receives() -> int:
        attributes = sqs.get_queue_attributes(QueueUrl=deployed["dlq_url"], AttributeNames=["All"])["Attributes"]
        assert int(attributes["ApproximateNumberOfMessages"]) == 1, "the message is still there, visible"
        got = sqs.receive_message(QueueUrl=deployed["dlq_url"], AttributeNames=["ApproximateReceiveCount"], VisibilityTimeout=0)  # fmt: skip
        return int(got["Messages"][0]["Attributes"]["ApproximateReceiveCount"])

    _, report = doctor("--no-canary")
    status, detail = details(report)["dead-letter queue"]
    assert status == "fail" and "--peek reads up to 10" in detail and "not JSON" not in detail
    assert receives() == 1, "doctor without --peek received nothing (only the check above did)"

    _, report = doctor("--no-canary", "--peek")
    assert details(report)["dead-letter queue"] == ("fail", "1 message(s) failed; e.g. not JSON")
    assert receives() == 3, "--peek received it once"


def test_a_member_account_without_the_role_is_named(deployed: dict[str, Any]) -> None:
    """moto's AssumeRole hands out credentials for any role ARN: the read as the role catches it."""
    other = "222222222222"
    code, report = doctor("--no-canary", "--member-account", other)
    assert code == 1
    status, detail = details(report)[f"member role {other} {REGION}"]
    assert (
        status == "fail"
        and detail == f"assumed, but account {other} has no role ClampdownMemberResponder: deploy the member role"
    )
    assert details(report)[f"member role {MEMBER} {REGION}"][0] == "ok"


def test_a_canary_that_never_arrives_times_out(deployed: dict[str, Any]) -> None:
    deployed["pause_event_source"]()
    code, report = doctor("--canary-timeout", "1")
    assert code == 1
    assert details(report)["canary"] == (
        "fail",
        "not seen after 1 s: check the function's event source mapping and its logs",
    )


def test_a_rule_that_does_not_pin_its_source_is_refused(deployed: dict[str, Any]) -> None:
    name = rule_name(deployed, 0)
    deployed["session"].client("events").put_rule(
        Name=name, EventPattern=json.dumps({"detail-type": ["GuardDuty Finding"]})
    )
    code, report = doctor("--no-canary")
    assert code == 1
    assert "does not pin source and detail-type" in details(report)[f"rule {name}"][1]


def test_missing_stage_resources(aws_endpoint: str) -> None:
    code, report = doctor("--no-canary")
    assert code == 1
    assert statuses(report)["queue"] == "fail"


def test_an_unreachable_api_fails_each_check_and_the_report_is_still_printed(
    aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listens on the endpoint: every check says so under its own name, none stops the others."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, report = doctor("--no-canary")
    assert code == 1 and report["healthy"] is False
    found = details(report)
    assert set(statuses(report).values()) == {"fail"}
    for name in ("queue", "dead-letter queue", "dead-letter queue alarm", "respond errors alarm", "api_handler errors alarm", "expire_approvals errors alarm", "kill switch", f"member role {MEMBER} {REGION}"):  # fmt: skip
        assert "EndpointConnectionError" in found[name][1], (name, found[name])
    rules = [n for n in found if n.startswith("rule ")]
    assert rules and all(found[n][1].startswith("could not be checked: EndpointConnectionError") for n in rules)
