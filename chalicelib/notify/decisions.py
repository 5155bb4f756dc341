"""Approval decisions, the same for Slack, the CLI and the expiry sweep.

A decision is recorded once (``IncidentStore.decide_approval`` is conditional: a double click or two
approvers racing record one decision), then carried out by the responder through its queue with
:func:`chalicelib.responder.approval_command`, which carries only ids: the responder reads the
decision from the store, so a forged queue message cannot approve anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.incidents import Approval, Incident, IncidentStore, iso
from chalicelib.notify.channel import describe
from chalicelib.telemetry import Telemetry

SYSTEM_DECIDER = "clampdown"
#: A decided approval whose step still waits this long after the decision is queued again (the
#: first command was lost: SendMessage failed after the decision was recorded).
STUCK_AFTER_S = 120


def _parse(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


class SqsCommands:
    """Sends commands to the responder's queue (FIFO queues get a group and a deduplication id)."""

    def __init__(self, client: Callable[[], Any], queue_url: str | None) -> None:
        self._client = client
        self.queue_url = queue_url

    def __call__(self, message: Mapping[str, Any]) -> None:
        if not self.queue_url:
            raise RuntimeError("CLAMPDOWN_QUEUE_URL is not set: the decision cannot be carried out")
        body = json.dumps(dict(message), sort_keys=True, default=str)
        params: dict[str, Any] = {"QueueUrl": self.queue_url, "MessageBody": body}
        if self.queue_url.endswith(".fifo"):
            params["MessageGroupId"] = str(message.get("incident_id") or "clampdown")
            params["MessageDeduplicationId"] = hashlib.sha256(body.encode()).hexdigest()
        self._client().send_message(**params)


@dataclass(frozen=True)
class Outcome:
    """What happened to a decision request.

    ``result``: ``decided`` (recorded now), ``already-decided`` (someone was first), ``expired``
    (too late: marked expired), ``unknown`` (no such approval).
    """

    result: str
    approval: Approval | None = None
    queued: bool = False
    error: str | None = None


@dataclass
class Decisions:
    store: IncidentStore
    send: Callable[[Mapping[str, Any]], None]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def _queue(self, approval: Approval) -> tuple[bool, str | None]:
        from chalicelib.responder import approval_command

        try:
            self.send(approval_command(approval.incident_id, approval.id))
        except Exception as exc:  # noqa: BLE001 - the decision stands; the sweep queues it again
            return False, f"{type(exc).__name__}: {str(exc)[:200]}"
        return True, None

    def decide(self, approval_id: str, status: str, by: str, reason: str | None = None) -> Outcome:
        """Record ``status`` (approved/denied) once and queue it; refuse an expired request (marking it)."""
        if status not in ("approved", "denied"):
            raise ValueError(f"a decision is approved or denied, not {status!r}")
        approval = self.store.get_approval(approval_id)
        if approval is None:
            return Outcome("unknown")
        if approval.status != "pending":
            return Outcome("already-decided", approval)
        now = self.clock()
        if now.timestamp() > approval.expires_at:
            return self._expire(approval, now)
        if not self.store.decide_approval(approval_id, status, by, iso(now), reason):
            return Outcome("already-decided", self.store.get_approval(approval_id))
        decided = self.store.get_approval(approval_id) or approval
        queued, error = self._queue(decided)
        return Outcome("decided", decided, queued, error)

    def _expire(self, approval: Approval, now: datetime) -> Outcome:
        reason = "no decision before the request expired"
        if not self.store.decide_approval(approval.id, "expired", SYSTEM_DECIDER, iso(now), reason):
            return Outcome("already-decided", self.store.get_approval(approval.id))
        expired = self.store.get_approval(approval.id) or approval
        queued, error = self._queue(expired)
        return Outcome("expired", expired, queued, error)

    def requeue(self, approval: Approval) -> Outcome:
        """Queue a decided approval again when its step still waits (a lost command); else nothing."""
        step = self.store.get_step(approval.incident_id, approval.step_key)
        if approval.status == "pending" or step is None or step.status != "pending-approval":
            return Outcome("already-decided", approval)
        queued, error = self._queue(approval)
        return Outcome("already-decided", approval, queued, error)

    def sweep(
        self,
        stuck_after_s: int = STUCK_AFTER_S,
        lookback_s: int = 86400,
        on_pending: Callable[[Approval], bool | None] | None = None,
    ) -> dict[str, int]:
        """Expire pending requests past their time; queue again decisions whose command was lost.

        ``on_pending`` is called with each request still pending (to send its message again when it
        never went out); it returns True when it sent it (counted as ``resent``), False when sending
        failed (``resend_failed``), None when there was nothing to do.
        """
        now = self.clock()
        counts = {"expired": 0, "requeued": 0, "resent": 0, "resend_failed": 0, "failed": 0}
        for approval in self.store.list_approvals(status=None):
            if approval.status == "pending":
                if now.timestamp() <= approval.expires_at:
                    sent = on_pending(approval) if on_pending is not None else None
                    if sent is not None:
                        counts["resent" if sent else "resend_failed"] += 1
                    continue
                outcome = self._expire(approval, now)
                if outcome.result == "expired":
                    counts["expired"] += 1
                    counts["failed"] += 0 if outcome.queued else 1
                continue
            decided_at = _parse(approval.decided_at)
            if decided_at is None or not (
                now - timedelta(seconds=lookback_s) < decided_at < now - timedelta(seconds=stuck_after_s)
            ):
                continue
            outcome = self.requeue(approval)
            if outcome.queued:
                counts["requeued"] += 1
            elif outcome.error:
                counts["failed"] += 1
        return counts


def resend_undelivered(
    store: IncidentStore, notifier: Any, approval: Approval, telemetry: Telemetry | None = None
) -> bool | None:
    """Send a pending request's message again when it never went out (Slack was down when it was raised).

    The responder notifies only when an incident changes, and a step waiting for approval does not
    change by itself: without this the request would silently expire. True: sent; None: nothing to
    send. False: it failed again: counted (``NotificationsFailed``, and per channel by the notifier)
    and written in the incident's notes (once per distinct failure: the sweep runs every 5 minutes);
    the next sweep tries again.
    """
    incident = store.get_incident(approval.incident_id)
    if incident is None or approval.id in incident.notification.get("approvals_sent", []):
        return None
    step = store.get_step(approval.incident_id, approval.step_key)
    if step is None or step.status != "pending-approval" or step.approval_id != approval.id:
        return None
    try:
        notifier.approval_requested(incident, step, approval)
    except Exception as exc:  # noqa: BLE001 - still down: recorded, counted, tried again by the next sweep
        if telemetry is not None:
            telemetry.count("NotificationsFailed")
        note = f"notification failed (approval request {approval.id}, sent again by the sweep): {describe(exc)}"
        if note not in incident.notes:
            incident.notes.append(note)
        store.save_incident(incident)  # the note, and what the channels that did deliver remembered
        return False
    incident.notification.setdefault("approvals_sent", []).append(approval.id)
    store.save_incident(incident)
    return True


# -- separation of duties ------------------------------------------------------------------------
def actor_identities(incident: Incident) -> set[str]:
    """Every name under which the finding's actors appear (lower case): user names, principal ARNs,
    role session names (the person, for SSO and federated sessions) and session issuers."""
    finding = incident.finding or {}
    actors = [finding.get("actor") or {}, *(finding.get("actors") or [])]
    names: set[str] = set()
    for actor in actors:
        for key in ("user_name", "principal_arn", "session_issuer_arn", "principal_id"):
            value = actor.get(key)
            if isinstance(value, str) and value:
                names.add(value.lower())
        arn = actor.get("principal_arn")
        if isinstance(arn, str) and ":assumed-role/" in arn:
            names.add(arn.rsplit("/", 1)[-1].lower())  # the session name
    return names


def is_actor(incident: Incident, identity: str | None) -> bool:
    """True when ``identity`` (IAM user name, session name or principal ARN) is one of the actor's names."""
    if not identity:
        return False
    ids = actor_identities(incident)
    text = identity.strip().lower()
    tail = text.rsplit("/", 1)[-1] if text.startswith("arn:") else text
    return text in ids or tail in ids
