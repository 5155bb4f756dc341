"""S3 containment: Block Public Access, public bucket-policy statements, and a full lockdown.

Rollback puts every setting back exactly (or deletes it if there was none). Order matters on the
way back: AWS refuses to put a public bucket policy while Block Public Access blocks public
policies, so Block Public Access is restored before the policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from chalicelib.actions import _policy
from chalicelib.actions._s3_common import (
    ALL_BLOCKED,
    ENFORCED,
    acl_call,
    foreign_grants,
    owner_only,
    ownership_call,
    policy_call,
    public_access_block_call,
    read_acl,
    read_ownership,
    read_policy,
    read_public_access_block,
    restore_setting,
)
from chalicelib.actions._targets import bucket_arn, bucket_name
from chalicelib.actions.base import Action, ActionContext, ActionPlan, CallPlan
from chalicelib.actions.registry import register
from chalicelib.findings.arn import parse_arn
from chalicelib.findings.model import Resource

LOCKDOWN_SID = "ClampdownLockdown"
#: What ``aws:PrincipalArn`` accepts: IAM role/user/root ARNs, ``*``/``?`` wildcards allowed.
_PRINCIPAL_PATTERN = r"^arn:aws[a-z-]*:(iam|sts)::([0-9]{12}|\*):[A-Za-z0-9+=,.@_/*?-]{1,512}$"


@register
class BlockPublicAccess(Action):
    name = "s3.block-public-access"
    summary = "Turn on all four bucket-level Block Public Access settings, remembering the earlier ones."
    resource_kinds = ("s3-bucket",)
    permissions = ("s3:GetBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock")

    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        bucket = bucket_name(target)
        return {"bucket": bucket, "public_access_block": read_public_access_block(ctx, target, bucket)}

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        return state.get("public_access_block") == ALL_BLOCKED

    def expected_state(
        self, before: Mapping[str, Any] | None, ctx: ActionContext, target: Resource | None
    ) -> dict[str, Any]:
        return {"bucket": bucket_name(target), "public_access_block": dict(ALL_BLOCKED)}

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        yield public_access_block_call(bucket_name(target), ALL_BLOCKED, "block all public access")

    def restore(
        self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> CallPlan:
        yield from restore_setting(bucket_name(target), "public_access_block", before, current)


@register
class DenyPublicPolicy(Action):
    """Removes only the statements that grant access to everyone; the rest of the policy stays."""

    name = "s3.deny-public-policy"
    summary = "Remove bucket-policy statements with a public principal (the whole policy is remembered)."
    resource_kinds = ("s3-bucket",)
    permissions = ("s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy")

    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        bucket = bucket_name(target)
        return {"bucket": bucket, "policy": read_policy(ctx, target, bucket)}

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        return not _policy.split_public(state.get("policy"))[1]

    @staticmethod
    def _without_public(policy: Mapping[str, Any] | None) -> dict[str, Any] | None:
        kept, _ = _policy.split_public(policy)
        return _policy.with_statements(policy, kept) if policy and kept else None

    def expected_state(
        self, before: Mapping[str, Any] | None, ctx: ActionContext, target: Resource | None
    ) -> dict[str, Any] | None:
        if before is None:
            return None
        return {"bucket": before["bucket"], "policy": self._without_public(before.get("policy"))}

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        bucket = bucket_name(target)
        if before is None:  # offline: the policy is unknown
            placeholder = {"Statement": "<the bucket policy without its public statements>"}
            yield policy_call(bucket, placeholder, "remove public statements (DeleteBucketPolicy if none remain)")
            return
        _, public = _policy.split_public(before.get("policy"))
        remaining = self._without_public(before.get("policy"))
        purpose = f"remove {len(public)} public statement(s)" + ("" if remaining else ": none remain")
        yield policy_call(bucket, remaining, purpose)

    def restore(
        self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> CallPlan:
        yield from restore_setting(bucket_name(target), "policy", before, current)


def _role_patterns(partition: str, account: str, role: str) -> list[str]:
    """``aws:PrincipalArn`` values for a role known by name: its ARN has a path we may not know."""
    base = f"arn:{partition}:iam::{account}:role"
    return [f"{base}/{role}", f"{base}/*/{role}"]


def _principal_patterns(caller_arn: str) -> list[str]:
    """``aws:PrincipalArn`` values matching the caller (``GetCallerIdentity``'s ARN).

    An assumed-role session is evaluated as its role, whose path the session ARN omits.
    """
    arn = parse_arn(caller_arn)
    if arn is None:
        return []
    if arn.resource_type == "assumed-role":
        return _role_patterns(arn.partition, arn.account, arn.resource_id.split("/", 1)[0])
    if arn.service == "sts" and arn.resource_type == "user":  # moto's caller, never AWS's
        return [f"arn:{arn.partition}:iam::{arn.account}:{arn.resource}"]
    return [caller_arn]


@register
class LockdownBucket(Action):
    """What ``AWSSupport-ContainS3Resource`` does to a general purpose bucket, reversibly.

    Block Public Access on, ACLs disabled (``BucketOwnerEnforced``; a bucket ACL granting others
    access is reset to private first, as AWS requires), and a bucket policy that denies every S3
    action to every principal except the allow-listed ones (``aws:PrincipalArn``): the
    ``allow_principals`` parameter, the guardrails' allow-listed and own roles, and the identity
    this responder acts as in the bucket's account (from ``GetCallerIdentity``), so that rollback
    stays possible. AWS services without a principal ARN (log delivery, replication) are denied too.
    """

    name = "s3.lockdown-bucket"
    summary = "Block public access, disable ACLs and deny all access except to allow-listed principals."
    resource_kinds = ("s3-bucket",)
    permissions = (
        "s3:GetBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock",
        "s3:GetBucketOwnershipControls", "s3:PutBucketOwnershipControls",
        "s3:GetBucketAcl", "s3:PutBucketAcl",
        "s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
        "sts:GetCallerIdentity",
    )  # fmt: skip
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "allow_principals": {
                "type": "array",
                "maxItems": 50,
                "items": {"type": "string", "pattern": _PRINCIPAL_PATTERN},
                "description": "IAM role/user ARNs (wildcards allowed) that keep access, e.g. break-glass and "
                "IR roles. The responder's own identity and the guardrails' principals are always added.",
            }
        },
    }

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self._callers: dict[tuple[str | None, str | None], str] = {}

    def _caller(self, ctx: ActionContext, target: Resource | None) -> str:
        where = ((target.account if target else None) or ctx.finding.account, ctx.finding.region)
        if where not in self._callers:
            self._callers[where] = str(ctx.client("sts", target).get_caller_identity()["Arn"])
        return self._callers[where]

    def principals(self, ctx: ActionContext, target: Resource | None, caller_arn: str | None) -> list[str]:
        """Who keeps access: the parameter, the guardrails' principals and roles, and the caller."""
        guard = ctx.guard
        account = (target.account if target else None) or ctx.finding.account
        partition = bucket_arn(target, ctx.finding.region).split(":")[1]
        found = [
            *self.params.get("allow_principals", ()),
            *getattr(guard, "allowed_principals", ()),
            *getattr(guard, "own_role_arns", ()),
            *(p for name in getattr(guard, "own_role_names", ()) for p in _role_patterns(partition, account, name)),
            *(_principal_patterns(caller_arn) if caller_arn else ["<the responder's own role (GetCallerIdentity)>"]),
        ]
        return sorted(set(found))

    def document(self, ctx: ActionContext, target: Resource | None, caller_arn: str | None) -> dict[str, Any]:
        arn = bucket_arn(target, ctx.finding.region)
        statement = {
            "Sid": LOCKDOWN_SID,
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arn, f"{arn}/*"],
            "Condition": {"ArnNotLike": {"aws:PrincipalArn": self.principals(ctx, target, caller_arn)}},
        }
        return {"Version": "2012-10-17", "Statement": [statement]}

    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        bucket = bucket_name(target)
        return {
            "bucket": bucket,
            "public_access_block": read_public_access_block(ctx, target, bucket),
            "ownership": read_ownership(ctx, target, bucket),
            "acl": read_acl(ctx, target, bucket),
            "policy": read_policy(ctx, target, bucket),
            "caller": self._caller(ctx, target),
        }

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        return (
            state.get("public_access_block") == ALL_BLOCKED
            and state.get("ownership") == ENFORCED
            and state.get("policy") == self.document(ctx, target, state.get("caller"))
        )

    def expected_state(
        self, before: Mapping[str, Any] | None, ctx: ActionContext, target: Resource | None
    ) -> dict[str, Any] | None:
        if before is None:
            return None
        return {
            **before,
            "public_access_block": dict(ALL_BLOCKED),
            "ownership": ENFORCED,
            "acl": owner_only(before.get("acl")),
            "policy": self.document(ctx, target, before.get("caller")),
        }

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        bucket = bucket_name(target)
        known = before or {}
        if before is None or known.get("public_access_block") != ALL_BLOCKED:
            yield public_access_block_call(bucket, ALL_BLOCKED, "block all public access")
        if before is None or (known.get("ownership") != ENFORCED and foreign_grants(known.get("acl"))):
            yield acl_call(bucket, None, "reset the bucket ACL to private (required before disabling ACLs)")
        if before is None or known.get("ownership") != ENFORCED:
            yield ownership_call(bucket, ENFORCED, "disable ACLs (bucket owner enforced)")
        document = self.document(ctx, target, known.get("caller"))
        if before is None or known.get("policy") != document:
            yield policy_call(bucket, document, "deny every S3 action except to allow-listed principals")

    def restore(
        self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> CallPlan:
        bucket = bucket_name(target)
        yield from restore_setting(bucket, "public_access_block", before, current)
        yield from restore_setting(bucket, "ownership", before, current)
        acl = before.get("acl")
        if foreign_grants(acl) and (current is None or current.get("acl") != acl):
            yield acl_call(bucket, acl, "put back the earlier bucket ACL grants")
        yield from restore_setting(bucket, "policy", before, current)

    def plan(self, ctx: ActionContext, target: Resource | None) -> ActionPlan:
        plan = super().plan(ctx, target)
        if ctx.offline and plan.calls:
            plan.notes.append("PutBucketAcl is made only if the bucket ACL grants access to anyone but the owner")
        return plan
