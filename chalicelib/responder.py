"""The whole path for one event: intake → plan → incident → steps → notification. Knows no Chalice.

Messages on the queue are EventBridge events, or Clampdown's own commands (an approval decided in
Slack or the CLI is carried out through the queue, so the Slack request is answered within 3 s).
A command carries only ids: the decision itself is read from the incident store, so a forged
message cannot approve anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib.executor import StepRunner, iso
from chalicelib.findings.model import Finding
from chalicelib.incidents import Incident, IncidentStore, LogEntry, StepRecord, step_order
from chalicelib.intake import Intake
from chalicelib.notify import Notifier, NullNotifier
from chalicelib.planner import Plan, evaluate
from chalicelib.playbooks.library import Library
from chalicelib.telemetry import CountingTelemetry, Telemetry

COMMAND_KEY = "clampdown-command"
CANARY = "canary"
TRUNCATION_NOTE = "the Security Hub (ASFF) copy of this attack sequence may be truncated: it keeps at most 10 actors"
APPROVAL_DECIDED = "approval-decided"


@dataclass
class EventReport:
    """What happened to one message (for logs, the demo and tests)."""

    refused: str | None = None
    findings: int = 0
    incidents: list[str] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)


def derive_status(steps: list[StepRecord]) -> str:
    """An incident's status from its steps, most urgent first."""
    statuses = {s.status for s in steps}
    if "pending-approval" in statuses:
        return "awaiting-approval"
    if "failed" in statuses:
        return "failed"
    if "running" in statuses or "planned" in statuses:
        return "in-progress"
    if (
        statuses
        and statuses <= {"rolled-back", "skipped", "done", "denied", "expired", "dry-run"}
        and "rolled-back" in statuses
    ):
        return "rolled-back"
    if statuses & {"contained", "already-contained"}:
        return "contained"
    return "open"


def canary_key(canary_id: str) -> str:
    return f"canary-{canary_id}"


def canary_command(canary_id: str) -> dict[str, str]:
    return {COMMAND_KEY: CANARY, "id": canary_id}


def approval_command(incident_id: str, approval_id: str) -> dict[str, str]:
    return {COMMAND_KEY: APPROVAL_DECIDED, "incident_id": incident_id, "approval_id": approval_id}


@dataclass
class Responder:
    library: Library
    store: IncidentStore
    runner: StepRunner
    intake: Intake
    notifier: Notifier = field(default_factory=NullNotifier)
    telemetry: Telemetry = field(default_factory=CountingTelemetry)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def handle(self, message: Mapping[str, Any]) -> EventReport:
        if message.get(COMMAND_KEY) == APPROVAL_DECIDED:
            return self.handle_decision(str(message.get("incident_id")), str(message.get("approval_id")))
        if message.get(COMMAND_KEY) == CANARY:
            return self.handle_canary(str(message.get("id"))[:64])
        refusal = self.intake.check_envelope(message)
        if refusal:
            return self._refuse(refusal.reason, refusal.metric, message)
        evaluation = evaluate(message, self.library, now=self.clock())  # InvalidEvent → retried, then DLQ
        self.telemetry.count("FindingsReceived", len(evaluation.findings))
        report = EventReport(findings=len(evaluation.findings))
        plans_by_finding: dict[int, list[Plan]] = {}
        for plan in evaluation.plans:
            plans_by_finding.setdefault(id(plan.finding), []).append(plan)
        for finding in evaluation.findings:
            plans = plans_by_finding.get(id(finding), [])
            finding_refusal = self.intake.check_finding(finding)
            if finding_refusal:
                self._refuse(finding_refusal.reason, finding_refusal.metric, message)
                report.refused = finding_refusal.reason
                continue
            if not plans:
                continue
            self.telemetry.count("FindingsMatched")
            incident, created = self._open_incident(finding, plans)
            report.incidents.append(incident.id)
            if not created and {s.key for p in plans for s in p.steps} <= set(incident.settled):
                continue  # a redelivery: every planned step is done or awaits a human; counted, nothing to read
            known = {} if created else {s.key: s for s in self.store.list_steps(incident.id)}
            before = {key: record.status for key, record in known.items()}
            for plan in plans:
                report.steps.extend(self.runner.run_plan(incident, plan, known))
            if created or {key: record.status for key, record in known.items()} != before:
                self._conclude(incident, sorted(known.values(), key=step_order), finding)
        return report

    def _refuse(self, reason: str, metric: str, message: Mapping[str, Any]) -> EventReport:
        self.telemetry.count(metric)
        self.telemetry.event(
            "event refused",
            reason=reason,
            source=str(message.get("source"))[:200],
            account=str(message.get("account"))[:40],
        )
        return EventReport(refused=reason)

    def _open_incident(self, finding: Finding, plans: list[Plan]) -> tuple[Incident, bool]:
        now = iso(self.clock())
        incident, created = self.store.upsert_incident(finding, now)
        names = ", ".join(p.playbook.name for p in plans)
        if created:
            message = f"incident opened from {finding.source} finding {finding.type}; playbooks: {names}"
        else:
            message = f"delivery {incident.deliveries} of the same finding (via {finding.source}, id {finding.id})"
        self.store.log(
            incident.id, LogEntry(now, "finding", message, {"finding_id": finding.id, "count": finding.count})
        )
        if finding.details.get("sequence_may_be_truncated") and TRUNCATION_NOTE not in incident.notes:
            incident.notes.append(TRUNCATION_NOTE)
            self.store.save_incident(incident)
        return incident, created

    def _conclude(self, incident: Incident, steps: list[StepRecord], finding: Finding | None = None) -> None:
        """Derive the incident's status from its steps, notify, and save it (only when something changed)."""
        incident.status = derive_status(steps)
        incident.settled = sorted(s.key for s in steps if s.terminal or s.status == "pending-approval")
        if finding is not None and incident.status == "contained":
            self._time_to_containment(finding)
        self._notify(incident, steps)
        self.store.save_incident(incident)

    def _time_to_containment(self, finding: Finding) -> None:
        try:
            seen = datetime.fromisoformat(finding.time.replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError:
            return
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=UTC)
        self.telemetry.timing("TimeToContainmentSeconds", (self.clock() - seen).total_seconds())

    def _notify(self, incident: Incident, steps: list[StepRecord]) -> None:
        try:
            for step in steps:
                if (
                    step.status == "pending-approval"
                    and step.approval_id
                    and step.approval_id not in incident.notification.get("approvals_sent", [])
                ):
                    approval = self.store.get_approval(step.approval_id)
                    if approval is not None:
                        self.notifier.approval_requested(incident, step, approval)
                        incident.notification.setdefault("approvals_sent", []).append(step.approval_id)
            remembered = self.notifier.incident_changed(incident, steps)
            if remembered:
                incident.notification.update(remembered)
        except Exception as exc:  # noqa: BLE001 - an alert that fails never blocks containment
            self.telemetry.count("NotificationsFailed")
            incident.notes.append(f"notification failed: {type(exc).__name__}: {str(exc)[:300]}")

    def handle_canary(self, canary_id: str) -> EventReport:
        """``clampdown doctor``'s end-to-end probe: record that the message reached the responder.

        It only writes one timeline entry under its own key, so a forged canary can do nothing else.
        """
        self.store.log(canary_key(canary_id), LogEntry(iso(self.clock()), CANARY, "canary received"))
        self.telemetry.count("CanariesReceived")
        return EventReport()

    def handle_decision(self, incident_id: str, approval_id: str) -> EventReport:
        """Carry out an approval decided in Slack or the CLI (the decision is read from the store)."""
        incident = self.store.get_incident(incident_id)
        approval = self.store.get_approval(approval_id)
        if incident is None or approval is None or approval.incident_id != incident_id:
            return self._refuse(
                f"unknown approval {approval_id[:64]!r} for incident {incident_id[:64]!r}", "CommandsRefused", {}
            )
        record = self.store.get_step(incident_id, approval.step_key)
        if record is None:
            return self._refuse(f"approval {approval_id[:64]!r} names no step", "CommandsRefused", {})
        done = self.runner.run_approved(incident, record, approval)
        self._conclude(incident, self.store.list_steps(incident_id))
        return EventReport(incidents=[incident_id], steps=[done])
