"""``clampdown simulate``: what the playbooks would do with these events, touching nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from clampdown.cli.common import echo_json, format_option, load_library, overrides_stage_option, playbooks_option
from clampdown.cli.render import render_evaluation


def simulate_events(paths: tuple[str, ...], library: Any, *, explain: bool) -> Iterator[dict[str, Any]]:
    """One result per event read, in input order (the JSON shape of ``--format json``)."""
    from chalicelib.findings import InvalidEvent
    from chalicelib.planner import evaluate
    from clampdown.inputs import read_events

    for item in read_events(paths):
        if item.error:
            yield {"event": item.source, "error": item.error, "findings": [], "matches": []}
            continue
        assert item.event is not None
        try:
            evaluation = evaluate(item.event, library)
        except InvalidEvent as exc:
            yield {"event": item.source, "error": f"invalid event: {exc}", "findings": [], "matches": []}
            continue
        result: dict[str, Any] = {
            "event": item.source,
            "findings": [f.to_dict() for f in evaluation.findings],
            "matches": [plan.to_dict() for plan in evaluation.plans],
        }
        if evaluation.rejected:
            result["rejected"] = [
                {"playbook": r.playbook, "finding": r.finding, "reason": r.reason} for r in evaluation.rejected
            ]
        if explain:
            result["not_matched"] = [
                {"playbook": name, **_mismatch(library, name, evaluation.event)}
                for name in library.patterns.names
                if name not in evaluation.matched
            ]
        yield result


def _mismatch(library: Any, name: str, event: Any) -> dict[str, Any]:
    mismatch = library.patterns.explain(name, event)
    if mismatch is None:  # matched the whole event but not one finding of a split Security Hub event
        return {"reason": "matched no single finding of the event"}
    return {
        "path": ".".join(mismatch.path),
        "clause": mismatch.clause,
        "reason": str(mismatch),
    }


@click.command("simulate")
@click.argument("events", nargs=-1, required=True, type=str)
@playbooks_option
@format_option("text", "json")
@click.option(
    "--explain",
    is_flag=True,
    help="For each playbook that did not match, show the field and clause that failed.",
)
@overrides_stage_option
def command(
    events: tuple[str, ...], playbooks_dir: Path | None, output_format: str, explain: bool, stage: str | None
) -> None:
    """Run playbooks against events and print the plans, without touching AWS.

    \b
    EVENTS are files, directories (read recursively), or - for stdin. A file may hold one
    event, a JSON array, JSON-lines, a CloudTrail log file ({"Records": [...]}) or a
    get-findings export ({"Findings": [...]}); any of them gzipped (stdin too).
    --stage applies that stage's CLAMPDOWN_OVERRIDES (disable, modes, exclude).

    \b
    For each event: the normalized findings, the playbooks that match, and each planned
    step with its resolved parameters and the exact AWS calls it would make.
    Exit code 1 if any event could not be read.

    \b
    Examples:
      clampdown simulate tests/data/corpus/guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json
      clampdown simulate --explain cloudtrail-logs/
      aws guardduty get-findings ... | clampdown simulate --format json -
      cat 123456789012_CloudTrail_us-east-1_20261123T0000Z_abc.json.gz | clampdown simulate -
      clampdown simulate --stage prod tests/data/corpus/guardduty/
    """
    library = load_library(playbooks_dir, stage)
    failed = 0
    if output_format == "json":
        results = list(simulate_events(events, library, explain=explain))
        failed = sum(1 for r in results if "error" in r)
        echo_json({"results": results})
    else:
        read = findings = matched = 0
        for result in simulate_events(events, library, explain=explain):
            read += 1
            failed += "error" in result
            findings += len(result.get("findings") or ())
            matched += bool(result.get("matches"))
            click.echo(render_evaluation(result))
        summary = f"{read} event(s) read: {findings} finding(s); {matched} event(s) matched a playbook"
        if failed:
            summary += f"; {failed} could not be read (marked 'error:' above)"
        click.secho(summary, fg="red" if failed else None)
    if failed:
        raise SystemExit(1)
