"""Names and ARNs of targets, checked before they reach an API call.

Every name here comes from a finding and is attacker-controlled: a value that is not a valid
bucket, function or principal name is refused with ``InvalidTarget`` rather than passed on.
"""

from __future__ import annotations

import re

from chalicelib.actions.base import ActionContext, ActionError
from chalicelib.findings.arn import parse_arn
from chalicelib.findings.model import Resource

#: What botocore accepts as a bucket name (legacy us-east-1 names allow upper case and ``_``).
_BUCKET = re.compile(r"[A-Za-z0-9._-]{3,255}")
_FUNCTION = re.compile(r"[A-Za-z0-9_-]{1,140}")
_PRINCIPAL = re.compile(r"[\w+=,.@-]{1,128}")


def _require(target: Resource | None, kind: str) -> Resource:
    if target is None or target.kind != kind:
        found = target.kind if target else "nothing"
        raise ActionError("InvalidTarget", f"expected a {kind}, got {found}")
    return target


def bucket_name(target: Resource | None) -> str:
    """The bucket of an ``s3-bucket`` resource (its name, else its ARN)."""
    bucket = _require(target, "s3-bucket")
    arn = parse_arn(bucket.arn)
    name = bucket.name or (arn.resource.split("/", 1)[0] if arn and arn.service == "s3" else None) or bucket.id
    if not name or not _BUCKET.fullmatch(name):
        raise ActionError("InvalidTarget", f"{name!r} is not a bucket name")
    return name


def function_name(target: Resource | None) -> str:
    """The unqualified function name of a ``lambda-function`` (``name:alias`` and ARNs accepted)."""
    function = _require(target, "lambda-function")
    arn = parse_arn(function.arn) or parse_arn(function.name)
    if arn is not None and arn.service == "lambda":
        name = arn.resource_id.split(":", 1)[0]
    else:
        name = (function.name or function.id or "").split(":", 1)[0]
    if not _FUNCTION.fullmatch(name):
        raise ActionError("InvalidTarget", f"{name!r} is not a Lambda function name")
    return name


def principal_of(target: Resource | None) -> tuple[str, str]:
    """("Role" | "User", name) of an IAM principal resource; an access key names its user."""
    if target is None:
        raise ActionError("InvalidTarget", "an IAM action needs a principal")
    if target.kind == "access-key":
        name = target.details.get("user_name")
        if not name:
            raise ActionError("InvalidTarget", f"access key {target.id} does not name its user")
        return "User", str(name)
    kind = {"iam-role": "Role", "iam-user": "User"}.get(target.kind)
    name = target.name or (target.arn.rsplit("/", 1)[-1] if target.arn else None)
    if kind is None or not name:
        raise ActionError("InvalidTarget", f"{target.kind} {target.id or target.arn} is not an IAM role or user")
    if not _PRINCIPAL.fullmatch(name):
        raise ActionError("InvalidTarget", f"{name!r} is not an IAM {kind.lower()} name")
    return kind, name


def partition_of(region: str | None) -> str:
    if region and region.startswith("cn-"):
        return "aws-cn"
    if region and region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def function_arn(ctx: ActionContext, target: Resource | None) -> str:
    """The unqualified function ARN (built from account and region when the finding gives none)."""
    name = function_name(target)
    assert target is not None
    arn = parse_arn(target.arn)
    if arn is not None and arn.service == "lambda" and arn.account and arn.region:
        return f"arn:{arn.partition}:lambda:{arn.region}:{arn.account}:function:{name}"
    region = target.region or ctx.finding.region
    account = target.account or ctx.finding.account
    return f"arn:{partition_of(region)}:lambda:{region}:{account}:function:{name}"


def bucket_arn(target: Resource | None, region: str | None = None) -> str:
    arn = parse_arn(target.arn if target else None)
    partition = arn.partition if arn is not None else partition_of(region or (target.region if target else None))
    return f"arn:{partition}:s3:::{bucket_name(target)}"


def derived_arn(resource: Resource, account: str | None, region: str | None) -> str | None:
    """The ARN of a resource a finding names without one, from its kind, account, region and name or id.

    An IAM principal's path is known only from an ARN (``details.path``); without it the ARN has none.
    An access key is its user's. None when a part is missing.
    """
    if resource.arn:
        return resource.arn
    account = resource.account or account
    region = resource.region or region
    partition = partition_of(region)
    kind, handle = resource.kind, resource.name or resource.id
    if kind == "access-key":
        kind, handle = "iam-user", resource.details.get("user_name")
    if not handle or (not account and kind != "s3-bucket"):
        return None
    if kind in ("iam-role", "iam-user"):
        path = str(resource.details.get("path") or "/") if kind == resource.kind else "/"
        return f"arn:{partition}:iam::{account}:{kind.removeprefix('iam-')}{path}{handle}"
    if kind == "s3-bucket":
        return f"arn:{partition}:s3:::{handle}"
    if not region:
        return None
    if kind == "lambda-function":
        return f"arn:{partition}:lambda:{region}:{account}:function:{str(handle).split(':', 1)[0]}"
    if kind == "ec2-instance":
        return f"arn:{partition}:ec2:{region}:{account}:instance/{handle}"
    if kind == "security-group":
        return f"arn:{partition}:ec2:{region}:{account}:security-group/{handle}"
    return None
