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
from functools import partial
from typing import Any

from chalicelib.executor import StepRunner
from chalicelib.findings.model import Finding
from chalicelib.incidents import Incident, IncidentStore, LogEntry, StepRecord, iso, step_order
from chalicelib.intake import Intake
from chalicelib.notify import Notifier, NullNotifier
from chalicelib.planner import Plan, evaluate
from chalicelib.playbooks.library import Library
from chalicelib.playbooks.model import ARCHIVED_REASON
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
        """One message from the queue. Log lines carry the incident id as correlation id from the moment the
        incident is known (and nothing from an earlier message's incident)."""
        self.telemetry.correlate(None)
        if message.get(COMMAND_KEY) == APPROVAL_DECIDED:
            return self.handle_decision(str(message.get("incident_id")), str(message.get("approval_id")))
        if message.get(COMMAND_KEY) == CANARY:
            return self.handle_canary(str(message.get("id"))[:64])
        refusal = self.intake.check_envelope(message)
        if refusal:
            return self._refuse(refusal.reason, refusal.metric, message)
        act_on_archived = self.runner.settings.act_on_archived
        # InvalidEvent → the message is retried, then lands in the DLQ
        evaluation = evaluate(message, self.library, now=self.clock(), act_on_archived=act_on_archived)
        self.telemetry.count("FindingsReceived", len(evaluation.findings))
        report = EventReport(findings=len(evaluation.findings))
        plans_by_finding: dict[int, list[Plan]] = {}
        for plan in evaluation.plans:
            plans_by_finding.setdefault(id(plan.finding), []).append(plan)
        for finding in evaluation.findings:
            finding_refusal = self.intake.check_finding(finding)
            if finding_refusal:
                self._refuse(finding_refusal.reason, finding_refusal.metric, message)
                report.refused = finding_refusal.reason
                continue
            plans = plans_by_finding.get(id(finding), [])
            if plans:
                self._respond(finding, plans, report)
                continue
            archived = finding.archived and any(
                r.finding == finding.id and r.reason == ARCHIVED_REASON for r in evaluation.rejected
            )
            if archived:
                self.telemetry.count("FindingsArchivedNotActedOn")
                self.telemetry.event(
                    "finding not acted on",
                    reason=f"{ARCHIVED_REASON} (CLAMPDOWN_ACT_ON_ARCHIVED is off)",
                    finding_id=finding.id[:256],
                    finding_type=finding.type[:256],
                )
            known_incident = self._record_unplanned(finding, ARCHIVED_REASON if archived else None)
            if known_incident is not None:
                report.incidents.append(known_incident.id)
        return report

    def _respond(self, finding: Finding, plans: list[Plan], report: EventReport) -> None:
        """One finding with plans: its incident, then every plan's steps (finished ones are not run again)."""
        self.telemetry.count("FindingsMatched")
        incident, created = self._open_incident(finding, plans)
        self.telemetry.correlate(incident.id)
        report.incidents.append(incident.id)
        if not created and {s.key for p in plans for s in p.steps} <= set(incident.settled):
            return  # a redelivery: every planned step is done or awaits a human; counted, nothing to read
        known = {} if created else {s.key: s for s in self.store.list_steps(incident.id)}
        before = {key: record.status for key, record in known.items()}
        for plan in plans:
            report.steps.extend(self.runner.run_plan(incident, plan, known))
        if created or {key: record.status for key, record in known.items()} != before:
            self._conclude(incident, sorted(known.values(), key=step_order), finding)

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
        if created:
            names = ", ".join(p.playbook.name for p in plans)
            message = f"incident opened from {finding.source} finding {finding.type}; playbooks: {names}"
        else:
            message = f"delivery {incident.deliveries} of the same finding (via {finding.source}, id {finding.id})"
        self._record_arrival(incident, finding, now, message)
        return incident, created

    def _record_unplanned(self, finding: Finding, why: str | None = None) -> Incident | None:
        """A finding no playbook plans for: when it is another shape or an update of a finding that already
        has an incident, the incident records the delivery; else nothing is kept and nothing is written."""
        now = iso(self.clock())
        incident = self.store.record_delivery(finding, now)
        if incident is None:
            return None
        self.telemetry.correlate(incident.id)
        self.telemetry.count("DeliveriesWithoutPlans")
        message = (
            f"delivery {incident.deliveries} of the same finding (via {finding.source}, id {finding.id}); "
            f"no playbook plans steps for it{f': {why}' if why else ''}"
        )
        self._record_arrival(incident, finding, now, message)
        return incident

    def _record_arrival(self, incident: Incident, finding: Finding, now: str, message: str) -> None:
        self.store.log(
            incident.id, LogEntry(now, "finding", message, {"finding_id": finding.id, "count": finding.count})
        )
        if finding.details.get("sequence_may_be_truncated") and TRUNCATION_NOTE not in incident.notes:
            incident.notes.append(TRUNCATION_NOTE)
            self.store.save_incident(incident)

    def _conclude(self, incident: Incident, steps: list[StepRecord], finding: Finding) -> None:
        """Derive the incident's status from its steps, notify, and save it (only when something changed).

        Time to containment is measured once, when the incident becomes contained, from the finding's time:
        directly, or through an approval (then from the finding stored on the incident).
        """
        previous = incident.status
        incident.status = derive_status(steps)
        incident.settled = sorted(s.key for s in steps if s.terminal or s.status == "pending-approval")
        if incident.status == "contained" and previous != "contained":
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
        """Each approval request and the incident update go out on their own: one that fails (on any
        channel) is recorded and counted, and never keeps the others, or containment, from happening."""
        for step in steps:
            if (
                step.status == "pending-approval"
                and step.approval_id
                and step.approval_id not in incident.notification.get("approvals_sent", [])
            ):
                approval = self.store.get_approval(step.approval_id)
                if approval is not None and self._deliver(
                    incident, "approval request", partial(self.notifier.approval_requested, incident, step, approval)
                ):
                    incident.notification.setdefault("approvals_sent", []).append(step.approval_id)
        self._deliver(incident, "incident update", partial(self.notifier.incident_changed, incident, steps))

    def _deliver(self, incident: Incident, what: str, send: Callable[[], dict[str, Any] | None]) -> bool:
        try:
            remembered = send()
        except Exception as exc:  # noqa: BLE001 - an alert that fails never blocks containment
            self.telemetry.count("NotificationsFailed")
            incident.notes.append(f"notification failed: {type(exc).__name__}: {str(exc)[:300]}")
            self.telemetry.event("notification failed", what=what, error=f"{type(exc).__name__}: {str(exc)[:300]}")
            return False
        if remembered:
            incident.notification.update(remembered)
        return True

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
        self.telemetry.correlate(incident.id)
        record = self.store.get_step(incident_id, approval.step_key)
        if record is None:
            return self._refuse(f"approval {approval_id[:64]!r} names no step", "CommandsRefused", {})
        done = self.runner.run_approved(incident, record, approval)
        self._conclude(incident, self.store.list_steps(incident_id), Finding.from_dict(incident.finding))
        return EventReport(incidents=[incident_id], steps=[done])
