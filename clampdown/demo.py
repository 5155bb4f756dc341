"""`clampdown demo`: the responder end to end on an embedded AWS, with real sample findings.

The sandbox creates a small vulnerable environment (a role with an active session, a user with an
access key and console password, a public Lambda function, an instance open to the internet, a
public bucket). Real published findings (``tests/data/corpus``) are pointed at those resources —
only the fields that name the resource and account change — and published on EventBridge; a rule
routes them to the responder's queue, and the queue is drained through the same SQS handler code
that runs in Lambda. One step needs an approval, which the demo gives as an on-call engineer would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clampdown import sandbox as sb
from clampdown import scenarios


@dataclass
class DemoResult:
    incidents: list[Any] = field(default_factory=list)
    by_scenario: dict[str, list[str]] = field(default_factory=dict)
    steps: dict[str, list[Any]] = field(default_factory=dict)
    seconds_to_containment: dict[str, float] = field(default_factory=dict)
    approvals: list[Any] = field(default_factory=list)
    pump: list[sb.PumpStats] = field(default_factory=list)
    dead_letters: int = 0
    state: dict[str, Any] = field(default_factory=dict)


def _state(box: sb.Sandbox) -> dict[str, Any]:
    """What an engineer would look at to see that containment happened."""
    env = box.env
    iam, ec2, s3, awslambda = box.client("iam"), box.client("ec2"), box.client("s3"), box.client("lambda")
    keys = iam.list_access_keys(UserName=env.user_name)["AccessKeyMetadata"]
    instance = ec2.describe_instances(InstanceIds=[env.instance_id])["Reservations"][0]["Instances"][0]
    try:
        block = s3.get_public_access_block(Bucket=env.bucket)["PublicAccessBlockConfiguration"]
    except Exception:  # noqa: BLE001 - absent configuration
        block = None
    try:
        policy = json.loads(awslambda.get_policy(FunctionName=env.function_name)["Policy"])["Statement"]
    except Exception:  # noqa: BLE001 - no resource policy left
        policy = []
    return {
        "access key": f"{env.access_key_id} {keys[0]['Status']}",
        "user inline policies": iam.list_user_policies(UserName=env.user_name)["PolicyNames"],
        "role inline policies": iam.list_role_policies(RoleName=env.role_name)["PolicyNames"],
        "instance security groups": sorted(
            {g["GroupName"] for eni in instance["NetworkInterfaces"] for g in eni["Groups"]}
        ),
        "bucket public access block": "all four blocked" if block and all(block.values()) else block,
        "function public statements": [s.get("Sid") for s in policy if s.get("Principal") in ("*", {"AWS": "*"})],
    }


def run(playbooks: Path, echo: Callable[[str], None] = print) -> DemoResult:
    import logging

    from chalicelib import wiring
    from chalicelib.incidents import DynamoIncidentStore
    from chalicelib.responder import approval_command

    # notify.log steps write warnings to the function's log; the demo reports them itself.
    logging.getLogger("clampdown").setLevel(logging.ERROR)
    result = DemoResult()
    with sb.sandbox(playbooks) as box:
        wiring.reset()
        echo(f"embedded AWS account {sb.ACCOUNT} ({sb.REGION}) on moto; playbooks from {playbooks}")
        before = _state(box)
        store = DynamoIncidentStore(box.client("dynamodb"), sb.INCIDENTS_TABLE)
        seen: set[str] = set()
        for scenario in scenarios.DEMO:
            event = scenario.build(box.env)
            started = time.perf_counter()
            sb.publish(box, event)
            result.pump.append(sb.pump(box))
            result.seconds_to_containment[scenario.title] = time.perf_counter() - started
            new = [i.id for i in store.list_incidents() if i.id not in seen]
            seen.update(new)
            result.by_scenario[scenario.title] = new
        pending = store.list_approvals("pending")
        for approval in pending:
            store.decide_approval(approval.id, "approved", "U0ONCALL (on-call engineer, demo)", _now())
            box.client("sqs").send_message(
                QueueUrl=box.queue_url, MessageBody=json.dumps(approval_command(approval.incident_id, approval.id))
            )
        result.approvals = [store.get_approval(a.id) for a in pending]
        result.pump.append(sb.pump(box))
        result.incidents = sorted(store.list_incidents(), key=lambda i: i.first_seen)
        result.steps = {i.id: store.list_steps(i.id) for i in result.incidents}
        result.dead_letters = len(
            box.client("sqs").receive_message(QueueUrl=box.dlq_url, MaxNumberOfMessages=10).get("Messages", [])
        )
        result.state = {"before": before, "after": _state(box)}
        wiring.reset()
    return result


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
