"""The generic webhook channel: a JSON POST per change (PagerDuty, Teams, Opsgenie, your own service).

The secret holds the URL, or a JSON object ``{"url": ..., "headers": {...}, "format": "generic" |
"pagerduty", "routing_key": ...}`` for receivers that need an auth header or PagerDuty's Events API
v2 shape. Requests time out, and 429 (honouring ``Retry-After`` up to ``max_wait_s``), 5xx and
connection errors are retried a bounded number of times. Errors never show the URL (it is a secret):
they name the HTTP status or the exception type only, and urllib3's DEBUG log of request paths is
kept off.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chalicelib.notify.channel import PerChangeChannel
from chalicelib.notify.retry import retry_after
from chalicelib.notify.summary import approval_document, incident_document, subject, text_summary

if TYPE_CHECKING:
    from chalicelib.incidents import Approval, Incident, StepRecord

_PAGERDUTY_SEVERITY = {"CRITICAL": "critical", "HIGH": "error", "MEDIUM": "warning"}


class WebhookError(RuntimeError):
    """A webhook delivery that failed after its retries (the message carries no URL)."""


@dataclass(frozen=True)
class Target:
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    format: str = "generic"
    routing_key: str | None = None

    def __repr__(self) -> str:
        return f"Target(format={self.format!r})"


def parse_target(secret: str) -> Target:
    text = secret.strip()
    if not text.startswith("{"):
        return Target(text)
    try:
        data = json.loads(text)
        url = data["url"]
    except (ValueError, KeyError, TypeError):
        raise WebhookError('the webhook secret is JSON without a "url"') from None
    fmt = data.get("format", "generic")
    if fmt not in ("generic", "pagerduty"):
        raise WebhookError(f"unknown webhook format {str(fmt)[:40]!r} (generic or pagerduty)")
    headers = {str(k): str(v) for k, v in (data.get("headers") or {}).items()}
    return Target(str(url), headers, fmt, data.get("routing_key"))


@dataclass
class WebhookNotifier(PerChangeChannel):
    secret: Callable[[], str]
    timeout_s: float = 3.0
    retries: int = 2
    max_wait_s: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    name: str = "webhook"

    def _post(self, body: Mapping[str, Any]) -> int:
        """POST ``body``; the final HTTP status, or :class:`WebhookError`."""
        import requests

        logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)  # it logs request paths at DEBUG
        target = parse_target(str(self.secret()))
        headers = {"Content-Type": "application/json", "User-Agent": "clampdown", **target.headers}
        data = json.dumps(body, default=str).encode()
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = requests.post(target.url, data=data, headers=headers, timeout=self.timeout_s)
            except requests.RequestException as exc:
                if last:
                    raise WebhookError(f"webhook: {type(exc).__name__} after {attempt + 1} attempt(s)") from None
                self.sleep(0.2 * 2**attempt)
                continue
            status = response.status_code
            if status < 300:
                return status
            wait = retry_after(response.headers) if status == 429 else 0.2 * 2**attempt
            if last or not (status == 429 or status >= 500) or wait > self.max_wait_s:
                raise WebhookError(f"webhook: HTTP {status} after {attempt + 1} attempt(s)")
            self.sleep(wait)
        raise WebhookError("webhook: no attempt made")  # retries < 0

    def _body(self, event_name: str, incident: Incident | None, text: str, document: dict[str, Any]) -> dict[str, Any]:
        target = parse_target(str(self.secret()))
        if target.format != "pagerduty":
            return {"source": "clampdown", "event": event_name, "text": text, **document}
        severity = _PAGERDUTY_SEVERITY.get(incident.severity_label, "info") if incident else "info"
        event: dict[str, Any] = {
            "routing_key": target.routing_key,
            "event_action": "trigger",
            "payload": {
                "summary": text.split("\n", 1)[0][:1024],
                "source": f"aws:{incident.account}/{incident.region}" if incident else "clampdown",
                "severity": severity,
                "component": incident.type[:256] if incident else "clampdown",
                "custom_details": {"event": event_name, **document},
            },
        }
        if incident is not None:
            event["dedup_key"] = incident.id  # one PagerDuty alert per incident, updated as it changes
        return event

    def send_incident(self, incident: Incident, steps: Sequence[StepRecord], first: bool) -> dict[str, Any] | None:
        document = {"incident": incident_document(incident, steps)}
        status = self._post(self._body("incident.changed", incident, text_summary(incident, steps), document))
        return {"status": status}

    def send_approval(self, incident: Incident, step: StepRecord, approval: Approval) -> None:
        document = {"approval": approval_document(incident, step, approval)}
        self._post(self._body("approval.requested", incident, subject(incident, "Approval needed: "), document))

    def send_text(
        self, text: str, *, target: str | None = None, context: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return {"status": self._post(self._body("message", None, text, dict(context or {})))}
