"""``clampdown demo``: the responder end to end on an embedded AWS (moto)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import click

from clampdown.cli.commands.report import report_dir_options, write_rehearsal_reports
from clampdown.cli.common import default_playbooks_dir, load_library, playbooks_option
from clampdown.cli.render import describe_resource as describe_target

MARKS = {"contained": ("✔", "green"), "already-contained": ("✔", "green"), "done": ("✔", "green"),
         "pending-approval": ("…", "yellow"), "skipped": ("-", "yellow"), "dry-run": ("○", "cyan"),
         "failed": ("✘", "red"), "denied": ("✘", "yellow")}  # fmt: skip
#: At most this many changed fields per step (the report has them all).
MAX_CHANGES = 4
WIDTH = 110


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _echo_wrapped(text: str, indent: str) -> None:
    click.echo(textwrap.fill(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  "))


def _without(state: Any, fields: tuple[str, ...]) -> Any:
    return {k: v for k, v in state.items() if k not in fields} if isinstance(state, dict) else state


def _echo_steps(steps: list[Any]) -> None:
    from chalicelib.actions import REGISTRY
    from clampdown.changes import describe_changes
    from clampdown.demo import does_not_apply

    quiet = [s for s in steps if does_not_apply(s)]
    for step in (s for s in steps if not does_not_apply(s)):
        mark, color = MARKS.get(step.status, ("?", "white"))
        who = f" (approved by {step.approved_by})" if step.approved_by else ""
        target = describe_target(step.target)
        click.echo(f"   {click.style(mark, fg=color)} {step.action} → {target}: {step.status}{who}")
        if step.reason and step.status not in ("contained", "done"):
            click.echo(f"       {step.reason}")
        result = step.result or {}
        hidden = REGISTRY[step.action].context_fields if step.action in REGISTRY else ()
        changes = describe_changes(*(_without(result.get(k), hidden) for k in ("before", "after")))
        for line in changes[:MAX_CHANGES]:
            click.echo(f"       {line}")
        if len(changes) > MAX_CHANGES:
            click.echo(f"       … and {len(changes) - MAX_CHANGES} more changes (in the incident report)")
    if quiet:
        reasons = sorted({str(s.reason) for s in quiet})
        click.echo(f"   ({len(quiet)} step(s) did not apply: {'; '.join(reasons)})")


def _headline_fields_and_steps(block: Any) -> bool:
    """The parts of an incident's Slack message the demo shows (resources, links and the finding's
    description are left out)."""
    text = block.get("text") or {}
    return block.get("type") == "header" or bool(block.get("fields")) or str(text.get("text", "")).startswith("*Steps*")


def _echo_slack(result: Any) -> None:
    from clampdown import sandbox as sb
    from clampdown.slack_text import render

    click.secho(f"\nThe Slack messages ({sb.SLACK_CHANNEL}, as the local Slack stand-in received them)", bold=True)
    for incident in result.incidents:
        thread = result.slack.get(incident.id)
        if thread is None:
            click.secho(f"   incident {incident.id}: no Slack message (see the incident's notes)", fg="yellow")
            continue
        click.echo(f"\n   incident {incident.id}: 1 message, updated in place; {thread.replies} thread reply(ies)")
        lines = render(thread.message, keep=_headline_fields_and_steps)
        click.secho(f"   ┃ {lines[0]}", bold=True)
        for line in lines[1:]:
            _echo_wrapped(line, "   ┃ ")
        for approval in thread.approvals:
            request = render(approval)
            click.echo(f"   approval request: {request[0]}")
            click.echo(f"     → {request[-1]}")


@click.command("demo")
@playbooks_option
@report_dir_options
def command(playbooks_dir: Path | None, report_dir: Path | None, report_format: str) -> None:
    """Run the responder end to end on an embedded AWS (moto), with real sample findings.

    \b
    Creates a small vulnerable environment, publishes real GuardDuty and CloudTrail findings
    on EventBridge, drains the responder's queue through the Lambda SQS handler, which posts
    alerts and approval requests to a local Slack stand-in (127.0.0.1); approves the steps
    that need a human by clicking Approve (a signed interaction to the app's
    /slack/interactions route); and prints the findings, the playbooks that matched, each
    action with what it changed, the time to containment, the account before and after, and
    the Slack messages. No AWS account and no network beyond 127.0.0.1 are used.

    \b
    Examples:
      clampdown demo
      clampdown demo --report-dir reports/ --report-format html
    """
    from clampdown import demo, scenarios

    load_library(playbooks_dir)  # invalid playbooks: every problem as FILE:LINE: PATH: REASON, exit 1
    playbooks = playbooks_dir or default_playbooks_dir()
    click.secho("Clampdown demo: the responder end to end on an embedded AWS (moto)\n", bold=True)
    result = demo.run(playbooks, echo=lambda line: click.echo(line), reports=report_dir is not None)
    incidents = {i.id: i for i in result.incidents}
    for number, scenario in enumerate(scenarios.DEMO, start=1):
        click.secho(f"\n{number}. {scenario.title}", bold=True)
        click.echo(f"   sample: {scenario.source}")
        ids = result.by_scenario.get(scenario.title, [])
        if not ids:
            click.secho("   no playbook acted on it", fg="yellow")
        for incident_id in ids:
            incident = incidents[incident_id]
            steps = result.steps[incident_id]
            severity = f"{incident.severity_label} {incident.severity:g}"
            click.echo(f"   finding {incident.type} ({severity}) → incident {incident.id}")
            playbooks_matched = ", ".join(dict.fromkeys(s.playbook for s in steps)) or "none"
            click.echo(f"   playbooks matched: {playbooks_matched}")
            _echo_steps(steps)
            timing = demo.containment(steps, result.approvals, result.published[scenario.title])
            line = f"   time to containment: first action {_seconds(timing.first)} after the finding was published"
            if timing.with_approvals is not None:
                line += (
                    f"; approved steps {_seconds(timing.with_approvals)} "
                    f"(approved in Slack at +{_seconds(timing.approved_at)})"
                )
            click.echo(line)
            click.echo(f"   incident status: {click.style(incident.status, bold=True)}")
            for note in incident.notes:
                click.secho(f"   note: {note}", fg="yellow")
    click.secho("\nThe account before → after", bold=True)
    before, after = result.observed["before"], result.observed["after"]
    for key in before:
        click.echo(f"   {key}: {before[key]} → {after[key]}")
    _echo_slack(result)
    delivered = sum(p.delivered for p in result.pump)
    failed = sum(p.failed for p in result.pump)
    click.secho("\nDelivery", bold=True)
    click.echo(
        f"   {delivered} queue messages handled, {failed} failed, {result.dead_letters} in the dead-letter queue"
    )
    click.echo(
        f"   {len(result.approvals)} approval(s) given by clicking Approve in Slack: "
        + ", ".join(f"{a.id[:8]}… {a.status} by {a.decided_by}" for a in result.approvals)
    )
    if report_dir is not None:
        written = write_rehearsal_reports(result.reports, report_dir, report_format)
        click.secho(f"\nPost-incident reports ({len(written)}) in {report_dir}", bold=True)
        for path in written:
            click.echo(f"   {path}")
