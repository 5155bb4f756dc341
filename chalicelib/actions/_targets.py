"""Names and ARNs of targets, checked before they reach an API call.

Every name here comes from a finding and is attacker-controlled: a value that is not a valid
bucket or function name is refused with ``InvalidTarget`` rather than passed on.
"""

from __future__ import annotations

import re

from chalicelib.actions.base import ActionContext, ActionError
from chalicelib.findings.arn import parse_arn
from chalicelib.findings.model import Resource

#: What botocore accepts as a bucket name (legacy us-east-1 names allow upper case and ``_``).
_BUCKET = re.compile(r"[A-Za-z0-9._-]{3,255}")
_FUNCTION = re.compile(r"[A-Za-z0-9_-]{1,140}")


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
