"""`clampdown drill`: rehearse an incident on the embedded AWS and score the response.

A drill builds the sandbox, injects its scenario's findings through the real responder path,
answers approval requests in Slack (automatically, by denying, or as the operator says), then checks
the account: each expectation is something a responder should have achieved (a key inactive, an
instance isolated...), and some also when (the volumes snapshotted before the isolation started,
from the step records' times). The result is a timeline, a score, and what was missed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from clampdown import sandbox as sb
from clampdown import scenarios
from clampdown.exercise import Decider, ExerciseResult, finished_at, run_exercise, started_at

Check = Callable[[sb.Sandbox], bool]


@dataclass(frozen=True)
class Expectation:
    what: str
    check: Check
    #: The action that achieves it (to date it on the timeline).
    action: str
    #: Actions that must not start before ``action`` has finished (evidence before any change).
    before: tuple[str, ...] = ()


@dataclass(frozen=True)
class Drill:
    name: str
    title: str
    scenarios: tuple[scenarios.Scenario, ...]
    expectations: tuple[Expectation, ...]


def _key_inactive(box: sb.Sandbox) -> bool:
    keys = box.client("iam").list_access_keys(UserName=box.env.user_name)["AccessKeyMetadata"]
    return all(k["Status"] == "Inactive" for k in keys)


def _user_policy(name: str) -> Check:
    return lambda box: name in box.client("iam").list_user_policies(UserName=box.env.user_name)["PolicyNames"]


def _role_policy(name: str) -> Check:
    return lambda box: name in box.client("iam").list_role_policies(RoleName=box.env.role_name)["PolicyNames"]


def _no_login_profile(box: sb.Sandbox) -> bool:
    iam = box.client("iam")
    try:
        iam.get_login_profile(UserName=box.env.user_name)
    except iam.exceptions.NoSuchEntityException:
        return True
    return False


def _instance(box: sb.Sandbox) -> dict[str, Any]:
    reservations = box.client("ec2").describe_instances(InstanceIds=[box.env.instance_id])["Reservations"]
    instance: dict[str, Any] = reservations[0]["Instances"][0]
    return instance


def _isolated(box: sb.Sandbox) -> bool:
    groups = {g["GroupName"] for eni in _instance(box)["NetworkInterfaces"] for g in eni["Groups"]}
    return bool(groups) and all(g.startswith("clampdown-isolation-") and "all-access" not in g for g in groups)


def _termination_protected(box: sb.Sandbox) -> bool:
    attribute = box.client("ec2").describe_instance_attribute(
        InstanceId=box.env.instance_id, Attribute="disableApiTermination"
    )
    return bool(attribute["DisableApiTermination"]["Value"])


def _snapshots_taken(box: sb.Sandbox) -> bool:
    snapshots = box.client("ec2").describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag-key", "Values": ["clampdown:incident"]}]
    )["Snapshots"]
    return bool(snapshots)


def _evidence_captured(box: sb.Sandbox) -> bool:
    listed = box.client("s3").list_objects_v2(Bucket=sb.EVIDENCE_BUCKET, Prefix="incidents/")
    return listed.get("KeyCount", 0) > 0


def _bucket_blocked(box: sb.Sandbox) -> bool:
    try:
        block = box.client("s3").get_public_access_block(Bucket=box.env.bucket)["PublicAccessBlockConfiguration"]
    except Exception:  # noqa: BLE001 - no configuration at all
        return False
    return all(block.values())


def _bucket_policy_not_public(box: sb.Sandbox) -> bool:
    try:
        policy = json.loads(box.client("s3").get_bucket_policy(Bucket=box.env.bucket)["Policy"])
    except Exception:  # noqa: BLE001 - no policy is not public
        return True
    return not any(
        s.get("Effect") == "Allow" and s.get("Principal") in ("*", {"AWS": "*"}) for s in policy["Statement"]
    )


def _bucket_owner_enforced(box: sb.Sandbox) -> bool:
    try:
        rules = box.client("s3").get_bucket_ownership_controls(Bucket=box.env.bucket)["OwnershipControls"]["Rules"]
    except Exception:  # noqa: BLE001 - no ownership controls
        return False
    return any(r.get("ObjectOwnership") == "BucketOwnerEnforced" for r in rules)


def _function_not_public(box: sb.Sandbox) -> bool:
    awslambda = box.client("lambda")
    try:
        policy = json.loads(awslambda.get_policy(FunctionName=box.env.function_name)["Policy"])
    except awslambda.exceptions.ResourceNotFoundException:
        return True
    return not any(s.get("Principal") in ("*", {"AWS": "*"}) for s in policy["Statement"])


def _code_snapshotted(box: sb.Sandbox) -> bool:
    listed = box.client("s3").list_objects_v2(Bucket=sb.EVIDENCE_BUCKET, Prefix="incidents/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    return any("/lambda.snapshot-code/" in k and k.endswith("/code.zip") for k in keys) and any(
        "/lambda.snapshot-code/" in k and k.endswith("/function.json") for k in keys
    )


def _function_stopped(box: sb.Sandbox) -> bool:
    concurrency = box.client("lambda").get_function_concurrency(FunctionName=box.env.function_name)
    return concurrency.get("ReservedConcurrentExecutions") == 0


def _function_url_removed(box: sb.Sandbox) -> bool:
    awslambda = box.client("lambda")
    try:
        awslambda.get_function_url_config(FunctionName=box.env.function_name)
    except awslambda.exceptions.ResourceNotFoundException:
        return True
    return False


DRILLS = {
    drill.name: drill
    for drill in (
        Drill(
            "compromised-iam-credentials",
            "Stolen IAM credentials: a user's access key and an instance role's session used by an attacker",
            (scenarios.DEMO[0], scenarios.DEMO[1]),
            (
                Expectation("the user's access key is inactive", _key_inactive, "iam.deactivate-access-key"),
                Expectation(
                    "the role's existing sessions are revoked",
                    _role_policy("clampdown-revoke-older-sessions"),
                    "iam.revoke-role-sessions",
                ),
                Expectation(
                    "the user is quarantined (deny all)", _user_policy("clampdown-quarantine"), "iam.quarantine-user"
                ),
                Expectation("the user's console password is removed", _no_login_profile, "iam.disable-console-login"),
            ),
        ),
        Drill(
            "compromised-ec2-instance",
            "An instance talking to a command-and-control server",
            (scenarios.DEMO[2],),
            (
                Expectation(
                    "the volumes are snapshotted before anything changes",
                    _snapshots_taken,
                    "ec2.snapshot-volumes",
                    before=("ec2.isolate-instance", "tag"),
                ),
                Expectation(
                    "metadata and console output are in the evidence bucket",
                    _evidence_captured,
                    "ec2.capture-forensics",
                ),
                Expectation(
                    "the instance is isolated (established connections cut)", _isolated, "ec2.isolate-instance"
                ),
                Expectation("the instance cannot be terminated", _termination_protected, "ec2.isolate-instance"),
            ),
        ),
        Drill(
            "compromised-lambda-function",
            "GuardDuty Lambda Protection: a function talks to a command-and-control server",
            (scenarios.LAMBDA_COMPROMISED,),
            (
                Expectation(
                    "the function's code and configuration are in the evidence bucket before it is changed",
                    _code_snapshotted,
                    "lambda.snapshot-code",
                    before=("lambda.zero-concurrency", "lambda.remove-public-access"),
                ),
                Expectation(
                    "the function cannot run (reserved concurrency 0)", _function_stopped, "lambda.zero-concurrency"
                ),
                Expectation(
                    "no statement grants the function to everyone", _function_not_public, "lambda.remove-public-access"
                ),
                Expectation(
                    "the unauthenticated function URL is gone", _function_url_removed, "lambda.remove-public-access"
                ),
            ),
        ),
        Drill(
            "public-s3-exposure",
            "A public bucket with customer data read by an attacker's tooling",
            (scenarios.DEMO[3],),
            (
                Expectation(
                    "the bucket policy grants nothing to everyone", _bucket_policy_not_public, "s3.deny-public-policy"
                ),
                Expectation("Block Public Access is on for the bucket", _bucket_blocked, "s3.block-public-access"),
                Expectation("ACLs are disabled (BucketOwnerEnforced)", _bucket_owner_enforced, "s3.lockdown-bucket"),
            ),
        ),
    )
}


@dataclass
class Score:
    what: str
    met: bool
    action: str
    at: float | None  # seconds after the first finding was published
    #: Why it is not met although the account looks right (e.g. it happened in the wrong order).
    problem: str | None = None


@dataclass
class DrillResult:
    drill: Drill
    exercise: ExerciseResult
    scores: list[Score] = field(default_factory=list)
    timeline: list[tuple[float, str]] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(1 for s in self.scores if s.met)


def _seconds(iso_time: str, zero: float) -> float:
    return datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp() - zero


def _order_problem(expectation: Expectation, steps: list[Any]) -> str | None:
    """Did every ``before`` action start only after the expectation's action had finished?"""
    if not expectation.before:
        return None
    finished = [t for t in (finished_at(s) for s in steps if s.action == expectation.action) if t is not None]
    if not finished:
        return f"{expectation.action} never finished"
    done = max(finished)
    early = sorted(
        {s.action for s in steps if s.action in expectation.before and s.status != "skipped" and started_at(s) < done}
    )
    return f"{', '.join(early)} started before {expectation.action} had finished" if early else None


def run_drill(
    drill: Drill,
    playbooks: Path,
    *,
    decide: Decider,
    echo: Callable[[str], None] = print,
    reports: bool = False,
) -> DrillResult:
    def observe(box: sb.Sandbox) -> dict[str, bool]:
        return {e.what: e.check(box) for e in drill.expectations}

    exercise = run_exercise(playbooks, drill.scenarios, decide=decide, observe=observe, echo=echo, reports=reports)
    zero = min(exercise.published.values())
    result = DrillResult(drill, exercise)
    for title, at in exercise.published.items():
        result.timeline.append((at - zero, f"finding published: {title}"))
    done_at: dict[str, float] = {}
    steps = [step for incident in exercise.incidents for step in exercise.steps[incident.id]]
    for incident in exercise.incidents:
        for entry in exercise.timelines[incident.id]:
            result.timeline.append((_seconds(entry.time, zero), entry.message))
    for step in steps:
        finished = finished_at(step)
        if finished is not None:
            done_at[step.action] = min(done_at.get(step.action, finished - zero), finished - zero)
    for approval in exercise.approvals:
        if approval and approval.decided_at:
            result.timeline.append(
                (_seconds(approval.decided_at, zero), f"approval {approval.status} in Slack by {approval.decided_by}")
            )
    result.timeline.sort(key=lambda item: item[0])
    after = exercise.observed["after"]
    for expectation in drill.expectations:
        problem = _order_problem(expectation, steps) if after[expectation.what] else None
        met = bool(after[expectation.what]) and problem is None
        when = done_at.get(expectation.action) if met else None
        result.scores.append(Score(expectation.what, met, expectation.action, when, problem))
    return result
