"""``notify.sns``: publish a message to SNS (the configured topic, or ``params.topic_arn``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from chalicelib.actions.notify_slack import TEXT, ChannelAction
from chalicelib.actions.registry import register


@register
class NotifySns(ChannelAction):
    name = "notify.sns"
    summary = "Publish a message to an SNS topic (email, SMS, pagers)."
    channel_kind = "sns"
    target_param = "topic_arn"
    permissions = ("sns:Publish",)
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "text": TEXT,
            "topic_arn": {"type": "string", "pattern": r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$"},
        },
    }
