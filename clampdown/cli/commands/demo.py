"""``clampdown demo``: the responder end to end on an embedded AWS (moto)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from clampdown.cli.common import default_playbooks_dir, playbooks_option
from clampdown.cli.render import describe_resource as describe_target

MARKS = {"contained": ("✔", "green"), "already-contained": ("✔", "green"), "done": ("✔", "green"),
         "pending-approval": ("…", "yellow"), "skipped": ("-", "yellow"), "dry-run": ("○", "cyan"),
         "failed": ("✘", "red"), "denied": ("✘", "yellow")}  # fmt: skip


def _change(result: dict[str, Any]) -> str:
    before, after = result.get("before"), result.get("after")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return ""
    changed = {
        k: (before.get(k), after.get(k)) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)
    }
    parts = [
        f"{k}: {json.dumps(a, default=str)[:60]} → {json.dumps(b, default=str)[:60]}" for k, (a, b) in changed.items()
    ]
    return "; ".join(parts)[:300]


@click.command("demo")
@playbooks_option
def command(playbooks_dir: Path | None) -> None:
    """Run the responder end to end on an embedded AWS (moto), with real sample findings.

    \b
    Creates a small vulnerable environment, publishes real GuardDuty and CloudTrail findings
    on EventBridge, drains the responder's queue through the Lambda SQS handler, approves the
    step that needs a human, and prints what was contained, how, and how fast.
    No AWS account and no network are used.

    \b
    Example:
      clampdown demo
    """
    from clampdown import demo, scenarios

    playbooks = playbooks_dir or default_playbooks_dir()
    click.secho("Clampdown demo: the responder end to end on an embedded AWS (moto)\n", bold=True)
    result = demo.run(playbooks, echo=lambda line: click.echo(line))
    incidents = {i.id: i for i in result.incidents}
    for number, scenario in enumerate(scenarios.DEMO, start=1):
        elapsed = result.seconds_to_handle[scenario.title]
        click.secho(f"\n{number}. {scenario.title}", bold=True)
        click.echo(f"   sample: {scenario.source}")
        ids = result.by_scenario.get(scenario.title, [])
        if not ids:
            click.secho("   no playbook acted on it", fg="yellow")
        for incident_id in ids:
            incident = incidents[incident_id]
            severity = f"{incident.severity_label} {incident.severity:g}"
            click.echo(f"   finding {incident.type} ({severity}) → incident {incident.id}")
            click.echo(f"   handled {elapsed * 1000:.0f} ms after it was published")
            for step in result.steps[incident_id]:
                mark, color = MARKS.get(step.status, ("?", "white"))
                who = f" (approved by {step.approved_by})" if step.approved_by else ""
                target = describe_target(step.target)
                click.echo(f"   {click.style(mark, fg=color)} {step.action} → {target}: {step.status}{who}")
                if step.reason and step.status not in ("contained", "done"):
                    click.echo(f"       {step.reason}")
                change = _change(step.result or {})
                if change:
                    click.echo(f"       {change}")
            click.echo(f"   incident status: {click.style(incident.status, bold=True)}")
    click.secho("\nThe account before → after", bold=True)
    before, after = result.observed["before"], result.observed["after"]
    for key in before:
        click.echo(f"   {key}: {before[key]} → {after[key]}")
    delivered = sum(p.delivered for p in result.pump)
    failed = sum(p.failed for p in result.pump)
    click.secho("\nDelivery", bold=True)
    click.echo(
        f"   {delivered} queue messages handled, {failed} failed, {result.dead_letters} in the dead-letter queue"
    )
    click.echo(
        f"   {len(result.approvals)} approval(s) given: "
        + ", ".join(f"{a.id[:8]}… by {a.decided_by}" for a in result.approvals)
    )
