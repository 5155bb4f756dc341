"""The Slack channel: one message per incident, kept up to date, with a thread of what changed.

With a bot token (Web API): ``chat.postMessage`` once, then ``chat.update`` of that message as the
incident progresses, a thread reply naming the steps whose status changed, one message per approval
request (Approve/Deny), and that message updated with the outcome once the step is closed. The
channel id and ``ts`` are remembered on the incident (``incident.notification["slack"]``).

With an incoming webhook (no token), messages cannot be edited: one message per change instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.notify import slack_blocks as blocks
from chalicelib.notify.channel import PerChangeChannel, channel_state
from chalicelib.notify.slack_api import SlackApi, SlackError, post_webhook

if TYPE_CHECKING:
    from chalicelib.incidents import Approval, Incident, IncidentStore, StepRecord

#: chat.update answers these when the message (or channel) is gone: post a new one instead.
_GONE = frozenset({"message_not_found", "channel_not_found", "cant_update_message", "is_archived"})


@dataclass
class SlackNotifier:
    """Slack through the Web API (bot token). ``store`` (optional) gives the outcome of approvals."""

    api: SlackApi
    channel: str | None
    store: IncidentStore | None = None
    name: str = "slack"

    def _channel(self, target: str | None = None) -> str:
        channel = target or self.channel
        if not channel:
            raise SlackError("no Slack channel configured (CLAMPDOWN_SLACK_CHANNEL)", "no_channel")
        return channel

    def _post(self, message: dict[str, Any], target: str | None = None, thread_ts: str | None = None) -> dict[str, Any]:
        data = self.api.post_message(self._channel(target), message, thread_ts=thread_ts)
        return {"channel": str(data.get("channel") or self._channel(target)), "ts": str(data.get("ts") or "")}

    # -- the Notifier protocol -------------------------------------------------------------------
    def approval_requested(self, incident: Incident, step: StepRecord, approval: Approval) -> dict[str, Any] | None:
        state = channel_state(incident, self.name)
        sent: dict[str, Any] = state.setdefault("approvals", {})
        if approval.id not in sent:
            sent[approval.id] = {**self._post(blocks.approval_message(incident, step, approval)), "step": step.key}
        return {self.name: state}

    def incident_changed(self, incident: Incident, steps: list[StepRecord]) -> dict[str, Any] | None:
        state = channel_state(incident, self.name)
        message = blocks.incident_message(incident, steps)
        if state.get("ts"):
            try:
                self.api.update_message(state["channel"], state["ts"], message)
            except SlackError as exc:
                if exc.code not in _GONE:
                    raise
                state.pop("ts")
        if not state.get("ts"):
            state.update(self._post(message))
        previous: dict[str, str] | None = state.get("steps")
        if previous is not None:
            changed = [s for s in steps if previous.get(s.key) != s.status]
            if changed:
                self._post(blocks.steps_changed_message(changed), state["channel"], thread_ts=state["ts"])
        state["steps"] = {s.key: s.status for s in steps}
        self._close_approvals(incident, steps, state)
        return {self.name: state}

    def _close_approvals(self, incident: Incident, steps: Sequence[StepRecord], state: dict[str, Any]) -> None:
        """Approval messages of closed steps lose their buttons and say who decided and what happened."""
        by_approval = {s.approval_id: s for s in steps if s.approval_id}
        for approval_id, ref in state.get("approvals", {}).items():
            step = by_approval.get(approval_id)
            if step is None or not step.terminal or ref.get("closed") == step.status or not ref.get("ts"):
                continue
            approval = self.store.get_approval(approval_id) if self.store is not None else None
            if approval is None:
                continue
            detail = step.reason if step.status != "contained" else None
            banner = blocks.decision_banner(approval.status, approval.decided_by, step.status, detail)
            message = blocks.approval_message(incident, step, approval, banner=banner, buttons=False)
            self.api.update_message(ref["channel"], ref["ts"], message)
            ref["closed"] = step.status

    # -- one-off messages (notify.slack) ---------------------------------------------------------
    def send_text(
        self, text: str, *, target: str | None = None, context: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return self._post(blocks.text_message(text, blocks.context_line(context)), target)


@dataclass
class SlackWebhookNotifier(PerChangeChannel):
    """Slack through an incoming webhook: no edits, so one message per change."""

    url: Callable[[], str]
    timeout_s: float = 3.0
    retries: int = 2
    max_wait_s: float = 5.0
    name: str = "slack"

    def _send(self, message: dict[str, Any]) -> None:
        post_webhook(
            str(self.url()), message, timeout_s=self.timeout_s, retries=self.retries, max_wait_s=self.max_wait_s
        )

    def send_incident(self, incident: Incident, steps: Sequence[StepRecord], first: bool) -> dict[str, Any] | None:
        self._send(blocks.incident_message(incident, steps, note=None if first else "update: the incident changed"))
        return None

    def send_approval(self, incident: Incident, step: StepRecord, approval: Approval) -> None:
        self._send(blocks.approval_message(incident, step, approval))

    def send_text(
        self, text: str, *, target: str | None = None, context: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        self._send(blocks.text_message(text, blocks.context_line(context)))
        return {"webhook": True}
