"""What every notification channel shares, and the composite that fans out to all configured ones.

A channel keeps what it needs to remember under its own key of ``incident.notification`` and writes
it there as it goes (the responder saves the incident after notifying), so a half-finished delivery
is not repeated and a message already posted is updated rather than posted again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.notify.summary import fingerprint

if TYPE_CHECKING:
    from chalicelib.incidents import Approval, Incident, StepRecord


class Channel(Protocol):
    """A :class:`chalicelib.notify.Notifier` with a name, that can also send a one-off message."""

    name: str

    def incident_changed(self, incident: Incident, steps: list[StepRecord]) -> dict[str, Any] | None: ...

    def approval_requested(self, incident: Incident, step: StepRecord, approval: Approval) -> dict[str, Any] | None: ...

    def send_text(
        self, text: str, *, target: str | None = None, context: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A message from a playbook step; ``target`` is a channel or topic overriding the default."""
        ...


def channel_state(incident: Incident, name: str) -> dict[str, Any]:
    state: dict[str, Any] = incident.notification.setdefault(name, {})
    return state


class PerChangeChannel(ABC):
    """A channel that cannot edit what it sent: one message per change of state, each approval once."""

    name: str = "channel"

    @abstractmethod
    def send_incident(self, incident: Incident, steps: Sequence[StepRecord], first: bool) -> dict[str, Any] | None:
        """Send the incident's current state; return a reference worth remembering (message id...)."""

    @abstractmethod
    def send_approval(self, incident: Incident, step: StepRecord, approval: Approval) -> None: ...

    @abstractmethod
    def send_text(
        self, text: str, *, target: str | None = None, context: dict[str, Any] | None = None
    ) -> dict[str, Any]: ...

    def incident_changed(self, incident: Incident, steps: list[StepRecord]) -> dict[str, Any] | None:
        state = channel_state(incident, self.name)
        mark = fingerprint(incident, steps)
        if state.get("fingerprint") != mark:
            sent = self.send_incident(incident, steps, first=not state.get("fingerprint"))
            state["fingerprint"] = mark
            if sent:
                state["last"] = sent
        return {self.name: state}

    def approval_requested(self, incident: Incident, step: StepRecord, approval: Approval) -> dict[str, Any] | None:
        state = channel_state(incident, self.name)
        sent: list[str] = state.setdefault("approvals_sent", [])
        if approval.id not in sent:
            self.send_approval(incident, step, approval)
            sent.append(approval.id)
        return {self.name: state}


class NotificationFailed(RuntimeError):
    """One or more channels failed; ``failures`` maps channel name → what went wrong (secret-free)."""

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = failures
        super().__init__("; ".join(f"{name}: {why}" for name, why in failures.items()))


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:240]}"


class CompositeNotifier:
    """Every configured channel, each on its own: one failing does not stop the others.

    After trying all of them it raises :class:`NotificationFailed` naming the failed ones (the
    responder records that on the incident and counts it); each failure is also counted per channel.
    """

    def __init__(self, channels: Sequence[Channel], telemetry: Any = None) -> None:
        self.channels = list(channels)
        self.telemetry = telemetry

    def _each(self, send: Callable[[Channel], dict[str, Any] | None]) -> dict[str, Any]:
        remembered: dict[str, Any] = {}
        failures: dict[str, str] = {}
        for channel in self.channels:
            try:
                remembered.update(send(channel) or {})
            except Exception as exc:  # noqa: BLE001 - reported below, after the other channels had their turn
                failures[channel.name] = describe(exc)
                if self.telemetry is not None:
                    self.telemetry.count(f"NotificationsFailed{channel.name.title()}")
        if failures:
            raise NotificationFailed(failures)
        return remembered

    def incident_changed(self, incident: Incident, steps: list[StepRecord]) -> dict[str, Any] | None:
        return self._each(lambda channel: channel.incident_changed(incident, steps))

    def approval_requested(self, incident: Incident, step: StepRecord, approval: Approval) -> dict[str, Any] | None:
        return self._each(lambda channel: channel.approval_requested(incident, step, approval))
