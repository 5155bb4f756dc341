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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clampdown import sandbox as sb
from clampdown import scenarios
from clampdown.exercise import ExerciseResult, approve_all, run_exercise


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


def run(playbooks: Path, echo: Callable[[str], None] = print) -> ExerciseResult:
    """The demo's scenarios with every approval given; ``observed`` holds the account before/after."""
    return run_exercise(playbooks, scenarios.DEMO, decide=approve_all, observe=_state, echo=echo)
