"""``clampdown doctor``: check a deployed stage end to end."""

from __future__ import annotations

import os
from pathlib import Path

import click

from clampdown.cli.common import echo_json, format_option, load_library, load_stage, playbooks_option


@click.command("doctor")
@click.option("--stage", required=True, help="The deployed stage (from .chalice/config.json).")
@click.option("--region", help="The stage's region [default: $AWS_REGION / $AWS_DEFAULT_REGION].")
@click.option(
    "--member-region", "member_regions", multiple=True, help="Regions to try the member role in (repeatable)."
)
@click.option(
    "--member-account",
    "member_accounts",
    multiple=True,
    help="Member accounts to check besides the stage's (repeatable).",
)
@click.option(
    "--canary/--no-canary", default=True, show_default=True, help="Send a canary message through the real path."
)
@click.option("--canary-timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for the canary.")
@click.option(
    "--peek",
    is_flag=True,
    help="Read up to 10 dead-lettered messages to say why they failed (each read counts as a receive).",
)
@playbooks_option
@format_option("text", "json")
def command(
    stage: str,
    region: str | None,
    member_regions: tuple[str, ...],
    member_accounts: tuple[str, ...],
    canary: bool,
    canary_timeout: float,
    peek: bool,
    playbooks_dir: Path | None,
    output_format: str,
) -> None:
    """Check that a deployed stage is healthy, naming each fault and its fix.

    \b
    Rules exist, are enabled, pin source and detail-type, target the queue, and the queue's
    policy lets them send; the dead-letter queue is empty (or how many failed; --peek reads up
    to 10 to say why); alarms exist; the member role can be assumed in each configured account
    and region and reads itself there; the kill switch's state; a canary message reaches the
    responder (with its latency). Each check reports its own errors: an API that cannot be
    reached fails that check, and the others still run. Exit code 1 when a check fails; a kill
    switch that is on is a warning. Uses your AWS credentials: read-only calls, plus one SQS
    message for the canary.

    \b
    The canary covers queue → event source mapping → Lambda → incident table. It does not
    cover EventBridge's delivery to the queue: the rules accept only AWS sources (which
    PutEvents cannot publish) and your configured custom sources, and a canary source would
    widen them. The rules, their targets and the queue policy are checked one by one instead.

    \b
    Examples:
      clampdown doctor --stage prod
      clampdown doctor --stage prod --member-region eu-south-2 --format json
      clampdown doctor --stage prod --no-canary --peek
    """
    import boto3

    from clampdown.doctor import Doctor, render

    loaded = load_stage(stage)
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise click.UsageError("which region? give --region or set AWS_REGION")
    doctor = Doctor(
        stage=loaded,
        library=load_library(playbooks_dir),
        session=boto3.session.Session(region_name=region),
        region=region,
        member_regions=member_regions,
        member_accounts=member_accounts,
        canary_timeout_s=canary_timeout,
        peek=peek,
    )
    checks = doctor.run(canary=canary)
    if output_format == "json":
        echo_json(
            {"stage": stage, "region": region, "healthy": doctor.healthy, "checks": [c.to_dict() for c in checks]}
        )
    else:
        colors = {"✔": "green", "!": "yellow", "✘": "red"}
        for line in render(checks):
            click.echo(click.style(line[0], fg=colors[line[0]]) + line[1:])
        click.secho("healthy" if doctor.healthy else "unhealthy", bold=True, fg="green" if doctor.healthy else "red")
    if not doctor.healthy:
        raise SystemExit(1)
