"""Options and helpers shared by the commands, so they all behave the same way."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
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


def overrides_stage_option(func: F) -> F:
    """``--stage``: test, simulate, replay or cover the library as a stage tunes it."""
    return click.option(
        "--stage",
        default=None,
        help="Apply this stage's CLAMPDOWN_OVERRIDES (disabled playbooks, modes, exclusions) from "
        ".chalice/config.json, as the deployed function does.",
    )(func)


def load_library(playbooks_dir: Path | None, stage: str | None = None) -> Any:
    """The validated library (tuned by the stage's overrides when ``stage`` is given), or exit 1 with
    every error (file:line: path: reason); an unknown stage exits 2."""
    from clampdown.playbooks.loader import PlaybookValidationError
    from clampdown.playbooks.loader import load_library as load

    overrides = stage_overrides(stage)  # a wrong --stage fails before any work
    path = playbooks_dir or default_playbooks_dir()
    try:
        library = load([path])
    except PlaybookValidationError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        raise click.ClickException(f"the playbooks in {path} are not valid (run: clampdown validate {path})") from None
    for warning in library.warnings:
        click.echo(str(warning), err=True)
    return apply_overrides(library, stage, overrides)


def apply_overrides(library: Any, stage: str | None, overrides: Mapping[str, Any]) -> Any:
    """``library.with_overrides``; overrides that name unknown playbooks or modes exit 1."""
    if not overrides:
        return library
    try:
        return library.with_overrides(overrides)
    except ValueError as exc:
        raise click.ClickException(f"--stage {stage}: CLAMPDOWN_OVERRIDES: {exc}") from None


def echo_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=False, default=str, ensure_ascii=False))


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


def load_stage(name: str, project_dir: Path | None = None) -> Any:
    """``--stage NAME`` for every command: the stage of ``project_dir``, else of the nearest
    ``.chalice/config.json`` at or above the current directory, else of this checkout.

    An unknown stage is a usage error (exit 2); a missing or unreadable configuration exits 1.
    Both messages start with ``--stage NAME:``.
    """
    from clampdown.deploy.stage import StageError, UnknownStage
    from clampdown.deploy.stage import load_stage as load

    try:
        return load(name, project_dir)
    except UnknownStage as exc:
        raise click.UsageError(f"--stage {name}: {exc}") from None
    except StageError as exc:
        raise click.ClickException(f"--stage {name}: {exc}") from None


def stage_environment(name: str, project_dir: Path | None = None) -> dict[str, str]:
    """A stage's environment variables (the app's, overridden by the stage's), via :func:`load_stage`."""
    from clampdown.deploy.stage import StageError

    stage = load_stage(name, project_dir)
    try:
        return dict(stage.environment)
    except StageError as exc:
        raise click.ClickException(f"--stage {name}: {exc}") from None


def stage_overrides(name: str | None) -> dict[str, Any]:
    """The stage's ``CLAMPDOWN_OVERRIDES`` (disable, modes, exclude), or none without ``--stage``."""
    if not name:
        return {}
    from clampdown.deploy.stage import StageError

    stage = load_stage(name)
    try:
        return dict(stage.settings.overrides)
    except StageError as exc:
        raise click.ClickException(f"--stage {name}: {exc}") from None


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
