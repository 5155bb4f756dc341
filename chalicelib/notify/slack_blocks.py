"""Slack Block Kit messages for incidents and approvals. Pure: no I/O, no Slack SDK.

Every string from a finding is attacker-controlled. It is rendered inert:

- ``&``, ``<`` and ``>`` are HTML-escaped, so no ``<!channel>``, ``<@U…>``, ``<#C…>``,
  ``<!subteam^…>``, ``<!date^…>`` or ``<http…|…>`` control sequence can form;
- ``@channel``, ``@here`` and ``@everyone`` get a zero-width space after the ``@``;
- control and bidirectional-override characters are dropped;
- identifiers (names, ARNs, IPs, tags) are shown in inline code, where mrkdwn formatting does not
  apply (a backtick inside becomes U+02CB, a modifier grave accent); free text (title, description) is ``plain_text``;
- every mrkdwn object is ``verbatim`` (no auto-linking of URLs or channel names).

Our own mrkdwn (labels, console links, approver mentions from configuration) is built only from
constants and validated values. Lengths follow Slack's limits, counted in UTF-16 code units, and
truncation happens before escaping, so an escape sequence is never cut in half.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from chalicelib.findings.model import Actor, Finding, Resource
from chalicelib.notify.slack_ids import GROUP_ID, USER_ID

if TYPE_CHECKING:
    from chalicelib.incidents import Approval, Incident, StepRecord

# -- Slack's limits ------------------------------------------------------------------------------
MAX_BLOCKS = 50
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
MAX_FIELDS = 10
CONTEXT_LIMIT = 2000
MAX_CONTEXT_ELEMENTS = 10
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
#: The notification (fallback) text; Slack accepts far more, phones show a line.
FALLBACK_LIMIT = 300
#: Soft budgets that keep a message readable (and well under any payload limit).
MAX_STEP_SECTIONS = 6
MAX_PLAN_SECTIONS = 8
MAX_RESOURCES = 10
MAX_TAGS = 5
#: Items of a playbook message's context line (each at most 250 long: the line stays under 2,000).
MAX_CONTEXT_ITEMS = 6
ELLIPSIS = "…"
EMPTY = "—"
BACKTICK_STANDIN = "\u02cb"

APPROVE_ACTION = "clampdown.approve"
DENY_ACTION = "clampdown.deny"
APPROVAL_BLOCK = "clampdown-approval"

# -- escaping ------------------------------------------------------------------------------------
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_BROADCAST = re.compile(r"@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)
#: Dropped: C0 controls but tab and newline, DEL, C1 controls (NEL...), the line and paragraph
#: separators, and every bidirectional mark, embedding, override and isolate (ALM, LRM/RLM,
#: LRE...RLO, LRI...PDI), which can make text read differently from what it is.
_DROPPED = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def slack_len(text: str) -> int:
    """Length as Slack counts it (UTF-16 code units: an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def _clean(raw: Any, limit: int) -> tuple[str, bool]:
    """The text without control characters, broadcast words broken, and no longer than could ever fit
    in ``limit`` (escaping only lengthens); True when it was cut here."""
    text = raw if isinstance(raw, str) else ("" if raw is None else str(raw))
    cap = 2 * limit + 64
    cut = len(text) > cap
    return _BROADCAST.sub("@\u200b", _DROPPED.sub("", text[:cap])), cut


def _fit(pieces: Iterable[str], limit: int, cut: bool = False) -> str:
    """Join ``pieces`` (each an escaped character) up to ``limit``, ending with … when shortened."""
    items = list(pieces)
    total = sum(slack_len(p) for p in items)
    if total <= limit and not cut:
        return "".join(items)
    room = limit - slack_len(ELLIPSIS)
    out: list[str] = []
    used = 0
    for piece in items:
        size = slack_len(piece)
        if used + size > room:
            break
        out.append(piece)
        used += size
    return "".join(out) + ELLIPSIS


def _escaped(text: str, limit: int, cut: bool) -> str:
    return _fit((_ENTITIES.get(c, c) for c in text), limit, cut)


def escape(raw: Any, limit: int = SECTION_LIMIT) -> str:
    """Attacker text made inert for mrkdwn, at most ``limit`` long once escaped."""
    limit = max(limit, 1)
    text, cut = _clean(raw, limit)
    return _escaped(text, limit, cut)


def code(raw: Any, limit: int = 500) -> str:
    """An identifier in inline code (no formatting applies inside); an em dash when empty.

    Within ``limit`` like everything else: below the 3 characters of the shortest inline code, an
    ellipsis stands for the value."""
    limit = max(limit, 1)
    text, cut = _clean(raw, limit)
    text = text.replace("`", BACKTICK_STANDIN).replace("\n", " ").strip()
    if not text:
        return EMPTY
    if limit < 3:
        return ELLIPSIS
    return "`" + _escaped(text, limit - 2, cut) + "`"


def code_block(raw: Any, limit: int = SECTION_LIMIT) -> str:
    """A preformatted block (``limit`` includes its fences; below 7, an ellipsis stands for it)."""
    limit = max(limit, 1)
    text, cut = _clean(raw, limit)
    if limit < 7:
        return ELLIPSIS
    return "```" + _escaped(text.replace("`", BACKTICK_STANDIN), limit - 6, cut) + "```"


def plain(raw: Any, limit: int = SECTION_LIMIT) -> dict[str, Any]:
    text = escape(raw, limit) or EMPTY
    return {"type": "plain_text", "text": text, "emoji": False}


def mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn object for text that is already escaped or built from constants."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": mrkdwn(text)}


# -- trusted values: validated before use in links and mentions -----------------------------------
_REGION = re.compile(r"(?!cn-)[a-z]{2}-[a-z]+-\d{1,2}")
_GUARDDUTY_ID = re.compile(r"[0-9a-f]{32}")
_ASFF_ID = re.compile(r"arn:aws:[a-z0-9-]+:[a-z]{2}-[a-z]+-\d{1,2}:\d{12}:[A-Za-z0-9/._:+=@-]{1,450}")
_EVENT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ACCESS_KEY = re.compile(r"(?:AKIA|ASIA)[A-Z0-9]{12,124}")
_IAM_NAME = re.compile(r"[A-Za-z0-9+=,.@_-]{1,64}")
_SLACK_DECIDER = re.compile(rf"slack:({USER_ID.pattern})(?:\s|$)")


def _console(region: str, path: str) -> str:
    return f"https://{region}.console.aws.amazon.com/{path}"


def console_links(finding: Finding) -> list[tuple[str, str]]:
    """(label, URL) pairs to the AWS consoles, built only from values that match their syntax."""
    region = finding.region if _REGION.fullmatch(finding.region or "") else None
    if region is None:
        return []
    links: list[tuple[str, str]] = []
    origin = finding.origin_id or ""
    if (finding.source == "guardduty" or finding.product == "GuardDuty") and _GUARDDUTY_ID.fullmatch(origin):
        links.append(
            ("GuardDuty finding", _console(region, f"guardduty/home?region={region}#/findings?search=id%3D{origin}"))
        )
    if finding.source == "securityhub" and _ASFF_ID.fullmatch(finding.id):
        # The console's filter syntax: Id=\operator\:EQUALS\:<id>, URL-encoded twice.
        double = quote(quote(finding.id, safe=""), safe="")
        search = f"Id%3D%255Coperator%255C%253AEQUALS%255C%253A{double}"
        links.append(
            ("Security Hub finding", _console(region, f"securityhub/home?region={region}#/findings?search={search}"))
        )
    trail = _cloudtrail_query(finding)
    if trail:
        links.append(("CloudTrail events", _console(region, f"cloudtrail/home?region={region}#/events?{trail}")))
    return links


def _cloudtrail_query(finding: Finding) -> str | None:
    if finding.source == "cloudtrail" and _EVENT_ID.fullmatch(finding.origin_id or ""):
        return f"EventId={finding.origin_id}"
    actor = finding.actor
    if actor.access_key_id and _ACCESS_KEY.fullmatch(actor.access_key_id):
        return f"AccessKeyId={actor.access_key_id}"
    if actor.user_name and _IAM_NAME.fullmatch(actor.user_name):
        return f"Username={quote(actor.user_name, safe='')}"
    return None


def mention(entry: str) -> str | None:
    """A Slack mention for a configured approver (user id or user-group id), else None."""
    if USER_ID.fullmatch(entry):
        return f"<@{entry}>"
    if GROUP_ID.fullmatch(entry):
        return f"<!subteam^{entry}>"
    return None


def who(decided_by: str | None) -> str:
    """The decider: a mention for a Slack user id we recorded, inline code for anything else."""
    if not decided_by:
        return EMPTY
    found = _SLACK_DECIDER.match(decided_by)
    return f"<@{found.group(1)}>" if found else code(decided_by, 200)


# -- pieces --------------------------------------------------------------------------------------
SEVERITY_ICON = {"CRITICAL": "🟥", "HIGH": "🟧", "MEDIUM": "🟨", "LOW": "🟦", "INFORMATIONAL": "⬜"}
STATUS_ICON = {
    "contained": "✅",
    "already-contained": "☑️",
    "done": "✔️",
    "pending-approval": "⏳",
    "running": "⚙️",
    "planned": "📝",
    "failed": "❌",
    "skipped": "⏭️",
    "dry-run": "🧪",
    "denied": "🚫",
    "expired": "⌛",
    "rolled-back": "↩️",
}
INCIDENT_ICON = {
    "contained": "✅",
    "awaiting-approval": "⏳",
    "failed": "❌",
    "in-progress": "⚙️",
    "rolled-back": "↩️",
    "open": "🔎",
}


def _finding(incident: Incident) -> Finding | None:
    try:
        return Finding.from_dict(incident.finding)
    except (KeyError, TypeError, ValueError):
        return None


def _resource_label(resource: Mapping[str, Any] | Resource | None) -> str:
    if resource is None:
        return "the finding"
    data = resource.to_dict() if isinstance(resource, Resource) else resource
    return str(data.get("name") or data.get("id") or data.get("arn") or "?")


def _resource_line(resource: Resource) -> str:
    where = [code(x, 80) for x in (resource.account, resource.region) if x]
    line = f"• {escape(resource.kind, 40)} {code(_resource_label(resource), 600)}"
    if resource.arn and resource.arn != _resource_label(resource):
        line += f" {code(resource.arn, 600)}"
    if where:
        line += " in " + " / ".join(where)
    tags = list(resource.tags.items())
    if tags:
        shown = " ".join(code(f"{k}={v}", 120) for k, v in tags[:MAX_TAGS])
        more = f" +{len(tags) - MAX_TAGS}" if len(tags) > MAX_TAGS else ""
        line += f"\n    tags: {shown}{more}"
    return line


def _actor_fields(actor: Actor) -> list[str]:
    fields = []
    principal = actor.principal_arn or actor.user_name
    if principal:
        kind = f" {code(actor.user_type, 60)}" if actor.user_type else ""
        head = f"*Actor*{kind}\n"
        fields.append(head + code(principal, FIELD_LIMIT - slack_len(head)))
    if actor.source_ip:
        fields.append(f"*Source IP*\n{code(actor.source_ip, 200)}")
    if actor.access_key_id:
        fields.append(f"*Access key*\n{code(actor.access_key_id, 200)}")
    return fields


def _chunks(lines: Sequence[str], limit: int, max_sections: int, more: str, hidden: int = 0) -> list[str]:
    """Lines packed into at most ``max_sections`` texts within ``limit``; the last says how many were left
    out (those that did not fit, plus ``hidden`` ones the caller did not pass).

    Lines are whole units of escaped mrkdwn (each part of a line is bounded when it is built), so
    they are never cut: a line that would not fit even alone is replaced by a notice.
    """
    budget = limit - 60  # room for the "… and N more" note
    texts: list[str] = []
    current = ""
    for index, line in enumerate(lines):
        if slack_len(line) > budget:
            line = "… (an entry too long to show)"
        candidate = f"{current}\n{line}" if current else line
        if slack_len(candidate) <= budget:
            current = candidate
            continue
        texts.append(current)
        current = line
        if len(texts) == max_sections:
            texts[-1] += "\n" + more.format(n=len(lines) - index + hidden)
            return texts
    if current:
        texts.append(current + ("\n" + more.format(n=hidden) if hidden else ""))
    return texts


def step_line(step: StepRecord) -> str:
    icon = STATUS_ICON.get(step.status, "•")
    where = code(_resource_label(step.target), 300) if step.target else "the finding"
    line = f"{icon} *{step.step + 1}. {escape(step.action, 80)}* on {where}"
    line += f" — {escape(step.status, 40)}"
    result = step.result or {}
    if step.status == "failed" and result.get("error_code"):
        line += f" {code(result['error_code'], 100)}"
    if step.reason and step.status != "contained":
        line += f": {code(step.reason, 400)}"
    if step.approved_by:
        line += f" · approved by {who(step.approved_by)}"
    return line


def step_lines(steps: Sequence[StepRecord]) -> list[str]:
    """A line per step; when the steps come from several playbooks, each playbook's steps under its name
    (steps are numbered within their playbook)."""
    if len({s.playbook for s in steps}) < 2:
        return [step_line(s) for s in steps]
    lines: list[str] = []
    for n, step in enumerate(steps):
        if n == 0 or step.playbook != steps[n - 1].playbook:
            lines.append(f"*Playbook* {code(step.playbook, 200)}")
        lines.append(step_line(step))
    return lines


def _links_block(finding: Finding | None) -> dict[str, Any] | None:
    links = console_links(finding) if finding else []
    if not links:
        return None
    text = " · ".join(f"<{url}|{label}>" for label, url in links)
    return {"type": "context", "elements": [mrkdwn(text)]}


def _fallback(incident: Incident, prefix: str = "") -> str:
    return escape(
        f"{prefix}[{incident.severity_label}] {incident.title} ({incident.account}/{incident.region})", FALLBACK_LIMIT
    )


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": plain(text, HEADER_LIMIT)}


# -- messages ------------------------------------------------------------------------------------
def incident_message(incident: Incident, steps: Sequence[StepRecord], note: str | None = None) -> dict[str, Any]:
    """The incident's one message (posted, then updated as it progresses): ``{"text", "blocks"}``."""
    finding = _finding(incident)
    icon = SEVERITY_ICON.get(incident.severity_label, "⚠️")
    blocks: list[dict[str, Any]] = [_header(f"{icon} {incident.severity_label} · {incident.title}")]
    status_icon = INCIDENT_ICON.get(incident.status, "•")
    fields = [
        f"*Status*\n{status_icon} {escape(incident.status, 40)}",
        f"*Severity*\n{escape(incident.severity_label, 20)} ({incident.severity:g})",
        f"*Finding type*\n{code(incident.type, FIELD_LIMIT - 20)}",
        f"*Account / region*\n{code(incident.account, 40)} / {code(incident.region, 40)}",
    ]
    if finding is not None:
        fields += _actor_fields(finding.actor)
        product = f" {code(finding.product, 100)}" if finding.product else ""
        fields.append(f"*Source*\n{escape(finding.source, 40)}{product}")
    fields.append(f"*Incident*\n{code(incident.id, 100)}")
    blocks.append({"type": "section", "fields": [mrkdwn(f) for f in fields[:MAX_FIELDS]]})
    if finding is not None and finding.resources:
        lines = ["*Resources*", *(_resource_line(r) for r in finding.resources[:MAX_RESOURCES])]
        hidden = max(len(finding.resources) - MAX_RESOURCES, 0)
        blocks.extend(section(t) for t in _chunks(lines, SECTION_LIMIT, 2, "… and {n} more", hidden))
    if finding is not None and finding.description:
        blocks.append({"type": "section", "text": plain(finding.description, SECTION_LIMIT)})
    if steps:
        blocks.append({"type": "divider"})
        lines = ["*Steps*", *step_lines(steps)]
        blocks.extend(section(t) for t in _chunks(lines, SECTION_LIMIT, MAX_STEP_SECTIONS, "… and {n} more steps"))
    links = _links_block(finding)
    if links:
        blocks.append(links)
    context = [f"Clampdown · first seen {escape(incident.first_seen, 40)} · deliveries {incident.deliveries}"]
    if incident.notes:
        context.append("notes: " + code("; ".join(incident.notes), 1200))
    if note and escape(note, 300):
        context.append(escape(note, 300))
    blocks.append({"type": "context", "elements": [mrkdwn(t) for t in context[:MAX_CONTEXT_ELEMENTS]]})
    return {"text": _fallback(incident), "blocks": blocks[:MAX_BLOCKS]}


def steps_changed_message(steps: Sequence[StepRecord]) -> dict[str, Any]:
    """A thread reply naming the steps whose status changed."""
    texts = _chunks(step_lines(steps), SECTION_LIMIT, 1, "… and {n} more")
    return {"text": f"{len(steps)} step(s) changed", "blocks": [section(t) for t in texts]}


def _call_section(call: Mapping[str, Any], tail: str = "") -> str:
    """One API call and its parameters, with ``tail`` (a line of ours) after them, within a section."""
    name = code(call.get("call", "?"), 120)
    purpose = f" — {escape(call.get('purpose'), 300)}" if call.get("purpose") else ""
    params = json.dumps(call.get("params") or {}, indent=1, sort_keys=True, default=str, ensure_ascii=False)
    head = f"{name}{purpose}\n"
    return head + code_block(params, SECTION_LIMIT - slack_len(head) - slack_len(tail)) + tail


def plan_sections(step: StepRecord) -> list[str]:
    """The exact API calls (with parameters) a step will make, one section each."""
    plan = step.plan or {}
    calls = list(plan.get("calls") or [])
    texts = [
        f"*Plan* — {len(calls)} API call{'s' if len(calls) != 1 else ''}:" if calls else "*Plan* — no AWS API call"
    ]
    if plan.get("already_contained"):
        texts[0] += " (already contained when planned)"
    if plan.get("refused"):
        texts[0] += f"\nrefused: {code(plan['refused'], 500)}"
    for note in (plan.get("notes") or [])[:3]:
        texts[0] += f"\n{code(note, 500)}"
    shown = calls[: MAX_PLAN_SECTIONS - 1]
    hidden = len(calls) - len(shown)
    more = f"\n… and {hidden} more calls (in the incident record)" if hidden else ""
    texts += [_call_section(c, more if n == len(shown) - 1 else "") for n, c in enumerate(shown)]
    return texts


def approval_message(
    incident: Incident,
    step: StepRecord,
    approval: Approval,
    *,
    banner: str | None = None,
    buttons: bool = True,
) -> dict[str, Any]:
    """The approval request: what would run, on what, and why; Approve/Deny carry only the approval id.

    With ``banner`` (already-safe mrkdwn, e.g. "✅ Approved by <@U1>, running…") and no buttons, it is
    the same message after the decision.
    """
    header = _header(f"⏳ Approval needed · {step.action} on {_resource_label(step.target)}")
    summary = (
        f"*{escape(incident.severity_label, 20)}* {code(incident.type, 300)} in {code(incident.account, 40)} / "
        f"{code(incident.region, 40)}\n"
        f"*Step {step.step + 1}* of playbook {code(step.playbook, 200)}: {code(step.action, 100)} on "
        f"{escape((step.target or {}).get('kind', 'finding'), 40)} {code(_resource_label(step.target), 600)}"
    )
    if step.reason:
        summary += f"\n*Why approval:* {code(step.reason, 500)}"
    blocks: list[dict[str, Any]] = [header, {"type": "section", "text": plain(incident.title, 1000)}, section(summary)]
    blocks += [section(t) for t in plan_sections(step)]
    approvers = [m for m in (mention(a) for a in approval.approvers) if m]
    context = [f"Incident {code(incident.id, 100)} · approval {code(approval.id, 100)}"]
    context.append(f"Expires {_date(approval.expires_at)}")
    if approvers:
        context.append("Approvers: " + " ".join(approvers[:20]))
    blocks.append({"type": "context", "elements": [mrkdwn(t) for t in context]})
    if banner:
        blocks.append(section(banner))
    if buttons and approval.status == "pending":
        blocks.append(approval_buttons(approval.id))
    return {"text": _fallback(incident, "Approval needed: "), "blocks": blocks[:MAX_BLOCKS]}


def approval_buttons(approval_id: str) -> dict[str, Any]:
    value = approval_id[:BUTTON_VALUE_LIMIT]
    return {
        "type": "actions",
        "block_id": APPROVAL_BLOCK,
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION,
                "text": {"type": "plain_text", "text": "Approve", "emoji": False},
                "style": "primary",
                "value": value,
                "confirm": {
                    "title": {"type": "plain_text", "text": "Run this plan?"},
                    "text": {"type": "plain_text", "text": "Clampdown will make the API calls shown above."},
                    "confirm": {"type": "plain_text", "text": "Approve"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            },
            {
                "type": "button",
                "action_id": DENY_ACTION,
                "text": {"type": "plain_text", "text": "Deny", "emoji": False},
                "style": "danger",
                "value": value,
            },
        ],
    }


def decision_banner(status: str, decided_by: str | None, outcome: str | None = None, detail: Any = None) -> str:
    """ "✅ Approved by <@U1> — running…" and its final forms. ``outcome`` is ours; ``detail`` (a step's
    reason, which may quote AWS or the finding) is shown as inline code."""
    icon = {"approved": "✅", "denied": "🚫", "expired": "⌛"}.get(status, "•")
    text = f"{icon} *{escape(status.capitalize(), 20)}*"
    if status != "expired" and decided_by:
        text += f" by {who(decided_by)}"
    if outcome:
        text += f" — {escape(outcome, 200)}"
    if detail:
        text += f": {code(detail, 600)}"
    return text


def _date(epoch: float) -> str:
    """Slack's date token (shown in the reader's time zone) with a UTC fallback."""
    fallback = datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(epoch)}^{{date_short_pretty}} {{time}}|{escape(fallback, 60)}>"


def context_line(context: Mapping[str, Any] | None) -> str | None:
    """``key `value` · …`` for a playbook message's context (incident, playbook, finding type)."""
    if not context:
        return None
    items = [(k, v) for k, v in context.items() if v][:MAX_CONTEXT_ITEMS]
    return " · ".join(f"{escape(k, 40)} {code(v, 200)}" for k, v in items) or None


def text_message(text: Any, context: str | None = None) -> dict[str, Any]:
    """A one-off message from a playbook step (``notify.slack``): the text is shown as plain text."""
    blocks: list[dict[str, Any]] = [{"type": "section", "text": plain(text, SECTION_LIMIT)}]
    if context:
        blocks.append({"type": "context", "elements": [mrkdwn(context)]})
    return {"text": escape(text, FALLBACK_LIMIT), "blocks": blocks}
