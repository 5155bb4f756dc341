"""From an event to plans: normalize, match, check conditions, resolve step parameters, plan actions.

Pure and offline (no boto3, no I/O): ``clampdown simulate``, ``replay`` and ``test`` stop here; the
responder hands the plans to the guardrails and the executor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib.actions import REGISTRY, ActionContext, ActionPlan
from chalicelib.actions.base import ActionError
from chalicelib.findings import Finding, Resource, canonical_event, normalize
from chalicelib.playbooks.library import Library
from chalicelib.playbooks.model import FINDING_TARGET, Playbook, Step
from chalicelib.playbooks.params import param_problem
from chalicelib.playbooks.template import UnresolvedTemplate, contains_template, render_value


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
    #: Why the step cannot run as written (a rendered parameter breaks the action's schema): it is
    #: recorded as failed, and its ``on_error`` decides the rest of the plan.
    error: str | None = None
    plan: ActionPlan | None = None

    @property
    def action(self) -> str:
        return self.step.action

    @property
    def on_error(self) -> str:
        """The step's own ``on_error``, else its action's default (notifications never stop a playbook)."""
        return self.step.on_error or REGISTRY[self.step.action].default_on_error

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
        if self.error:
            out["error"] = self.error
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
    delivered it), the action, its target and, when the step has parameters, a digest of them as the
    playbook wrote them. So two playbooks asking for the same containment (e.g. one for native
    GuardDuty events, one for their Security Hub copies) act once, two steps of different intent
    (two ``tag`` steps with different tags) are two steps, and a finding update that changes what a
    template renders to never runs a step again. Other steps (notifications) are keyed on the
    playbook step.
    """
    origin = f"{finding.account}:{finding.origin_id or finding.id}"
    where = target.key if target else "finding"
    action = REGISTRY[step.action]
    if action.changes_aws:
        written = _without_defaults(step.params, action.schema)
        return f"{origin}/{step.action}/{where}" + (f"#{params_digest(written)}" if written else "")
    return f"{origin}/{playbook.name}/{step.index}/{where}"


def params_digest(params: Mapping[str, Any]) -> str:
    """A short digest of a step's parameters as written (templates unresolved), in canonical JSON."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _without_defaults(params: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters minus those that say what the action's schema default says (same intent, same key)."""
    properties = schema.get("properties") or {}
    return {
        name: value
        for name, value in params.items()
        if not (isinstance(properties.get(name), Mapping) and properties[name].get("default", _NO_DEFAULT) == value)
    }


_NO_DEFAULT = object()


def _targets(step: Step, finding: Finding) -> tuple[list[Resource | None], str | None]:
    action = REGISTRY[step.action]
    if step.target == (FINDING_TARGET,) or not action.resource_kinds:
        return [None], None
    index = step.resource_index
    if index is not None:
        count = len(finding.resources)
        if not -count <= index < count:
            return [], f"the finding has no resources[{index}] (it names {count} resource{'s' if count != 1 else ''})"
        chosen = finding.resources[index]
        if chosen.kind not in action.resource_kinds:
            can = " or ".join(action.resource_kinds)
            return [], f"resources[{index}] is of kind {chosen.kind}; {step.action} acts on {can}"
        return [chosen], None
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
        templated = contains_template(step.params)
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
            if templated:
                problem = param_problem(REGISTRY[step.action].schema, params)
                if problem:
                    error = f"invalid parameter after templates were filled in: {problem}"
                    plan.steps.append(PlannedStep(playbook.name, step, target, params, mode, key, error=error))
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


def evaluate(
    event: Mapping[str, Any], library: Library, *, now: datetime | None = None, act_on_archived: bool = False
) -> Evaluation:
    """The whole offline path for one event (raises ``InvalidEvent`` for an event it cannot read).

    ``act_on_archived`` is the stage's ``CLAMPDOWN_ACT_ON_ARCHIVED``: plan for archived and suppressed
    findings too (by default only playbooks with ``conditions.include_archived`` do).
    """
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
                reason = playbook.rejects(finding, act_on_archived=act_on_archived)
                if reason:
                    evaluation.rejected.append(Rejection(playbook.name, finding.id, reason))
                    continue
                evaluation.plans.append(plan_playbook(playbook, finding, sub_event, now=now))
    return evaluation
