"""``clampdown incidents list|show``: read the audit trail."""

from __future__ import annotations

from typing import Any

import click

from clampdown.cli.common import echo_json, format_option, incident_store_options, open_incident_store
from clampdown.cli.render import _clean, call_text, describe_resource, state_lines


@click.group("incidents")
def command() -> None:
    """Read incidents from the audit trail (the stage's DynamoDB table).

    \b
    Examples:
      clampdown incidents list --stage prod
      clampdown incidents show inc-48382eed707a7b786e1b --stage prod --format json
    """


@command.command("list")
@incident_store_options
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@format_option("text", "json")
def list_incidents(table: str | None, stage: str | None, limit: int, output_format: str) -> None:
    """List incidents, the most recently seen first.

    \b
    One line per incident: id, last seen, status, severity, account and region, the
    finding type and how many times the finding was delivered.

    \b
    Examples:
      clampdown incidents list --stage prod
      clampdown incidents list --table clampdown-prod-incidents --limit 10
      clampdown incidents list --stage prod --format json | jq '.incidents[] | select(.status != "contained")'
    """
    incidents = open_incident_store(table, stage).list_incidents(limit)
    if output_format == "json":
        echo_json({"incidents": [i.to_dict() for i in incidents]})
        return
    if not incidents:
        click.echo("no incidents")
    for incident in incidents:
        click.echo(
            f"{incident.id}  {incident.last_seen[:19]}  {incident.status:<17} {incident.severity_label:<8} "
            f"{incident.account} {incident.region}  {_clean(incident.type, 80)}  (x{incident.deliveries})"
        )


def _step_lines(step: Any) -> list[str]:
    """A step: outcome, the planned calls, the state before (and after) it, the calls made, the undo."""
    who = f", approved by {_clean(step.approved_by, 120)}" if step.approved_by else ""
    lines = [
        f"  {step.step + 1}. {step.action} → {describe_resource(step.target)}: {step.status}{who}  "
        f"[{step.playbook}, {step.mode}]"
    ]
    indent = "      "
    if step.reason:
        lines.append(f"{indent}{_clean(step.reason, 300)}")
    plan = step.plan or {}
    result = step.result or {}
    calls = plan.get("calls") or []
    if calls:
        lines.append(f"{indent}plan:")
        lines.extend(f"{indent}  {call_text(call)}" for call in calls)
    lines.extend(f"{indent}{_clean(note, 300)}" for note in plan.get("notes") or ())
    before = result.get("before", plan.get("before"))
    if before is not None:
        lines.extend(state_lines("before", before, indent))
    if result.get("after") is not None:
        lines.extend(state_lines("after", result["after"], indent))
    made = result.get("calls_made") or []
    if made:
        lines.append(f"{indent}calls made:")
        lines.extend(f"{indent}  {call_text(call)}" for call in made)
    if result.get("error_code"):
        lines.append(f"{indent}error: {_clean(result['error_code'], 120)}")
    lines.extend(f"{indent}undo: {_clean(undo, 400)}" for undo in result.get("undo", ()))
    return lines


def _show_text(incident: Any, steps: list[Any], timeline: list[Any], approvals: list[Any]) -> None:
    click.secho(f"{incident.id}  {_clean(incident.type, 120)}", bold=True)
    click.echo(f"  {_clean(incident.title, 200)}")
    click.echo(
        f"  status {incident.status}; severity {incident.severity_label} {incident.severity:g}; "
        f"account {incident.account} {incident.region}"
    )
    click.echo(
        f"  first seen {incident.first_seen}, last seen {incident.last_seen}, {incident.deliveries} deliveries "
        f"via {', '.join(incident.sources)}"
    )
    click.secho("\nSteps", bold=True)
    for step in steps:
        for line in _step_lines(step):
            click.echo(line)
    if approvals:
        click.secho("\nApprovals", bold=True)
        for approval in approvals:
            click.echo(f"  {approval.id}  {approval.status}  {approval.decided_by or ''}  step {approval.step_key}")
    click.secho("\nTimeline", bold=True)
    for entry in timeline:
        click.echo(f"  {entry.time}  {_clean(entry.message, 300)}")
    for note in incident.notes:
        click.echo(f"  note: {_clean(note, 300)}")


@command.command("show")
@click.argument("incident_id")
@incident_store_options
@format_option("text", "json")
def show_incident(incident_id: str, table: str | None, stage: str | None, output_format: str) -> None:
    """Show one incident: its finding, each step with its plan, the state before and after
    it and its outcome, the approvals and the timeline.

    \b
    Examples:
      clampdown incidents show inc-48382eed707a7b786e1b --stage prod
      clampdown incidents show inc-48382eed707a7b786e1b --stage prod --format json
      clampdown report inc-48382eed707a7b786e1b --stage prod   # the same, as a report
    """
    store = open_incident_store(table, stage)
    incident = store.get_incident(incident_id)
    if incident is None:
        raise click.ClickException(f"no incident {incident_id!r}")
    steps = store.list_steps(incident_id)
    timeline = store.timeline(incident_id)
    approval_ids = {s.approval_id for s in steps if s.approval_id}
    approvals = [a for a in (store.get_approval(i) for i in sorted(approval_ids)) if a]
    if output_format == "json":
        echo_json(
            {
                "incident": incident.to_dict(),
                "steps": [s.to_dict() for s in steps],
                "approvals": [a.to_dict() for a in approvals],
                "timeline": [
                    {"time": e.time, "kind": e.kind, "message": e.message, "data": dict(e.data)} for e in timeline
                ],
            }
        )
    else:
        _show_text(incident, steps, timeline, approvals)
