"""``notify.webhook``: POST a JSON message to the configured webhook (PagerDuty, Teams, your own service)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from chalicelib.actions.notify_slack import SECRET_PERMISSIONS, TEXT, ChannelAction
from chalicelib.actions.registry import register


@register
class NotifyWebhook(ChannelAction):
    name = "notify.webhook"
    summary = "POST a JSON message to the stage's webhook."
    channel_kind = "webhook"
    permissions = SECRET_PERMISSIONS
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"text": TEXT},
    }
