"""The live resource, as the guardrails check it before any change: its real ARN and its tags.

A finding may name a resource without its tags (CloudTrail events never carry them; a GuardDuty
access key names its role or user by name only) or with tags that changed since, and may name an IAM
principal without the path its ARN has. A protection tag set on the resource itself, or a protected ARN
pattern, must still hold containment back: one reader per resource kind reads both. The ``tag`` action
reads tags through the same readers, and ``register`` adds each reader's permissions to every action
that changes a resource of that kind (they feed the generated least-privilege policy).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.actions._ec2_common import describe_instance, instance_id, security_group_id, tags_of
from chalicelib.actions._s3_common import read_tag_set
from chalicelib.actions._targets import bucket_arn, bucket_name, derived_arn, function_arn, principal_of
from chalicelib.actions.base import ActionContext, ActionError
from chalicelib.findings.model import Resource

#: (ARN, tags) of a resource as AWS describes it now.
Facts = tuple[str | None, dict[str, str]]


@dataclass(frozen=True)
class LiveReader:
    permissions: tuple[str, ...]
    read: Callable[[ActionContext, Resource], Facts]


def _pairs(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(t["Key"]): str(t["Value"]) for t in tags or () if "Key" in t and "Value" in t}


def _role(ctx: ActionContext, target: Resource) -> Facts:
    role = ctx.client("iam", target).get_role(RoleName=principal_of(target)[1])["Role"]
    return role.get("Arn"), _pairs(role.get("Tags"))


def _user(ctx: ActionContext, target: Resource) -> Facts:
    user = ctx.client("iam", target).get_user(UserName=principal_of(target)[1])["User"]
    return user.get("Arn"), _pairs(user.get("Tags"))


def _key_owner(ctx: ActionContext, target: Resource) -> Facts:
    """An access key has no tags of its own: its user's tags and ARN protect it."""
    if target.details.get("user_name"):
        return _user(ctx, target)
    if not target.id:
        raise ActionError("InvalidTarget", "the finding does not name the access key id")
    owner = ctx.client("iam", target).get_access_key_last_used(AccessKeyId=target.id)["UserName"]
    return _user(ctx, dataclasses.replace(target, details={**target.details, "user_name": owner}))


def _function(ctx: ActionContext, target: Resource) -> Facts:
    arn = function_arn(ctx, target)
    return arn, dict(ctx.client("lambda", target).list_tags(Resource=arn).get("Tags") or {})


def _bucket(ctx: ActionContext, target: Resource) -> Facts:
    return bucket_arn(target, ctx.finding.region), read_tag_set(ctx.client("s3", target), bucket_name(target))


def instance_facts(ctx: ActionContext, target: Resource, instance: Mapping[str, Any]) -> Facts:
    return derived_arn(target, ctx.finding.account, ctx.finding.region), tags_of(instance)


def _instance(ctx: ActionContext, target: Resource) -> Facts:
    instance_id(target)
    return instance_facts(ctx, target, describe_instance(ctx, target))


def _security_group(ctx: ActionContext, target: Resource) -> Facts:
    groups = ctx.client("ec2", target).describe_security_groups(GroupIds=[security_group_id(target)])
    found = groups.get("SecurityGroups") or [{}]
    return derived_arn(target, ctx.finding.account, ctx.finding.region), _pairs(found[0].get("Tags"))


READERS: dict[str, LiveReader] = {
    "iam-role": LiveReader(("iam:GetRole",), _role),
    "iam-user": LiveReader(("iam:GetUser",), _user),
    "access-key": LiveReader(("iam:GetUser", "iam:GetAccessKeyLastUsed"), _key_owner),
    "lambda-function": LiveReader(("lambda:ListTags",), _function),
    "s3-bucket": LiveReader(("s3:GetBucketTagging",), _bucket),
    "ec2-instance": LiveReader(("ec2:DescribeInstances",), _instance),
    "security-group": LiveReader(("ec2:DescribeSecurityGroups",), _security_group),
}


def read_permissions(kinds: Iterable[str]) -> tuple[str, ...]:
    """What reading the live facts of these kinds needs."""
    return tuple(dict.fromkeys(p for kind in kinds if kind in READERS for p in READERS[kind].permissions))


def with_facts(target: Resource, facts: Facts) -> Resource:
    """``target`` as AWS describes it: its real ARN (an access key keeps its own, and gets its user's)."""
    arn, tags = facts
    if target.kind == "access-key":
        return dataclasses.replace(target, tags=tags, details={**target.details, "user_arn": arn})
    return dataclasses.replace(target, arn=arn or target.arn, tags=tags)


def live_target(ctx: ActionContext, target: Resource) -> Resource | None:
    reader = READERS.get(target.kind)
    return with_facts(target, reader.read(ctx, target)) if reader else None


def live_tags(ctx: ActionContext, target: Resource) -> dict[str, str]:
    reader = READERS.get(target.kind)
    if reader is None:
        raise ActionError("InvalidTarget", f"cannot read the tags of a {target.kind}")
    return reader.read(ctx, target)[1]
