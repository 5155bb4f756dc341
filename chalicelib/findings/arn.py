"""ARN parsing and the mapping from ARNs / AWS type names to our resource kinds.

Naming convention for :class:`Resource` (all sources follow it): ``name`` is the name-like handle
(user, role, bucket, function, cluster, trail, DB instance identifier); ``id`` is a generated
identifier (``i-…``, ``sg-…``, an access key id, a container id). ``arn`` is set only when it is
known exactly: an IAM role/user ARN is never guessed because the path is unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .fields import ident
from .model import Resource

_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+[a-z]?")
_SERVICE = re.compile(r"[a-z][a-z0-9-]*")

#: (service, resource type) → kind. ``("s3", "")`` is a bucket ARN (``arn:aws:s3:::bucket``).
KIND_BY_ARN: dict[tuple[str, str], str] = {
    ("iam", "user"): "iam-user",
    ("iam", "role"): "iam-role",
    ("sts", "assumed-role"): "iam-role",
    ("lambda", "function"): "lambda-function",
    ("ec2", "instance"): "ec2-instance",
    ("ec2", "security-group"): "security-group",
    ("eks", "cluster"): "eks-cluster",
    ("ecs", "cluster"): "ecs-cluster",
    ("rds", "db"): "rds-instance",
    ("cloudtrail", "trail"): "cloudtrail-trail",
    ("s3", ""): "s3-bucket",
}

#: CloudFormation-style type names (OCSF ``resources[].type``, CloudTrail ``resources[].type``,
#: GuardDuty ``affectedResources`` keys) → kind.
KIND_BY_CFN_TYPE: dict[str, str] = {
    "AWS::IAM::AccessKey": "access-key",
    "AWS::IAM::Role": "iam-role",
    "AWS::IAM::User": "iam-user",
    "AWS::EC2::Instance": "ec2-instance",
    "AWS::EC2::SecurityGroup": "security-group",
    "AWS::S3::Bucket": "s3-bucket",
    "AWS::Lambda::Function": "lambda-function",
    "AWS::EKS::Cluster": "eks-cluster",
    "AWS::ECS::Cluster": "ecs-cluster",
    "AWS::ECS::Container": "container",
    "AWS::Container::Container": "container",
    "AWS::RDS::DBInstance": "rds-instance",
    "AWS::CloudTrail::Trail": "cloudtrail-trail",
}


@dataclass(frozen=True, slots=True)
class Arn:
    """The six fields of an ARN; ``resource`` split into ``resource_type`` and ``resource_id``."""

    partition: str
    service: str
    region: str
    account: str
    resource: str
    resource_type: str
    resource_id: str

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"


def parse_arn(value: Any) -> Arn | None:
    """Parse ``arn:partition:service:region:account:resource``; ``None`` if ``value`` is not an ARN.

    ``resource`` is split at its first ``/`` or ``:`` (``role/path/Name`` → ``role``,
    ``path/Name``; ``function:name:alias`` → ``function``, ``name:alias``; an S3 bucket or object
    ARN has an empty type). Tolerates the extra colon in AWS's own GuardDuty→Security Hub documentation
    sample (``arn:aws::guardduty:us-east-1:…``).
    """
    text = ident(value)
    if text is None or not text.startswith("arn:"):
        return None
    parts = text.split(":", 5)
    if len(parts) != 6 or not parts[1]:
        return None
    if not parts[2] and _SERVICE.fullmatch(parts[3]) and _REGION.fullmatch(parts[4]):
        parts = text.split(":", 6)
        if len(parts) != 7:
            return None
        del parts[2]
    _, partition, service, region, account, resource = parts
    cut = min((i for i in (resource.find("/"), resource.find(":")) if i >= 0), default=-1)
    if service == "s3" and not region and not account:
        cut = -1  # bucket or bucket/key: no resource type
    rtype, rid = (resource[:cut], resource[cut + 1 :]) if cut >= 0 else ("", resource)
    return Arn(partition, service, region, account, resource, rtype, rid)


def resource_from_arn(value: Any) -> Resource | None:
    """A :class:`Resource` of the right kind for an ARN (``other`` when the kind is not ours)."""
    arn = parse_arn(value)
    if arn is None:
        return None
    kind = KIND_BY_ARN.get((arn.service, arn.resource_type))
    if arn.service == "s3" and arn.resource_type == "" and "/" in arn.resource_id:
        kind = None  # an object ARN (bucket/key), not a bucket
    account = arn.account or None
    region = arn.region or None
    if kind in ("iam-user", "iam-role") and arn.service == "iam":
        path, _, name = arn.resource_id.rpartition("/")
        details = {"path": f"/{path}/"} if path else {}
        return Resource(kind, arn=str(arn), name=name or None, account=account, details=details)
    if kind == "iam-role":  # sts assumed-role/Role/session: the role is known, its ARN (path) is not
        role, _, session = arn.resource_id.partition("/")
        details = {"session_name": session, "assumed_role_arn": str(arn)} if session else {}
        return Resource(kind, name=role or None, account=account, details=details)
    if kind == "lambda-function":
        name, _, qualifier = arn.resource_id.partition(":")
        unqualified = f"arn:{arn.partition}:lambda:{arn.region}:{arn.account}:function:{name}"
        details = {"qualifier": qualifier} if qualifier else {}
        return Resource(kind, arn=unqualified, name=name or None, account=account, region=region, details=details)
    if kind in ("ec2-instance", "security-group"):
        return Resource(kind, id=arn.resource_id or None, arn=str(arn), account=account, region=region)
    if kind is not None:
        name = arn.resource_id.rsplit("/", 1)[-1] if kind == "cloudtrail-trail" else arn.resource_id
        return Resource(kind, arn=str(arn), name=name or None, account=account, region=region)
    details = {"service": arn.service, "resource_type": arn.resource_type}
    return Resource("other", id=arn.resource_id or None, arn=str(arn), account=account, region=region, details=details)
