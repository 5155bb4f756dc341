"""`clampdown doctor`: is a deployed stage healthy? Each check names what is wrong and how to fix it.

Checks: the EventBridge rules the playbooks need exist, are enabled and pin ``source`` and
``detail-type``; their targets reach the queue; the dead-letter queue is empty (or how many and why);
the alarms exist; the member role can be assumed in each configured account and region (through
that region's STS endpoint); the kill switch's state; and a canary message sent end to end through
the real path (queue → Lambda → incident store), with its latency.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass
class Doctor:
    stage: Any  # clampdown.deploy.stage.Stage
    library: Any  # chalicelib.playbooks.library.Library
    session: Any  # boto3 Session
    region: str
    member_regions: tuple[str, ...] = ()
    #: Member accounts to try besides the stage's CLAMPDOWN_ACCOUNTS.
    member_accounts: tuple[str, ...] = ()
    canary_timeout_s: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    checks: list[Check] = field(default_factory=list)

    def client(self, service: str, region: str | None = None) -> Any:
        return self.session.client(service, region_name=region or self.region)

    def add(self, name: str, status: str, detail: str) -> None:
        self.checks.append(Check(name, status, detail))

    @property
    def healthy(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    # -- the checks -----------------------------------------------------------------------------
    def run(self, *, canary: bool = True) -> list[Check]:
        queue_url, queue_arn = self._queue()
        self.check_rules(queue_arn)
        self.check_dead_letter_queue()
        self.check_alarms()
        self.check_member_role()
        self.check_kill_switch()
        if canary and queue_url:
            self.check_canary(queue_url)
        return self.checks

    def _queue(self) -> tuple[str | None, str | None]:
        sqs = self.client("sqs")
        try:
            url = sqs.get_queue_url(QueueName=self.stage.queue_name)["QueueUrl"]
        except Exception as exc:  # noqa: BLE001 - reported as a failed check
            self.add("queue", FAIL, f"queue {self.stage.queue_name} not found ({_code(exc)}): is the stage deployed?")
            return None, None
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.add("queue", OK, f"{self.stage.queue_name} exists")
        return url, arn

    def check_rules(self, queue_arn: str | None) -> None:
        from clampdown.deploy.rules import generate_rules

        settings = self.stage.settings
        expected = generate_rules(self.library.with_overrides(settings.overrides), settings.custom_sources)
        events = self.client("events")
        for rule in expected.rules:
            name = f"{self.stage.prefix}-{rule.name}"[:64]
            try:
                found = events.describe_rule(Name=name)
            except Exception as exc:  # noqa: BLE001
                self.add(f"rule {name}", FAIL, f"missing ({_code(exc)}): redeploy the stage (clampdown package)")
                continue
            problems = []
            if found.get("State") != "ENABLED":
                problems.append(f"state is {found.get('State')}: enable it (aws events enable-rule --name {name})")
            pattern = json.loads(found.get("EventPattern") or "{}")
            if not pins_source_and_detail_type(pattern):
                problems.append("does not pin source and detail-type: anyone with events:PutEvents could feed it")
            elif pattern != rule.pattern:
                problems.append("its pattern differs from what the playbooks need: redeploy the stage")
            targets = [t["Arn"] for t in events.list_targets_by_rule(Rule=name).get("Targets", [])]
            if queue_arn and queue_arn not in targets:
                problems.append(f"does not target the queue {self.stage.queue_name}")
            status = FAIL if problems else OK
            self.add(
                f"rule {name}",
                status,
                "; ".join(problems) or f"enabled, pinned, targets the queue ({len(rule.playbooks)} playbooks)",
            )

    def check_dead_letter_queue(self) -> None:
        sqs = self.client("sqs")
        try:
            url = sqs.get_queue_url(QueueName=self.stage.dead_letter_queue_name)["QueueUrl"]
        except Exception as exc:  # noqa: BLE001
            self.add("dead-letter queue", FAIL, f"{self.stage.dead_letter_queue_name} not found ({_code(exc)})")
            return
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]
        waiting = int(attributes.get("ApproximateNumberOfMessages", 0))
        if not waiting:
            self.add("dead-letter queue", OK, "empty")
            return
        peeked = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1).get("Messages", [])
        reasons = sorted({why_undeliverable(m.get("Body", "")) for m in peeked})
        self.add("dead-letter queue", FAIL, f"{waiting} message(s) failed; e.g. {' | '.join(reasons)}")

    def check_alarms(self) -> None:
        cloudwatch = self.client("cloudwatch")
        wanted = {
            "dead-letter queue alarm": (
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "QueueName",
                self.stage.dead_letter_queue_name,
            ),
            "responder errors alarm": ("AWS/Lambda", "Errors", "FunctionName", self.stage.function_name("respond")),
        }
        for label, (namespace, metric, dimension, value) in wanted.items():
            alarms = cloudwatch.describe_alarms_for_metric(
                Namespace=namespace, MetricName=metric, Dimensions=[{"Name": dimension, "Value": value}]
            ).get("MetricAlarms", [])
            if alarms:
                self.add(label, OK, f"{alarms[0]['AlarmName']} ({alarms[0].get('StateValue', 'unknown')})")
            else:
                self.add(label, FAIL, f"no alarm on {namespace} {metric} for {value}: redeploy the stage")

    def check_member_role(self) -> None:
        settings = self.stage.settings
        accounts = list(dict.fromkeys(a for a in (*settings.accounts, *self.member_accounts) if a != "*"))
        if not accounts:
            self.add("member role", OK, "no member accounts configured (CLAMPDOWN_ACCOUNTS)")
            return
        for account in accounts:
            for region in self.member_regions or (self.region,):
                # The target region's endpoint: opt-in regions reject tokens from the global one.
                sts = self.client("sts", region)
                params: dict[str, Any] = {
                    "RoleArn": f"arn:aws:iam::{account}:role/{settings.member_role_name}",
                    "RoleSessionName": "clampdown-doctor",
                    "DurationSeconds": 900,
                }
                if settings.external_id:
                    params["ExternalId"] = settings.external_id
                try:
                    sts.assume_role(**params)
                except Exception as exc:  # noqa: BLE001
                    self.add(
                        f"member role {account} {region}", FAIL, f"cannot assume {params['RoleArn']}: {_code(exc)}"
                    )
                else:
                    self.add(f"member role {account} {region}", OK, f"assumed {params['RoleArn']}")

    def check_kill_switch(self) -> None:
        from chalicelib.killswitch import ON_VALUES

        name = self.stage.kill_switch_parameter
        try:
            value = self.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
        except Exception as exc:  # noqa: BLE001
            self.add("kill switch", FAIL, f"{name} unreadable ({_code(exc)}): the responder would refuse to act")
            return
        if str(value).strip().lower() in ON_VALUES:
            self.add("kill switch", WARN, f"{name} is ON: nothing is applied, everything is reported")
        else:
            self.add("kill switch", OK, f"{name} is off")

    def check_canary(self, queue_url: str) -> None:
        from chalicelib.incidents import DynamoIncidentStore
        from chalicelib.responder import canary_command, canary_key

        canary = uuid.uuid4().hex
        store = DynamoIncidentStore(self.client("dynamodb"), self.stage.incidents_table)
        sent = time.time()
        self.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps(canary_command(canary)))
        deadline = sent + self.canary_timeout_s
        while time.time() < deadline:
            if store.timeline(canary_key(canary)):
                self.add("canary", OK, f"reached the responder in {time.time() - sent:.2f} s")
                return
            self.sleep(0.25)
        self.add(
            "canary", FAIL, f"not seen after {self.canary_timeout_s:g} s: check the function's logs and event source"
        )


def pins_source_and_detail_type(pattern: Any) -> bool:
    """Does every alternative of the pattern (``$or`` expanded) pin ``source`` and ``detail-type``?"""
    from clampdown.deploy.rules import Rule, RuleError, check_rule

    try:
        check_rule(Rule("deployed", pattern, ()))
    except RuleError:
        return False
    return True


def why_undeliverable(body: str) -> str:
    """A short reason a dead-lettered message could not be handled (as the responder would say)."""
    from chalicelib.findings import InvalidEvent, normalize

    try:
        message = json.loads(body)
    except ValueError:
        return "not JSON"
    if not isinstance(message, dict):
        return f"JSON {type(message).__name__}, not an object"
    try:
        normalize(message)
    except InvalidEvent as exc:
        return f"invalid event: {str(exc)[:160]}"
    return "a valid event: it failed for another reason (throttling, permissions): see the function's logs"


def _code(exc: BaseException) -> str:
    from chalicelib.actions.base import aws_error

    return aws_error(exc)[0]


def render(checks: Iterable[Check]) -> list[str]:
    marks = {OK: "✔", WARN: "!", FAIL: "✘"}
    return [f"{marks[c.status]} {c.name}: {c.detail}" for c in checks]
