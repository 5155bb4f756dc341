"""Guardrails, pure: ARNs derived for resources named without one, suppressions from rollbacks."""

from __future__ import annotations

import pytest

from chalicelib.actions._targets import derived_arn
from chalicelib.findings import Resource
from chalicelib.guardrails import Guardrails, suppressed, suppression_key

ACCOUNT, REGION = "123456789012", "eu-west-1"


@pytest.mark.parametrize(
    ("resource", "region", "arn"),
    [
        (Resource("iam-role", name="ops"), REGION, f"arn:aws:iam::{ACCOUNT}:role/ops"),
        (Resource("iam-role", name="db", details={"path": "/prod/"}), REGION, f"arn:aws:iam::{ACCOUNT}:role/prod/db"),
        (Resource("iam-user", name="bob"), "cn-north-1", f"arn:aws-cn:iam::{ACCOUNT}:user/bob"),
        (Resource("access-key", id="AKIA1", details={"user_name": "bob"}), REGION, f"arn:aws:iam::{ACCOUNT}:user/bob"),
        (Resource("s3-bucket", name="logs"), None, "arn:aws:s3:::logs"),
        (
            Resource("lambda-function", name="fn"),
            "us-gov-west-1",
            f"arn:aws-us-gov:lambda:us-gov-west-1:{ACCOUNT}:function:fn",
        ),
        (
            Resource("ec2-instance", id="i-0123456789abcdef0"),
            REGION,
            f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0",
        ),
        (
            Resource("security-group", id="sg-01234567"),
            REGION,
            f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-01234567",
        ),
        (Resource("access-key", id="AKIA1"), REGION, None),  # its user is unknown
        (Resource("ec2-instance", id="i-0123456789abcdef0"), None, None),  # no region
    ],
)
def test_derived_arn(resource: Resource, region: str | None, arn: str | None) -> None:
    assert derived_arn(resource, ACCOUNT, region) == arn


def test_arn_patterns_match_resources_named_by_name() -> None:
    guard = Guardrails(
        protected_resources=("arn:aws:iam::*:role/prod-*",), allowed_principals=("arn:aws:iam::*:user/breakglass",)
    )
    assert "protected resource" in (guard.protection(Resource("iam-role", name="prod-db"), account=ACCOUNT) or "")
    assert guard.protection(Resource("iam-role", name="dev-db"), account=ACCOUNT) is None
    key = Resource("access-key", id="AKIA1", details={"user_name": "breakglass"})
    assert "allow-listed" in (guard.protection(key, account=ACCOUNT) or "")
    # A user read live: its ARN (with a path) is what the pattern sees.
    live = Resource("access-key", id="AKIA1", details={"user_arn": f"arn:aws:iam::{ACCOUNT}:user/ops/breakglass"})
    assert "allow-listed" not in (guard.protection(live) or ""), "the path does not match user/breakglass"


def test_protected_accounts_apply_to_resources_that_name_none() -> None:
    guard = Guardrails(protected_accounts=(ACCOUNT,))
    assert guard.protection(Resource("s3-bucket", name="logs"), account=ACCOUNT) == f"account {ACCOUNT} is protected"


def test_suppressions_match_step_keys_of_any_shape() -> None:
    target = Resource("iam-user", name="alice", account=ACCOUNT)
    key = suppression_key("iam.quarantine-user", target)
    assert key == f"iam.quarantine-user/iam-user:{ACCOUNT}::alice"
    for recorded in (key, f"{ACCOUNT}:f1/{key}", f"{ACCOUNT}:f1/{key}#a1b2c3d4e5f6"):
        assert suppressed([recorded], "iam.quarantine-user", target)
    assert not suppressed([f"{ACCOUNT}:f1/{key}"], "iam.disable-console-login", target)
    assert not suppressed([f"{ACCOUNT}:f1/{key}x"], "iam.quarantine-user", target)
    assert suppression_key("guardduty.archive-finding", None) == "guardduty.archive-finding/finding"
