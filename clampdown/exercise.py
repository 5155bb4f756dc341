"""Run scenarios through the real responder path on the sandbox, Slack included.

For each scenario: its finding is published → the queue → the Lambda SQS handler, which posts the
incident's alert and its approval requests to the local Slack stand-in through the real notifier →
an engineer answers each request as in Slack, by clicking Approve or Deny: a signed
``block_actions`` interaction posted to the app's real ``/slack/interactions`` route (Chalice's
test client on ``app``) → the decision is queued → the handler runs the step and updates the
messages. The demo and the drills are both exercises; they differ in which findings they send, how
requests are answered and what they look at afterwards.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from clampdown import sandbox as sb
from clampdown.scenarios import ROOT, Scenario

#: Given a pending approval and its step record: the decision ("approved" | "denied" | None to leave
#: it) and the Slack user name of the engineer who clicks.
Decider = Callable[[Any, Any], tuple[str | None, str]]
#: Step statuses that mean the step did its job.
SUCCEEDED = frozenset({"contained", "already-contained", "done"})


class ExerciseError(RuntimeError):
    """The exercise could not go on (e.g. the Slack route refused a click)."""


def approve_all(approval: Any, step: Any) -> tuple[str | None, str]:
    return "approved", "oncall"


@dataclass
class SlackThread:
    """What Slack shows for one incident: its message as last updated, the number of thread replies,
    and its approval requests as last updated."""

    channel: str
    message: dict[str, Any]
    replies: int
    approvals: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ExerciseResult:
    started: float = 0.0
    incidents: list[Any] = field(default_factory=list)
    by_scenario: dict[str, list[str]] = field(default_factory=dict)
    steps: dict[str, list[Any]] = field(default_factory=dict)
    timelines: dict[str, list[Any]] = field(default_factory=dict)
    #: Wall-clock time (epoch seconds) each scenario's finding was published.
    published: dict[str, float] = field(default_factory=dict)
    approvals: list[Any] = field(default_factory=list)
    pump: list[sb.PumpStats] = field(default_factory=list)
    dead_letters: int = 0
    observed: dict[str, Any] = field(default_factory=dict)
    #: Incident id → what Slack received for it.
    slack: dict[str, SlackThread] = field(default_factory=dict)
    #: Incident id → its post-incident report document (clampdown.report), when asked for.
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)


def epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def finished_at(step: Any) -> float | None:
    """When the step first did its job (epoch seconds), from its history; None if it never did."""
    done = [epoch(h["time"]) for h in step.history if h.get("status") in SUCCEEDED and h.get("time")]
    return min(done) if done else None


def started_at(step: Any) -> float:
    """When the step began acting (its execution's start), else when it was planned."""
    return epoch(str((step.result or {}).get("started_at") or step.created_at))


def chalice_app() -> Any:
    """The Chalice ``app`` of this checkout's ``app.py`` (also when the CLI runs from elsewhere)."""
    path = ROOT / "app.py"
    loaded = sys.modules.get("app")
    if loaded is not None and Path(getattr(loaded, "__file__", "")).resolve() == path:
        return loaded.app
    spec = importlib.util.spec_from_file_location("app", path)
    if spec is None or spec.loader is None:
        raise ExerciseError(f"cannot load the Chalice app from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    return module.app


def click(client: Any, slack: Any, approval_id: str, decision: str, user_name: str) -> None:
    """Click Approve (or Deny) on an approval request, as Slack posts it to the app."""
    from chalicelib.notify.slack_blocks import APPROVE_ACTION, DENY_ACTION
    from clampdown.local_slack.server import block_actions_body, sign

    body = block_actions_body(
        action_id=APPROVE_ACTION if decision == "approved" else DENY_ACTION,
        value=approval_id,
        user_id=sb.ON_CALL,
        user_name=user_name,
        response_url=slack.response_url(approval_id),
    )
    reply = client.http.post("/slack/interactions", headers=sign(sb.SLACK_SIGNING_SECRET, body), body=body)
    if reply.status_code != 200:
        raise ExerciseError(f"/slack/interactions answered {reply.status_code}: {reply.body!r}"[:300])


def _slack_threads(slack: Any, incidents: Sequence[Any]) -> dict[str, SlackThread]:
    """Each incident's Slack message, thread and approval requests as the stand-in last saw them."""
    replies: dict[str, int] = {}
    for call in slack.calls("chat.postMessage"):
        thread = call.params.get("thread_ts")
        if thread:
            replies[str(thread)] = replies.get(str(thread), 0) + 1
    threads = {}
    for incident in incidents:
        state = (incident.notification or {}).get("slack") or {}
        key = (str(state.get("channel")), str(state.get("ts")))
        if key not in slack.messages:
            continue
        approvals = [
            slack.messages[(str(ref.get("channel")), str(ref.get("ts")))]
            for ref in (state.get("approvals") or {}).values()
            if (str(ref.get("channel")), str(ref.get("ts"))) in slack.messages
        ]
        threads[incident.id] = SlackThread(key[0], slack.messages[key], replies.get(key[1], 0), approvals)
    return threads


def run_exercise(
    playbooks: Path,
    scenarios: Sequence[Scenario],
    *,
    decide: Decider = approve_all,
    observe: Callable[[sb.Sandbox], Any] | None = None,
    echo: Callable[[str], None] = print,
    reports: bool = False,
) -> ExerciseResult:
    """Each scenario's finding through the handler, then its approval requests answered in Slack,
    then the handler again (so an approved step runs as it would: minutes, not hours, later)."""
    from chalice.test import Client

    from chalicelib.incidents import DynamoIncidentStore
    from clampdown.local_slack.server import FakeSlack, approval_ids

    result = ExerciseResult(started=time.time())
    app = chalice_app()
    slack = FakeSlack()
    with (
        # notify.log steps write warnings to the function's log; exercises report on their own.
        sb.logger_level("clampdown", logging.ERROR),
        slack,
        sb.sandbox(playbooks, slack=slack) as box,
        tempfile.TemporaryDirectory(prefix="clampdown-chalice-") as project,
        # No .chalice/config.json there: the route runs with the sandbox stage's environment.
        Client(app, stage_name=sb.STAGE, project_dir=project) as client,
    ):
        echo(
            f"embedded AWS account {sb.ACCOUNT} ({sb.REGION}) on moto; Slack stand-in on {slack.url}; "
            f"playbooks from {playbooks}"
        )
        if observe:
            result.observed["before"] = observe(box)
        store = DynamoIncidentStore(box.client("dynamodb"), sb.INCIDENTS_TABLE)
        seen: set[str] = set()
        asked: list[str] = []
        for scenario in scenarios:
            result.published[scenario.title] = time.time()
            sb.publish(box, scenario.build(box.env))
            result.pump.append(sb.pump(box))
            clicked = 0
            for approval_id in [a for a in approval_ids(slack) if a not in asked]:
                asked.append(approval_id)
                approval = store.get_approval(approval_id)
                if approval is None or approval.status != "pending":
                    continue
                decision, who = decide(approval, store.get_step(approval.incident_id, approval.step_key))
                if decision is not None:
                    click(client, slack, approval_id, decision, who)
                    clicked += 1
            if clicked:
                result.pump.append(sb.pump(box))
            new = [i.id for i in store.list_incidents() if i.id not in seen]
            seen.update(new)
            result.by_scenario[scenario.title] = new
        result.approvals = [a for a in (store.get_approval(i) for i in asked) if a is not None]
        result.incidents = sorted(store.list_incidents(), key=lambda i: i.first_seen)
        result.steps = {i.id: store.list_steps(i.id) for i in result.incidents}
        result.timelines = {i.id: store.timeline(i.id) for i in result.incidents}
        attributes = box.client("sqs").get_queue_attributes(
            QueueUrl=box.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        result.dead_letters = int(attributes.get("ApproximateNumberOfMessages", 0))
        result.slack = _slack_threads(slack, result.incidents)
        if reports:
            from clampdown.report import build_report

            result.reports = {i.id: build_report(store, i.id) for i in result.incidents}
        if observe:
            result.observed["after"] = observe(box)
    return result
