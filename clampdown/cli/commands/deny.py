"""``clampdown deny``: refuse a pending approval without Slack; the step is closed as denied."""

from __future__ import annotations

import click

from clampdown.cli.commands.approve import decide, open_target, target_options


@click.command("deny")
@click.argument("approval_id")
@click.option("--reason", required=True, help="Why (recorded on the step and the audit trail).")
@target_options
@click.option("--run-now", is_flag=True, help="Close the step here instead of through the responder's queue.")
def command(
    approval_id: str,
    reason: str,
    stage: str | None,
    table: str | None,
    queue_url: str | None,
    region: str | None,
    run_now: bool,
) -> None:
    """Deny a pending request (when Slack is unavailable).

    \b
    Example:
      clampdown deny Qx3m9... --reason "expected: pentest" --stage prod
    """
    decide(open_target(stage, table, queue_url, region), approval_id, "denied", reason, run_now)
