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
    from chalicelib.playbooks.loader import PlaybookValidationError
    from chalicelib.playbooks.loader import load_library as load

    path = playbooks_dir or default_playbooks_dir()
    try:
        library = load([path])
    except PlaybookValidationError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        raise click.ClickException(
            f"the playbooks in {path} are not valid (run: clampdown validate {path})"
        ) from None
    for warning in library.warnings:
        click.echo(str(warning), err=True)
    return library


def echo_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=False, default=str, ensure_ascii=False))
