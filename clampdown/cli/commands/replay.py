"""``clampdown replay``: what the playbooks would have done over a history of events, touching nothing."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from clampdown.cli.common import echo_json, format_option, load_library, overrides_stage_option, playbooks_option
from clampdown.cli.render import _clean, describe_resource


class TimeBound(click.ParamType):
    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        from clampdown.replay import parse_time_bound

        if isinstance(value, datetime):
            return value
        try:
            return parse_time_bound(str(value), datetime.now(UTC))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class ProgressLine:
    """One self-rewriting line on stderr, at most five times a second, only on a terminal."""

    def __init__(self) -> None:
        self.stream = sys.stderr
        self.enabled = self.stream.isatty()
        self.last = 0.0

    def __call__(self, summary: Any) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.2:
            return
        self.last = now
        line = (
            f"replay: {summary.files:,} files, {summary.events:,} events, {summary.matched_events:,} matched, "
            f"{summary.error_count:,} errors, {summary.rate:,.0f} events/s"
        )
        self.stream.write("\r" + line + "\x1b[K")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self.last:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def render_summary(doc: dict[str, Any]) -> str:
    """The text summary of ``clampdown replay`` (every value from an event is cleaned)."""
    style = click.style
    counts = doc["counts"]
    lines = [
        style("Replay summary", bold=True),
        f"  files read        {counts['files']:,}",
        f"  events read       {counts['events']:,}",
    ]
    window = doc["window"]
    if window["since"] or window["until"]:
        lines.append(
            f"  window            {window['since'] or '…'} → {window['until'] or '…'}  "
            f"({counts['outside_window']:,} events outside, {counts['without_time']:,} without a time)"
        )
    if doc["time_range"]["first"]:
        lines.append(f"  event times       {doc['time_range']['first']} → {doc['time_range']['last']}")
    lines += [
        f"  findings          {counts['findings']:,}",
        f"  events matched    {counts['matched_events']:,}  ({counts['plans']:,} plans)",
        f"  speed             {doc['events_per_second']:,.0f} events/s in {doc['elapsed_seconds']:.1f} s",
        "",
        style("Matches per playbook", bold=True),
    ]
    for playbook in doc["playbooks"]:
        rejected = f"  (+{playbook['rejected']:,} rejected by conditions)" if playbook["rejected"] else ""
        lines.append(f"  {playbook['matches']:>10,}  {playbook['name']}{rejected}")
    if not doc["playbooks"]:
        lines.append("  (no playbook enabled)")
    lines += ["", style("Actions that would have run", bold=True)]
    for action in doc["actions"]:
        modes = ", ".join(f"{mode} {n:,}" for mode, n in action["by_mode"].items())
        skipped = f"; {action['skipped']:,} skipped" if action["skipped"] else ""
        lines.append(f"  {action['would_run']:>10,}  {action['action']}  ({modes or 'none'}{skipped})")
    if not doc["actions"]:
        lines.append("  none")
    top = doc["top_resources"]
    lines += ["", style("Top resources by planned actions" + ("" if top["exact"] else " (approximate)"), bold=True)]
    for item in top["items"]:
        where = "/".join(_clean(item[k], 40) for k in ("account", "region") if item.get(k))
        lines.append(f"  {item['actions']:>10,}  {describe_resource(item)}" + (f"  [{where}]" if where else ""))
    if not top["items"]:
        lines.append("  none")
    errors = doc["errors"]
    if errors["total"]:
        lines += ["", style(f"Errors: {errors['total']:,}", fg="red", bold=True)]
        for error in errors["listed"]:
            where, message = error["location"], error["message"]
            text = message if message.startswith(where) else f"{where}: {message}"
            lines.append(f"  {_clean(text, 400)}")
        if errors["not_listed"]:
            lines.append(f"  … and {errors['not_listed']:,} more")
    return "\n".join(lines)


@click.command("replay")
@click.argument("sources", nargs=-1, required=True, type=str)
@playbooks_option
@click.option("--since", type=TimeBound(), help="Only events at or after this time (ISO-8601, or 7d/12h/30m ago).")
@click.option("--until", type=TimeBound(), help="Only events before this time (ISO-8601, or 7d/12h/30m ago).")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=0),
    default=0,
    help="Worker processes reading files in parallel [default: 0, one per CPU up to 8; 1: no workers].",
)
@format_option("text", "json")
@overrides_stage_option
def command(
    sources: tuple[str, ...],
    playbooks_dir: Path | None,
    since: datetime | None,
    until: datetime | None,
    jobs: int,
    output_format: str,
    stage: str | None,
) -> None:
    """Replay a history of events through the playbooks (dry run) and summarise what would have run.

    \b
    SOURCES are files, directories (read recursively), - for stdin, or s3://BUCKET/PREFIX
    (objects listed and streamed with your AWS credentials). Accepted: single events, JSON
    arrays, JSON-lines, CloudTrail log files (whole AWSLogs/ trees as CloudTrail lays them
    out in S3) and get-findings exports ({"Findings": [...]}); any of them gzipped (stdin too).
    --stage applies that stage's CLAMPDOWN_OVERRIDES (disable, modes, exclude).

    \b
    Every event takes the same offline path as `clampdown simulate`, so the plans are the
    same; nothing is called in AWS except reading the S3 objects. Replay streams: memory
    stays flat however long the history, and files are shared among --jobs processes.
    The summary lists events read, findings, matches per playbook, actions that would
    have run (by mode), the resources most acted on and the errors (first 20, with file
    and record or line). A counter runs on stderr when it is a terminal.

    \b
    --since is inclusive and --until exclusive, on each event's own time, to the second.
    CloudTrail folders and files delivered before --since are not read at all, nor those
    delivered more than 24 h after --until.
    Exit code 1 if any event could not be read or evaluated.

    \b
    Examples:
      clampdown replay cloudtrail-logs/AWSLogs/ --since 2026-11-01 --until 2026-11-08
      clampdown replay s3://my-trail-bucket/AWSLogs/123456789012/CloudTrail/ --since 7d
      clampdown replay --format json findings-export.json > replay.json
      clampdown replay --stage prod cloudtrail-logs/AWSLogs/ --since 30d
    """
    from clampdown.replay import TimeWindow, default_jobs, replay

    try:
        window = TimeWindow(since, until)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--since' / '--until'") from None
    library = load_library(playbooks_dir, stage)
    counter = ProgressLine()
    try:
        summary = replay(sources, library, window=window, progress=counter, jobs=jobs or default_jobs())
    finally:
        counter.done()
    doc = summary.to_dict()
    if output_format == "json":
        echo_json(doc)
    else:
        click.echo(render_summary(doc))
    if summary.error_count:
        sys.exit(1)
