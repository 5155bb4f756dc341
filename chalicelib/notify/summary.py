"""Channel-neutral views of an incident: a JSON document, a plain-text summary, a change fingerprint.

Used by the channels that post once per change (SNS, generic webhooks, Slack incoming webhooks).
Finding strings stay data: JSON-encoded, or plain text with control characters removed; nothing
here is markup.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.incidents import Approval, Incident, StepRecord

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean(value: Any, limit: int = 1000) -> str:
    """One line of plain text: no control characters, at most ``limit`` characters."""
    text = _CONTROL.sub("", "" if value is None else str(value)).replace("\n", " ").replace("\r", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fingerprint(incident: Incident, steps: Sequence[StepRecord]) -> str:
    """Changes when the incident's status or any step's status does (not on a mere re-delivery)."""
    state = [incident.status, sorted((s.key, s.status) for s in steps)]
    return hashlib.sha256(json.dumps(state).encode()).hexdigest()[:20]


def target_label(target: dict[str, Any] | None) -> str:
    if not target:
        return "the finding"
    return f"{target.get('kind')} {target.get('name') or target.get('id') or target.get('arn')}"


def step_document(step: StepRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": step.key,
        "playbook": step.playbook,
        "step": step.step,
        "action": step.action,
        "status": step.status,
        "target": step.target,
    }
    for name in ("reason", "approval_id", "approved_by"):
        if getattr(step, name):
            out[name] = getattr(step, name)
    if step.result and step.result.get("error_code"):
        out["error_code"] = step.result["error_code"]
    return out


def incident_document(incident: Incident, steps: Sequence[StepRecord]) -> dict[str, Any]:
    finding = incident.finding or {}
    return {
        "id": incident.id,
        "title": incident.title,
        "type": incident.type,
        "severity": incident.severity,
        "severity_label": incident.severity_label,
        "status": incident.status,
        "account": incident.account,
        "region": incident.region,
        "first_seen": incident.first_seen,
        "last_seen": incident.last_seen,
        "deliveries": incident.deliveries,
        "sources": list(incident.sources),
        "finding_ids": list(incident.finding_ids)[:20],
        "actor": finding.get("actor") or {},
        "resources": list(finding.get("resources") or [])[:20],
        "notes": list(incident.notes)[-10:],
        "steps": [step_document(s) for s in steps],
    }


def approval_document(incident: Incident, step: StepRecord, approval: Approval) -> dict[str, Any]:
    return {
        "id": approval.id,
        "incident_id": incident.id,
        "step": step_document(step),
        "plan": step.plan,
        "expires_at": approval.expires_at,
        "approvers": list(approval.approvers),
        "cli": f"clampdown approve {approval.id}",
    }


def subject(incident: Incident, prefix: str = "") -> str:
    return clean(f"{prefix}[{incident.severity_label}] {incident.title}", 200)


def text_summary(incident: Incident, steps: Sequence[StepRecord]) -> str:
    """Several lines of plain text (email, pager, chat tools without markup)."""
    finding = incident.finding or {}
    actor = finding.get("actor") or {}
    lines = [
        subject(incident),
        f"Status: {clean(incident.status, 40)}",
        f"Type: {clean(incident.type, 300)}",
        f"Account / region: {clean(incident.account, 40)} / {clean(incident.region, 40)}",
    ]
    who = actor.get("principal_arn") or actor.get("user_name")
    if who:
        lines.append(
            f"Actor: {clean(who, 300)}" + (f" from {clean(actor['source_ip'], 60)}" if actor.get("source_ip") else "")
        )
    for resource in list(finding.get("resources") or [])[:10]:
        lines.append(f"Resource: {clean(target_label(resource), 300)}")
    for step in steps[:50]:
        line = (
            f"Step {step.step + 1} {clean(step.action, 80)} on {clean(target_label(step.target), 300)}: {step.status}"
        )
        if step.reason and step.status != "contained":
            line += f" ({clean(step.reason, 300)})"
        lines.append(line)
    if len(steps) > 50:
        lines.append(f"... and {len(steps) - 50} more steps")
    lines.append(f"Incident: {incident.id}")
    return "\n".join(lines)


def approval_text(incident: Incident, step: StepRecord, approval: Approval) -> str:
    calls = (step.plan or {}).get("calls") or []
    params = [json.dumps(c.get("params") or {}, sort_keys=True, default=str) for c in calls[:20]]
    shown = [f"  {clean(c.get('call'), 100)} {clean(p, 600)}" for c, p in zip(calls, params, strict=False)]
    lines = [
        subject(incident, "Approval needed: "),
        f"Step {step.step + 1} of {clean(step.playbook, 100)}: {clean(step.action, 80)} on "
        f"{clean(target_label(step.target), 300)}",
        f"Why: {clean(step.reason or 'the playbook requires approval', 300)}",
        f"Plan ({len(calls)} API calls):",
        *shown,
        f"Approve: clampdown approve {approval.id}",
        f"Deny:    clampdown deny {approval.id} --reason TEXT",
        f"Incident: {incident.id}",
    ]
    return "\n".join(lines)
