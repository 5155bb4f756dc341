"""``notify.log``: write a structured line to the responder's log (CloudWatch Logs when deployed)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from chalicelib.actions.base import Action, ActionContext, ActionPlan, ActionResult, Status
from chalicelib.actions.registry import register
from chalicelib.findings.model import Resource

logger = logging.getLogger("clampdown.notify")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


@register
class NotifyLog(Action):
    name = "notify.log"
    summary = "Write the finding and a message to the responder's log."
    changes_aws = False
    reversible = False
    default_on_error = "continue"
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "message": {"type": "string", "maxLength": 4000},
            "level": {"enum": sorted(_LEVELS)},
        },
    }

    def _record(self, ctx: ActionContext) -> dict[str, Any]:
        finding = ctx.finding
        return {
            "message": str(self.params.get("message") or finding.title),
            "level": self.params.get("level", "warning"),
            "incident": ctx.incident_id,
            "playbook": ctx.playbook,
            "finding": {
                "id": finding.id,
                "type": finding.type,
                "severity": finding.severity_label,
                "account": finding.account,
                "region": finding.region,
            },
        }

    def plan(self, ctx: ActionContext, target: Resource | None) -> ActionPlan:
        return ActionPlan(self.name, target, [], notes=[f"log: {self._record(ctx)['message']}"])

    def apply(self, ctx: ActionContext, target: Resource | None) -> ActionResult:
        record = self._record(ctx)
        # json.dumps escapes control characters, so a finding cannot forge extra log lines.
        logger.log(_LEVELS[record["level"]], json.dumps(record, sort_keys=True, default=str))
        return ActionResult(self.name, Status.DONE, target, output={"logged": record["message"]})
