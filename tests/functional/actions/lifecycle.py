"""The contract every action is held to on real (moto) resources, in one place."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from chalicelib.actions import Action, ActionContext, ActionResult, Status
from chalicelib.findings import Resource
from chalicelib.guardrails import Guardrails
from tests.functional.actions.permission_table import needed


def matches_plan(planned: Any, real: Any) -> bool:
    """Does the real state equal the planned one? A planned ``"<…>"`` string stands for a value only the
    calls reveal (the id of a group they create) and matches any value."""
    if isinstance(planned, str) and planned.startswith("<") and planned.endswith(">"):
        return True
    if isinstance(planned, dict) and isinstance(real, dict):
        return planned.keys() == real.keys() and all(matches_plan(planned[k], real[k]) for k in planned)
    if isinstance(planned, list) and isinstance(real, list):
        return len(planned) == len(real) and all(matches_plan(p, r) for p, r in zip(planned, real, strict=True))
    return bool(planned == real)


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def assert_lifecycle(
    action: Action,
    ctx: ActionContext,
    target: Resource | None,
    read: Callable[[], Any],
    recorder: Any,
) -> ActionResult:
    """plan → apply → apply again → rollback, checking the real state at each stage.

    - the guardrails run (default ones when the test gives none), with their live reads of the target;
    - the plan changes nothing, lists exactly the calls that apply then makes, and its before/after are
      the real states before and after apply;
    - apply contains (state changes), a second apply says already-contained and makes no change;
    - every API call made (reads included) needs only permissions the action declares, by the hand-written
      table of ``permission_table`` (not by the code's own mapping);
    - rollback, planned then made, brings the state back to what it was.
    """
    if ctx.guard is None:
        ctx = dataclasses.replace(ctx, guard=Guardrails())
    test_reads = read

    def read() -> Any:  # the test's own reads are not the action's calls
        mark = len(recorder.calls)
        value = test_reads()
        del recorder.calls[mark:]
        return value

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
    before, after = action._load_state(ctx, result.before or {}), action._load_state(ctx, result.after or {})
    assert _text(plan.before) == _text(before), "the plan's before is not the state apply found"
    assert matches_plan(json.loads(_text(plan.after)), json.loads(_text(after))), (
        f"the plan's after is not the real state after apply:\nplanned {_text(plan.after)}\nreal    {_text(after)}"
    )

    again = action.apply(ctx, target)
    assert again.status == Status.ALREADY_CONTAINED, again.to_dict()
    assert again.calls_made == []
    assert read() == contained

    rollback_plan = action.plan_rollback(ctx, target, result.before or {}, wrote=result.after)
    assert rollback_plan.calls, "rollback of a contained resource must plan calls"
    assert read() == contained, "planning the rollback changed the resource"
    rolled = action.rollback(ctx, target, result.before or {}, wrote=result.after)
    assert rolled.status == Status.ROLLED_BACK, rolled.to_dict()
    assert [str(c) for c in rolled.calls_made] == [str(c) for c in rollback_plan.calls]
    assert read() == original, "rollback did not restore the before-state"

    made = [(service, operation) for service, operation, _ in recorder.calls]
    undeclared = needed(made) - set(action.permissions)
    assert not undeclared, f"{action.name} made calls needing permissions it does not declare: {undeclared}"
    return result
