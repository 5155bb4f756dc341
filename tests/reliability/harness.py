"""What the reliability suites share: the sandbox deployment on in-process moto, botocore hooks on every
session the responder creates (call recording and faults at the AWS boundary), SQS delivery as Lambda's
event source mapping does it, and a snapshot of the sandbox account.

The responder builds its own boto3 session (``wiring.responder``), so hooks are installed through
``botocore.handlers.BUILTIN_HANDLERS``: every botocore session created while they are installed gets
them, exactly as moto's own ``before-send`` hook. The test's own session (``box.session``, created
before) does not, so setting up and checking state is neither recorded nor faulted.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore import handlers as botocore_handlers

from clampdown import sandbox as sb
from tests.conftest import InjectedFault

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"
QUEUE_ARN = f"arn:aws:sqs:{sb.REGION}:{sb.ACCOUNT}:{sb.QUEUE}"
#: Operations that read: anything else changes AWS (including the responder's own records).
READ_PREFIXES = ("Get", "List", "Describe", "Head", "Query", "Scan", "BatchGet")
_ATTEMPT = re.compile(r"attempt=(\d+)")


class LambdaDied(BaseException):
    """Raised from a botocore hook: the function is killed (timeout, out of memory) at that point."""


@dataclass
class Call:
    service: str
    operation: str
    params: dict[str, Any]

    @property
    def writes(self) -> bool:
        return not self.operation.startswith(READ_PREFIXES)


@dataclass
class Calls:
    """Every API call (not every HTTP attempt) made by sessions with the hooks."""

    calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, model: Any, params: Any, **_: Any) -> None:
        with self._lock:
            self.calls.append(Call(model.service_model.service_name, model.name, dict(params)))

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def count(self, operation: str) -> int:
        return sum(1 for c in self.calls if c.operation == operation)

    @property
    def writes(self) -> list[str]:
        return [f"{c.service}:{c.operation}" for c in self.calls if c.writes]

    def aws_writes(self) -> list[str]:
        """Changes to the account other than the responder's own bookkeeping (tables, queue)."""
        own = {"dynamodb", "sqs"}
        return [f"{c.service}:{c.operation}" for c in self.calls if c.writes and c.service not in own]


@dataclass
class Rule:
    """One fault: which HTTP attempts of which operation it hits, and what happens to them."""

    service: str  # botocore service id, hyphenized ("iam", "dynamodb", "ssm"), or "*"
    operation: str  # API operation name, or "*"
    action: Callable[[Any, str], Any]  # (request, event name) -> response or raise
    times: int | None = None  # how many attempts it hits (None: until removed)
    attempts_below: int | None = None  # hit only the first N attempts of each call (botocore's attempt count)
    when: Callable[[Any], bool] | None = None  # extra condition on the request (e.g. its table)
    hits: int = 0

    def applies(self, service: str, operation: str, request: Any) -> bool:
        if self.service not in ("*", service) or self.operation not in ("*", operation):
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        if self.attempts_below is not None and attempt_of(request) > self.attempts_below:
            return False
        return self.when is None or self.when(request)


def attempt_of(request: Any) -> int:
    """botocore numbers each HTTP attempt of a call in the ``amz-sdk-request`` header."""
    header = request.headers.get("amz-sdk-request", b"")
    text = header.decode() if isinstance(header, bytes) else str(header)
    match = _ATTEMPT.search(text)
    return int(match.group(1)) if match else 1


def table_is(name: str) -> Callable[[Any], bool]:
    def check(request: Any) -> bool:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        return f'"TableName": "{name}"' in body or f'"TableName":"{name}"' in body

    return check


class Faults:
    """A ``before-send`` hook that answers chosen attempts with AWS errors or connection failures.

    An AWS error is an HTTP response parsed by botocore (:class:`tests.conftest.InjectedFault`), so its
    retry logic treats it as the real thing; a connection failure is raised as botocore raises it.
    Either way moto never sees the attempt, so a faulted attempt changes nothing.
    """

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        #: HTTP attempts per operation that went through to AWS (moto) untouched.
        self.sent: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, request: Any, event_name: str, **_: Any) -> Any:
        _, service, operation = event_name.split(".", 2)
        with self._lock:
            rule = next((r for r in self.rules if r.applies(service, operation, request)), None)
            if rule is not None:
                rule.hits += 1
            else:
                self.sent[operation] = self.sent.get(operation, 0) + 1
        return rule.action(request, event_name) if rule is not None else None

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def error(
        self,
        service: str,
        operation: str,
        code: str,
        *,
        protocol: str = "query",
        status: int | None = None,
        **options: Any,
    ) -> Rule:
        """Answer with AWS error ``code`` (``protocol``: "query" for IAM/STS, "json" for DynamoDB/SSM)."""
        if status is None:
            status = 500 if code in ("InternalFailure", "ServiceUnavailable", "InternalServerError") else 400
        injected = InjectedFault(code, times=1 << 30, status=status, protocol=protocol)

        def answer(request: Any, event_name: str) -> Any:
            return injected(request)

        return self.add(Rule(service, operation, answer, **options))

    def raise_(self, service: str, operation: str, make: Callable[[Any], BaseException], **options: Any) -> Rule:
        """Raise ``make(request)`` (e.g. botocore's ``ReadTimeoutError``) instead of sending."""

        def fail(request: Any, event_name: str) -> Any:
            raise make(request)

        return self.add(Rule(service, operation, fail, **options))

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()


@contextmanager
def session_hooks(*specs: tuple[Any, ...]) -> Iterator[None]:
    """Install botocore handlers on every session created inside the block."""
    for spec in specs:
        botocore_handlers.BUILTIN_HANDLERS.append(spec)
    try:
        yield
    finally:
        for spec in specs:
            botocore_handlers.BUILTIN_HANDLERS.remove(spec)


@dataclass
class Deployment:
    """The sandbox stage with hooks on the responder's session."""

    box: sb.Sandbox
    calls: Calls
    faults: Faults
    extra_hooks: list[tuple[Any, ...]] = field(default_factory=list)

    def client(self, service: str) -> Any:
        return self.box.client(service)

    def sent(self, operation: str) -> int:
        """HTTP attempts of ``operation`` by the responder that reached AWS (moto), not a fault."""
        return self.faults.sent.get(operation, 0)

    def send(self, *bodies: Any) -> None:
        sqs = self.client("sqs")
        for body in bodies:
            sqs.send_message(
                QueueUrl=self.box.queue_url, MessageBody=body if isinstance(body, str) else json.dumps(body)
            )

    def drain(self, *, context: Any = None, max_batches: int = 100) -> sb.PumpStats:
        """Lambda's event source mapping: batches to the handler until the queue is empty.

        An invocation that dies (:class:`LambdaDied`) returns its whole batch to the queue, as a Lambda
        timeout does; ``context`` is the first invocation's Lambda context (later ones get a full budget).
        """
        from chalicelib.handlers import handle_sqs

        contexts = [context] if context is not None else []

        def handler(event: dict[str, Any], default: Any) -> Any:
            ctx = contexts.pop() if contexts else default
            try:
                return handle_sqs(event, ctx)
            except LambdaDied as died:
                raise InvocationDied(str(died)) from None

        return sb.pump(self.box, handler, max_batches=max_batches)

    def dead_letters(self) -> list[str]:
        sqs = self.client("sqs")
        out: list[str] = []
        while True:
            got = sqs.receive_message(QueueUrl=self.box.dlq_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return out
            out.extend(m["Body"] for m in got)
            sqs.delete_message_batch(
                QueueUrl=self.box.dlq_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
            )

    def queued(self) -> int:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.box.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def store(self) -> Any:
        from chalicelib.incidents import DynamoIncidentStore

        return DynamoIncidentStore(self.client("dynamodb"), sb.INCIDENTS_TABLE)

    def state(self) -> dict[str, Any]:
        return account_state(self.box)


class InvocationDied(RuntimeError):
    """What the event source mapping sees of a Lambda that died: the invocation failed."""


@contextmanager
def deployment(
    playbooks: Path = PLAYBOOKS,
    *,
    environment: bool = True,
    hooks: tuple[tuple[Any, ...], ...] = (),
    environ: dict[str, str] | None = None,
) -> Iterator[Deployment]:
    """The sandbox (queue, DLQ, tables, kill switch, vulnerable resources) and a fresh responder that
    will be built, on first delivery, with the recording and fault hooks (and ``hooks``) on its session
    and ``environ`` in the function's environment (e.g. ``CLAMPDOWN_ACCOUNTS``)."""
    from chalicelib import wiring

    calls, faults = Calls(), Faults()
    with (
        sb.sandbox(playbooks, environment=environment) as box,
        sb._patched_environ(environ or {}),
        session_hooks(
            ("before-parameter-build", calls), ("before-send", faults, botocore_handlers.REGISTER_FIRST), *hooks
        ),
    ):
        wiring.reset()
        try:
            yield Deployment(box, calls, faults)
        finally:
            wiring.reset()


def account_state(box: sb.Sandbox) -> dict[str, Any]:
    """What containment can change in the sandbox account (read through the test's own session)."""
    env = box.env
    iam, ec2, s3, awslambda = box.client("iam"), box.client("ec2"), box.client("s3"), box.client("lambda")
    state: dict[str, Any] = {
        "keys": {
            u["UserName"]: sorted(
                (k["AccessKeyId"], k["Status"])
                for k in iam.list_access_keys(UserName=u["UserName"])["AccessKeyMetadata"]
            )
            for u in iam.list_users()["Users"]
        },
        "user_policies": {
            u["UserName"]: iam.list_user_policies(UserName=u["UserName"])["PolicyNames"]
            for u in iam.list_users()["Users"]
        },
        "login_profiles": sorted(
            u["UserName"] for u in iam.list_users()["Users"] if _has_login_profile(iam, u["UserName"])
        ),
        "role_policies": {
            r["RoleName"]: iam.list_role_policies(RoleName=r["RoleName"])["PolicyNames"]
            for r in iam.list_roles()["Roles"]
        },
    }
    if env.instance_id:
        instance = ec2.describe_instances(InstanceIds=[env.instance_id])["Reservations"][0]["Instances"][0]
        state["instance_groups"] = sorted(g["GroupId"] for eni in instance["NetworkInterfaces"] for g in eni["Groups"])
        state["security_groups"] = sorted(g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"])
        state["snapshots"] = len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"])
    if env.function_name:
        try:
            state["function_policy"] = json.loads(awslambda.get_policy(FunctionName=env.function_name)["Policy"])
        except awslambda.exceptions.ResourceNotFoundException:
            state["function_policy"] = None
        state["function_concurrency"] = awslambda.get_function_concurrency(FunctionName=env.function_name).get(
            "ReservedConcurrentExecutions"
        )
    if env.bucket:
        try:
            state["bucket_policy"] = s3.get_bucket_policy(Bucket=env.bucket)["Policy"]
        except s3.exceptions.ClientError:
            state["bucket_policy"] = None
        try:
            state["public_access_block"] = s3.get_public_access_block(Bucket=env.bucket)[
                "PublicAccessBlockConfiguration"
            ]
        except s3.exceptions.ClientError:
            state["public_access_block"] = None
    return state


def _has_login_profile(iam: Any, user: str) -> bool:
    try:
        iam.get_login_profile(UserName=user)
    except iam.exceptions.NoSuchEntityException:
        return False
    return True


def sqs_event(bodies: list[str], prefix: str = "m") -> dict[str, Any]:
    """An SQS event as Lambda delivers it, one record per body, ids ``m0``, ``m1``, ..."""
    return sb.sqs_event(
        [
            {"MessageId": f"{prefix}{i}", "ReceiptHandle": f"receipt-{prefix}{i}", "Body": body, "MD5OfBody": "-"}
            for i, body in enumerate(bodies)
        ],
        QUEUE_ARN,
    )
