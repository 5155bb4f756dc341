"""`clampdown doctor`: is a deployed stage healthy? Each check names what is wrong and how to fix it.

Checks: the EventBridge rules the playbooks need exist, are enabled, pin ``source`` and
``detail-type`` and target the queue, and the queue's policy lets each of them send; the dead-letter
queue is empty (or how many wait; with ``peek`` up to 10 are read to say why); the alarms exist; the
member role can be assumed in each configured account and region (through that region's STS
endpoint) and answers a read as itself there; the kill switch's state; and a canary message sent end
to end through the real path from the queue on (queue → event source mapping → Lambda → incident
table), with its latency.

Every check catches its own errors and reports them as its own failure, so one unreachable API never
hides the others. Everything is read-only except the canary (one SQS message, one timeline entry).

What the canary does not cover: EventBridge's delivery to the queue. A canary cannot be published on
the bus without widening the rules: they accept only ``aws.*`` sources (which no one can publish
with ``PutEvents``) and the custom sources a stage configures for real events. The rules, their
targets and the queue policy that lets them deliver are checked one by one instead.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from clampdown.deploy.stage import FUNCTION_POLICIES

OK, WARN, FAIL = "ok", "warn", "fail"
#: How many dead-lettered messages ``peek`` reads to say why they failed.
PEEK_MAX = 10


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class Queue:
    url: str
    arn: str
    policy: Any  # the queue policy document, or None


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
    #: Read (and so count one more receive of) up to 10 dead-lettered messages to say why they failed.
    peek: bool = False
    sleep: Callable[[float], None] = time.sleep
    checks: list[Check] = field(default_factory=list)

    def client(self, service: str, region: str | None = None) -> Any:
        return self.session.client(service, region_name=region or self.region)

    def add(self, name: str, status: str, detail: str) -> None:
        self.checks.append(Check(name, status, detail))

    @property
    def healthy(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    def guarded(self, name: str, check: Callable[[], None]) -> None:
        """Run one check; whatever it raises becomes that check's failure, and the others still run."""
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - reported as this check's failure
            self.add(name, FAIL, f"could not be checked: {_describe(exc)}")

    # -- the checks -----------------------------------------------------------------------------
    def run(self, *, canary: bool = True) -> list[Check]:
        found: list[Queue] = []
        self.guarded("queue", lambda: found.extend(self.find_queue()))
        queue = found[0] if found else None
        self.check_rules(queue)
        self.guarded("dead-letter queue", self.check_dead_letter_queue)
        self.check_alarms()
        self.check_member_role()
        self.guarded("kill switch", self.check_kill_switch)
        if canary:
            if queue is None:
                self.add("canary", FAIL, "not sent: the queue was not found")
            else:
                self.guarded("canary", lambda: self.check_canary(queue.url))
        return self.checks

    def find_queue(self) -> list[Queue]:
        sqs = self.client("sqs")
        try:
            url = sqs.get_queue_url(QueueName=self.stage.queue_name)["QueueUrl"]
        except Exception as exc:
            if _code(exc) in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                self.add("queue", FAIL, f"queue {self.stage.queue_name} not found: is the stage deployed?")
                return []
            raise
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "Policy"])["Attributes"]
        policy = json.loads(attributes["Policy"]) if attributes.get("Policy") else None
        self.add("queue", OK, f"{self.stage.queue_name} exists")
        return [Queue(url, attributes["QueueArn"], policy)]

    def check_rules(self, queue: Queue | None) -> None:
        from clampdown.deploy.rules import generate_rules

        settings = self.stage.settings
        try:
            expected = generate_rules(self.library.with_overrides(settings.overrides), settings.custom_sources)
        except Exception as exc:  # noqa: BLE001 - the library cannot say which rules it needs
            self.add("rules", FAIL, f"the playbooks' rules could not be generated: {_describe(exc)}")
            return
        for rule in expected.rules:
            name = f"{self.stage.prefix}-{rule.name}"[:64]
            self.guarded(f"rule {name}", partial(self.check_rule, name, rule, queue))

    def check_rule(self, name: str, rule: Any, queue: Queue | None) -> None:
        events = self.client("events")
        try:
            found = events.describe_rule(Name=name)
        except Exception as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            self.add(f"rule {name}", FAIL, "missing: redeploy the stage (clampdown package, then deploy)")
            return
        problems = []
        if found.get("State") != "ENABLED":
            problems.append(f"state is {found.get('State')}: enable it (aws events enable-rule --name {name})")
        pattern = json.loads(found.get("EventPattern") or "{}")
        if not pins_source_and_detail_type(pattern):
            problems.append("does not pin source and detail-type: anyone with events:PutEvents could feed it")
        elif pattern != rule.pattern:
            problems.append("its pattern differs from what the playbooks need: redeploy the stage")
        if queue is not None:
            targets = [t["Arn"] for t in events.list_targets_by_rule(Rule=name).get("Targets", [])]
            if queue.arn not in targets:
                problems.append(f"does not target the queue {self.stage.queue_name}")
            elif not queue_policy_allows(queue.policy, found.get("Arn", ""), queue.arn):
                problems.append(
                    f"the policy of queue {self.stage.queue_name} does not let this rule send to it "
                    "(EventBridge's deliveries would be refused): redeploy the stage"
                )
        self.add(
            f"rule {name}",
            FAIL if problems else OK,
            "; ".join(problems) or f"enabled, pinned, delivers to the queue ({len(rule.playbooks)} playbooks)",
        )

    def check_dead_letter_queue(self) -> None:
        sqs = self.client("sqs")
        name = self.stage.dead_letter_queue_name
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except Exception as exc:
            if _code(exc) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                raise
            self.add("dead-letter queue", FAIL, f"{name} not found: is the stage deployed?")
            return
        counts = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(counts))["Attributes"]
        visible, in_flight = (int(attributes.get(c, 0)) for c in counts)
        if not visible + in_flight:
            self.add("dead-letter queue", OK, "empty")
            return
        if not self.peek:
            self.add(
                "dead-letter queue",
                FAIL,
                f"{visible + in_flight} message(s) failed ({visible} waiting, {in_flight} being read): "
                f"the responder's log says why; --peek reads up to {PEEK_MAX} of them here",
            )
            return
        peeked = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=PEEK_MAX, VisibilityTimeout=0)
        reasons = sorted({why_undeliverable(m.get("Body", "")) for m in peeked.get("Messages", [])})
        self.add(
            "dead-letter queue", FAIL, f"{visible + in_flight} message(s) failed; e.g. {' | '.join(reasons) or '?'}"
        )

    def check_alarms(self) -> None:
        wanted = {
            "dead-letter queue alarm": (
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "QueueName",
                self.stage.dead_letter_queue_name,
            ),
        }
        for function in FUNCTION_POLICIES:  # every function the stack deploys has an errors alarm
            name = self.stage.function_name(function)
            wanted[f"{function} errors alarm"] = ("AWS/Lambda", "Errors", "FunctionName", name)
        for label, metric in wanted.items():
            self.guarded(label, partial(self.check_alarm, label, *metric))

    def check_alarm(self, label: str, namespace: str, metric: str, dimension: str, value: str) -> None:
        alarms = (
            self.client("cloudwatch")
            .describe_alarms_for_metric(
                Namespace=namespace, MetricName=metric, Dimensions=[{"Name": dimension, "Value": value}]
            )
            .get("MetricAlarms", [])
        )
        on_this = {"Name": dimension, "Value": value}  # checked here too: moto ignores Dimensions in this call
        alarms = [a for a in alarms if on_this in a.get("Dimensions", [])]
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
                name = f"member role {account} {region}"
                self.guarded(name, partial(self.check_member, account, region))

    def check_member(self, account: str, region: str) -> None:
        """Assume the member role through the region's STS endpoint (opt-in regions reject tokens from
        the global one), then read the role as itself: an STS that hands out credentials for a role
        that is not there (a stand-in, a misrouted endpoint) is caught by the read."""
        settings = self.stage.settings
        role = settings.member_role_name
        name = f"member role {account} {region}"
        params: dict[str, Any] = {
            "RoleArn": f"arn:aws:iam::{account}:role/{role}",
            "RoleSessionName": "clampdown-doctor",
            "DurationSeconds": 900,
        }
        if settings.external_id:
            params["ExternalId"] = settings.external_id
        try:
            credentials = self.client("sts", region).assume_role(**params)["Credentials"]
        except Exception as exc:  # noqa: BLE001
            self.add(name, FAIL, f"cannot assume {params['RoleArn']}: {_describe(exc)}")
            return
        iam = self.session.client(
            "iam",
            region_name=region,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        try:
            # iam:ListRolePolicies is in the member role's own policy whenever a playbook acts on roles.
            iam.list_role_policies(RoleName=role)
        except Exception as exc:
            code = _code(exc)
            if code == "NoSuchEntity":
                self.add(name, FAIL, f"assumed, but account {account} has no role {role}: deploy the member role")
                return
            if code not in ("AccessDenied", "AccessDeniedException"):
                raise
            self.add(name, OK, f"assumed {params['RoleArn']} (it may not read itself: {code})")
            return
        self.add(name, OK, f"assumed {params['RoleArn']} and read it as itself")

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
                self.add("canary", OK, f"queue → Lambda → incident table in {time.time() - sent:.2f} s")
                return
            self.sleep(0.25)
        self.add(
            "canary",
            FAIL,
            f"not seen after {self.canary_timeout_s:g} s: check the function's event source mapping and its logs",
        )


def pins_source_and_detail_type(pattern: Any) -> bool:
    """Does every alternative of the pattern (``$or`` expanded) pin ``source`` and ``detail-type``?"""
    from clampdown.deploy.rules import Rule, RuleError, check_rule

    try:
        check_rule(Rule("deployed", pattern, ()))
    except RuleError:
        return False
    return True


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def queue_policy_allows(policy: Any, rule_arn: str, queue_arn: str) -> bool:
    """Does the queue policy let EventBridge send to the queue on behalf of this rule?

    An ``Allow`` of ``sqs:SendMessage`` to ``events.amazonaws.com`` on the queue, either without a
    ``aws:SourceArn`` condition or with one (``ArnEquals``/``ArnLike``) naming the rule.
    """
    from fnmatch import fnmatchcase

    if not isinstance(policy, Mapping):
        return False
    for statement in _as_list(policy.get("Statement")):
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        services = _as_list(principal.get("Service", [])) if isinstance(principal, Mapping) else [principal]
        if "events.amazonaws.com" not in services and "*" not in services:
            continue
        if not any(a in ("sqs:SendMessage", "sqs:*", "*") for a in _as_list(statement.get("Action"))):
            continue
        if not any(fnmatchcase(queue_arn, str(r)) for r in _as_list(statement.get("Resource", "*"))):
            continue
        conditions = statement.get("Condition") or {}
        sources = [
            str(arn)
            for operator in ("ArnEquals", "ArnLike", "StringEquals", "StringLike")
            for arn in _as_list((conditions.get(operator) or {}).get("aws:SourceArn", []))
        ]
        if not sources or any(fnmatchcase(rule_arn, s) for s in sources):
            return True
    return False


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


def _describe(exc: BaseException) -> str:
    """``Code: message`` of an AWS error (or of anything else), on one short line."""
    from chalicelib.actions.base import aws_error

    code, message = aws_error(exc)
    message = " ".join(message.split())
    return code if not message or message == code else f"{code}: {message[:200]}"


def render(checks: Iterable[Check]) -> list[str]:
    marks = {OK: "✔", WARN: "!", FAIL: "✘"}
    return [f"{marks[c.status]} {c.name}: {c.detail}" for c in checks]
