"""``clampdown playbooks``: the library at a glance, and what it covers (``--coverage``)."""

from __future__ import annotations

from pathlib import Path

import click

from clampdown.cli.common import format_option, load_library, overrides_stage_option, playbooks_option


def render_list(report: object) -> str:
    """One block per playbook: name, mode, enabled; what it matches; its steps (effective modes)."""
    from clampdown.coverage import Coverage

    assert isinstance(report, Coverage)
    lines = []
    for p in report.playbooks:
        state = "enabled" if p.enabled else click.style("disabled", fg="yellow")
        lines.append(f"{click.style(p.name, bold=True)}  [{p.mode}, {state}]")
        lines.append(f"    matches: {p.matches}")
        lines.append(f"    steps:   {', '.join(s.words() for s in p.steps)}")
    s = report.summary()
    lines.append(
        f"{s['playbooks']} playbook(s), {s['enabled']} enabled: "
        + ", ".join(f"{n} {kind}" for kind, n in s["by_kind"].items())
    )
    return "\n".join(lines)


@click.command("playbooks")
@playbooks_option
@click.option(
    "--coverage",
    "show_coverage",
    is_flag=True,
    help="Report coverage: the CloudTrail API calls and known GuardDuty finding types each playbook "
    "responds to, and the GuardDuty types without containment.",
)
@format_option("text", "md", "json")
@overrides_stage_option
def command(playbooks_dir: Path | None, show_coverage: bool, output_format: str, stage: str | None) -> None:
    """List the playbook library, or report what it covers.

    \b
    Without --coverage: every playbook with its mode, whether it is enabled, what it
    matches (in words, from its pattern and conditions) and its steps with their
    effective modes. With --coverage: the same as the coverage page docs/playbooks.md
    (that page is this command's md output for the shipped library), computed from the
    playbooks and the known GuardDuty finding types (clampdown/data/).

    \b
    Examples:
      clampdown playbooks
      clampdown playbooks --coverage
      clampdown playbooks --coverage --format md > docs/playbooks.md
      clampdown playbooks --coverage --format json --playbooks my-playbooks/
      clampdown playbooks --coverage --stage prod      # as the prod stage's overrides tune it
    """
    from clampdown.coverage import coverage, render_json, render_markdown

    report = coverage(load_library(playbooks_dir, stage))
    if output_format == "json":
        if show_coverage:
            click.echo(render_json(report), nl=False)
        else:
            from clampdown.cli.common import echo_json

            echo_json({"playbooks": [p.to_dict() for p in report.playbooks], "summary": report.summary()})
    elif show_coverage:
        click.echo(render_markdown(report), nl=False)
    elif output_format == "md":
        rows = ["| playbook | mode | enabled | matches | steps |", "| --- | --- | --- | --- | --- |"]
        for p in report.playbooks:
            steps = "<br>".join(s.words() for s in p.steps)
            matches = p.matches.replace("|", "\\|")
            rows.append(f"| `{p.name}` | {p.mode} | {'yes' if p.enabled else 'no'} | {matches} | {steps} |")
        click.echo("\n".join(rows))
    else:
        click.echo(render_list(report))
