"""Runs planned steps against AWS: the step-level policy (mode, kill switch, guardrails, blast radius,
approval) and exactly-once execution, with every decision recorded on the incident.

Exactly once: a step's effect is keyed (``PlannedStep.key``) on what it acts on. The incident store
remembers finished steps for good; while a step runs, Powertools idempotency (DynamoDB) holds its key,
so a concurrent duplicate delivery waits and retries instead of acting, and a run interrupted after
the change but before the record finds the stored result on its next delivery.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib.actions import REGISTRY, Action, ActionContext, Status
from chalicelib.actions.base import INLINE_STATE_LIMIT, TRANSIENT_ERROR_CODES, AwsProvider, EvidenceStore
from chalicelib.evidence import evidence_key, json_body, offload
from chalicelib.findings.model import Finding, Resource
from chalicelib.guardrails import Guardrails
from chalicelib.incidents import Approval, Incident, IncidentStore, LogEntry, StepRecord, iso
from chalicelib.planner import Plan, PlannedStep
from chalicelib.settings import Settings
from chalicelib.telemetry import CountingTelemetry, Telemetry

#: AWS error codes worth another delivery (after botocore's own retries ran out).
RETRYABLE_CODES = TRANSIENT_ERROR_CODES


class RetryableStepError(RuntimeError):
    """A step failed for a reason that may pass (throttling, timeouts): the event must be retried."""


class IdempotencyGuard:
    """Powertools idempotency around one step's apply, keyed on the step key (DynamoDB table ``id``)."""

    def __init__(self, table: str, boto3_session: Any = None, expires_after_seconds: int = 7 * 86400) -> None:
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

        self.config = IdempotencyConfig(
            event_key_jmespath="key", raise_on_no_idempotency_key=True, expires_after_seconds=expires_after_seconds
        )
        self.persistence = DynamoDBPersistenceLayer(table_name=table, boto3_session=boto3_session)

    def register_lambda_context(self, context: Any) -> None:
        self.config.register_lambda_context(context)

    def run(self, key: str, apply: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        from aws_lambda_powertools.utilities.idempotency import idempotent_function

        def clampdown_step(step: dict[str, Any]) -> dict[str, Any]:
            return apply()

        guarded = idempotent_function(
            data_keyword_argument="step", persistence_store=self.persistence, config=self.config
        )(clampdown_step)
        result: dict[str, Any] = guarded(step={"key": key})
        return result


@dataclass
class StepRunner:
    settings: Settings
    store: IncidentStore
    aws: Any | None  # chalicelib.aws.AwsClients (None: plan only)
    guardrails: Guardrails = field(default_factory=Guardrails)
    kill_switch: Any = None  # .engaged() -> bool
    evidence: EvidenceStore | None = None
    idempotency: IdempotencyGuard | None = None
    telemetry: Telemetry = field(default_factory=CountingTelemetry)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    # -- context ----------------------------------------------------------------------------
    def context(self, incident: Incident, finding: Finding, playbook: str) -> ActionContext:
        aws: AwsProvider | None = self.aws.for_incident(incident.id) if self.aws is not None else None
        return ActionContext(
            finding=finding,
            playbook=playbook,
            incident_id=incident.id,
            aws=aws,
            evidence=self.evidence,
            guard=self.guardrails,
            now=self.clock(),
            on_call=lambda call: self.telemetry.count("AwsApiCalls"),
            suppressions=tuple(incident.suppressed),
        )

    def _log(self, incident: Incident, kind: str, message: str, **data: Any) -> None:
        self.store.log(incident.id, LogEntry(iso(self.clock()), kind, message, data))

    def _finish(
        self,
        incident: Incident,
        record: StepRecord,
        status: str,
        reason: str | None = None,
        *,
        expected: str | None = None,
    ) -> StepRecord:
        """Record the step's new status (only over ``expected`` when given; else the stored step is returned)."""
        now = iso(self.clock())
        record.history.append({"time": now, "status": status, **({"reason": reason} if reason else {})})
        record.status, record.reason, record.updated_at = status, reason, now
        if expected is None:
            self.store.put_step(record)
        elif not self.store.put_step_if(record, expected):
            return self._stored(record)
        target = describe_target(record.target)
        self._log(
            incident,
            "step",
            f"{record.action} on {target}: {status}" + (f" ({reason})" if reason else ""),
            key=record.key,
        )
        self.telemetry.count(f"Steps{status.title().replace('-', '')}")
        return record

    # -- a plan -----------------------------------------------------------------------------
    def run_plan(self, incident: Incident, plan: Plan, known: dict[str, StepRecord] | None = None) -> list[StepRecord]:
        """Every step of the plan in order; finished steps are not run again (resume after a crash).

        ``known`` is the incident's step records read once by the caller (one query instead of one
        read per step); it is kept up to date with what this run records.
        """
        records: list[StepRecord] = []
        stopped: str | None = None
        for planned in plan.steps:
            existing = self.store.get_step(incident.id, planned.key) if known is None else known.get(planned.key)
            if existing is not None and (existing.terminal or existing.status == "pending-approval"):
                if existing.status == "failed" and planned.on_error == "stop":
                    stopped = f"step {existing.step + 1} ({existing.action}) failed"
                records.append(existing)
                continue
            if stopped:
                records.append(
                    self._finish(
                        incident,
                        self._new_record(incident, plan, planned),
                        "skipped",
                        f"{stopped} and on_error is stop",
                    )
                )
                continue
            record = self.run_step(incident, plan, planned, existing)
            records.append(record)
            if record.status == "failed" and planned.on_error == "stop":
                stopped = f"step {planned.step.index + 1} ({planned.action}) failed"
        if known is not None:
            known.update((r.key, r) for r in records)
        return records

    def _new_record(self, incident: Incident, plan: Plan, planned: PlannedStep) -> StepRecord:
        now = iso(self.clock())
        return StepRecord(
            incident_id=incident.id,
            key=planned.key,
            playbook=plan.playbook.name,
            step=planned.step.index,
            action=planned.action,
            status="planned",
            mode=planned.mode,
            target=planned.target.to_dict() if planned.target else None,
            params=dict(planned.params),
            plan=planned.plan.to_dict() if planned.plan else None,
            created_at=now,
            updated_at=now,
        )

    def run_step(
        self, incident: Incident, plan: Plan, planned: PlannedStep, existing: StepRecord | None = None
    ) -> StepRecord:
        record = existing or self._new_record(incident, plan, planned)
        if planned.skipped:
            return self._finish(incident, record, "skipped", planned.skipped)
        if planned.error:
            record.result = {"status": "failed", "error_code": "InvalidParameter", "reason": planned.error}
            self.telemetry.count("StepsInvalidParameter")
            return self._finish(incident, record, "failed", planned.error)
        action = REGISTRY[planned.action](planned.params)
        ctx = self.context(incident, plan.finding, plan.playbook.name)
        refusal = self.guardrails.refuse(action, planned.target, ctx) or action.skip_reason(ctx, planned.target)
        if refusal:
            return self._finish(incident, record, "skipped", refusal)
        if record.mode == "dry-run":
            return self._dry_run(incident, record, action, ctx, planned.target)
        if action.changes_aws and self.kill_switch is not None and self.kill_switch.engaged():
            return self._finish(incident, record, "skipped", "kill switch is on: nothing is applied")
        mode, reason = record.mode, None
        if mode == "auto" and action.changes_aws and not self._within_blast_radius(planned.target):
            mode = "approval"
            kind = planned.target.kind if planned.target else "finding"
            limit, window = self.settings.blast_limit(kind), self.settings.blast_radius_window_s
            reason = f"blast radius: more than {limit} {kind} actions in {window} s"
        if mode == "approval":
            return self.request_approval(incident, record, plan.playbook.approvers, reason)
        return self.execute(incident, plan.finding, record, action, planned.target)

    def _within_blast_radius(self, target: Resource | None) -> bool:
        kind = target.kind if target else "finding"
        window = self.settings.blast_radius_window_s
        now = int(self.clock().timestamp())
        start = now - now % window
        return self.store.consume_budget(kind, start, self.settings.blast_limit(kind), start + 2 * window)

    def _dry_run(
        self, incident: Incident, record: StepRecord, action: Action, ctx: ActionContext, target: Resource | None
    ) -> StepRecord:
        try:
            record.plan = action.plan(ctx, target).to_dict()
        except Exception as exc:  # noqa: BLE001 - a dry run reports what it could not read
            from chalicelib.actions.base import aws_error

            code, message = aws_error(exc)
            return self._finish(incident, record, "dry-run", f"could not read the current state: {code}: {message}")
        return self._finish(incident, record, "dry-run", "dry-run mode: planned, not applied")

    # -- approvals --------------------------------------------------------------------------
    def request_approval(
        self, incident: Incident, record: StepRecord, approvers: tuple[str, ...] = (), reason: str | None = None
    ) -> StepRecord:
        now = self.clock()
        approval = Approval(
            id=secrets.token_hex(16),  # 128 bits; never starts with "-", which a CLI would read as an option
            incident_id=incident.id,
            step_key=record.key,
            status="pending",
            requested_at=iso(now),
            expires_at=now.timestamp() + self.settings.approval_ttl_s,
            approvers=list(approvers or self.settings.slack_approvers),
            reason=reason,
        )
        self.store.put_approval(approval)
        record.approval_id = approval.id
        return self._finish(incident, record, "pending-approval", reason or "the playbook requires approval")

    def run_approved(self, incident: Incident, record: StepRecord, approval: Approval) -> StepRecord:
        """Carry out a decided approval: execute (approved) or close (denied/expired) the step.

        Commands can arrive more than once and at once (SQS at-least-once, the sweep re-queuing a lost
        command, the CLI sending it again): the step leaves ``pending-approval`` through a conditional
        write, so exactly one runner carries it out; the others return the step as it is.
        """
        if record.status != "pending-approval" or record.approval_id != approval.id:
            return record  # already handled: double clicks and redeliveries end here
        if approval.status in ("denied", "expired"):
            who = f" by {approval.decided_by}" if approval.decided_by else ""
            reason = f"{approval.status}{who}" + (f": {approval.reason}" if approval.reason else "")
            return self._finish(incident, record, approval.status, reason, expected="pending-approval")
        if approval.status != "approved":
            return record
        record.approved_by = approval.decided_by
        record.status, record.updated_at = "running", iso(self.clock())
        if not self.store.put_step_if(record, "pending-approval"):
            return self._stored(record)
        finding = Finding.from_dict(incident.finding)
        action = REGISTRY[record.action](record.params)
        target = Resource.from_dict(record.target) if record.target else None
        if action.changes_aws and self.kill_switch is not None and self.kill_switch.engaged():
            return self._finish(incident, record, "skipped", "kill switch is on: nothing is applied")
        return self.execute(incident, finding, record, action, target)

    def _stored(self, record: StepRecord) -> StepRecord:
        """The step as another runner left it (it won the race to move it on)."""
        return self.store.get_step(record.incident_id, record.key) or record

    # -- execution --------------------------------------------------------------------------
    def execute(
        self, incident: Incident, finding: Finding, record: StepRecord, action: Action, target: Resource | None
    ) -> StepRecord:
        if self.aws is None:
            raise RuntimeError("the step runner has no AWS clients; it can only plan")
        record.attempts += 1
        record.status, record.updated_at = "running", iso(self.clock())
        self.store.put_step(record)
        ctx = self.context(incident, finding, record.playbook)
        started = time.perf_counter()

        # An earlier attempt that did not finish (it failed and is retried, or it was killed after it read
        # the resource): its before-state is the resource before containment began, and its start time
        # keeps time-based parameters (a session cut-off, names) the same, so the change is not made again.
        earlier = record.result or {}
        interrupted = earlier.get("status") in ("failed", "running") and earlier.get("before") is not None
        resumed = earlier if interrupted else None
        if resumed is not None and resumed.get("started_at"):
            ctx.now = datetime.fromisoformat(str(resumed["started_at"]).replace("Z", "+00:00"))
        started_at = iso(ctx.now)

        def remember(before: Mapping[str, Any]) -> None:
            # Recorded before the first change: a run killed after it (a Lambda timeout) loses nothing.
            if resumed is None:
                record.result = {"status": "running", "started_at": started_at, "before": self._durable(record, before)}
                self.store.put_step(record)

        ctx.on_before = remember

        def apply() -> dict[str, Any]:
            result = action.apply(ctx, target)
            if result.status == Status.FAILED and result.error_code in RETRYABLE_CODES:
                # Keep what this attempt saw and changed on the record: the redelivery continues from it.
                record.result = resumed or {**result.to_dict(), "started_at": started_at}
                self.store.put_step(record)
                raise RetryableStepError(f"{action.name}: {result.error_code}: {result.reason}")
            return result.to_dict()

        outcome = self.idempotency.run(record.key, apply) if self.idempotency else apply()
        self.telemetry.timing("StepSeconds", time.perf_counter() - started)
        if resumed is not None:
            # A re-run starts from a half-changed resource: rollback must restore what the resource was
            # before the first attempt, and a change the earlier attempt made is this step's change.
            outcome = {**outcome, "before": resumed["before"], "before_this_attempt": outcome.get("before")}
            if outcome["status"] == Status.ALREADY_CONTAINED:
                outcome.update(status=str(Status.CONTAINED), reason="contained by an earlier attempt of this step")
        record.result = outcome
        return self._finish(incident, record, str(outcome["status"]), outcome.get("reason"))

    def _durable(self, record: StepRecord, before: Mapping[str, Any]) -> dict[str, Any]:
        """The before-state as the step record can hold it (a large one goes to the evidence bucket)."""
        if self.evidence is None or len(json_body(before)) <= INLINE_STATE_LIMIT:
            return dict(before)
        subject = Resource.from_dict(record.target).key if record.target else "finding"
        stem = evidence_key(record.incident_id, record.action, subject, "first-attempt-before")
        return offload(self.evidence, stem, before)  # the same key scheme and reference as the actions'

    # -- rollback ---------------------------------------------------------------------------
    def rollback_step(self, incident: Incident, record: StepRecord, *, dry_run: bool = False) -> dict[str, Any]:
        """Undo one applied step from its recorded before-state (or plan the undo)."""
        action = REGISTRY[record.action](record.params)
        target = Resource.from_dict(record.target) if record.target else None
        before = (record.result or {}).get("before") or {}
        ctx = self.context(incident, Finding.from_dict(incident.finding), record.playbook)
        wrote = (record.result or {}).get("after")  # restored only while the resource is still as left
        if dry_run:
            return action.plan_rollback(ctx, target, before, wrote=wrote).to_dict()
        result = action.rollback(ctx, target, before, wrote=wrote)
        if result.status in (Status.ROLLED_BACK, Status.NOTHING_TO_ROLL_BACK):
            record.result = {**(record.result or {}), "rollback": result.to_dict()}
            self._finish(incident, record, "rolled-back", f"rolled back: {result.status}")
            if record.key not in incident.suppressed:
                incident.suppressed.append(record.key)
        return result.to_dict()


def describe_target(target: Mapping[str, Any] | None) -> str:
    if not target:
        return "the finding"
    return f"{target.get('kind')} {target.get('name') or target.get('id') or target.get('arn')}"
