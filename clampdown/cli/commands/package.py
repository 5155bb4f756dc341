"""``clampdown package``: validate → bundle → policies → rules → templates → ``chalice package``.

Also the options the deployment commands (bundle, policy, rules, package) share.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from clampdown.cli.common import (
    SHIPPED_PLAYBOOKS,
    default_playbooks_dir,
    echo_json,
    format_option,
    load_library,
    playbooks_option,
)

F = TypeVar("F", bound=Callable[..., Any])
FALLBACK_REGION = "us-east-1"


def project_option(func: F) -> F:
    return click.option(
        "--project-dir",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        default=None,
        help="The Chalice project (app.py, .chalice/) [default: the nearest one above the current directory, "
        "else this checkout].",
    )(func)


def stage_option(func: F) -> F:
    return click.option("--stage", default="dev", show_default=True, help="Stage of .chalice/config.json.")(func)


def resolve_project(project_dir: Path | None) -> Path:
    from clampdown.deploy.stage import find_project_dir

    found = find_project_dir(project_dir or Path.cwd()) or find_project_dir(SHIPPED_PLAYBOOKS.parent)
    if found is None:
        raise click.ClickException("no Chalice project found (app.py and .chalice/config.json); use --project-dir")
    return found


def project_library(project: Path, playbooks_dir: Path | None) -> Any:
    """The validated library: --playbooks, else the project's playbooks/, else the default."""
    local = project / "playbooks"
    return load_library(playbooks_dir or (local if local.is_dir() else default_playbooks_dir()))


def load_stage(project: Path, stage: str) -> Any:
    """The stage of the resolved project; an unknown stage exits 2 like every other ``--stage``."""
    from clampdown.cli.common import load_stage as load

    return load(stage, project)


@click.command("package")
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@stage_option
@playbooks_option
@project_option
@format_option("text", "json")
@click.option("--json", "as_json", is_flag=True, hidden=True, help="Same as --format json (kept for old scripts).")
def command(
    outdir: Path, stage: str, playbooks_dir: Path | None, project_dir: Path | None, output_format: str, as_json: bool
) -> None:
    """Build the deployable stack for a stage into OUTDIR.

    \b
    Steps: validate the playbooks, write the bundle (chalicelib/_bundle/playbooks.json),
    the stage's IAM policy files (.chalice/policy-*.json), the EventBridge rules and the
    merge template, then run `chalice package --stage S --merge-template ... OUTDIR`.
    OUTDIR gets sam.json, deployment.zip, merge-template.json and member-role.json.
    Needs AWS_DEFAULT_REGION (set to us-east-1 when missing: the template uses
    ${AWS::Region}, so it deploys to any region). No AWS credentials are needed.

    \b
    Examples:
      clampdown package --stage dev out/
      clampdown package --stage prod --playbooks my-playbooks/ out/prod
      clampdown package --stage prod --format json out/prod | jq .rules
    \b
    Then:
      aws cloudformation package --template-file out/sam.json --s3-bucket BUCKET \\
          --use-json --output-template-file out/packaged.json
      aws cloudformation deploy --template-file out/packaged.json --stack-name clampdown-dev \\
          --capabilities CAPABILITY_NAMED_IAM CAPABILITY_AUTO_EXPAND
    """
    from clampdown.deploy.build import BuildError, package, summary
    from clampdown.deploy.policy import PolicyError
    from clampdown.deploy.rules import RuleError
    from clampdown.deploy.stage import StageError

    if not os.environ.get("AWS_DEFAULT_REGION"):
        region = os.environ.get("AWS_REGION") or FALLBACK_REGION
        click.echo(f"AWS_DEFAULT_REGION is not set: using {region} for packaging (chalice needs one).", err=True)
        os.environ["AWS_DEFAULT_REGION"] = region
    project = resolve_project(project_dir)
    load_stage(project, stage)  # an unknown stage is a usage error (exit 2), before any work
    library = project_library(project, playbooks_dir)
    try:
        result = package(project, stage, outdir, library)
    except (BuildError, StageError, PolicyError, RuleError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json or output_format == "json":
        echo_json(summary(result))
        return
    click.echo(f"{result.template}  ({len(result.functions)} functions: {', '.join(result.functions)})")
    click.echo(f"{result.zip_path}  ({result.zip_size / 1024:.0f} KiB)")
    click.echo(f"{result.member_template}  (member-account role)")
    click.echo(
        f"{len(result.rules.rules)} EventBridge rule(s); policy actions: "
        + ", ".join(f"{kind} {count}" for kind, count in result.policy_actions.items())
    )
    for name, reason in result.rules.skipped.items():
        click.echo(f"no rule for playbook {name}: {reason}", err=True)
    click.secho(f"packaged stage {stage} in {result.seconds:.1f} s", fg="green")
