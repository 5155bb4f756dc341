"""``clampdown report``: a post-incident report from the audit trail (Markdown, HTML or JSON)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from clampdown.cli.common import echo_json, format_option, incident_store_options, open_incident_store

F = TypeVar("F", bound=Callable[..., Any])


def _create_report_dir(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Create the directory before anything runs: a rehearsal is not run for reports it cannot write."""
    if value is not None:
        try:
            value.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise click.BadParameter(f"cannot create {value}: {exc.strerror or exc}") from None
    return value


def report_dir_options(func: F) -> F:
    """``--report-dir`` / ``--report-format``: one post-incident report per incident of a rehearsal."""
    func = click.option(
        "--report-format",
        type=click.Choice(["md", "html", "json"]),
        default="md",
        show_default=True,
        help="Format of the reports --report-dir writes (as clampdown report --format).",
    )(func)
    return click.option(
        "--report-dir",
        type=click.Path(file_okay=False, writable=True, path_type=Path),
        callback=_create_report_dir,
        help="Write one post-incident report per incident (INCIDENT_ID.md|html|json) into this directory.",
    )(func)


def write_rehearsal_reports(docs: Mapping[str, Mapping[str, Any]], directory: Path, output_format: str) -> list[Path]:
    """Write the reports; a directory that cannot be written is a clear error, not a traceback."""
    from clampdown.report import write_reports

    try:
        return write_reports(docs, directory, output_format)
    except OSError as exc:
        raise click.ClickException(f"cannot write reports to {directory}: {exc.strerror or exc}") from None


@click.command("report")
@click.argument("incident_id")
@format_option("md", "html", "json")
@incident_store_options
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the report to this file instead of standard output.",
)
def command(incident_id: str, output_format: str, table: str | None, stage: str | None, output: Path | None) -> None:
    """Write a post-incident report for INCIDENT_ID from the incident store.

    \b
    For someone who was not there: a summary (what happened, when, severity, status, time
    to containment), open follow-ups (failed steps with how to undo them, approvals
    waiting, steps a guardrail held back, notes), the timeline, every delivery of the
    finding, each action with the state before and after it, approvals (who, when,
    decision) and rollbacks.

    \b
    --format html writes one self-contained page (inline CSS, no scripts, nothing
    fetched); md suits a ticket or a wiki; json is the document both are made from.
    Every value that came from an event is escaped.

    \b
    The store: --table NAME (DynamoDB; region from AWS_REGION), or --stage STAGE to read
    CLAMPDOWN_INCIDENTS_TABLE from .chalice/config.json, or $CLAMPDOWN_INCIDENTS_TABLE.
    Exit code 1 if the incident does not exist or the store cannot be read.

    \b
    Examples:
      clampdown report inc-3f2a9c... --stage prod --format html -o incident.html
      clampdown report inc-3f2a9c... --table clampdown-incidents > incident.md
      clampdown report inc-3f2a9c... --stage prod --format json | jq .follow_ups
    """
    from clampdown.report import IncidentNotFound, build_report, render

    store = open_incident_store(table, stage)
    try:
        doc = build_report(store, incident_id)
    except IncidentNotFound as exc:
        raise click.ClickException(str(exc)) from None
    if output_format == "json" and output is None:
        echo_json(doc)
        return
    text = render(doc, output_format)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"report written to {output}", err=True)
