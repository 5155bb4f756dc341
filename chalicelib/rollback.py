"""Undo an incident: its applied steps in reverse order, each from its recorded before-state.

A rolled-back step stays on the incident as ``rolled-back`` and its key is recorded as a suppression:
redeliveries and updates of the same finding never contain that resource again (the loop that
re-contains what a human has just released).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.actions import REGISTRY
from chalicelib.executor import StepRunner, iso
from chalicelib.incidents import LogEntry, StepRecord
from chalicelib.responder import derive_status

ROLLBACK_STATES = frozenset({"contained"})


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


def rollback_candidates(
    steps: list[StepRecord], keys: set[str] | None = None
) -> tuple[list[StepRecord], list[StepRecord]]:
    """(steps to roll back in reverse order, applied steps that cannot be rolled back)."""
    applied = [s for s in steps if s.status in ROLLBACK_STATES and (not keys or s.key in keys)]
    reversible = [s for s in applied if REGISTRY[s.action].reversible]
    return list(reversed(reversible)), [s for s in applied if not REGISTRY[s.action].reversible]


def rollback_incident(
    runner: StepRunner, incident_id: str, *, by: str, dry_run: bool = False, keys: set[str] | None = None
) -> RollbackReport:
    store = runner.store
    incident = store.get_incident(incident_id)
    if incident is None:
        raise UnknownIncident(f"no incident {incident_id!r}")
    todo, irreversible = rollback_candidates(store.list_steps(incident_id), keys)
    report = RollbackReport(incident_id, dry_run)
    report.skipped = [
        {"key": s.key, "action": s.action, "reason": f"{s.action} is evidence or a notification: nothing to undo"}
        for s in irreversible
    ]
    for step in todo:
        result = runner.rollback_step(incident, step, dry_run=dry_run)
        report.steps.append({"key": step.key, "action": step.action, "target": step.target, "result": result})
    if not dry_run and todo:
        done = [s["action"] for s in report.steps if s["result"].get("status") != "failed"]
        store.log(incident_id, LogEntry(iso(runner.clock()), "rollback", f"rolled back by {by}: {', '.join(done)}"))
        incident.status = derive_status(store.list_steps(incident_id))
        store.save_incident(incident)
    return report
