"""Options and helpers shared by the commands, so they all behave the same way."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: The playbook library shipped with Clampdown (a checkout's ``playbooks/``).
SHIPPED_PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


def default_playbooks_dir() -> Path:
    """``$CLAMPDOWN_PLAYBOOKS``, else ``./playbooks`` when it exists, else the shipped library."""
    env = os.environ.get("CLAMPDOWN_PLAYBOOKS")
    if env:
        return Path(env)
    local = Path("playbooks")
    return local if local.is_dir() else SHIPPED_PLAYBOOKS


def playbooks_option(func: F) -> F:
    return click.option(
        "--playbooks",
        "playbooks_dir",
        type=click.Path(exists=True, path_type=Path),
        default=None,
        help="Playbook file or directory [default: $CLAMPDOWN_PLAYBOOKS, ./playbooks, or the shipped library].",
    )(func)


def format_option(*choices: str) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        return click.option(
            "--format",
            "output_format",
            type=click.Choice(choices),
            default=choices[0],
            show_default=True,
            help="Output format; json is for machines and stays stable.",
        )(func)

    return decorate


def load_library(playbooks_dir: Path | None) -> Any:
    """The validated library, or exit 1 with every error (file:line: path: reason)."""
    from clampdown.playbooks.loader import PlaybookValidationError
    from clampdown.playbooks.loader import load_library as load

    path = playbooks_dir or default_playbooks_dir()
    try:
        library = load([path])
    except PlaybookValidationError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        raise click.ClickException(f"the playbooks in {path} are not valid (run: clampdown validate {path})") from None
    for warning in library.warnings:
        click.echo(str(warning), err=True)
    return library


def echo_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=False, default=str, ensure_ascii=False))


#: Where ``--stage`` looks for the stage's environment (the current directory first, then the checkout).
CHALICE_CONFIGS = (Path(".chalice") / "config.json", SHIPPED_PLAYBOOKS.parent / ".chalice" / "config.json")


def incident_store_options(func: F) -> F:
    """``--table`` / ``--stage``: which incident store (DynamoDB table) a command reads."""
    func = click.option(
        "--stage",
        help="Read the table name (CLAMPDOWN_INCIDENTS_TABLE) from this stage in .chalice/config.json.",
    )(func)
    return click.option(
        "--table",
        help="The incidents DynamoDB table (region from AWS_REGION/AWS_DEFAULT_REGION) "
        "[default: $CLAMPDOWN_INCIDENTS_TABLE].",
    )(func)


def stage_environment(stage: str, configs: tuple[Path, ...] = CHALICE_CONFIGS) -> dict[str, Any]:
    """A stage's environment variables from the Chalice config (the app's, overridden by the stage's).

    Raises ``click.ClickException`` naming what is missing, ``click.UsageError`` for an unknown stage.
    """
    path = next((p for p in configs if p.is_file()), None)
    if path is None:
        raise click.ClickException(
            f"--stage {stage}: no .chalice/config.json here or in {configs[-1].parent.parent}; use --table NAME"
        )
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"--stage {stage}: cannot read {path}: {exc}; use --table NAME") from None
    stages = config.get("stages") if isinstance(config, dict) else None
    if not isinstance(stages, dict) or stage not in stages:
        known = ", ".join(sorted(stages)) if isinstance(stages, dict) else "none"
        raise click.UsageError(f"--stage {stage}: no such stage in {path} (stages: {known})")
    env: dict[str, Any] = dict(config.get("environment_variables") or {})
    env.update((stages[stage] or {}).get("environment_variables") or {})
    return env


def resolve_incidents_table(table: str | None, stage: str | None) -> str:
    """``--table``, else the stage's ``CLAMPDOWN_INCIDENTS_TABLE``, else the environment's; else a clear error."""
    if table and stage:
        raise click.UsageError("give --table or --stage, not both")
    if table:
        return table
    if not stage:
        from_env = os.environ.get("CLAMPDOWN_INCIDENTS_TABLE")
        if from_env:
            return from_env
        raise click.UsageError("which incident store? give --table NAME or --stage STAGE")
    value = stage_environment(stage).get("CLAMPDOWN_INCIDENTS_TABLE")
    if not isinstance(value, str) or not value:
        raise click.ClickException(
            f"--stage {stage}: CLAMPDOWN_INCIDENTS_TABLE is not set to a table name in the stage's "
            f"environment_variables (found {value!r}); use --table NAME"
        )
    return value


def open_incident_store(table: str | None, stage: str | None) -> Any:
    """The DynamoDB incident store that ``--table`` / ``--stage`` name (boto3 reads region and endpoint)."""
    name = resolve_incidents_table(table, stage)
    import boto3
    from botocore.exceptions import NoRegionError

    from chalicelib.incidents import DynamoIncidentStore

    try:
        client = boto3.client("dynamodb")
    except NoRegionError:
        raise click.ClickException("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION)") from None
    return DynamoIncidentStore(client, name)
