"""Notification channels behind one interface: the responder tells a notifier what happened.

``incident_changed`` is called after each event that created or updated an incident (the channel
decides whether to post or update its message); ``approval_requested`` when a step waits for a human.
A notifier never raises into the responder: delivery problems are recorded on the incident and
counted, and containment goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from chalicelib.incidents import Approval, Incident, StepRecord


class Notifier(Protocol):
    def incident_changed(self, incident: Incident, steps: list[StepRecord]) -> dict[str, Any] | None:
        """Returns what the channel wants remembered on the incident (e.g. Slack ts), or None."""

    def approval_requested(self, incident: Incident, step: StepRecord, approval: Approval) -> dict[str, Any] | None: ...


class NullNotifier:
    def incident_changed(self, incident: Incident, steps: list[StepRecord]) -> dict[str, Any] | None:
        return None

    def approval_requested(self, incident: Incident, step: StepRecord, approval: Approval) -> dict[str, Any] | None:
        return None


@dataclass
class RecordingNotifier:
    """Keeps what would have been sent (the demo prints it; tests read it)."""

    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def incident_changed(self, incident: Incident, steps: list[StepRecord]) -> dict[str, Any] | None:
        self.sent.append(("incident", {"incident": incident.to_dict(), "steps": [s.to_dict() for s in steps]}))
        return None

    def approval_requested(self, incident: Incident, step: StepRecord, approval: Approval) -> dict[str, Any] | None:
        self.sent.append(
            ("approval", {"incident": incident.to_dict(), "step": step.to_dict(), "approval": approval.to_dict()})
        )
        return None
