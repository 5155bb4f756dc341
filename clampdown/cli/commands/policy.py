"""``clampdown policy``: the least-privilege IAM policies of a stage."""

from __future__ import annotations

import json
from pathlib import Path

import click

from clampdown.cli.commands.package import load_stage, project_library, project_option, resolve_project, stage_option
from clampdown.cli.common import echo_json, playbooks_option


@click.command("policy")
@stage_option
@click.option("--member", is_flag=True, help="The member-account role's policy (containment only).")
@click.option(
    "--for",
    "kind",
    type=click.Choice(["responder", "interactions"]),
    default="responder",
    show_default=True,
    help="Which function's policy: the responder, or the Slack routes and approval sweep.",
)
@click.option("--write", is_flag=True, help="Write every iam_policy_file the stage names in .chalice/config.json.")
@click.option("--account", default=None, help="Account id to put in ARNs [default: *].")
@click.option("--region", default=None, help="Region to put in ARNs [default: *].")
@playbooks_option
@project_option
def command(
    stage: str,
    member: bool,
    kind: str,
    write: bool,
    account: str | None,
    region: str | None,
    playbooks_dir: Path | None,
    project_dir: Path | None,
) -> None:
    """Print (or write) the IAM policy generated from the playbooks and the stage.

    \b
    Containment permissions come from the actions the enabled playbooks use; the
    rest is what the runtime needs, scoped to the stage's queue, tables, kill switch,
    evidence bucket, log groups, member roles and notification secrets. The deployed
    template uses the same statements with exact ARNs; here unknown accounts and
    regions are `*` unless given.

    \b
    Examples:
      clampdown policy --stage prod
      clampdown policy --stage prod --for interactions --account 111122223333 --region eu-west-1
      clampdown policy --member > member-policy.json
      clampdown policy --stage dev --write
    """
    from clampdown.deploy.build import BuildError, discover_functions, write_policy_files
    from clampdown.deploy.policy import PolicyError, policy_for, render_literal
    from clampdown.deploy.stage import StageError

    project = resolve_project(project_dir)
    loaded = load_stage(project, stage)
    try:
        library = project_library(project, playbooks_dir).with_overrides(loaded.settings.overrides)
        if write:
            for path in write_policy_files(loaded, library, discover_functions(project)):
                click.echo(f"wrote {path}")
            return
        document = policy_for("member" if member else kind, loaded, library)
    except (PolicyError, StageError, BuildError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    rendered = render_literal(document, region=region, account=account)
    size = len(json.dumps(rendered, separators=(",", ":")))
    click.echo(f"{len(rendered['Statement'])} statements, {size} characters", err=True)
    echo_json(rendered)
