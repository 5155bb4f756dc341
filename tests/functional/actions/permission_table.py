"""The IAM actions each AWS API operation the actions use needs, written out by hand.

Taken from the Service Authorization Reference ("Actions defined by …" tables, and the per-API
"dependent actions"), not from ``chalicelib.actions.base.iam_action``: tests compare the calls an
action really made (recorded by botocore hooks) against this table, so a wrong mapping in the code or a
permission an action forgets to declare cannot hide behind the code's own answer.

Keys are (boto3 service name, API operation); values are every IAM action the call needs, the one
named after the operation first. An operation missing here fails the test that made it: add it from
the reference.
"""

from __future__ import annotations

from collections.abc import Iterable


def _same(service: str, prefix: str, *operations: str) -> dict[tuple[str, str], tuple[str, ...]]:
    return {(service, op): (f"{prefix}:{op}",) for op in operations}


NEEDS: dict[tuple[str, str], tuple[str, ...]] = {
    **_same(
        "iam", "iam",
        "GetRole", "GetUser", "GetRolePolicy", "PutRolePolicy", "DeleteRolePolicy", "GetUserPolicy",
        "PutUserPolicy", "DeleteUserPolicy", "GetAccessKeyLastUsed", "ListAccessKeys", "UpdateAccessKey",
        "ListAttachedRolePolicies", "ListRolePolicies", "DetachRolePolicy", "AttachRolePolicy",
        "ListAttachedUserPolicies", "ListUserPolicies", "DetachUserPolicy", "AttachUserPolicy", "GetPolicy",
        "GetPolicyVersion", "GetLoginProfile", "DeleteLoginProfile", "CreateLoginProfile", "GetInstanceProfile",
        "TagRole", "UntagRole", "TagUser", "UntagUser",
    ),
    **_same(
        "lambda", "lambda",
        "GetFunction", "ListTags", "TagResource", "UntagResource", "GetFunctionConcurrency",
        "PutFunctionConcurrency", "DeleteFunctionConcurrency", "GetPolicy", "AddPermission", "RemovePermission",
        "GetFunctionUrlConfig", "CreateFunctionUrlConfig", "DeleteFunctionUrlConfig",
    ),
    **_same(
        "s3", "s3",
        "GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy", "GetBucketOwnershipControls",
        "PutBucketOwnershipControls", "GetBucketAcl", "PutBucketAcl", "GetBucketTagging", "PutBucketTagging",
        "PutObject", "GetObject",
    ),
    ("s3", "GetPublicAccessBlock"): ("s3:GetBucketPublicAccessBlock",),
    ("s3", "PutPublicAccessBlock"): ("s3:PutBucketPublicAccessBlock",),
    ("s3", "DeletePublicAccessBlock"): ("s3:PutBucketPublicAccessBlock",),
    ("s3", "DeleteBucketOwnershipControls"): ("s3:PutBucketOwnershipControls",),
    ("s3", "DeleteBucketTagging"): ("s3:PutBucketTagging",),
    ("s3", "HeadObject"): ("s3:GetObject",),
    **_same("sts", "sts", "GetCallerIdentity", "AssumeRole"),
    **_same(
        "ec2", "ec2",
        "DescribeInstances", "DescribeInstanceAttribute", "DescribeSecurityGroups", "DescribeTags",
        "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "RevokeSecurityGroupIngress",
        "RevokeSecurityGroupEgress", "ModifyNetworkInterfaceAttribute", "ModifyInstanceAttribute",
        "DescribeSnapshots", "CreateSnapshot", "GetConsoleOutput", "DescribeNetworkInterfaces", "DescribeVolumes",
        "StopInstances", "StartInstances", "DescribeIamInstanceProfileAssociations",
        "DisassociateIamInstanceProfile", "CreateTags", "DeleteTags",
    ),
    # Tagging on create (TagSpecifications) also needs ec2:CreateTags.
    ("ec2", "CreateSecurityGroup"): ("ec2:CreateSecurityGroup", "ec2:CreateTags"),
    ("ec2", "CreateSnapshots"): ("ec2:CreateSnapshots", "ec2:CreateTags"),
    # Giving an instance a role passes the role.
    ("ec2", "AssociateIamInstanceProfile"): ("ec2:AssociateIamInstanceProfile", "iam:PassRole"),
    ("ec2", "ReplaceIamInstanceProfileAssociation"): ("ec2:ReplaceIamInstanceProfileAssociation", "iam:PassRole"),
    **_same(
        "autoscaling", "autoscaling",
        "DescribeAutoScalingInstances", "DescribeAutoScalingGroups", "EnterStandby", "ExitStandby",
        "DetachInstances", "AttachInstances",
    ),
    **_same(
        "elbv2", "elasticloadbalancing",
        "DescribeTargetGroups", "DescribeTargetHealth", "DeregisterTargets", "RegisterTargets",
    ),
    **_same("guardduty", "guardduty", "GetFindings", "ArchiveFindings", "UnarchiveFindings"),
    **_same("securityhub", "securityhub", "GetFindings", "BatchUpdateFindings"),
    # "BatchUpdateFindings and BatchUpdateFindingsV2 both use securityhub:BatchUpdateFindings" (API reference).
    ("securityhub", "GetFindingsV2"): ("securityhub:GetFindings",),
    ("securityhub", "BatchUpdateFindingsV2"): ("securityhub:BatchUpdateFindings",),
}  # fmt: skip


def needed(calls: Iterable[tuple[str, str]]) -> set[str]:
    """Every IAM action these (service, operation) calls need; an operation not in the table fails."""
    calls = list(calls)
    missing = sorted({f"{s}:{o}" for s, o in calls if (s, o) not in NEEDS})
    assert not missing, f"add these operations to the permission table (Service Authorization Reference): {missing}"
    return {p for call in calls for p in NEEDS[call]}
