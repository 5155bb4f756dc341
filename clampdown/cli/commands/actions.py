"""``clampdown actions``: the action registry, as playbook authors need it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click

from clampdown.cli.common import echo_json, format_option


def describe(action: Any) -> dict[str, Any]:
    """An action class as data: what it does, on what, with which parameters and IAM permissions."""
    properties: Mapping[str, Any] = action.schema.get("properties") or {}
    required = set(action.schema.get("required") or ())
    return {
        "name": action.name,
        "summary": action.summary,
        "resource_kinds": list(action.resource_kinds),
        "changes_aws": action.changes_aws,
        "reversible": action.reversible,
        "default_on_error": action.default_on_error,
        "params": {name: {**dict(spec), "required": name in required} for name, spec in sorted(properties.items())},
        "permissions": list(action.permissions),
    }


def _param_words(name: str, spec: Mapping[str, Any]) -> str:
    kind = spec.get("type") or ("one of " + "|".join(map(str, spec["enum"])) if "enum" in spec else "any")
    words = f"{name} ({kind}{', required' if spec.get('required') else ''}"
    if "default" in spec:
        words += f", default {json.dumps(spec['default'])}"
    return words + ")"


def render_text(actions: list[dict[str, Any]]) -> str:
    lines = []
    for a in actions:
        on = ", ".join(a["resource_kinds"]) or "the finding"
        traits = [
            "changes AWS" if a["changes_aws"] else "changes nothing in AWS",
            "reversible" if a["reversible"] else "not reversible",
            f"on_error {a['default_on_error']}",
        ]
        lines.append(f"{click.style(a['name'], bold=True)}  [{'; '.join(traits)}]")
        lines.append(f"    {a['summary']}")
        lines.append(f"    acts on:     {on}")
        params = [_param_words(n, s) for n, s in a["params"].items()]
        lines.append(f"    params:      {', '.join(params) or 'none'}")
        lines.append(f"    permissions: {', '.join(a['permissions']) or 'none'}")
    lines.append(f"{len(actions)} action(s)")
    return "\n".join(lines)


@click.command("actions")
@click.argument("names", nargs=-1)
@format_option("text", "json")
def command(names: tuple[str, ...], output_format: str) -> None:
    """List the actions playbooks can use: what each does, the resource kinds it acts on,
    its parameters and the exact IAM permissions it needs.

    \b
    The permissions are what `clampdown policy` grants for the actions a library uses
    (reads of the target's live tags and ARN for the guardrails included).

    \b
    Examples:
      clampdown actions
      clampdown actions iam.revoke-role-sessions ec2.isolate-instance
      clampdown actions --format json | jq '.actions[] | {name, permissions}'
    """
    from chalicelib.actions import REGISTRY

    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise click.UsageError(f"unknown action(s): {', '.join(unknown)} (known: {', '.join(sorted(REGISTRY))})")
    actions = [describe(REGISTRY[n]) for n in (names or sorted(REGISTRY))]
    if output_format == "json":
        echo_json({"actions": actions})
    else:
        click.echo(render_text(actions))
