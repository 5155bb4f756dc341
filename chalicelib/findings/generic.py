"""Any other EventBridge event → one ``eventbridge`` :class:`Finding`.

``type`` is the ``detail-type``, ``id`` the event ``id`` (a deterministic uuid5 of the envelope
fields when the event has none), severity 0.0 INFORMATIONAL, and the envelope's ``resources``
ARNs become resources of the matching kind (``other`` when the kind is not ours).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from .arn import resource_from_arn
from .fields import MAX_ITEMS, first, get, ident, idents, iso_time, required, text
from .model import Finding
from .resources import finalize

WHAT = "EventBridge event"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "clampdown:eventbridge-event")


def event_id(event: Mapping[str, Any]) -> str:
    """The event ``id``, or a stable uuid5 of its envelope fields when it has none."""
    found = ident(event, "id")
    if found:
        return found
    parts = [ident(event, k) or "" for k in ("source", "detail-type", "account", "region", "time")]
    parts += idents(event, "resources")
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


def normalize_generic(event: Mapping[str, Any]) -> list[Finding]:
    detail_type = required(ident(event, "detail-type"), f"{WHAT}: detail-type")
    source = required(ident(event, "source"), f"{WHAT}: source")
    account = required(ident(event, "account"), f"{WHAT}: account")
    region = required(ident(event, "region"), f"{WHAT}: region")
    time = required(iso_time(get(event, "time")), f"{WHAT}: time")
    finding_id = event_id(event)
    resources = [resource_from_arn(arn) for arn in idents(event, "resources", limit=MAX_ITEMS)]
    return [
        Finding(
            source="eventbridge",
            id=finding_id,
            type=detail_type,
            title=first(text(event, "detail", "title", limit=1024), detail_type) or detail_type,
            severity=0.0,
            severity_label="INFORMATIONAL",
            account=account,
            region=region,
            time=time,
            resources=finalize(resources),
            event=event,
            origin_id=finding_id,
            details={"source": source},
        )
    ]
