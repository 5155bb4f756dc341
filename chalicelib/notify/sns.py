"""The SNS channel: email, SMS, pagers and HTTPS endpoints subscribed to one topic.

Each change of an incident is one ``Publish`` with ``MessageStructure=json``: a plain-text summary for
email and the default, a short line for SMS, and the JSON document for HTTPS, Lambda and SQS
subscribers. Message attributes (severity, status, account, region, type...) let subscriptions
filter, e.g. page only on CRITICAL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.notify.channel import PerChangeChannel
from chalicelib.notify.summary import (
    approval_document,
    approval_text,
    clean,
    incident_document,
    subject,
    text_summary,
)

if TYPE_CHECKING:
    from chalicelib.incidents import Approval, Incident, StepRecord

#: SNS accepts 256 KiB per message, attributes included; leave room for them.
MESSAGE_LIMIT = 240 * 1024


def sns_subject(text: str) -> str:
    """SNS subjects: ASCII, no control characters, under 100 characters, starting with a letter or digit."""
    ascii_text = "".join(c if 32 <= ord(c) < 127 else "?" for c in clean(text, 400)).strip()
    ascii_text = ascii_text.lstrip(" -_") or "Clampdown"
    return ascii_text[:99]


def region_of(topic_arn: str) -> str | None:
    parts = topic_arn.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else None


def _attributes(incident: Incident | None, event: str) -> dict[str, dict[str, str]]:
    values: dict[str, tuple[str, Any]] = {"event": ("String", event)}
    if incident is not None:
        values.update(
            severity=("String", incident.severity_label),
            severity_score=("Number", f"{incident.severity:g}"),
            status=("String", incident.status),
            incident_id=("String", incident.id),
            account=("String", incident.account),
            region=("String", incident.region),
            finding_type=("String", incident.type),
        )
    return {
        name: {"DataType": kind, "StringValue": clean(value, 256)}
        for name, (kind, value) in values.items()
        if value not in (None, "")
    }


def _structured(text: str, document: dict[str, Any]) -> str:
    body = json.dumps(document, default=str)
    first_line = text.split("\n", 1)[0][:140]
    message = {
        "default": text,
        "email": text,
        "sms": first_line,
        "https": body,
        "http": body,
        "lambda": body,
        "sqs": body,
    }
    encoded = json.dumps(message)
    if len(encoded.encode()) > MESSAGE_LIMIT:  # a huge incident: the summary, without the document
        short = text[: MESSAGE_LIMIT // 4]
        encoded = json.dumps({"default": short, "email": short, "sms": first_line})
    return encoded


@dataclass
class SnsNotifier(PerChangeChannel):
    topic_arn: str
    client: Callable[[str | None], Any]  # region → SNS client (the responder's own account)
    name: str = "sns"

    def _publish(self, topic: str, title: str, text: str, document: dict[str, Any], attributes: Any) -> dict[str, Any]:
        response = self.client(region_of(topic)).publish(
            TopicArn=topic,
            Subject=sns_subject(title),
            Message=_structured(text, document),
            MessageStructure="json",
            MessageAttributes=attributes,
        )
        return {"message_id": str(response.get("MessageId", ""))}

    def send_incident(self, incident: Incident, steps: Sequence[StepRecord], first: bool) -> dict[str, Any] | None:
        document = {"event": "incident.changed", "incident": incident_document(incident, steps)}
        return self._publish(
            self.topic_arn,
            subject(incident),
            text_summary(incident, steps),
            document,
            _attributes(incident, "incident.changed"),
        )

    def send_approval(self, incident: Incident, step: StepRecord, approval: Approval) -> None:
        document = {"event": "approval.requested", "approval": approval_document(incident, step, approval)}
        self._publish(
            self.topic_arn,
            subject(incident, "Approval needed: "),
            approval_text(incident, step, approval),
            document,
            _attributes(incident, "approval.requested"),
        )

    def send_text(
        self, text: str, *, target: str | None = None, context: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        document = {"event": "message", "text": text, **(context or {})}
        title = f"Clampdown: {text.splitlines()[0] if text else 'message'}"
        return self._publish(
            target or self.topic_arn, title, clean(text, 10000), document, _attributes(None, "message")
        )
