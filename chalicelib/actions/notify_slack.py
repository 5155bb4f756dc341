"""``notify.slack``: post a message from a playbook step; also the base of ``notify.sns``/``notify.webhook``.

The three go through the notifier layer (:func:`chalicelib.notify.factory.configured_channel`): the
same channel classes, secrets, escaping, retries and limits as the incident alerts. The message
(``text``, a template rendered by the planner) may contain finding strings, so each channel shows it
as plain data (Slack: plain text, no mentions or links).

A failed delivery fails the step (``NotificationFailed``); later steps still run (``on_error``
defaults to ``continue`` for these actions; a step may say ``stop``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from chalicelib.actions.base import Action, ActionContext, ActionPlan, ActionResult, Status
from chalicelib.actions.registry import register
from chalicelib.findings.model import Resource

#: Reading the bot token or webhook URL.
SECRET_PERMISSIONS = ("secretsmanager:GetSecretValue", "ssm:GetParameter")


class ChannelAction(Action):
    """Sends ``text`` through one notification channel; ``target_param`` names the override of its default."""

    channel_kind: ClassVar[str]
    target_param: ClassVar[str | None] = None
    changes_aws = False
    reversible = False
    default_on_error = "continue"

    def _text(self, ctx: ActionContext) -> str:
        return str(self.params.get("text") or ctx.finding.title)

    def _target(self) -> str | None:
        value = self.params.get(self.target_param) if self.target_param else None
        return str(value) if value else None

    def _context(self, ctx: ActionContext) -> dict[str, Any]:
        return {"incident": ctx.incident_id, "playbook": ctx.playbook, "finding": ctx.finding.type}

    def plan(self, ctx: ActionContext, target: Resource | None) -> ActionPlan:
        where = f" to {self._target()}" if self._target() else ""
        return ActionPlan(self.name, target, [], notes=[f"{self.channel_kind}{where}: {self._text(ctx)[:200]}"])

    def apply(self, ctx: ActionContext, target: Resource | None) -> ActionResult:
        if ctx.offline:
            raise RuntimeError(f"{self.name}: apply needs AWS; use plan() offline")
        from chalicelib.notify.channel import describe
        from chalicelib.notify.factory import configured_channel

        channel = configured_channel(self.channel_kind, ctx.aws)
        if channel is None:
            reason = f"no {self.channel_kind} channel is configured for this stage"
            return ActionResult(self.name, Status.FAILED, target, error_code="NotConfigured", reason=reason)
        try:
            sent = channel.send_text(self._text(ctx), target=self._target(), context=self._context(ctx))
        except Exception as exc:  # noqa: BLE001 - a precise failed result, never a crash
            return ActionResult(self.name, Status.FAILED, target, error_code="NotificationFailed", reason=describe(exc))
        return ActionResult(self.name, Status.DONE, target, output={"channel": self.channel_kind, **sent})


TEXT = {"type": "string", "minLength": 1, "maxLength": 3000}


@register
class NotifySlack(ChannelAction):
    name = "notify.slack"
    summary = "Post a message to Slack (the configured channel, or params.channel)."
    channel_kind = "slack"
    target_param = "channel"
    permissions = SECRET_PERMISSIONS
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "text": TEXT,
            "channel": {"type": "string", "pattern": "^(#?[a-z0-9][a-z0-9_.-]{0,79}|[CGD][A-Z0-9]{2,30})$"},
        },
    }
