"""``clampdown test``: run the playbooks' own test cases (``tests:``) through the offline path."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from clampdown.cli.common import (
    apply_overrides,
    default_playbooks_dir,
    echo_json,
    format_option,
    overrides_stage_option,
    playbooks_option,
    stage_overrides,
)
from clampdown.cli.render import _clean

LABELS = {"pass": ("PASS", "green"), "fail": ("FAIL", "red"), "error": ("ERROR", "red")}
DIFF_COLORS = {"+": "green", "-": "red", "@": "cyan"}


def render_suite(result: Any, elapsed: float) -> str:
    """One line per case; failures with their problems and an expected/actual diff; a summary line."""
    lines: list[str] = []
    for playbook in result.playbooks:
        if not playbook.cases:
            label = click.style("FAIL" if playbook.problem else "NO TESTS", fg="red" if playbook.problem else "yellow")
            lines.append(f"{label}  {playbook.name}" + (f": {playbook.problem}" if playbook.problem else ""))
            continue
        for case in playbook.cases:
            text, color = LABELS[case.status]
            lines.append(f"{click.style(text, fg=color, bold=True)}  {playbook.name}: {_clean(case.name, 200)}")
            lines.extend(click.style(f"      note: {_clean(note, 400)}", fg="yellow") for note in case.notes)
            if case.status == "pass":
                continue
            lines.extend(f"      {_clean(problem, 400)}" for problem in case.problems)
            for line in case.diff():
                lines.append("      " + click.style(_clean(line, 400), fg=DIFF_COLORS.get(line[:1])))
        if playbook.problem:
            lines.append(f"{click.style('FAIL', fg='red', bold=True)}  {playbook.name}: {playbook.problem}")
    counts = result.to_dict()["summary"]
    summary = (
        f"{counts['passed']} passed, {counts['failed']} failed, {counts['errors']} error(s) "
        f"in {counts['cases']} case(s) of {counts['playbooks']} playbook(s)"
    )
    noted = sum(len(case.notes) for playbook in result.playbooks for case in playbook.cases)
    if noted:
        summary += f"; {noted} step mode(s) as the stage's overrides set them (notes above)"
    if counts["playbooks_failed"]:
        summary += f"; {counts['playbooks_failed']} playbook(s) without a positive and a negative case"
    lines.append(click.style(f"{summary} ({elapsed:.2f} s)", fg="green" if result.passed else "red", bold=True))
    return "\n".join(lines)


@click.command("test")
@click.argument("playbook", nargs=-1, type=str)
@playbooks_option
@click.option(
    "--strict", is_flag=True, help="Also fail a playbook without at least one matching and one non-matching case."
)
@format_option("text", "json")
@overrides_stage_option
def command(
    playbook: tuple[str, ...], playbooks_dir: Path | None, strict: bool, output_format: str, stage: str | None
) -> None:
    """Run the playbooks' test cases (their tests: section) without touching AWS.

    \b
    PLAYBOOK selects playbooks by name or glob (gd-*); default: every playbook in the library.
    Each case names an event (a file relative to the playbook file, or inline) and what the
    playbook must do with it:
      tests:
        - name: a user's key used from Tor is deactivated
          event: ../tests/data/corpus/guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json
          expect:
            match: true
            steps:
              - {action: iam.deactivate-access-key, target: access-key, mode: auto}
              - {action: notify.log, params: {channel: "#sec"}}

    \b
    match: true means the playbook acts (its pattern matched and its conditions kept the
    finding). steps, when given, must be the planned steps one for one: the same action,
    and target (kind, id, name or ARN; null for the finding), mode, skipped and params
    where given; params is a subset (keys not named are not compared).

    \b
    --stage tests the library as that stage tunes it (CLAMPDOWN_OVERRIDES: modes and
    exclusions apply; playbooks it disables are still tested). A step whose mode the
    stage changed, where the case expects the shipped mode, passes with a note.

    \b
    Exit code 1 if any case fails or cannot run (e.g. a missing event file), or with
    --strict if a playbook lacks a positive or a negative case; 2 for an unknown playbook
    or stage.

    \b
    Examples:
      clampdown test
      clampdown test gd-iam-compromised-credentials --playbooks playbooks/
      clampdown test --strict --format json 'gd-*'
      clampdown test --stage prod --playbooks my-playbooks/
    """
    from clampdown.playbook_tests import load_test_library, run_suite
    from clampdown.playbooks.loader import PlaybookValidationError

    overrides = stage_overrides(stage)
    path = playbooks_dir or default_playbooks_dir()
    try:
        library = load_test_library([path])
    except PlaybookValidationError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        raise click.ClickException(f"the playbooks in {path} are not valid (run: clampdown validate {path})") from None
    shipped, library = library, apply_overrides(library, stage, overrides)
    started = time.perf_counter()
    try:
        result = run_suite(library, playbook, strict=strict, shipped=shipped if overrides else None)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="PLAYBOOK") from None
    if output_format == "json":
        echo_json(result.to_dict())
    else:
        click.echo(render_suite(result, time.perf_counter() - started))
    if not result.passed:
        sys.exit(1)
