"""A decided approval's command delivered twice at once (SQS at-least-once, the sweep queuing a lost
command again, the CLI sending it again) runs the step once, on the moto server's DynamoDB.

Two responders stand for two Lambda instances. Both read the step as ``pending-approval``: the second
one's whole run lands just after the first one has read it, so the first goes on from a stale read,
and only the conditional transition out of ``pending-approval`` (refused by DynamoDB) stops it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.responder import approval_command
from clampdown.local_slack.server import approval_ids
from tests.conftest import CallRecorder
from tests.functional.notify.stage import Stage

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("decision", "final"), [("approved", "contained"), ("denied", "denied")])
def test_a_command_delivered_twice_at_once_moves_the_step_on_once(stage: Stage, decision: str, final: str) -> None:
    calls = CallRecorder()
    stage.session.events.register("before-parameter-build", calls)
    first, second = stage.responder(), stage.responder()
    step = first.handle(stage.finding()).steps[0]
    [approval_id] = approval_ids(stage.slack)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    assert first.store.decide_approval(approval_id, decision, "slack:U0ALICE (alice)", now)
    command = approval_command(step.incident_id, approval_id)

    stale_reads: list[str] = []

    def the_other_instance_runs_meanwhile(parsed: dict[str, Any], **_: Any) -> None:
        item = parsed.get("Item") or {}
        if item.get("sk", {}).get("S") == f"STEP#{step.key}" and item["status"]["S"] == "pending-approval":
            stale_reads.append(item["status"]["S"])
            if len(stale_reads) == 1:
                second.handle(command)

    first.store.client.meta.events.register("after-call.dynamodb.GetItem", the_other_instance_runs_meanwhile)
    first.handle(command)

    assert stale_reads, "the first instance read the step while it was still waiting"
    done = first.store.get_step(step.incident_id, step.key)
    assert done.status == final
    assert [h["status"] for h in done.history].count(final) == 1
    audit = [e for e in first.store.timeline(step.incident_id) if e.kind == "step" and e.data.get("key") == step.key]
    assert [e.message.split(": ", 1)[1].split(" ")[0] for e in audit] == ["pending-approval", final], (
        "the audit trail records the step's outcome once"
    )
    assert calls.operations.count("iam:UpdateAccessKey") == (1 if decision == "approved" else 0)
    assert stage.key_status() == ("Inactive" if decision == "approved" else "Active")
