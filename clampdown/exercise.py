"""Run scenarios through the real responder path on the sandbox: publish → queue → Lambda handler →
approvals → handler again. The demo and the drills are both exercises; they differ in which findings
they send, how approvals are answered and what they look at afterwards.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clampdown import sandbox as sb
from clampdown.scenarios import Scenario

#: Given a pending approval, the decision ("approved" | "denied" | None to leave it) and who made it.
Decider = Callable[[Any], tuple[str | None, str]]


def approve_all(approval: Any) -> tuple[str | None, str]:
    return "approved", "U0ONCALL (on-call engineer, exercise)"


@dataclass
class ExerciseResult:
    started: float = 0.0
    incidents: list[Any] = field(default_factory=list)
    by_scenario: dict[str, list[str]] = field(default_factory=dict)
    steps: dict[str, list[Any]] = field(default_factory=dict)
    timelines: dict[str, list[Any]] = field(default_factory=dict)
    seconds_to_handle: dict[str, float] = field(default_factory=dict)
    #: Wall-clock time (epoch seconds) each scenario's finding was published.
    published: dict[str, float] = field(default_factory=dict)
    approvals: list[Any] = field(default_factory=list)
    pump: list[sb.PumpStats] = field(default_factory=list)
    dead_letters: int = 0
    observed: dict[str, Any] = field(default_factory=dict)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run_exercise(
    playbooks: Path,
    scenarios: Sequence[Scenario],
    *,
    decide: Decider = approve_all,
    observe: Callable[[sb.Sandbox], Any] | None = None,
    echo: Callable[[str], None] = print,
) -> ExerciseResult:
    """Every scenario's finding through the handler, then the approvals, then one more drain."""
    from chalicelib import wiring
    from chalicelib.incidents import DynamoIncidentStore
    from chalicelib.responder import approval_command

    # notify.log steps write warnings to the function's log; exercises report on their own.
    logging.getLogger("clampdown").setLevel(logging.ERROR)
    result = ExerciseResult(started=time.time())
    with sb.sandbox(playbooks) as box:
        wiring.reset()
        echo(f"embedded AWS account {sb.ACCOUNT} ({sb.REGION}) on moto; playbooks from {playbooks}")
        if observe:
            result.observed["before"] = observe(box)
        store = DynamoIncidentStore(box.client("dynamodb"), sb.INCIDENTS_TABLE)
        seen: set[str] = set()
        for scenario in scenarios:
            started = time.perf_counter()
            result.published[scenario.title] = time.time()
            sb.publish(box, scenario.build(box.env))
            result.pump.append(sb.pump(box))
            result.seconds_to_handle[scenario.title] = time.perf_counter() - started
            new = [i.id for i in store.list_incidents() if i.id not in seen]
            seen.update(new)
            result.by_scenario[scenario.title] = new
        pending = store.list_approvals("pending")
        for approval in pending:
            decision, who = decide(approval)
            if decision is None:
                continue
            store.decide_approval(approval.id, decision, who, now_iso())
            command = approval_command(approval.incident_id, approval.id)
            box.client("sqs").send_message(QueueUrl=box.queue_url, MessageBody=json.dumps(command))
        result.approvals = [store.get_approval(a.id) for a in pending]
        result.pump.append(sb.pump(box))
        result.incidents = sorted(store.list_incidents(), key=lambda i: i.first_seen)
        result.steps = {i.id: store.list_steps(i.id) for i in result.incidents}
        result.timelines = {i.id: store.timeline(i.id) for i in result.incidents}
        result.dead_letters = len(
            box.client("sqs").receive_message(QueueUrl=box.dlq_url, MaxNumberOfMessages=10).get("Messages", [])
        )
        if observe:
            result.observed["after"] = observe(box)
        wiring.reset()
    return result
