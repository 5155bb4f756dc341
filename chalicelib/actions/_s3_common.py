"""Bucket settings shared by the S3 actions: read each one (absent → ``None``) and build the call
that sets it back to a remembered value (``None`` → the matching ``Delete…`` call)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from chalicelib.actions import _policy
from chalicelib.actions.base import ActionContext, ApiCall, error_code
from chalicelib.findings.model import Resource

ALL_BLOCKED = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
ENFORCED = "BucketOwnerEnforced"


def _read(ctx: ActionContext, target: Resource | None, method: str, bucket: str, absent: str) -> Any:
    """A bucket read, or ``None`` when AWS answers that the setting does not exist."""
    try:
        return getattr(ctx.client("s3", target), method)(Bucket=bucket)
    except Exception as exc:
        if error_code(exc) == absent:
            return None
        raise


def read_public_access_block(ctx: ActionContext, target: Resource | None, bucket: str) -> dict[str, bool] | None:
    found = _read(ctx, target, "get_public_access_block", bucket, "NoSuchPublicAccessBlockConfiguration")
    return dict(found["PublicAccessBlockConfiguration"]) if found else None


def read_policy(ctx: ActionContext, target: Resource | None, bucket: str) -> dict[str, Any] | None:
    found = _read(ctx, target, "get_bucket_policy", bucket, "NoSuchBucketPolicy")
    return _policy.load(found["Policy"]) if found else None


def read_ownership(ctx: ActionContext, target: Resource | None, bucket: str) -> str | None:
    found = _read(ctx, target, "get_bucket_ownership_controls", bucket, "OwnershipControlsNotFoundError")
    rules = found["OwnershipControls"]["Rules"] if found else []
    return str(rules[0]["ObjectOwnership"]) if rules else None


def read_acl(ctx: ActionContext, target: Resource | None, bucket: str) -> dict[str, Any]:
    found = ctx.client("s3", target).get_bucket_acl(Bucket=bucket)
    return {"Owner": dict(found.get("Owner") or {}), "Grants": [dict(g) for g in found.get("Grants", [])]}


def foreign_grants(acl: Mapping[str, Any] | None) -> list[Any]:
    """ACL grants to anyone but the bucket owner (they block ``BucketOwnerEnforced``)."""
    if not acl:
        return []
    owner = (acl.get("Owner") or {}).get("ID")
    return [g for g in acl.get("Grants", []) if (g.get("Grantee") or {}).get("ID") != owner or owner is None]


def owner_only(acl: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The bucket ACL once ACLs are disabled (``BucketOwnerEnforced``): full control to the owner only."""
    if acl is None:
        return None
    owner = dict(acl.get("Owner") or {})
    others = foreign_grants(acl)
    full = [g for g in acl.get("Grants", []) if g not in others and g.get("Permission") == "FULL_CONTROL"]
    grantee = {"ID": owner.get("ID"), "Type": "CanonicalUser"}
    return {"Owner": owner, "Grants": [dict(full[0]) if full else {"Grantee": grantee, "Permission": "FULL_CONTROL"}]}


def public_access_block_call(bucket: str, config: Mapping[str, Any] | None, purpose: str) -> ApiCall:
    if config is None:
        return ApiCall("s3", "DeletePublicAccessBlock", {"Bucket": bucket}, purpose)
    return ApiCall(
        "s3", "PutPublicAccessBlock", {"Bucket": bucket, "PublicAccessBlockConfiguration": dict(config)}, purpose
    )


def policy_call(bucket: str, document: Mapping[str, Any] | None, purpose: str) -> ApiCall:
    if document is None:
        return ApiCall("s3", "DeleteBucketPolicy", {"Bucket": bucket}, purpose)
    return ApiCall("s3", "PutBucketPolicy", {"Bucket": bucket, "Policy": json.dumps(document)}, purpose)


def ownership_call(bucket: str, ownership: str | None, purpose: str) -> ApiCall:
    if ownership is None:
        return ApiCall("s3", "DeleteBucketOwnershipControls", {"Bucket": bucket}, purpose)
    controls = {"Rules": [{"ObjectOwnership": ownership}]}
    return ApiCall("s3", "PutBucketOwnershipControls", {"Bucket": bucket, "OwnershipControls": controls}, purpose)


def acl_call(bucket: str, acl: Mapping[str, Any] | None, purpose: str) -> ApiCall:
    """``None``: the canned private ACL; otherwise the remembered owner and grants."""
    if acl is None:
        return ApiCall("s3", "PutBucketAcl", {"Bucket": bucket, "ACL": "private"}, purpose)
    policy = {"Owner": dict(acl.get("Owner") or {}), "Grants": list(acl.get("Grants", []))}
    return ApiCall("s3", "PutBucketAcl", {"Bucket": bucket, "AccessControlPolicy": policy}, purpose)


_RESTORE: dict[str, tuple[Callable[[str, Any, str], ApiCall], str]] = {
    "public_access_block": (public_access_block_call, "put back the earlier Block Public Access setting"),
    "ownership": (ownership_call, "put back the earlier object ownership setting"),
    "policy": (policy_call, "put back the earlier bucket policy"),
}


def restore_setting(
    bucket: str, name: str, before: Mapping[str, Any], current: Mapping[str, Any] | None
) -> Iterator[ApiCall]:
    """The call that sets ``name`` back to its value in ``before``, if it differs now."""
    if current is not None and current.get(name) == before.get(name):
        return
    build, purpose = _RESTORE[name]
    yield build(bucket, before.get(name), purpose)


def read_tag_set(client: Any, bucket: str) -> dict[str, str]:
    """The bucket's tags (``{}`` when it has none)."""
    try:
        tag_set = client.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except Exception as exc:
        if error_code(exc) == "NoSuchTagSet":
            return {}
        raise
    return {t["Key"]: t["Value"] for t in tag_set}
