"""A Slack message (Block Kit, as Slack received it) as compact terminal text.

Used by the demo and drills to show the messages the local Slack stand-in received: the header, the
fields as ``Label: value`` pairs, section lines, context lines and buttons. Slack's markup is
resolved the way Slack displays it: ``<@U1>`` → ``@U1``, ``<url|label>`` → ``label``, a date token →
its fallback text, ``*bold*`` and inline code marks dropped, ``&lt; &gt; &amp;`` unescaped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_DATE = re.compile(r"<!date\^[^|>]*\|([^>]*)>")
_LINK = re.compile(r"<(?:https?|mailto):[^|>]*\|([^>]*)>")
_BARE_LINK = re.compile(r"<((?:https?|mailto):[^>]*)>")
_USER = re.compile(r"<@([A-Z0-9]+)>")
_GROUP = re.compile(r"<!subteam\^([A-Z0-9]+)(?:\|[^>]*)?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)>")
_CODE = re.compile(r"```\n?(.*?)\n?```|`([^`]*)`", re.S)
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")


def plain(text: str) -> str:
    """mrkdwn as Slack shows it (formatting removed)."""
    text = _DATE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _BARE_LINK.sub(r"\1", text)
    text = _USER.sub(r"@\1", text)
    text = _GROUP.sub(r"@\1", text)
    text = _SPECIAL.sub(r"@\1", text)
    # Bold marks only outside code: ``*`` inside `code` or ```blocks``` is literal.
    out, at = [], 0
    for found in _CODE.finditer(text):
        out.append(_BOLD.sub(r"\1", text[at : found.start()]))
        out.append(found.group(1) if found.group(1) is not None else found.group(2))
        at = found.end()
    out.append(_BOLD.sub(r"\1", text[at:]))
    text = "".join(out)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text(element: Any) -> str:
    if not isinstance(element, Mapping):
        return ""
    value = str(element.get("text") or "")
    return plain(value) if element.get("type") == "mrkdwn" else value


def _field(element: Any) -> str:
    label, _, value = _text(element).partition("\n")
    return f"{label}: {value.replace(chr(10), ' ')}" if value else label


def render(message: Mapping[str, Any], keep: Callable[[Mapping[str, Any]], bool] | None = None) -> list[str]:
    """One line per header, field group, section line, context and button row (of the blocks
    ``keep`` accepts, by default all)."""
    lines: list[str] = []
    for block in message.get("blocks") or []:
        if keep is not None and not keep(block):
            continue
        kind = block.get("type")
        if kind == "header":
            lines.append(_text(block.get("text")))
        elif kind == "section":
            lines.extend(line for line in _text(block.get("text")).splitlines() if line.strip())
            fields = [_field(f) for f in block.get("fields") or []]
            if fields:
                lines.append(" · ".join(fields))
        elif kind == "context":
            lines.append(" · ".join(_text(e) for e in block.get("elements") or []))
        elif kind == "actions":
            lines.append(" ".join(f"[{_text(e.get('text'))}]" for e in block.get("elements") or []))
    if not lines and message.get("text"):
        lines.append(plain(str(message["text"])))
    return lines
