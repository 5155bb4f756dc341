"""Load: a burst and a soak of findings through the Lambda SQS handler on moto, duplicates and poison mixed
in, delivered to several function instances at once.

Each run creates ``distinct`` IAM users with an access key in the embedded account (moto, in-process), then
queues ``total`` messages: every user's GuardDuty TorIPCaller finding ``copies`` times (the first delivery,
SQS redeliveries of the same event, and GuardDuty's updates of the same finding: a new event id and a
higher ``service.count``), and one poison event (a GuardDuty finding without ``detail.type``) every
``poison-every`` messages. The copies of the same ten findings are queued as consecutive batches, so the
``workers`` function instances (threads, each polling the queue and invoking
``chalicelib.handlers.handle_sqs`` as Lambda's event source mapping does) handle the duplicates of a
finding *at the same time*: Powertools' idempotency (DynamoDB conditional writes) and the incident store's
conditional writes are what keep them from acting twice. A message whose record failed (a duplicate that
met its original mid-step, a poison event) is visible again later, until the redrive policy
(``maxReceiveCount`` of the deployed template) moves it to the dead-letter queue. The queue and the poller
are modelled in process (moto's SQS scans every message on each receive, which would be most of the time
measured); DynamoDB, IAM and SSM are moto. moto applies a request without any lock, so two threads' conditional
writes to the same DynamoDB item can both pass their condition (and its Query can iterate a table another
thread is growing: "dictionary changed size during iteration"); AWS applies each request atomically, which
is what the exactly-once design relies on. So moto's handling of a request is serialized here
(``atomic_moto_requests``), as a service would apply it; the instances still interleave between calls.

Effects are counted on the AWS side, from every successful API call the responder's clients made (a
botocore ``after-call`` hook on every session), never from the responder's own records:
- duplicates: containment changes made more than once to the same resource (same operation and target):
  must be 0;
- losses: findings whose key is still active in moto at the end: must be 0;
- poison: poison messages in the dead-letter queue (must be all of them) and anything else there (must be
  none), nothing left on the queue; one incident per distinct finding;
- throughput: messages handled per second, wall clock, all instances together (threads of one process:
  the instances overlap in time, not in CPU).

Exit status 1 if any of the "must" holds not.

Usage: .venv/bin/python benchmarks/bench_load.py [--quick] [--burst 10000] [--soak 100000] [--workers 4]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TOR_EVENT = "guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"
BATCH = 10  # app.py: batch_size
#: Calls that read, or that are the responder's own bookkeeping: not containment effects.
READS = ("Get", "List", "Describe", "Head", "Query", "Scan", "BatchGet")
OWN_SERVICES = ("dynamodb", "sqs", "s3", "sts")
#: The request parameters that name what a containment call changes.
TARGET_PARAMS = ("AccessKeyId", "UserName", "RoleName", "InstanceId", "InstanceIds", "FunctionName", "Bucket")


@dataclass
class Message:
    id: str
    body: str
    poison: bool
    receives: int = 0


@dataclass
class EventSourceMapping:
    """An SQS queue with a redrive policy, polled by several function instances at once."""

    max_receives: int
    pending: deque[Message] = field(default_factory=deque)
    dead: list[Message] = field(default_factory=list)
    batches: int = 0
    failures: Counter[str] = field(default_factory=Counter)  # "poison" / "finding" record failures
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> list[Message]:
        with self.lock:
            batch = [self.pending.popleft() for _ in range(min(BATCH, len(self.pending)))]
            self.batches += bool(batch)
            return batch

    def settle(self, batch: list[Message], failed: set[str]) -> None:
        with self.lock:
            for message in batch:
                if message.id not in failed:
                    continue  # deleted
                message.receives += 1
                self.failures["poison" if message.poison else "finding"] += 1
                if message.receives >= self.max_receives:
                    self.dead.append(message)
                else:
                    self.pending.append(message)  # visible again after the visibility timeout

    def poll(self, handler: Callable[[dict[str, Any], Any], Any], context: Any) -> None:
        """One function instance: invoke the handler with batches until the queue is empty."""
        from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

        from clampdown import sandbox as sb

        while batch := self.take():
            event = sb.sqs_event(
                [
                    {
                        "MessageId": m.id,
                        "ReceiptHandle": f"{m.id}-{m.receives}",
                        "Body": m.body,
                        "MD5OfBody": "-",
                        "Attributes": {"ApproximateReceiveCount": str(m.receives + 1)},
                    }
                    for m in batch
                ],
                f"arn:aws:sqs:{sb.REGION}:{sb.ACCOUNT}:{sb.QUEUE}",
            )
            try:
                failed = {f["itemIdentifier"] for f in handler(event, context)["batchItemFailures"]}
            except BatchProcessingError:
                failed = {m.id for m in batch}  # every record failed: the invocation errors
            self.settle(batch, failed)


@dataclass
class Effects:
    """Successful containment calls, by (operation, target), as AWS received them."""

    changes: Counter[tuple[str, str]] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def before(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
        if context is not None:
            context["bench-params"] = params

    def after(self, http_response: Any, model: Any, context: dict[str, Any] | None = None, **_: Any) -> None:
        service, operation = model.service_model.service_name, model.name
        with self.lock:
            self.calls[f"{service}:{operation}"] += 1
            if http_response.status_code >= 300 or service in OWN_SERVICES or operation.startswith(READS):
                return
            params = (context or {}).get("bench-params", {})
            target = json.dumps({k: params[k] for k in TARGET_PARAMS if k in params}, sort_keys=True)
            self.changes[(f"{service}:{operation}", target)] += 1

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.changes.values() if n > 1)

    def hooks(self) -> list[tuple[str, Any]]:
        return [("before-parameter-build", self.before), ("after-call", self.after)]


class FailureReasons(logging.Handler):
    """The handler's "message failed" log lines, counted by error type (instead of printed)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, str] = {}  # error type -> its first message

    def emit(self, record: logging.LogRecord) -> None:
        error = str(getattr(record, "error", "?"))
        kind = error.split(":", 1)[0]
        self.counts[kind] += 1
        self.examples.setdefault(kind, error[:300])

    def install(self) -> None:
        from chalicelib.handlers import logger

        target = logging.getLogger(logger().name)
        target.setLevel(logging.ERROR)
        target.handlers = [self]


@dataclass
class Result:
    label: str
    total: int
    distinct: int
    poison: int
    workers: int
    seconds: float = 0.0
    batches: int = 0
    finding_failures: int = 0
    poison_failures: int = 0
    duplicates: int = 0
    changes: int = 0
    lost: int = 0
    poison_dead: int = 0
    other_dead: int = 0
    left_on_queue: int = 0
    incidents: int = 0
    api_calls: Counter[str] = field(default_factory=Counter)
    failure_reasons: Counter[str] = field(default_factory=Counter)
    failure_examples: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.duplicates == 0
            and self.lost == 0
            and self.poison_dead == self.poison
            and self.other_dead == 0
            and self.left_on_queue == 0
            and self.incidents == self.distinct
        )


def messages(distinct_keys: list[tuple[str, str]], copies: int, poison_every: int, account: str) -> list[Message]:
    """Every finding ``copies`` times, the copies of each group of ten findings in consecutive batches
    (so concurrent instances get them at once), and a poison message every ``poison_every`` messages."""
    from clampdown.scenarios import corpus_event

    template = corpus_event(TOR_EVENT)
    template["account"] = template["detail"]["accountId"] = account
    template["detail"]["service"]["additionalInfo"] = {"sample": False}
    template["detail"]["service"]["archived"] = False
    out: list[Message] = []

    def add(body: dict[str, Any], poison: bool) -> None:
        out.append(Message(f"m{len(out)}", json.dumps(body), poison))
        if poison_every and len(out) % poison_every == poison_every - 1:
            bad = copy.deepcopy(template)
            del bad["detail"]["type"]
            bad["id"] = f"poison-{len(out)}"
            out.append(Message(f"m{len(out)}", json.dumps(bad), True))

    for start in range(0, len(distinct_keys), BATCH):
        group = range(start, min(start + BATCH, len(distinct_keys)))
        for round_ in range(copies):
            for index in group:
                name, key = distinct_keys[index]
                event = copy.deepcopy(template)
                # Odd rounds redeliver the first delivery as it was; even rounds are GuardDuty updates.
                event["id"] = f"event-{index}" if round_ % 2 else f"event-{index}-{round_}"
                detail = event["detail"]
                detail["id"] = f"{index:032x}"
                detail["service"]["count"] = 1 + (round_ // 2) * 2
                detail["resource"]["accessKeyDetails"].update(userName=name, accessKeyId=key, userType="IAMUser")
                add(event, False)
    return out


@contextmanager
def atomic_moto_requests() -> Iterator[None]:
    """Each AWS request applied atomically by moto, as AWS applies it (see the module's docstring)."""
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.process_request
    lock = threading.Lock()

    def process_request(self: Any, request: Any) -> Any:
        with lock:
            return original(self, request)

    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
    try:
        yield
    finally:
        BotocoreStubber.process_request = original  # type: ignore[method-assign]


def run(label: str, total: int, copies: int, poison_every: int, workers: int) -> Result:
    from botocore import handlers as botocore_handlers

    from chalicelib import wiring
    from chalicelib.handlers import handle_sqs
    from chalicelib.incidents import INDEX_NAME
    from clampdown import sandbox as sb
    from clampdown.deploy.templates import MAX_RECEIVE_COUNT

    os.environ["CLAMPDOWN_BLAST_RADIUS"] = json.dumps({"default": 10_000_000})
    reasons = FailureReasons()
    reasons.install()
    per_finding = copies + (copies / poison_every if poison_every else 0)
    distinct = max(1, round(total / per_finding))
    with atomic_moto_requests(), sb.sandbox(ROOT / "playbooks", environment=False) as box:
        iam = box.client("iam")
        keys = []
        for i in range(distinct):
            name = f"user-{i:06d}"
            iam.create_user(UserName=name)
            keys.append((name, iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]))
        queued = messages(keys, copies, poison_every, sb.ACCOUNT)
        result = Result(label, len(queued), distinct, sum(m.poison for m in queued), workers)
        effects = Effects()
        hooks = effects.hooks()
        botocore_handlers.BUILTIN_HANDLERS.extend(hooks)  # on the responder's session, built on first delivery
        wiring.reset()
        queue = EventSourceMapping(max_receives=MAX_RECEIVE_COUNT, pending=deque(queued))
        instances = [
            threading.Thread(target=queue.poll, args=(handle_sqs, sb.LambdaContext()), name=f"instance-{i}")
            for i in range(workers)
        ]
        try:
            started = time.perf_counter()
            for instance in instances:
                instance.start()
            for instance in instances:
                instance.join()
            result.seconds = time.perf_counter() - started
        finally:
            for hook in hooks:
                botocore_handlers.BUILTIN_HANDLERS.remove(hook)
            wiring.reset()
        result.batches = queue.batches
        result.finding_failures, result.poison_failures = queue.failures["finding"], queue.failures["poison"]
        result.poison_dead = sum(m.poison for m in queue.dead)
        result.other_dead = len(queue.dead) - result.poison_dead
        result.left_on_queue = len(queue.pending)
        result.duplicates, result.changes = effects.duplicates, sum(effects.changes.values())
        result.api_calls = effects.calls
        result.failure_reasons = reasons.counts
        result.failure_examples = reasons.examples
        result.lost = sum(
            1 for name, _ in keys if iam.list_access_keys(UserName=name)["AccessKeyMetadata"][0]["Status"] != "Inactive"
        )
        pages = (
            box.client("dynamodb")
            .get_paginator("query")
            .paginate(
                TableName=sb.INCIDENTS_TABLE,
                IndexName=INDEX_NAME,
                KeyConditionExpression="gsi1pk = :gsi",
                ExpressionAttributeValues={":gsi": {"S": "INCIDENT"}},
                Select="COUNT",
            )
        )
        result.incidents = sum(page["Count"] for page in pages)
    return result


def report(result: Result) -> None:
    per_message = {k: v / result.total for k, v in result.api_calls.most_common(6)}
    print(
        f"\n{result.label}: {result.total} messages ({result.distinct} distinct findings, "
        f"{result.total - result.distinct - result.poison} duplicates, {result.poison} poison)"
    )
    print(
        f"   handled in {result.seconds:.1f} s by {result.workers} concurrent function instances: "
        f"{result.total / result.seconds:.0f} messages/s ({result.batches} batches of up to {BATCH})"
    )
    reasons = ", ".join(f"{name} {n}" for name, n in result.failure_reasons.most_common())
    print(
        f"   record failures (redelivered later): {result.finding_failures} of findings, "
        f"{result.poison_failures} of poison; by error: {reasons or 'none'}"
    )
    for example in result.failure_examples.values():
        print(f"      e.g. {example}")
    print(f"   containment changes AWS received: {result.changes} for {result.distinct} findings")
    print(f"   duplicates (a change made twice to the same resource): {result.duplicates}   (must be 0)")
    print(f"   losses (findings whose key is still active): {result.lost}   (must be 0)")
    print(
        f"   dead-letter queue: {result.poison_dead} of {result.poison} poison (must be all), "
        f"{result.other_dead} others (must be 0); left on the queue: {result.left_on_queue}"
    )
    print(f"   incidents: {result.incidents} (must be one per distinct finding)")
    print("   AWS calls per message: " + ", ".join(f"{k} {v:.2f}" for k, v in per_message.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, default=10_000, help="messages in the burst (0 to skip)")
    parser.add_argument("--soak", type=int, default=100_000, help="messages in the soak (0 to skip)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a 300-message burst and a 1,000 soak")
    parser.add_argument("--copies", type=int, default=10, help="deliveries of each finding (1 + duplicates)")
    parser.add_argument("--poison-every", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4, help="concurrent function instances")
    args = parser.parse_args()
    if args.quick:
        args.burst, args.soak = min(args.burst, 300), min(args.soak, 1_000)
    failed = []
    for label, total in (("Burst", args.burst), ("Soak", args.soak)):
        if not total:
            continue
        result = run(label, total, args.copies, args.poison_every, args.workers)
        report(result)
        if not result.ok:
            failed.append(label)
    if failed:
        raise SystemExit(f"load: duplicates, losses or unaccounted messages in: {', '.join(failed)}")


if __name__ == "__main__":
    main()
