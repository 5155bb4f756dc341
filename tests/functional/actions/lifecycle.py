"""The contract every action is held to on real (moto) resources, in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.actions import Action, ActionContext, ActionResult, Status
from chalicelib.findings import Resource


def assert_lifecycle(
    action: Action,
    ctx: ActionContext,
    target: Resource | None,
    read: Callable[[], Any],
    recorder: Any,
) -> ActionResult:
    """plan → apply → apply again → rollback, checking the real state at each stage.

    - the plan changes nothing and lists exactly the calls that apply then makes;
    - apply contains (state changes), a second apply says already-contained and makes no change;
    - every API call made (reads included) is covered by the action's declared permissions;
    - rollback brings the state back to what it was.
    """
    recorder.clear()
    original = read()
    plan = action.plan(ctx, target)
    assert read() == original, "planning changed the resource"
    assert not plan.already_contained and not plan.refused, plan.to_dict()
    assert plan.calls, "a plan for an uncontained resource must list calls"

    result = action.apply(ctx, target)
    assert result.status == Status.CONTAINED, result.to_dict()
    assert [str(c) for c in result.calls_made] == [str(c) for c in plan.calls]
    contained = read()
    assert contained != original, "apply reported success but the resource did not change"

    again = action.apply(ctx, target)
    assert again.status == Status.ALREADY_CONTAINED, again.to_dict()
    assert again.calls_made == []
    assert read() == contained

    rollback_plan = action.plan_rollback(ctx, target, result.before or {})
    assert rollback_plan.calls, "rollback of a contained resource must plan calls"
    assert read() == contained, "planning the rollback changed the resource"
    rolled = action.rollback(ctx, target, result.before or {})
    assert rolled.status == Status.ROLLED_BACK, rolled.to_dict()
    assert read() == original, "rollback did not restore the before-state"

    undeclared = recorder.permissions() - set(action.permissions)
    helper_reads = {p for p in undeclared if p.startswith("sts:GetCallerIdentity")}
    assert undeclared - helper_reads == set(), f"{action.name} made calls it does not declare: {undeclared}"
    return result
