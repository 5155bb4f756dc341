"""Post-incident reports from the audit trail: JSON (the document), Markdown and self-contained HTML.

:func:`build_report` reads one incident from an :class:`~chalicelib.incidents.IncidentStore` into a
plain document. :func:`sections` turns it into titled blocks (key/values, tables, lists, JSON), which
:func:`to_markdown` and :func:`to_html` render; each renderer escapes every value it writes, because
nearly every string in an incident came from an event (finding titles, resource names, actors).

* Markdown: text is collapsed onto one line, ``& < >`` become entities and ``\\ ` * _ [ ] | ~``
  are backslash-escaped, so no value can open a link, an image, HTML, a table cell or a new block;
  JSON goes in fenced blocks (ASCII only) whose fence is longer than any backtick run inside.
* HTML: every value through :func:`html.escape`; inline CSS, no scripts, no external resources,
  and a Content-Security-Policy that forbids scripts anyway.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib.incidents import IncidentStore, StepRecord

FORMAT = 1
#: Skip reasons that mean a guardrail stopped a step someone may want to run by hand.
GUARDRAIL_REASONS = ("protected:", "kill switch")
CONTAINED = frozenset({"contained", "already-contained"})


class IncidentNotFound(LookupError):
    pass


# -- the document -------------------------------------------------------------------------------
def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _seconds_between(start: str | None, end: str | None) -> float | None:
    first, last = _parse(start), _parse(end)
    return round((last - first).total_seconds(), 3) if first and last else None


def describe_target(target: Mapping[str, Any] | None) -> str:
    if not target:
        return "the finding"
    return f"{target.get('kind')} {target.get('name') or target.get('id') or target.get('arn')}"


def _action(step: StepRecord) -> dict[str, Any]:
    result = step.result or {}
    plan = step.plan or {}
    return {
        "key": step.key,
        "playbook": step.playbook,
        "step": step.step,
        "action": step.action,
        "target": step.target,
        "target_label": describe_target(step.target),
        "mode": step.mode,
        "status": step.status,
        "reason": step.reason,
        "attempts": step.attempts,
        "approved_by": step.approved_by,
        "created_at": step.created_at,
        "updated_at": step.updated_at,
        "before": result.get("before"),
        "after": result.get("after"),
        "calls": result.get("calls_made") or [],
        "planned_calls": plan.get("calls") or [],
        "error_code": result.get("error_code"),
        "undo": result.get("undo") or [],
        "evidence": result.get("evidence_keys") or [],
        "output": result.get("output"),
        "rollback": result.get("rollback"),
        "history": step.history,
    }


def _timeline(store: IncidentStore, incident_id: str, steps: Sequence[StepRecord]) -> list[dict[str, Any]]:
    """The audit log, plus the history of steps the log has no entry for (every step change is logged
    together with its history entry, so a step that is in the log is there in full)."""
    entries: list[dict[str, Any]] = [
        {"time": e.time, "kind": e.kind, "message": e.message, "step_key": e.data.get("key")}
        for e in store.timeline(incident_id)
    ]
    logged = {e["step_key"] for e in entries if e["step_key"]}
    for step in steps:
        if step.key in logged:
            continue
        for change in step.history:
            reason = f" ({change['reason']})" if change.get("reason") else ""
            entries.append(
                {
                    "time": change.get("time", ""),
                    "kind": "step",
                    "message": f"{step.action} on {describe_target(step.target)}: {change.get('status')}{reason}",
                    "step_key": step.key,
                }
            )
    return sorted(entries, key=lambda e: str(e["time"]))


def _follow_ups(
    actions: Sequence[Mapping[str, Any]], approvals: Sequence[Mapping[str, Any]], notes: Iterable[str]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for action in actions:
        what = f"{action['action']} on {action['target_label']} ({action['playbook']} step {action['step'] + 1})"
        status, reason = action["status"], action["reason"] or ""
        if status == "failed":
            undo = action["undo"]
            tail = "; undo what it changed by hand (below)" if undo else ""
            code = f" ({action['error_code']})" if action["error_code"] else ""
            out.append({"kind": "failed-step", "message": f"{what} failed{code}: {reason}{tail}", "undo": undo})
        elif status == "pending-approval":
            out.append({"kind": "pending-approval", "message": f"{what} waits for approval: {reason}", "undo": []})
        elif status == "skipped" and reason.startswith(GUARDRAIL_REASONS):
            out.append({"kind": "guardrail-skip", "message": f"{what} was not applied: {reason}", "undo": []})
        elif status == "dry-run":
            out.append({"kind": "dry-run", "message": f"{what} was only planned (dry-run mode)", "undo": []})
    for approval in approvals:
        if approval["status"] == "expired":
            out.append(
                {"kind": "expired-approval", "message": f"approval for {approval['action']} expired", "undo": []}
            )
    out.extend({"kind": "note", "message": note, "undo": []} for note in notes)
    return out


def build_report(store: IncidentStore, incident_id: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything the audit trail knows about one incident, as a plain (JSON) document."""
    incident = store.get_incident(incident_id)
    if incident is None:
        raise IncidentNotFound(f"no incident {incident_id!r} in the store")
    steps = store.list_steps(incident_id)
    actions = [_action(s) for s in steps]
    by_key = {a["key"]: a for a in actions}
    approvals = []
    for approval in sorted(
        (a for a in store.list_approvals(status=None) if a.incident_id == incident_id), key=lambda a: a.requested_at
    ):
        step = by_key.get(approval.step_key, {})
        approvals.append(
            {
                "id": approval.id,
                "step_key": approval.step_key,
                "action": step.get("action", "?"),
                "target_label": step.get("target_label", "?"),
                "status": approval.status,
                "requested_at": approval.requested_at,
                "approvers": approval.approvers,
                "decided_by": approval.decided_by,
                "decided_at": approval.decided_at,
                "reason": approval.reason,
            }
        )
    timeline = _timeline(store, incident_id, steps)
    rollbacks = [
        {
            "step_key": a["key"],
            "action": a["action"],
            "target_label": a["target_label"],
            "time": next((h.get("time") for h in a["history"] if h.get("status") == "rolled-back"), a["updated_at"]),
            "result": a["rollback"],
        }
        for a in actions
        if a["status"] == "rolled-back" or a["rollback"]
    ]
    contained_at = min(
        (h["time"] for a in actions for h in a["history"] if h.get("status") in CONTAINED and h.get("time")),
        default=None,
    )
    finding = incident.finding
    deliveries = [e for e in store.timeline(incident_id) if e.kind == "finding"]
    statuses: dict[str, int] = {}
    for action in actions:
        statuses[action["status"]] = statuses.get(action["status"], 0) + 1
    return {
        "format": FORMAT,
        "generated_at": (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "incident": {
            "id": incident.id,
            "title": incident.title,
            "type": incident.type,
            "severity": incident.severity,
            "severity_label": incident.severity_label,
            "status": incident.status,
            "account": incident.account,
            "region": incident.region,
            "origin_id": incident.origin_id,
            "first_seen": incident.first_seen,
            "last_seen": incident.last_seen,
            "deliveries": incident.deliveries,
            "sources": incident.sources,
            "finding_ids": incident.finding_ids,
        },
        "summary": {
            "description": finding.get("description", ""),
            "detected_at": finding.get("time"),
            "contained_at": contained_at,
            "seconds_to_containment": _seconds_between(incident.first_seen, contained_at),
            "seconds_from_detection_to_containment": _seconds_between(finding.get("time"), contained_at),
            "playbooks": sorted({a["playbook"] for a in actions}),
            "steps_by_status": statuses,
            "actor": finding.get("actor") or {},
            "resources": finding.get("resources") or [],
        },
        "finding": finding,
        "deliveries": [
            {"time": e.time, "message": e.message, "finding_id": e.data.get("finding_id"), "count": e.data.get("count")}
            for e in deliveries
        ],
        "timeline": timeline,
        "actions": actions,
        "approvals": approvals,
        "rollbacks": rollbacks,
        "follow_ups": _follow_ups(actions, approvals, incident.notes),
        "suppressed": incident.suppressed,
        "notes": incident.notes,
    }


# -- sections: what both renderers show ------------------------------------------------------------
@dataclass
class KeyValues:
    pairs: list[tuple[str, Any]]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]]


@dataclass
class Items:
    items: list[str]


@dataclass
class Code:
    label: str
    value: Any


@dataclass
class Section:
    title: str
    intro: str = ""
    blocks: list[Any] = field(default_factory=list)
    level: int = 2


def _actor(actor: Mapping[str, Any]) -> str:
    who = actor.get("principal_arn") or actor.get("user_name") or actor.get("principal_id") or "unknown"
    parts = [str(who)]
    if actor.get("user_type"):
        parts.append(f"({actor['user_type']})")
    if actor.get("access_key_id"):
        parts.append(f"with key {actor['access_key_id']}")
    if actor.get("source_ip"):
        parts.append(f"from {actor['source_ip']}")
    return " ".join(parts)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not contained"
    if seconds < 120:
        return f"{seconds:g} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s"


def sections(doc: Mapping[str, Any]) -> list[Section]:
    incident, summary = doc["incident"], doc["summary"]
    out = [
        Section(
            "Summary",
            "What happened, how bad it is, and where the response stands.",
            [
                KeyValues(
                    [
                        ("Incident", incident["id"]),
                        ("What happened", incident["title"]),
                        ("Finding type", incident["type"]),
                        ("Severity", f"{incident['severity_label']} ({incident['severity']:g})"),
                        ("Status", incident["status"]),
                        ("Account / region", f"{incident['account']} / {incident['region']}"),
                        ("Detected", summary["detected_at"] or "unknown"),
                        ("Incident opened", incident["first_seen"]),
                        ("Last delivery", incident["last_seen"]),
                        ("First containment", summary["contained_at"] or "none"),
                        ("Time to containment", _duration(summary["seconds_to_containment"])),
                        ("Actor", _actor(summary["actor"]) if summary["actor"] else "unknown"),
                        ("Resources", ", ".join(describe_target(r) for r in summary["resources"]) or "none named"),
                        ("Playbooks", ", ".join(summary["playbooks"]) or "none"),
                        ("Steps", ", ".join(f"{n} {s}" for s, n in sorted(summary["steps_by_status"].items()))),
                    ]
                ),
            ]
            + ([Items([summary["description"]])] if summary["description"] else []),
        ),
        Section(
            "Follow-ups",
            "What is still open: failed steps (with how to undo what they changed), approvals waiting, "
            "steps a guardrail held back, steps only planned, and notes.",
            [Items([f"[{f['kind']}] {f['message']}" for f in doc["follow_ups"]] or ["Nothing is open."])]
            + [Items([f"undo: {u}" for u in f["undo"]]) for f in doc["follow_ups"] if f["undo"]],
        ),
        Section(
            "Timeline",
            "Every recorded event, oldest first (UTC).",
            [Table(["Time", "Kind", "Event"], [[e["time"], e["kind"], e["message"]] for e in doc["timeline"]])],
        ),
        Section(
            "Findings",
            f"The finding was delivered {incident['deliveries']} time(s) through "
            f"{', '.join(incident['sources'])}; all deliveries belong to this one incident.",
            [
                KeyValues(
                    [
                        ("Underlying finding", incident["origin_id"]),
                        ("Finding ids", ", ".join(incident["finding_ids"])),
                        ("Delivery shapes", ", ".join(incident["sources"])),
                    ]
                ),
                Table(
                    ["Time", "Finding id", "Count", "Delivery"],
                    [[d["time"], d["finding_id"], d["count"], d["message"]] for d in doc["deliveries"]],
                ),
                Code("Normalized finding", doc["finding"]),
            ],
        ),
    ]
    actions = Section("Actions", "Each step, its outcome, and the state before and after it.")
    actions.blocks.append(
        Table(
            ["#", "Playbook", "Action", "Target", "Mode", "Status", "Reason"],
            [
                [n, a["playbook"], a["action"], a["target_label"], a["mode"], a["status"], a["reason"] or ""]
                for n, a in enumerate(doc["actions"], start=1)
            ],
        )
    )
    out.append(actions)
    for number, action in enumerate(doc["actions"], start=1):
        detail = Section(f"{number}. {action['action']} on {action['target_label']}", level=3)
        detail.blocks.append(
            KeyValues(
                [
                    ("Status", action["status"] + (f": {action['reason']}" if action["reason"] else "")),
                    ("Mode", action["mode"]),
                    ("Playbook step", f"{action['playbook']} step {action['step'] + 1}"),
                    ("Attempts", action["attempts"]),
                    ("Approved by", action["approved_by"] or "-"),
                    ("Error code", action["error_code"] or "-"),
                ]
            )
        )
        calls = action["calls"] or action["planned_calls"]
        if calls:
            label = "API calls made" if action["calls"] else "API calls planned"
            detail.blocks.append(Items([f"{label}: " + ", ".join(str(c.get("call")) for c in calls)]))
        for label, key in (("Before", "before"), ("After", "after"), ("Rollback", "rollback")):
            if action[key]:
                detail.blocks.append(Code(label, action[key]))
        if action["evidence"]:
            detail.blocks.append(Items([f"evidence: {e}" for e in action["evidence"]]))
        if action["undo"]:
            detail.blocks.append(Items([f"undo: {u}" for u in action["undo"]]))
        out.append(detail)
    out.append(
        Section(
            "Approvals",
            "Who was asked, who decided, and when.",
            [
                Table(
                    ["Action", "Target", "Requested", "Approvers", "Decision", "By", "At", "Reason"],
                    [
                        [
                            a["action"],
                            a["target_label"],
                            a["requested_at"],
                            ", ".join(a["approvers"]) or "-",
                            a["status"],
                            a["decided_by"] or "-",
                            a["decided_at"] or "-",
                            a["reason"] or "",
                        ]
                        for a in doc["approvals"]
                    ],
                )
            ],
        )
    )
    out.append(
        Section(
            "Rollbacks",
            "Steps undone from their recorded before-state.",
            [
                Table(
                    ["Time", "Action", "Target", "Result"],
                    [
                        [r["time"], r["action"], r["target_label"], (r["result"] or {}).get("status", "")]
                        for r in doc["rollbacks"]
                    ],
                )
            ],
        )
    )
    return out


# -- Markdown ----------------------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md(value: Any) -> str:
    """One line of inert Markdown text (see the module docstring)."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(value if value is not None else ""))
    text = " ".join(text.split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def _fenced(value: Any) -> list[str]:
    text = json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=True)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}json", text, fence]


def to_markdown(doc: Mapping[str, Any]) -> str:
    incident = doc["incident"]
    lines = [
        f"# Incident report: {md(incident['title'])}",
        "",
        f"Generated {md(doc['generated_at'])} by Clampdown from the incident's audit trail.",
    ]
    for section in sections(doc):
        lines += ["", f"{'#' * section.level} {md(section.title)}"]
        if section.intro:
            lines += ["", md(section.intro)]
        for block in section.blocks:
            lines.append("")
            if isinstance(block, KeyValues):
                lines += [f"- **{md(k)}:** {md(v)}" for k, v in block.pairs]
            elif isinstance(block, Items):
                lines += [f"- {md(item)}" for item in block.items]
            elif isinstance(block, Table):
                if not block.rows:
                    lines.append("None.")
                    continue
                lines.append("| " + " | ".join(md(h) for h in block.headers) + " |")
                lines.append("|" + "---|" * len(block.headers))
                lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in block.rows]
            elif isinstance(block, Code):
                lines += [f"**{md(block.label)}:**", "", *_fenced(block.value)]
    return "\n".join(lines) + "\n"


# -- HTML ----------------------------------------------------------------------------------------------
def h(value: Any) -> str:
    return html.escape(str(value if value is not None else ""), quote=True)


CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2329;
  max-width:1100px;margin:2em auto;padding:0 1em}
h1{font-size:1.6em;border-bottom:3px solid #b3261e;padding-bottom:.3em}
h2{margin-top:2em;border-bottom:1px solid #ddd}
h3{font-size:1.05em;margin-top:1.5em}
.intro{color:#555}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f4f5f7}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}
dt{font-weight:600}
dd{margin:0;overflow-wrap:anywhere}
pre{background:#f6f8fa;border:1px solid #ddd;padding:.6em;overflow:auto;font-size:13px;
  white-space:pre-wrap;overflow-wrap:anywhere}
.s-contained,.s-done,.s-approved,.s-already-contained{color:#176f2c;font-weight:600}
.s-failed,.s-denied,.s-expired{color:#b3261e;font-weight:600}
.s-pending-approval,.s-skipped,.s-dry-run{color:#8a5a00;font-weight:600}
footer{margin-top:3em;color:#777;font-size:.85em}
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def _cell(header: str, value: Any) -> str:
    if header in ("Status", "Decision"):
        return f'<td class="s-{h(re.sub(r"[^a-z-]", "", str(value)))}">{h(value)}</td>'
    return f"<td>{h(value)}</td>"


def to_html(doc: Mapping[str, Any]) -> str:
    """One self-contained page: inline CSS, no scripts, no external resources."""
    incident = doc["incident"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Incident report: {h(incident['title'])}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Incident report: {h(incident['title'])}</h1>",
        f'<p class="intro">Generated {h(doc["generated_at"])} by Clampdown from the incident\'s audit trail.</p>',
    ]
    for section in sections(doc):
        level = section.level
        parts.append(f"<section><h{level}>{h(section.title)}</h{level}>")
        if section.intro:
            parts.append(f'<p class="intro">{h(section.intro)}</p>')
        for block in section.blocks:
            if isinstance(block, KeyValues):
                rows = "".join(f"<dt>{h(k)}</dt>{_dd(k, v)}" for k, v in block.pairs)
                parts.append(f"<dl>{rows}</dl>")
            elif isinstance(block, Items):
                parts.append("<ul>" + "".join(f"<li>{h(item)}</li>" for item in block.items) + "</ul>")
            elif isinstance(block, Table):
                if not block.rows:
                    parts.append("<p>None.</p>")
                    continue
                head = "".join(f"<th>{h(c)}</th>" for c in block.headers)
                body = "".join(
                    "<tr>" + "".join(_cell(hd, c) for hd, c in zip(block.headers, row, strict=True)) + "</tr>"
                    for row in block.rows
                )
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif isinstance(block, Code):
                text = json.dumps(block.value, indent=2, sort_keys=True, default=str, ensure_ascii=False)
                parts.append(f"<p><strong>{h(block.label)}</strong></p><pre>{h(text)}</pre>")
        parts.append("</section>")
    parts.append(f"<footer>Clampdown incident report format {FORMAT}. Incident {h(incident['id'])}.</footer>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _dd(key: str, value: Any) -> str:
    css = f' class="s-{h(re.sub(r"[^a-z-]", "", str(value)))}"' if key == "Status" else ""
    return f"<dd{css}>{h(value)}</dd>"


RENDERERS = {"md": to_markdown, "html": to_html}

#: File name extension of each format.
EXTENSIONS = {"md": "md", "html": "html", "json": "json"}


def render(doc: Mapping[str, Any], output_format: str) -> str:
    """The report document in ``md``, ``html`` or ``json``."""
    if output_format == "json":
        return json.dumps(doc, indent=2, default=str, ensure_ascii=False) + "\n"
    return RENDERERS[output_format](doc)


def write_reports(docs: Mapping[str, Mapping[str, Any]], directory: Path, output_format: str) -> list[Path]:
    """One report file per incident (``<incident id>.<format>``) in ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for incident_id, doc in docs.items():
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", incident_id) or incident_id.startswith("."):
            raise ValueError(f"not a usable file name for a report: {incident_id!r}")
        path = directory / f"{incident_id}.{EXTENSIONS[output_format]}"
        path.write_text(render(doc, output_format), encoding="utf-8")
        written.append(path)
    return written
