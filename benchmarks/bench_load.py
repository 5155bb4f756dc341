"""Load: a burst and a soak of findings through the Lambda SQS handler on moto, duplicates and poison mixed in.

Each run creates ``distinct`` IAM users with an access key in the embedded account (moto, in-process), then
delivers ``total`` messages: every user's GuardDuty TorIPCaller finding once, then duplicates of them
(SQS redeliveries of the same event, and GuardDuty's updates of the same finding with a higher count),
and every ``poison-every``-th message a poison event (a GuardDuty finding without ``detail.type``).
Messages go through Lambda's event-source-mapping loop: receive up to 10, invoke
``chalicelib.handlers.handle_sqs``, delete what succeeded; a failed message is received again later
until the redrive policy (``maxReceiveCount``) moves it to the dead-letter queue. That loop and the queue
are modelled in process (:class:`EventSourceMapping`): moto's SQS scans every message of the queue on
each receive, which would be most of the time measured. DynamoDB, IAM and SSM are moto.

It reports, and fails (exit 1) unless they are as stated:
- duplicates: containment calls (``UpdateAccessKey``) beyond one per distinct finding: must be 0;
- losses: distinct findings whose key is still active at the end: must be 0;
- poison messages in the dead-letter queue: must equal the poison sent; nothing left on the queue;
and the throughput (messages handled per second, wall clock, one handler at a time).

Containment calls are counted on the responder's own boto3 session (it builds its own, so the hook is
installed on every botocore session created during the run).

Usage: .venv/bin/python benchmarks/bench_load.py [--burst 10000] [--soak 100000] [--distinct-ratio 0.1]
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import json
import logging
import multiprocessing
import os
import pstats
import sys
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TOR_EVENT = "guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"


@dataclass
class EventSourceMapping:
    """An SQS queue with a redrive policy and Lambda's poller on it, in process, one invocation at a time."""

    max_receives: int = 3  # the sandbox stage's maxReceiveCount
    pending: deque[tuple[str, str, int]] = field(default_factory=deque)  # (message id, body, receives so far)
    dead: list[str] = field(default_factory=list)
    batches: int = 0
    failures: int = 0

    def send(self, bodies: list[str]) -> None:
        start = len(self.pending) + self.failures + self.batches * 10
        self.pending.extend((f"m{start + i}", body, 0) for i, body in enumerate(bodies))

    def drain(self, handler: Any, context: Any) -> None:
        from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

        from clampdown import sandbox as sb

        while self.pending:
            batch = [self.pending.popleft() for _ in range(min(10, len(self.pending)))]
            self.batches += 1
            event = sb.sqs_event(
                [
                    {
                        "MessageId": mid,
                        "ReceiptHandle": f"{mid}-{receives}",
                        "Body": body,
                        "MD5OfBody": "-",
                        "Attributes": {"ApproximateReceiveCount": str(receives + 1)},
                    }
                    for mid, body, receives in batch
                ],
                "arn:aws:sqs:us-east-1:123456789012:clampdown-events",
            )
            try:
                failed = {f["itemIdentifier"] for f in handler(event, context)["batchItemFailures"]}
            except BatchProcessingError:
                failed = {mid for mid, _, _ in batch}
            for mid, body, receives in batch:
                if mid not in failed:
                    continue  # deleted
                self.failures += 1
                if receives + 1 >= self.max_receives:
                    self.dead.append(body)
                else:
                    self.pending.append((mid, body, receives + 1))  # visible again later


@dataclass
class Result:
    label: str
    total: int
    distinct: int
    poison: int
    workers: int = 1
    seconds: float = 0.0
    batches: int = 0
    record_failures: int = 0
    containment_calls: int = 0
    lost: int = 0
    dead_letters: int = 0
    left_on_queue: int = 0
    incidents: int = 0
    api_calls: Counter[str] = field(default_factory=Counter)

    @property
    def duplicates(self) -> int:
        return self.containment_calls - self.distinct

    @property
    def ok(self) -> bool:
        return (
            self.duplicates == 0
            and self.lost == 0
            and self.dead_letters == self.poison
            and self.left_on_queue == 0
            and self.incidents == self.distinct
        )


def messages(total: int, keys: list[tuple[str, str]], poison_every: int, account: str) -> tuple[list[str], int]:
    """``total`` messages: every distinct finding once, then duplicates, with one poison message in
    every ``poison_every`` (in addition to the findings, never instead of one)."""
    from clampdown.scenarios import corpus_event

    template = corpus_event(TOR_EVENT)
    template["account"] = template["detail"]["accountId"] = account
    template["detail"]["service"]["additionalInfo"] = {"sample": False}
    out: list[str] = []
    poison = findings = 0
    while len(out) < total:
        if poison_every and len(out) % poison_every == poison_every - 1:
            bad = copy.deepcopy(template)
            del bad["detail"]["type"]
            bad["id"] = f"poison-{len(out)}"
            out.append(json.dumps(bad))
            poison += 1
            continue
        index, round_ = findings % len(keys), findings // len(keys)
        findings += 1
        name, key = keys[index]
        event = copy.deepcopy(template)
        # Odd rounds redeliver the first delivery as it was; even rounds are GuardDuty updates (new event id).
        event["id"] = f"event-{index}" if round_ % 2 else f"event-{index}-{round_}"
        detail = event["detail"]
        detail["id"] = f"{index:032x}"
        detail["service"]["count"] = 1 + (round_ // 2) * 2
        detail["resource"]["accessKeyDetails"].update(userName=name, accessKeyId=key, userType="IAMUser")
        out.append(json.dumps(event))
    return out, poison


def run(label: str, total: int, distinct: int, poison_every: int, *, profile: bool = False) -> Result:
    from botocore import handlers as botocore_handlers

    from chalicelib import wiring
    from chalicelib.handlers import handle_sqs
    from chalicelib.incidents import INDEX_NAME
    from clampdown import sandbox as sb

    os.environ["CLAMPDOWN_BLAST_RADIUS"] = json.dumps({"default": 10_000_000})
    logging.getLogger("clampdown").setLevel(logging.CRITICAL)
    api_calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        api_calls[f"{model.service_model.service_name}:{model.name}"] += 1

    with sb.sandbox(ROOT / "playbooks", environment=False) as box:
        iam = box.client("iam")
        keys = []
        for i in range(distinct):
            name = f"user-{i:06d}"
            iam.create_user(UserName=name)
            keys.append((name, iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]))
        bodies, poison = messages(total, keys, poison_every, sb.ACCOUNT)
        result = Result(label, total, distinct, poison)
        hook = ("before-parameter-build", count)
        botocore_handlers.BUILTIN_HANDLERS.append(hook)  # on the responder's session, built on first delivery
        wiring.reset()
        queue = EventSourceMapping()
        queue.send(bodies)
        profiler = cProfile.Profile() if profile else None
        try:
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            queue.drain(handle_sqs, sb.LambdaContext())
            if profiler:
                profiler.disable()
            result.seconds = time.perf_counter() - started
        finally:
            botocore_handlers.BUILTIN_HANDLERS.remove(hook)
            wiring.reset()
        result.batches, result.record_failures = queue.batches, queue.failures
        result.dead_letters, result.left_on_queue = len(queue.dead), len(queue.pending)
        result.api_calls = api_calls
        result.containment_calls = api_calls["iam:UpdateAccessKey"]
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
    if profiler:
        print(f"\n   profile of the {label} (top 25, cumulative):")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return result


def report(result: Result) -> None:
    per_message = {k: v / result.total for k, v in result.api_calls.most_common(6)}
    print(f"\n{result.label}: {result.total} messages ({result.distinct} distinct findings, {result.poison} poison)")
    instances = f" by {result.workers} function instances" if result.workers > 1 else " by one function instance"
    print(
        f"   handled in {result.seconds:.1f} s{instances}: {result.total / result.seconds:.0f} messages/s "
        f"({result.batches} batches of up to 10, {result.record_failures} record failures)"
    )
    print(f"   duplicates (containment calls beyond one per finding): {result.duplicates}   (must be 0)")
    print(f"   losses (findings not contained): {result.lost}   (must be 0)")
    print(f"   poison in the dead-letter queue: {result.dead_letters} of {result.poison}; left: {result.left_on_queue}")
    print(f"   incidents: {result.incidents} (one per distinct finding)")
    print("   AWS calls per message: " + ", ".join(f"{k} {v:.2f}" for k, v in per_message.items()))


def run_sharded(label: str, total: int, distinct: int, poison_every: int, workers: int, profile: bool) -> Result:
    """``workers`` processes, each a function instance with its own share of the findings (and of their
    duplicates and poison) on its own embedded account: the throughput is the messages of all of them over
    the longest handling time. Duplicates of one finding always go to the same process."""
    if workers <= 1:
        return run(label, total, distinct, poison_every, profile=profile)
    shares = [
        (total // workers + (i < total % workers), distinct // workers + (i < distinct % workers))
        for i in range(workers)
    ]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        parts = list(pool.map(_run_share, [(label, t, d, poison_every) for t, d in shares]))
    merged = Result(label, total, distinct, sum(p.poison for p in parts), workers=workers)
    merged.seconds = max(p.seconds for p in parts)
    for name in (
        "batches",
        "record_failures",
        "containment_calls",
        "lost",
        "dead_letters",
        "left_on_queue",
        "incidents",
    ):
        setattr(merged, name, sum(getattr(p, name) for p in parts))
    for part in parts:
        merged.api_calls.update(part.api_calls)
    return merged


def _run_share(args: tuple[str, int, int, int]) -> Result:
    return run(*args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, default=10_000, help="messages in the burst (0 to skip)")
    parser.add_argument("--soak", type=int, default=100_000, help="messages in the soak (0 to skip)")
    parser.add_argument("--distinct-ratio", type=float, default=0.1, help="distinct findings per message")
    parser.add_argument("--poison-every", type=int, default=100)
    parser.add_argument("--profile", action="store_true", help="print where the time goes (one process)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="function instances (processes) for the soak"
    )
    args = parser.parse_args()
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")
    failed = []
    for label, total in (("Burst", args.burst), ("Soak", args.soak)):
        if not total:
            continue
        distinct = max(1, int(total * args.distinct_ratio))
        workers = 1 if label == "Burst" or args.profile else args.workers
        result = run_sharded(label, total, distinct, args.poison_every, workers, args.profile)
        report(result)
        if not result.ok:
            failed.append(label)
    if failed:
        raise SystemExit(f"load: duplicates, losses or unaccounted messages in: {', '.join(failed)}")


if __name__ == "__main__":
    main()
