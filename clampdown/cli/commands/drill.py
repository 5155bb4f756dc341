"""``clampdown drill``: rehearse an incident on the embedded AWS and score the response."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from clampdown.cli.common import default_playbooks_dir, echo_json, format_option, playbooks_option


def _decider(mode: str) -> Any:
    def decide(approval: Any) -> tuple[str | None, str]:
        if mode == "auto":
            return "approved", "drill (auto-approved)"
        if mode == "deny":
            return "denied", "drill (auto-denied)"
        answer = click.confirm(
            f"Approve step {approval.step_key} of incident {approval.incident_id}?", default=True, err=True
        )
        return ("approved" if answer else "denied"), "drill operator"

    return decide


@click.command("drill")
@click.argument("scenario", required=False)
@click.option("--list", "list_only", is_flag=True, help="List the drill scenarios.")
@click.option(
    "--approvals",
    type=click.Choice(["auto", "deny", "prompt"]),
    default="auto",
    show_default=True,
    help="How approval requests are answered: approve all, deny all, or ask on the terminal.",
)
@playbooks_option
@format_option("text", "json")
def command(
    scenario: str | None, list_only: bool, approvals: str, playbooks_dir: Path | None, output_format: str
) -> None:
    """Rehearse an incident on an embedded AWS (moto) and score the response.

    \b
    Builds the scenario's resources, injects its real findings through the real responder
    path (queue, Lambda handler, approvals), then checks what was contained, when, and what
    was missed. Exit code 1 when something expected was not achieved.

    \b
    Examples:
      clampdown drill --list
      clampdown drill compromised-iam-credentials
      clampdown drill compromised-ec2-instance --approvals deny
      clampdown drill public-s3-exposure --approvals prompt --format json
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
    echo = (lambda _: None) if output_format == "json" else (lambda line: click.echo(line, err=True))
    result = run_drill(drill, playbooks_dir or default_playbooks_dir(), decide=_decider(approvals), echo=echo)
    total = len(result.scores)
    if output_format == "json":
        echo_json(
            {
                "drill": drill.name,
                "score": {"met": result.points, "total": total},
                "expectations": [
                    {"what": s.what, "met": s.met, "action": s.action, "seconds": s.at} for s in result.scores
                ],
                "timeline": [{"seconds": round(t, 3), "what": what} for t, what in result.timeline],
                "incidents": [{"id": i.id, "type": i.type, "status": i.status} for i in result.exercise.incidents],
            }
        )
    else:
        click.secho(f"\nDrill {drill.name}: {drill.title}", bold=True)
        click.secho("\nTimeline (t = 0 when the first finding was published)", bold=True)
        for at, what in result.timeline:
            click.echo(f"  +{at:7.3f} s  {what}")
        color = "green" if result.points == total else "red"
        click.secho(f"\nScore {result.points}/{total}", bold=True, fg=color)
        for score in result.scores:
            if score.met:
                when = f"+{score.at:.3f} s" if score.at is not None else "already so"
                click.echo(f"  {click.style('✔', fg='green')} {score.what}  ({when}, {score.action})")
            else:
                click.echo(f"  {click.style('✘', fg='red')} {score.what}  MISSED (expected from {score.action})")
    if result.points != total:
        raise SystemExit(1)
