"""``clampdown approve``: decide a pending approval without Slack (and the helpers deny/approvals share).

The decision is recorded in the stage's incident table (once: a request already decided stays
decided) and carried out by the deployed responder through its queue, or here with ``--run-now``.
The decider recorded is ``cli:<local user> (<AWS caller ARN>)``.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def target_options(func: F) -> F:
    options = [
        click.option("--stage", help="Read the table and queue from this stage of .chalice/config.json."),
        click.option("--table", help="Incidents table [default: $CLAMPDOWN_INCIDENTS_TABLE or the stage's]."),
        click.option("--queue-url", help="Responder queue [default: $CLAMPDOWN_QUEUE_URL or the stage's]."),
        click.option("--region", help="AWS region [default: $AWS_REGION, $AWS_DEFAULT_REGION]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@dataclasses.dataclass
class Target:
    settings: Any
    session: Any
    store: Any


def open_target(stage: str | None, table: str | None, queue_url: str | None, region: str | None) -> Target:
    """Settings (stage config < environment < options), a boto3 session and the incident store."""
    import boto3

    from chalicelib.incidents import DynamoIncidentStore
    from chalicelib.settings import Settings
    from clampdown.cli.common import stage_environment

    env = {**(stage_environment(stage) if stage else {}), **os.environ}
    for name, value in (("CLAMPDOWN_INCIDENTS_TABLE", table), ("CLAMPDOWN_QUEUE_URL", queue_url)):
        if value:
            env[name] = value
    if region:
        env["AWS_REGION"] = region
    settings = Settings.from_env(env)
    if not settings.incidents_table:
        raise click.ClickException("no incidents table: give --table, --stage or set CLAMPDOWN_INCIDENTS_TABLE")
    from botocore.exceptions import NoRegionError

    session = boto3.session.Session(region_name=settings.region)
    try:
        client = session.client("dynamodb")
    except NoRegionError:
        raise click.ClickException("no AWS region: give --region or set AWS_REGION") from None
    return Target(settings, session, DynamoIncidentStore(client, settings.incidents_table))


def decider(session: Any) -> tuple[str, str]:
    """(recorded decider, caller ARN): the local user and the AWS identity behind the CLI."""
    try:
        arn = str(session.client("sts").get_caller_identity()["Arn"])
    except Exception:  # noqa: BLE001 - the local user is still worth recording
        arn = "unknown AWS identity"
    return f"cli:{getpass.getuser()} ({arn})", arn


def decide(target: Target, approval_id: str, status: str, reason: str | None, run_now: bool) -> None:
    """Record the decision, carry it out (queue or here), and report; exit 1 when nothing was done."""
    from chalicelib.notify.decisions import Decisions, SqsCommands, is_actor

    by, arn = decider(target.session)
    approval = target.store.get_approval(approval_id)
    if approval is None:
        raise click.ClickException(f"no approval {approval_id!r} in {target.settings.incidents_table}")
    incident = target.store.get_incident(approval.incident_id)
    mine = incident is not None and (is_actor(incident, arn) or is_actor(incident, getpass.getuser()))
    if target.settings.separation_of_duties and mine:
        raise click.ClickException("separation of duties: you are the actor of this finding")
    send = _runner(target) if run_now else SqsCommands(lambda: target.session.client("sqs"), target.settings.queue_url)
    decisions = Decisions(target.store, send)
    outcome = decisions.decide(approval_id, status, by, reason)
    if outcome.result == "already-decided" and outcome.approval is not None:
        done = outcome.approval
        again = decisions.requeue(done) if done.status == status else None
        if again is not None and again.queued:
            click.echo(
                f"{approval_id} was already {done.status} by {done.decided_by}; its step was waiting: sent again"
            )
            _report(target, done.incident_id, done.step_key, run_now)
            return
        raise click.ClickException(f"{approval_id} was already {done.status} by {done.decided_by}")
    if outcome.result == "expired":
        raise click.ClickException(f"{approval_id} had expired; it is now marked expired and its step closed")
    if not outcome.queued:
        raise click.ClickException(f"{approval_id} is {status}, but it could not be carried out: {outcome.error}")
    click.echo(f"{approval_id} {status} by {by}")
    _report(target, approval.incident_id, approval.step_key, run_now)


def _runner(target: Target) -> Callable[[Any], None]:
    """--run-now: the responder, built here, handles the command instead of the queue."""
    from chalicelib.playbooks.library import Library
    from chalicelib.playbooks.model import Playbook
    from chalicelib.wiring import build_responder

    # A decision carries out a recorded step: no playbook is consulted, so the library matches nothing.
    nothing = Playbook.from_dict(
        {
            "name": "cli-decisions",
            "description": "matches no event",
            "match": {"source": ["clampdown.none"]},
            "steps": [],
        }
    )
    settings = dataclasses.replace(target.settings, overrides={})
    responder = build_responder(settings, library=Library([nothing]), session=target.session)

    def run(command: Any) -> None:
        responder.handle(command)

    return run


def _report(target: Target, incident_id: str, step_key: str, run_now: bool) -> None:
    if not run_now:
        click.echo(f"queued for the responder ({target.settings.queue_url})")
        return
    step = target.store.get_step(incident_id, step_key)
    if step is not None:
        click.echo(f"step {step.step + 1} {step.action}: {step.status}" + (f" ({step.reason})" if step.reason else ""))


@click.command("approve")
@click.argument("approval_id")
@target_options
@click.option("--run-now", is_flag=True, help="Carry out the step here instead of through the responder's queue.")
def command(
    approval_id: str, stage: str | None, table: str | None, queue_url: str | None, region: str | None, run_now: bool
) -> None:
    """Approve a pending request (when Slack is unavailable).

    \b
    Examples:
      clampdown approvals list --stage prod
      clampdown approve Qx3m9... --stage prod
      clampdown approve Qx3m9... --table clampdown-incidents --run-now
    """
    decide(open_target(stage, table, queue_url, region), approval_id, "approved", None, run_now)
