"""For actions whose rollback cannot put back everything through the API (a resource-policy
statement ``AddPermission`` cannot express, a Security Hub note that cannot be deleted): what is
left is named in the rollback plan's notes and the rollback result's ``undo``, never dropped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.actions.base import Action, ActionContext, ActionPlan, ActionResult
from chalicelib.findings.model import Resource


class ManualRestoreSteps(Action):
    def manual_steps(self, ctx: ActionContext, before: Mapping[str, Any]) -> list[str]:
        """What an operator must restore by hand after rolling back from ``before``."""
        return []

    def plan_rollback(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any]) -> ActionPlan:
        plan = super().plan_rollback(ctx, target, before)
        plan.notes.extend(self.manual_steps(ctx, self._load_state(ctx, before)))
        return plan

    def rollback(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any]) -> ActionResult:
        result = super().rollback(ctx, target, before)
        try:
            manual = self.manual_steps(ctx, self._load_state(ctx, before))
        except Exception:  # noqa: BLE001 - the rollback result (maybe a failure) must still be returned
            return result
        if manual:
            result.undo.extend(manual)
            note = f"{len(manual)} change(s) need restoring by hand (see undo)"
            result.reason = f"{result.reason}; {note}" if result.reason else note
        return result
