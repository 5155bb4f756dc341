"""``clampdown drill``: rehearse an incident on the embedded AWS and score the response."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from clampdown.cli.commands.report import report_dir_options, write_rehearsal_reports
from clampdown.cli.common import default_playbooks_dir, echo_json, format_option, load_library, playbooks_option
from clampdown.cli.render import describe_resource


def _decider(mode: str) -> Any:
    """Who clicks Approve or Deny in Slack, and which (the name is the clicking user's)."""

    def decide(approval: Any, step: Any) -> tuple[str | None, str]:
        if mode == "auto":
            return "approved", "drill-auto-approve"
        if mode == "deny":
            return "denied", "drill-auto-deny"
        what = f"{step.action} on {describe_resource(step.target)}" if step is not None else approval.step_key
        answer = click.confirm(f"Approve {what} (incident {approval.incident_id})?", default=True, err=True)
        return ("approved" if answer else "denied"), "drill-operator"

    return decide


@click.command("drill")
@click.argument("scenario", required=False)
@click.option("--list", "list_only", is_flag=True, help="List the drill scenarios.")
@click.option(
    "--approvals",
    type=click.Choice(["auto", "deny", "prompt"]),
    default="auto",
    show_default=True,
    help="How approval requests are answered in Slack: approve all, deny all, or ask on the terminal.",
)
@playbooks_option
@format_option("text", "json")
@report_dir_options
def command(
    scenario: str | None,
    list_only: bool,
    approvals: str,
    playbooks_dir: Path | None,
    output_format: str,
    report_dir: Path | None,
    report_format: str,
) -> None:
    """Rehearse an incident on an embedded AWS (moto) and score the response.

    \b
    Builds the scenario's resources, injects its findings through the real responder path
    (queue, Lambda handler, alerts and approval requests to a local Slack stand-in, Approve
    or Deny clicked in Slack), then checks what was contained, when, in which order, and
    what was missed. Exit code 1 when something expected was not achieved.
    --report-dir writes the post-incident report of every incident of the drill.

    \b
    Examples:
      clampdown drill --list
      clampdown drill compromised-iam-credentials
      clampdown drill compromised-ec2-instance --approvals deny
      clampdown drill public-s3-exposure --approvals prompt --format json
      clampdown drill compromised-lambda-function --report-dir reports/ --report-format html
    """
    from clampdown.drills import DRILLS, run_drill

    if list_only or not scenario:
        for drill in DRILLS.values():
            click.echo(f"{drill.name:<30} {drill.title}")
        if not list_only:
            raise click.UsageError("name a scenario (see the list above)")
        return
    if scenario not in DRILLS:
        raise click.BadParameter(f"unknown scenario {scenario!r} (known: {', '.join(DRILLS)})", param_hint="SCENARIO")
    drill = DRILLS[scenario]
    load_library(playbooks_dir)  # invalid playbooks: every problem as FILE:LINE: PATH: REASON, exit 1
    echo = (lambda _: None) if output_format == "json" else (lambda line: click.echo(line, err=True))
    result = run_drill(
        drill,
        playbooks_dir or default_playbooks_dir(),
        decide=_decider(approvals),
        echo=echo,
        reports=report_dir is not None,
    )
    written = (
        write_rehearsal_reports(result.exercise.reports, report_dir, report_format) if report_dir is not None else []
    )
    total = len(result.scores)
    if output_format == "json":
        echo_json(
            {
                "drill": drill.name,
                "score": {"met": result.points, "total": total},
                "expectations": [
                    {"what": s.what, "met": s.met, "action": s.action, "seconds": s.at, "problem": s.problem}
                    for s in result.scores
                ],
                "timeline": [{"seconds": round(t, 3), "what": what} for t, what in result.timeline],
                "delivery": {
                    "failed": sum(p.failed for p in result.exercise.pump),
                    "dead_letters": result.exercise.dead_letters,
                },
                "incidents": [{"id": i.id, "type": i.type, "status": i.status} for i in result.exercise.incidents],
                "reports": [str(p) for p in written],
            }
        )
    else:
        click.secho(f"\nDrill {drill.name}: {drill.title}", bold=True)
        click.secho("\nTimeline (t = 0 when the first finding was published)", bold=True)
        for at, what in result.timeline:
            click.echo(f"  +{at:7.3f} s  {what}")
        failed = sum(p.failed for p in result.exercise.pump)
        if failed or result.exercise.dead_letters:
            click.secho(
                f"\n{failed} queue message(s) failed, {result.exercise.dead_letters} in the dead-letter queue: "
                "the responder could not handle the drill's findings (its log above says why)",
                fg="red",
            )
        color = "green" if result.points == total else "red"
        click.secho(f"\nScore {result.points}/{total}", bold=True, fg=color)
        for score in result.scores:
            if score.met:
                when = f"+{score.at:.3f} s" if score.at is not None else "already so"
                click.echo(f"  {click.style('✔', fg='green')} {score.what}  ({when}, {score.action})")
            else:
                why = f": {score.problem}" if score.problem else ""
                click.echo(f"  {click.style('✘', fg='red')} {score.what}  MISSED (expected from {score.action}){why}")
        for incident in result.exercise.incidents:
            for note in incident.notes:
                click.secho(f"  note on {incident.id}: {note}", fg="yellow")
        if written:
            click.secho(f"\nPost-incident reports ({len(written)}) in {report_dir}", bold=True)
            for path in written:
                click.echo(f"  {path}")
    if result.points != total:
        raise SystemExit(1)
