"""From an event to plans: normalize, match, check conditions, resolve step parameters, plan actions.

Pure and offline (no boto3, no I/O): ``clampdown simulate``, ``replay`` and ``test`` stop here; the
responder hands the plans to the guardrails and the executor.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib.actions import REGISTRY, ActionContext, ActionPlan
from chalicelib.actions.base import ActionError
from chalicelib.findings import Finding, Resource, canonical_event, normalize
from chalicelib.playbooks.library import Library
from chalicelib.playbooks.model import FINDING_TARGET, Playbook, Step
from chalicelib.playbooks.template import UnresolvedTemplate, render_value


def effective_mode(playbook: Playbook, step: Step) -> str:
    """A step's own mode wins over its playbook's, except that a dry-run playbook stays dry-run."""
    if playbook.mode == "dry-run":
        return "dry-run"
    return step.mode or playbook.mode


@dataclass
class PlannedStep:
    """One step of one playbook on one target (or on the finding itself)."""

    playbook: str
    step: Step
    target: Resource | None
    params: Mapping[str, Any]
    mode: str
    key: str
    skipped: str | None = None
    plan: ActionPlan | None = None

    @property
    def action(self) -> str:
        return self.step.action

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "step": self.step.index,
            "action": self.action,
            "target": self.target.to_dict() if self.target else None,
            "mode": self.mode,
            "params": dict(self.params),
        }
        if self.step.name:
            out["name"] = self.step.name
        if self.skipped:
            out["skipped"] = self.skipped
        if self.plan is not None:
            plan = self.plan.to_dict()
            out["calls"] = plan["calls"]
            for key in ("before", "after", "already_contained", "refused", "notes"):
                if key in plan:
                    out[key] = plan[key]
        return out


@dataclass
class Plan:
    """A playbook applied to one finding."""

    playbook: Playbook
    finding: Finding
    steps: list[PlannedStep] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "playbook": self.playbook.name,
            "mode": self.playbook.mode,
            "finding": self.finding.id,
            "steps": [s.to_dict() for s in self.steps],
        }


@dataclass
class Rejection:
    playbook: str
    finding: str
    reason: str


@dataclass
class Evaluation:
    """Everything the offline path learned about one event."""

    event: Mapping[str, Any]
    findings: list[Finding] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)


def split_event(event: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """One event per finding, so a pattern on one finding's fields never selects its neighbours.

    Security Hub puts up to 100 findings in one event; EventBridge would match the whole event if any
    one of them matched. Matching each finding in its own copy of the envelope is what a user means.
    """
    detail = event.get("detail")
    findings = detail.get("findings") if isinstance(detail, Mapping) else None
    if event.get("source") == "aws.securityhub" and isinstance(findings, list) and len(findings) > 1:
        for item in findings:
            yield {**event, "detail": {**detail, "findings": [item]}}  # type: ignore[dict-item]
    else:
        yield event


def step_key(finding: Finding, playbook: Playbook, step: Step, target: Resource | None) -> str:
    """What makes a step's effect unique, so that it happens once.

    A change to AWS is keyed on what it acts on: the underlying finding (the same whichever shape
    delivered it), the action and its target, so two playbooks (e.g. one for native GuardDuty
    events, one for their Security Hub copies) never contain the same resource twice. Other steps
    (notifications) are keyed on the playbook step.
    """
    origin = f"{finding.account}:{finding.origin_id or finding.id}"
    where = target.key if target else "finding"
    if REGISTRY[step.action].changes_aws:
        return f"{origin}/{step.action}/{where}"
    return f"{origin}/{playbook.name}/{step.index}/{where}"


def _targets(step: Step, finding: Finding) -> tuple[list[Resource | None], str | None]:
    action = REGISTRY[step.action]
    if step.target == (FINDING_TARGET,) or not action.resource_kinds:
        return [None], None
    kinds = step.target or action.resource_kinds
    found = list(action.targets(finding, kinds))  # the action may resolve more (a caller's role)
    if not found:
        return [], f"the finding names no {' or '.join(kinds)}"
    return list(found), None


def plan_playbook(
    playbook: Playbook,
    finding: Finding,
    event: Mapping[str, Any],
    *,
    incident_id: str = "dry-run",
    now: datetime | None = None,
) -> Plan:
    """Resolve every step of ``playbook`` against ``finding`` and plan its actions offline."""
    now = now or datetime.now(UTC)
    plan = Plan(playbook, finding)
    finding_view = finding.to_dict()
    base_scope = {
        "finding": finding_view,
        "event": event,
        "playbook": {"name": playbook.name, "mode": playbook.mode},
        "incident": {"id": incident_id},
        "now": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    for step in playbook.steps:
        mode = effective_mode(playbook, step)
        targets, no_target = _targets(step, finding)
        if no_target:
            plan.steps.append(
                PlannedStep(
                    playbook.name,
                    step,
                    None,
                    {},
                    mode,
                    step_key(finding, playbook, step, None),
                    skipped=no_target,
                )
            )
            continue
        for target in targets:
            key = step_key(finding, playbook, step, target)
            excluded = playbook.exclude.excludes_resource(target) if target else None
            if excluded:
                plan.steps.append(PlannedStep(playbook.name, step, target, {}, mode, key, skipped=excluded))
                continue
            scope = {**base_scope, "resource": target.to_dict() if target else {}}
            try:
                params = render_value(step.params, scope)
            except UnresolvedTemplate as exc:
                plan.steps.append(PlannedStep(playbook.name, step, target, {}, mode, key, skipped=str(exc)))
                continue
            action = REGISTRY[step.action](params)
            ctx = ActionContext(finding=finding, playbook=playbook.name, incident_id=incident_id, now=now)
            try:
                action_plan = action.plan(ctx, target)
            except ActionError as exc:
                # This target cannot be acted on (e.g. an id of the wrong shape): this step is skipped,
                # the rest of the plan and the other findings of the event are not.
                reason = f"cannot plan: {exc.code}: {str(exc)[:300]}"
                plan.steps.append(PlannedStep(playbook.name, step, target, params, mode, key, skipped=reason))
                continue
            plan.steps.append(PlannedStep(playbook.name, step, target, params, mode, key, plan=action_plan))
    return plan


def evaluate(event: Mapping[str, Any], library: Library, *, now: datetime | None = None) -> Evaluation:
    """The whole offline path for one event (raises ``InvalidEvent`` for an event it cannot read)."""
    canonical = canonical_event(event)
    evaluation = Evaluation(canonical)
    for sub_event in split_event(canonical):
        matched = library.match(sub_event)
        findings = normalize(sub_event)
        evaluation.findings.extend(findings)
        for playbook in matched:
            if playbook.name not in evaluation.matched:
                evaluation.matched.append(playbook.name)
            for finding in findings:
                reason = playbook.rejects(finding)
                if reason:
                    evaluation.rejected.append(Rejection(playbook.name, finding.id, reason))
                    continue
                evaluation.plans.append(plan_playbook(playbook, finding, sub_event, now=now))
    return evaluation
