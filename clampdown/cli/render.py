"""Human-readable text for results (colours are dropped by click when not on a terminal)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from click import style

SEVERITY_COLORS = {
    "CRITICAL": "magenta",
    "HIGH": "red",
    "MEDIUM": "yellow",
    "LOW": "blue",
    "INFORMATIONAL": "white",
}


def _clean(text: Any, limit: int = 160) -> str:
    """One line of untrusted text: control characters (terminal escapes) removed, length capped."""
    value = "".join(ch if ch.isprintable() else " " for ch in str(text))
    return value if len(value) <= limit else value[: limit - 1] + "…"


def describe_resource(resource: Mapping[str, Any] | None) -> str:
    if not resource:
        return "the finding"
    label = resource.get("name") or resource.get("id") or resource.get("arn") or "?"
    return f"{resource['kind']} {_clean(label, 100)}"


def describe_actor(actor: Mapping[str, Any]) -> str:
    who = actor.get("principal_arn") or actor.get("user_name") or actor.get("principal_id")
    parts = [_clean(who, 120)] if who else []
    if actor.get("user_type"):
        parts.append(f"({_clean(actor['user_type'], 40)})")
    if actor.get("access_key_id"):
        parts.append(f"key {_clean(actor['access_key_id'], 40)}")
    if actor.get("source_ip"):
        parts.append(f"from {_clean(actor['source_ip'], 60)}")
    return " ".join(parts)


def render_finding(finding: Mapping[str, Any]) -> list[str]:
    label = finding["severity_label"]
    severity = f"{label} {finding['severity']:g}"
    head = (
        f"{style('finding', bold=True)} {finding['source']}  {_clean(finding['type'], 120)}  "
        f"{style(severity, fg=SEVERITY_COLORS.get(label, 'white'))}  "
        f"account {_clean(finding['account'], 20)} {_clean(finding['region'], 20)}"
    )
    lines = [head, f"    {_clean(finding['title'])}"]
    if finding["resources"]:
        lines.append("    resources: " + ", ".join(describe_resource(r) for r in finding["resources"]))
    if finding.get("actor"):
        lines.append(f"    actor: {describe_actor(finding['actor'])}")
    flags = [name for name in ("archived", "sample") if finding.get(name)]
    if flags:
        lines.append(f"    ({', '.join(flags)})")
    return lines


def render_step(number: int, step: Mapping[str, Any]) -> list[str]:
    name = step["action"]
    head = f"    {number}. {style(name, bold=True)} → {describe_resource(step.get('target'))}  [{step['mode']}]"
    if step.get("skipped"):
        return [f"{head}  {style('skipped: ' + _clean(step['skipped'], 200), fg='yellow')}"]
    if step.get("refused"):
        return [f"{head}  {style('refused: ' + _clean(step['refused'], 200), fg='yellow')}"]
    lines = [head]
    if step.get("params"):
        lines.append(f"         params: {_clean(json.dumps(step['params'], sort_keys=True, default=str), 300)}")
    for call in step.get("calls", ()):
        lines.append(f"         {call_text(call)}")
    for note in step.get("notes", ()):
        lines.append(f"         {_clean(note, 200)}")
    if step.get("already_contained"):
        lines.append("         already contained: nothing to do")
    return lines


def call_text(call: Mapping[str, Any]) -> str:
    """``iam:UpdateAccessKey(UserName="bob", Status="Inactive")``, each value cleaned and capped."""
    params = ", ".join(f"{k}={_clean(json.dumps(v, default=str), 80)}" for k, v in (call.get("params") or {}).items())
    return f"{style(_clean(call.get('call', '?'), 80), fg='cyan')}({params})"


def state_lines(label: str, state: Any, indent: str) -> list[str]:
    """A before/after state, one ``key: value`` line per field (values as compact JSON, capped)."""
    if not isinstance(state, Mapping):
        return [f"{indent}{label}: {_clean(json.dumps(state, default=str, sort_keys=True), 300)}"]
    if not state:
        return [f"{indent}{label}: (nothing)"]
    lines = [f"{indent}{label}:"]
    for key, value in state.items():
        text = json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)
        lines.append(f"{indent}  {_clean(key, 80)}: {_clean(text, 300)}")
    return lines


def render_evaluation(result: Mapping[str, Any]) -> str:
    lines = [style(f"== {_clean(result['event'], 400)}", bold=True)]  # file names and S3 keys are untrusted too
    if result.get("error"):
        lines.append(style(f"   error: {_clean(result['error'], 400)}", fg="red"))
        return "\n".join(lines)
    for finding in result["findings"]:
        lines.extend(render_finding(finding))
    if not result["matches"]:
        lines.append(style("  no playbook matched", dim=True))
    for plan in result["matches"]:
        lines.append(
            f"  {style('✔', fg='green')} playbook {style(plan['playbook'], bold=True)}  (mode: {plan['mode']})"
        )
        for number, step in enumerate(plan["steps"], start=1):
            lines.extend(render_step(number, step))
    for rejected in result.get("rejected", ()):
        lines.append(
            f"  {style('-', fg='yellow')} playbook {rejected['playbook']} matched but {_clean(rejected['reason'], 300)}"
        )
    for miss in result.get("not_matched", ()):
        lines.append(f"  {style('✘', fg='red')} playbook {miss['playbook']}: {_clean(miss['reason'], 300)}")
    return "\n".join(lines)
