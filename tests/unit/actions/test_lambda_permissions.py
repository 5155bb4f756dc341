"""Mapping a remembered Lambda policy statement back to ``AddPermission`` (pure, AWS's own format)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.actions.lambda_ import add_permission_params

FN = "arn:aws:lambda:us-east-1:123456789012:function:payments"


def statement(sid: str, principal: Any, condition: Any = None, action: Any = "lambda:InvokeFunction") -> dict[str, Any]:
    out = {"Sid": sid, "Effect": "Allow", "Principal": principal, "Action": action, "Resource": FN}
    if condition is not None:
        out["Condition"] = condition
    return out


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (statement("a", "*"), {"Principal": "*"}),
        (statement("b", {"AWS": "*"}, action=["lambda:InvokeFunction"]), {"Principal": "*"}),
        (
            statement("url", "*", {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}, "lambda:InvokeFunctionUrl"),
            {"Principal": "*", "Action": "lambda:InvokeFunctionUrl", "FunctionUrlAuthType": "NONE"},
        ),
        (
            statement("via", "*", {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}),
            {"Principal": "*", "InvokedViaFunctionUrl": True},
        ),
        (
            statement(
                "s3",
                {"Service": "s3.amazonaws.com"},
                {"StringEquals": {"AWS:SourceAccount": "123456789012"}, "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::b"}},
            ),
            {"Principal": "s3.amazonaws.com", "SourceAccount": "123456789012", "SourceArn": "arn:aws:s3:::b"},
        ),
        (
            statement("org", "*", {"StringEquals": {"aws:PrincipalOrgID": "o-abc123def45"}}),
            {"Principal": "*", "PrincipalOrgID": "o-abc123def45"},
        ),
    ],
)
def test_statements_add_permission_can_recreate(given: dict[str, Any], expected: dict[str, Any]) -> None:
    params = add_permission_params("payments", given)
    assert params == {
        "FunctionName": "payments",
        "StatementId": given["Sid"],
        "Action": "lambda:InvokeFunction",
        **expected,
    }


@pytest.mark.parametrize(
    "given",
    [
        statement("tls", "*", {"Bool": {"aws:SecureTransport": "true"}}),  # no AddPermission parameter for it
        statement("two", {"AWS": ["arn:aws:iam::1:root", "arn:aws:iam::2:root"]}),
        statement("two-actions", "*", action=["lambda:InvokeFunction", "lambda:GetFunction"]),
        {**statement("deny", "*"), "Effect": "Deny"},
        {**statement("x", "*"), "Sid": None},
        statement("odd", "*", {"StringEquals": {"aws:SourceAccount": ["1", "2"]}}),
    ],
)
def test_statements_it_cannot_recreate_exactly(given: dict[str, Any]) -> None:
    assert add_permission_params("payments", given) is None
