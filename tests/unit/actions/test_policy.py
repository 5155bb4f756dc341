"""``_policy``: which resource-policy statements are public (one table for Lambda and S3)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.actions import _policy

ALLOW = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}


def allow(principal: Any, condition: Any = None, **extra: Any) -> dict[str, Any]:
    statement = {**ALLOW, "Principal": principal, **extra}
    if condition is not None:
        statement["Condition"] = condition
    return statement


PUBLIC = [
    ("bare star", allow("*")),
    ("AWS star", allow({"AWS": "*"})),
    ("AWS star in a list", allow({"AWS": ["arn:aws:iam::111122223333:root", "*"]})),
    ("NotPrincipal allow", {**ALLOW, "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:root"}}),
    ("function URL auth NONE", allow("*", {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}})),
    ("wildcard source account", allow("*", {"StringLike": {"aws:SourceAccount": "*"}})),
    ("wildcard in source ARN", allow("*", {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::*"}})),
    ("policy variable", allow("*", {"StringEquals": {"aws:PrincipalAccount": "${aws:username}"}})),
    ("negated operator", allow("*", {"StringNotEquals": {"aws:SourceAccount": "111122223333"}})),
    ("IfExists passes when absent", allow("*", {"StringEqualsIfExists": {"aws:SourceAccount": "111122223333"}})),
    ("ForAllValues passes when absent", allow("*", {"ForAllValues:StringEquals": {"aws:PrincipalOrgID": "o-a"}})),
    ("non-identity condition", allow("*", {"Bool": {"aws:SecureTransport": "true"}})),
    ("whole internet", allow("*", {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}})),
    ("a /4 is nearly everyone", allow("*", {"IpAddress": {"aws:SourceIp": "16.0.0.0/4"}})),
    ("one value is a wildcard", allow("*", {"StringEquals": {"aws:SourceAccount": ["111122223333", "*"]}})),
]

NOT_PUBLIC = [
    ("an account", allow({"AWS": "arn:aws:iam::111122223333:root"})),
    ("a service", allow({"Service": "s3.amazonaws.com"})),
    ("deny to everyone", {**allow("*"), "Effect": "Deny"}),
    ("source account", allow("*", {"StringEquals": {"AWS:SourceAccount": "111122223333"}})),
    ("source ARN", allow("*", {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::my-bucket"}})),
    ("organization", allow("*", {"StringEquals": {"aws:PrincipalOrgID": "o-abc123def45"}})),
    ("organization, any value", allow("*", {"ForAnyValue:StringEquals": {"aws:PrincipalOrgID": ["o-a", "o-b"]}})),
    ("VPC endpoint", allow({"AWS": "*"}, {"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}})),
    ("an office network", allow("*", {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]}})),
    ("principal ARN", allow("*", {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/R"}})),
    ("not a statement", "Allow *"),
    ("no effect", {"Principal": "*", "Action": "*"}),
]


@pytest.mark.parametrize(("label", "statement"), PUBLIC, ids=[p[0] for p in PUBLIC])
def test_public(label: str, statement: Any) -> None:
    assert _policy.is_public_principal(statement), label


@pytest.mark.parametrize(("label", "statement"), NOT_PUBLIC, ids=[p[0] for p in NOT_PUBLIC])
def test_not_public(label: str, statement: Any) -> None:
    assert not _policy.is_public_principal(statement), label


def test_split_keeps_order_and_the_rest_of_the_document() -> None:
    statements = [allow("*", Sid="a"), allow({"Service": "s3.amazonaws.com"}, Sid="b"), allow({"AWS": "*"}, Sid="c")]
    document = {"Version": "2012-10-17", "Id": "p1", "Statement": statements}
    kept, public = _policy.split_public(document)
    assert [s["Sid"] for s in kept] == ["b"] and [s["Sid"] for s in public] == ["a", "c"]
    assert _policy.with_statements(document, kept) == {"Version": "2012-10-17", "Id": "p1", "Statement": kept}


@pytest.mark.parametrize(
    ("document", "count"),
    [
        (None, 0),
        ("", 0),
        (json.dumps({"Statement": allow("*")}), 1),  # a single statement object, as a JSON string
        ({"Statement": "garbage"}, 0),
        ({"Statement": [allow("*"), 7, None]}, 3),
    ],
)
def test_load_and_statements_tolerate_odd_shapes(document: Any, count: int) -> None:
    assert len(_policy.statements(_policy.load(document))) == count
    # Odd entries are never public, and never crash.
    assert len(_policy.split_public(_policy.load(document))[1]) == (1 if count else 0)
