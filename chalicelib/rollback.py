"""Undo an incident: its applied steps in reverse order, each from its recorded before-state.

Applied means contained, and also failed part-way: a step that failed after some of its calls went
through left changes, and they are undone the same way (the restore is planned against the state as it
is now, so only what those calls changed is put back). What cannot be undone (evidence, notifications,
or an irreversible step that failed part-way) is listed with its reason and its manual undo steps.

A step is restored only while its resource is still as the step left it (``Action.rollback``'s
``wrote``): if a later incident or a person changed it since, it is left as it is and the report says so.

A rolled-back step stays on the incident as ``rolled-back`` and its key is recorded in the incident's
suppressions, which the guardrails read (``guardrails.suppressed``): redeliveries and updates of the
same finding never contain that resource with that action again, whatever step or playbook asks (the
loop that re-contains what a human has just released).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.actions import REGISTRY
from chalicelib.executor import StepRunner
from chalicelib.incidents import LogEntry, StepRecord, iso
from chalicelib.responder import derive_status

ROLLBACK_STATES = frozenset({"contained"})
UNDONE = frozenset({"rolled-back", "nothing-to-roll-back"})


class UnknownIncident(LookupError):
    pass


@dataclass
class RollbackReport:
    incident_id: str
    dry_run: bool
    steps: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(s["result"].get("status") == "failed" for s in self.steps)


def changed_before_failing(step: StepRecord) -> bool:
    """A failed step whose result lists calls made: it changed something before it failed."""
    return step.status == "failed" and bool((step.result or {}).get("calls_made"))


def rollback_candidates(
    steps: list[StepRecord], keys: set[str] | None = None
) -> tuple[list[StepRecord], list[StepRecord]]:
    """(steps to roll back in reverse order, applied steps that cannot be rolled back)."""
    applied = [
        s for s in steps if (s.status in ROLLBACK_STATES or changed_before_failing(s)) and (not keys or s.key in keys)
    ]
    reversible = [s for s in applied if REGISTRY[s.action].reversible]
    return list(reversed(reversible)), [s for s in applied if not REGISTRY[s.action].reversible]


def _not_undone(step: StepRecord) -> dict[str, Any]:
    undo = list((step.result or {}).get("undo") or [])
    if step.status == "failed":
        reason = f"{step.action} failed part-way and cannot be rolled back: undo its {len(undo)} change(s) by hand"
    else:
        reason = f"{step.action} is evidence or a notification: nothing to undo"
    return {"key": step.key, "action": step.action, "reason": reason, **({"undo": undo} if undo else {})}


def rollback_incident(
    runner: StepRunner, incident_id: str, *, by: str, dry_run: bool = False, keys: set[str] | None = None
) -> RollbackReport:
    store = runner.store
    incident = store.get_incident(incident_id)
    if incident is None:
        raise UnknownIncident(f"no incident {incident_id!r}")
    todo, irreversible = rollback_candidates(store.list_steps(incident_id), keys)
    report = RollbackReport(incident_id, dry_run)
    report.skipped = [_not_undone(s) for s in irreversible]
    for step in todo:
        failed_part_way = step.status == "failed"  # rollback_step updates the record's status
        recorded_undo = list((step.result or {}).get("undo") or [])
        result = runner.rollback_step(incident, step, dry_run=dry_run)
        if result.get("refused") and not result.get("reason"):
            result["reason"] = result["refused"]  # a planned rollback that would leave the resource as it is
        entry: dict[str, Any] = {"key": step.key, "action": step.action, "target": step.target, "result": result}
        if failed_part_way:
            entry["was"] = "failed part-way"
            if result.get("status") == "failed":
                entry["undo"] = recorded_undo  # what remains to do by hand
        report.steps.append(entry)
    if not dry_run and todo:
        done = [s["action"] for s in report.steps if s["result"].get("status") in UNDONE]
        left = [s["action"] for s in report.steps if s["result"].get("status") == "skipped"]
        message = f"rolled back by {by}: {', '.join(done)}" + (f"; left as they are: {', '.join(left)}" if left else "")
        store.log(incident_id, LogEntry(iso(runner.clock()), "rollback", message))
        incident.status = derive_status(store.list_steps(incident_id))
        store.save_incident(incident)
    return report
