"""``clampdown rollback``: undo an incident's applied steps in reverse order."""

from __future__ import annotations

import getpass
import os

import click

from clampdown.cli.common import echo_json, format_option, incident_store_options, resolve_incidents_table


def _settings(table: str | None, stage: str | None) -> object:
    from chalicelib.settings import Settings
    from clampdown.cli.common import stage_environment

    environ = dict(os.environ)
    if stage:
        environ.update(stage_environment(stage))
    environ["CLAMPDOWN_INCIDENTS_TABLE"] = resolve_incidents_table(table, stage)
    return Settings.from_env(environ)


@click.command("rollback")
@click.argument("incident_id")
@incident_store_options
@click.option("--dry-run", is_flag=True, help="Show the calls that would undo each step; change nothing.")
@click.option("--step", "steps", multiple=True, help="Only this step key (repeatable).")
@format_option("text", "json")
def command(
    incident_id: str, table: str | None, stage: str | None, dry_run: bool, steps: tuple[str, ...], output_format: str
) -> None:
    """Undo an incident's applied steps in reverse order, from their recorded before-states.

    \b
    Rolled-back steps are never re-contained by redeliveries of the same finding.
    Run with --dry-run first: it prints the exact API calls. Exit code 1 if any undo failed.

    \b
    Examples:
      clampdown rollback inc-48382eed707a7b786e1b --stage prod --dry-run
      clampdown rollback inc-48382eed707a7b786e1b --stage prod
    """
    from chalicelib.rollback import UnknownIncident, rollback_incident
    from chalicelib.wiring import build_runner

    runner = build_runner(_settings(table, stage))  # type: ignore[arg-type]
    who = f"{getpass.getuser()} (clampdown rollback)"
    try:
        report = rollback_incident(runner, incident_id, by=who, dry_run=dry_run, keys=set(steps) or None)
    except UnknownIncident as exc:
        raise click.ClickException(str(exc)) from None
    if output_format == "json":
        echo_json({"incident": incident_id, "dry_run": dry_run, "steps": report.steps, "skipped": report.skipped})
    else:
        if not report.steps:
            click.echo("nothing to roll back: no applied step")
        for item in report.steps:
            result = item["result"]
            status = "planned" if dry_run else result.get("status")
            click.secho(f"{item['action']} ({item['key']}): {status}", bold=True)
            for call in result.get("calls", ()) if dry_run else result.get("calls_made", ()):
                click.echo(f"    {call['call']}({', '.join(f'{k}={v}' for k, v in call['params'].items())})")
            if result.get("reason"):
                click.echo(f"    {result['reason']}")
        for item in report.skipped:
            click.echo(f"{item['action']}: not rolled back ({item['reason']})")
    if report.failed:
        raise SystemExit(1)
