"""`clampdown demo`: the responder end to end on an embedded AWS, with real sample findings.

The sandbox creates a small vulnerable environment (a role with an active session, a user with an
access key and console password, a public Lambda function, an instance open to the internet, a
public bucket). Real published findings (``tests/data/corpus``) are pointed at those resources (see
:mod:`clampdown.scenarios` for exactly what changes) and published on EventBridge; a rule routes them
to the responder's queue, and the queue is drained through the same SQS handler code that runs in
Lambda. Alerts and approval requests go to the local Slack stand-in through the real notifier, and
the steps that need a human are approved as an on-call engineer would: by clicking Approve.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clampdown import sandbox as sb
from clampdown import scenarios
from clampdown.exercise import ExerciseResult, approve_all, epoch, run_exercise

CONTAINED = frozenset({"contained", "already-contained"})
#: The planner's reason for a step whose resource kind the finding does not name: it does not apply.
NO_TARGET = "the finding names no "


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
        iam.get_login_profile(UserName=env.user_name)
        console = "enabled"
    except iam.exceptions.NoSuchEntityException:
        console = "disabled"
    try:
        policy = json.loads(awslambda.get_policy(FunctionName=env.function_name)["Policy"])["Statement"]
    except Exception:  # noqa: BLE001 - no resource policy left
        policy = []
    return {
        "access key": f"{env.access_key_id} {keys[0]['Status']}",
        "user console login": console,
        "user inline policies": iam.list_user_policies(UserName=env.user_name)["PolicyNames"],
        "role inline policies": iam.list_role_policies(RoleName=env.role_name)["PolicyNames"],
        "instance security groups": sorted(
            {g["GroupName"] for eni in instance["NetworkInterfaces"] for g in eni["Groups"]}
        ),
        "bucket public access block": "all four blocked" if block and all(block.values()) else block,
        "function public statements": [s.get("Sid") for s in policy if s.get("Principal") in ("*", {"AWS": "*"})],
    }


def run(playbooks: Path, echo: Callable[[str], None] = print, *, reports: bool = False) -> ExerciseResult:
    """The demo's scenarios with every approval given in Slack; ``observed`` holds the account before/after."""
    return run_exercise(playbooks, scenarios.DEMO, decide=approve_all, observe=_state, echo=echo, reports=reports)


def does_not_apply(step: Any) -> bool:
    """A step skipped only because the finding names no resource of its kind (not a guardrail)."""
    return step.status == "skipped" and not step.target and str(step.reason or "").startswith(NO_TARGET)


@dataclass(frozen=True)
class Containment:
    """Seconds from the finding's publication to containment."""

    #: The first step that contained something (None: nothing was contained).
    first: float | None
    #: The last step that waited for an approval and then contained (None: no such step).
    with_approvals: float | None
    #: When the last of those approvals was given.
    approved_at: float | None


def containment(steps: list[Any], approvals: list[Any], published: float) -> Containment:
    def contained_at(step: Any) -> float | None:
        times = [epoch(h["time"]) for h in step.history if h.get("status") in CONTAINED and h.get("time")]
        return min(times) - published if times else None

    firsts = [t for t in (contained_at(s) for s in steps) if t is not None]
    approved = [t for t in (contained_at(s) for s in steps if s.approved_by) if t is not None]
    ids = {s.approval_id for s in steps if s.approved_by}
    decided = [epoch(a.decided_at) - published for a in approvals if a.id in ids and a.decided_at]
    return Containment(
        min(firsts) if firsts else None, max(approved) if approved else None, max(decided) if decided else None
    )
