"""Declared permissions against the hand-written table of what each API operation needs.

The functional tests record every call an action makes on moto and check it against
``tests/functional/actions/permission_table.py``; these check the code's own mapping (shown in plans as
each call's ``permission``) and the reads ``register`` adds, against the same table.
"""

from __future__ import annotations

import pytest

from chalicelib.actions import REGISTRY
from chalicelib.actions._live import READERS
from chalicelib.actions.base import iam_action
from tests.functional.actions.permission_table import NEEDS


@pytest.mark.parametrize(("service", "operation"), sorted(NEEDS))
def test_the_permission_a_plan_shows_is_the_reference(service: str, operation: str) -> None:
    assert iam_action(service, operation) == NEEDS[(service, operation)][0]


@pytest.mark.parametrize("name", sorted(n for n, a in REGISTRY.items() if a.changes_aws and a.resource_kinds))
def test_every_action_that_changes_a_resource_may_read_it_live(name: str) -> None:
    """The guardrails read each target's tags and ARN before a change: those reads are declared."""
    action = REGISTRY[name]
    for kind in action.resource_kinds:
        assert set(READERS[kind].permissions) <= set(action.permissions), (name, kind)


def test_declared_permissions_are_reference_actions() -> None:
    """Every declared permission is one the reference names for an operation we use (no typo, no wildcard)."""
    known = {p for needs in NEEDS.values() for p in needs}
    for name, action in REGISTRY.items():
        stray = set(action.permissions) - known - {"secretsmanager:GetSecretValue", "ssm:GetParameter", "sns:Publish"}
        assert not stray, (name, stray)


def test_snapshot_code_may_read_the_tags_get_function_returns() -> None:
    assert {"lambda:GetFunction", "lambda:ListTags"} <= set(REGISTRY["lambda.snapshot-code"].permissions)
