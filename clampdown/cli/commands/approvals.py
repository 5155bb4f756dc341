"""``clampdown approvals list``: the approval requests in a stage's incident table."""

from __future__ import annotations

import time

import click

from clampdown.cli.commands.approve import open_target, target_options
from clampdown.cli.common import echo_json, format_option

STATUSES = ("pending", "approved", "denied", "expired", "all")


@click.group("approvals")
def command() -> None:
    """Approval requests waiting for a human (see also: clampdown approve, clampdown deny).

    \b
    The table comes from --table, $CLAMPDOWN_INCIDENTS_TABLE or the stage's
    .chalice/config.json (of the current directory or above, else of this checkout).

    \b
    Examples:
      clampdown approvals list --stage prod
      clampdown approvals list --stage prod --status all --format json
      clampdown approve APPROVAL_ID --stage prod
    """


@command.command("list")
@click.option("--status", type=click.Choice(STATUSES), default="pending", show_default=True)
@target_options
@format_option("text", "json")
def list_approvals(
    status: str, stage: str | None, table: str | None, queue_url: str | None, region: str | None, output_format: str
) -> None:
    """List approval requests, oldest first (default: the pending ones).

    \b
    One line per request: its id, status (and who decided), the incident, the step's
    action and target, when it was requested and, while pending, when it expires.
    Decide with `clampdown approve ID` or `clampdown deny ID --reason ...`.

    \b
    Examples:
      clampdown approvals list --stage prod
      clampdown approvals list --status expired --table clampdown-prod-incidents --region eu-west-1
      clampdown approvals list --stage prod --format json | jq '.approvals[].id'
    """
    from clampdown.cli.render import _clean

    target = open_target(stage, table, queue_url, region)
    approvals = target.store.list_approvals(None if status == "all" else status)
    approvals.sort(key=lambda a: a.requested_at)
    rows = []
    for approval in approvals:
        step = target.store.get_step(approval.incident_id, approval.step_key)
        rows.append(
            {
                **approval.to_dict(),
                "action": step.action if step else None,
                "target": step.target if step else None,
                "step_status": step.status if step else None,
            }
        )
    if output_format == "json":
        echo_json({"approvals": rows})
        return
    if not rows:
        click.echo(f"no {status} approvals" if status != "all" else "no approvals")
        return
    now = time.time()
    for row in rows:
        target_label = (row["target"] or {}).get("name") or (row["target"] or {}).get("id") or "the finding"
        left = row["expires_at"] - now
        when = f"expires in {int(left // 60)} min" if left > 0 else "overdue"
        decided = f" by {_clean(row['decided_by'], 120)}" if row["decided_by"] else ""
        click.echo(
            f"{row['id']}  {row['status']}{decided}  {row['incident_id']}  {row['action']} on "
            f"{_clean(target_label, 80)}  requested {row['requested_at']}"
            + (f"  {when}" if row["status"] == "pending" else "")
        )
