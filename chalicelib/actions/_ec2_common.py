"""What the EC2 actions share: the instance they act on, read once per step, and a few safe helpers.

Every id taken from a finding is attacker-controlled: it is used only when it has the shape of an
AWS id, and only to describe an offline plan; online, the live description of the instance is used.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from chalicelib.actions.base import Action, ActionContext, ActionError, PlannedResponse
from chalicelib.findings.model import Resource

INSTANCE_ID = re.compile(r"i-[0-9a-f]{8}(?:[0-9a-f]{9})?")
SECURITY_GROUP_ID = re.compile(r"sg-[0-9a-f]{8}(?:[0-9a-f]{9})?")
_AWS_ID = re.compile(r"(?:vpc|eni|sg|subnet|vol)-[0-9A-Za-z]{1,32}")
_ASG_NAME = re.compile(r"[\w .+=@/-]{1,255}")
#: Instance states in which there is nothing left to contain.
GONE = ("shutting-down", "terminated")
#: Tag of the Auto Scaling group that launched (or was given) an instance.
ASG_TAG = "aws:autoscaling:groupName"
#: Characters every AWS tagging API accepts (IAM and S3 are the strictest); anything else from a finding
#: becomes "_". The one sanitiser of tag values (``tag``, snapshots) and EC2 descriptions.
_UNTAGGABLE = re.compile(r"[^\w .:/=+@-]")


def instance_id(target: Resource | None) -> str:
    """The target's instance id, checked for shape (``InvalidInstanceID.Malformed`` otherwise)."""
    value = target.id if target is not None else None
    if not value or not INSTANCE_ID.fullmatch(value):
        raise ActionError("InvalidInstanceID.Malformed", f"{value!r} is not an EC2 instance id")
    return value


def security_group_id(target: Resource | None) -> str:
    """The target's security group id, checked for shape (``InvalidGroupId.Malformed`` otherwise)."""
    value = target.id if target is not None else None
    if not value or not SECURITY_GROUP_ID.fullmatch(value):
        raise ActionError("InvalidGroupId.Malformed", f"{value!r} is not a security group id")
    return value


def known_id(value: Any) -> str | None:
    """A vpc-/eni-/sg-/subnet-/vol- id from a finding, if it has that shape."""
    return value if isinstance(value, str) and _AWS_ID.fullmatch(value) else None


def asg_name_from_tags(tags: Mapping[str, str]) -> str | None:
    name = tags.get(ASG_TAG)
    return name if isinstance(name, str) and _ASG_NAME.fullmatch(name) else None


def tag_value(text: str, limit: int = 256) -> str:
    """A string fit for an EC2 tag value or description (safe characters only, bounded)."""
    return _UNTAGGABLE.sub("_", text)[:limit]


def response_value(response: Any, key: str, placeholder: str) -> str:
    """``response[key]``, or a readable placeholder while planning (the response is not real)."""
    return placeholder if isinstance(response, PlannedResponse) else str(response[key])


def is_planned(response: Any) -> bool:
    return isinstance(response, PlannedResponse)


def describe_instance(ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
    iid = instance_id(target)
    response = ctx.client("ec2", target).describe_instances(InstanceIds=[iid])
    found = [i for r in response.get("Reservations", []) for i in r.get("Instances", [])]
    if not found:  # AWS forgets terminated instances after a while: it may answer with nothing
        raise ActionError("InvalidInstanceID.NotFound", f"the instance ID '{iid}' does not exist")
    instance: dict[str, Any] = found[0]
    return instance


def tags_of(instance: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", []) if "Key" in t and "Value" in t}


def asg_membership(ctx: ActionContext, target: Resource | None, iid: str) -> dict[str, Any] | None:
    """The instance's Auto Scaling group and lifecycle state, or None."""
    found = ctx.client("autoscaling", target).describe_auto_scaling_instances(InstanceIds=[iid])
    for item in found.get("AutoScalingInstances", []):
        return {"name": item["AutoScalingGroupName"], "lifecycle_state": item["LifecycleState"]}
    return None


class InstanceAction(Action):
    """Base of the EC2 actions: checks the live instance before anything else.

    ``skip_reason`` describes the instance (terminated → skipped, a malformed id → skipped) and keeps
    the description for the ``read_state`` that the base calls next, so a step costs one
    ``DescribeInstances``, not two. A failure to describe is left to ``read_state``, which reports it
    as a failed result with AWS's code (``InvalidInstanceID.NotFound``).
    """

    resource_kinds = ("ec2-instance",)
    _described: tuple[str, dict[str, Any]] | None = None
    _last: dict[str, Any] | None = None

    def skip_instance(self, ctx: ActionContext, target: Resource, instance: Mapping[str, Any]) -> str | None:
        """Why this action does not apply to this (live, not terminated) instance."""
        return None

    def skip_reason(self, ctx: ActionContext, target: Resource | None) -> str | None:
        self._described = None
        if target is None or not target.id or not INSTANCE_ID.fullmatch(target.id):
            return "the finding does not name a valid EC2 instance id"
        if ctx.offline:
            state = target.details.get("instance_state")
            return f"instance {target.id} was {state} when the finding was raised" if state in GONE else None
        try:
            instance = describe_instance(ctx, target)
        except Exception:  # noqa: BLE001 - read_state reports it precisely, inside the failure handling
            return None
        state = (instance.get("State") or {}).get("Name")
        if state in GONE:
            return f"instance {target.id} is {state}: there is nothing left to contain"
        reason = self.skip_instance(ctx, target, instance)
        if reason is None:
            self._described = (target.id, instance)
        return reason

    def live_target(self, ctx: ActionContext, target: Resource) -> Resource | None:
        """The guardrails' live facts from the description ``skip_reason`` just read (no second call)."""
        from chalicelib.actions._live import instance_facts, with_facts

        memo = self._described
        instance = memo[1] if memo is not None and memo[0] == target.id else describe_instance(ctx, target)
        return with_facts(target, instance_facts(ctx, target, instance))

    def instance(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        """The live description of the instance (the one ``skip_reason`` just read, if any)."""
        memo, self._described = self._described, None
        if memo is not None and target is not None and memo[0] == target.id:
            return memo[1]
        return describe_instance(ctx, target)

    def remember(self, state: dict[str, Any]) -> dict[str, Any]:
        """Keep the last state read, for ``output`` (called after the verifying read)."""
        self._last = state
        return state
