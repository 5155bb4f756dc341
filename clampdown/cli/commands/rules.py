"""``clampdown rules``: the EventBridge rules the enabled playbooks need."""

from __future__ import annotations

import json
from pathlib import Path

import click

from clampdown.cli.commands.package import load_stage, project_library, project_option, resolve_project, stage_option
from clampdown.cli.common import echo_json, format_option, playbooks_option


@click.command("rules")
@stage_option
@format_option("text", "json")
@playbooks_option
@project_option
def command(stage: str, output_format: str, playbooks_dir: Path | None, project_dir: Path | None) -> None:
    """Print the EventBridge rules generated from the playbooks' `match:` patterns.

    \b
    Every rule pins `source` and `detail-type` (a pattern that does not is completed
    from what it implies, or refused); identical and overlapping patterns are merged
    into one rule so an event is queued once (a rule past EventBridge's 4,096-character
    pattern quota is split, and says so); no rule accepts more than its playbooks.
    The stage gives CLAMPDOWN_OVERRIDES (disabled playbooks) and CLAMPDOWN_CUSTOM_SOURCES.

    \b
    Examples:
      clampdown rules
      clampdown rules --stage prod --format json
      clampdown rules --playbooks my-playbooks/
    """
    from clampdown.deploy.rules import RuleError, generate_rules

    project = resolve_project(project_dir)
    loaded = load_stage(project, stage)
    try:
        library = project_library(project, playbooks_dir).with_overrides(loaded.settings.overrides)
        ruleset = generate_rules(library, loaded.settings.custom_sources)
    except (RuleError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if output_format == "json":
        echo_json(ruleset.to_dict())
        return
    for rule in ruleset.rules:
        click.secho(f"rule {loaded.prefix}-{rule.name}  ({len(rule.text)} characters)", bold=True)
        click.echo(f"  playbooks: {', '.join(rule.playbooks)}")
        for note in rule.notes:
            click.echo(f"  note: {note}")
        click.echo("  " + json.dumps(rule.pattern, indent=2).replace("\n", "\n  "))
    for name, reason in ruleset.skipped.items():
        click.echo(f"no rule for playbook {name}: {reason}")
    click.echo(f"{len(ruleset.rules)} rule(s) for {len(library.enabled)} enabled playbook(s)")
