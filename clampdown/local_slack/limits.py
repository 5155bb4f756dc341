"""Slack's Block Kit limits, checked the way Slack rejects a message (``invalid_blocks``).

From Slack's Block Kit reference: at most 50 blocks; header text 150; section text 3000, at most
10 fields of 2000; context at most 10 elements; button text 75, value 2000, action_id 255;
actions at most 25 elements; every text object non-empty. Lengths in UTF-16 code units.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _text(
    problems: list[str], where: str, obj: Any, limit: int, kinds: tuple[str, ...] = ("plain_text", "mrkdwn")
) -> None:
    if not isinstance(obj, Mapping) or obj.get("type") not in kinds:
        problems.append(f"{where}: not a text object of type {'/'.join(kinds)}")
        return
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"{where}: empty text")
    elif _len(text) > limit:
        problems.append(f"{where}: {_len(text)} > {limit} characters")


def problems(message: Mapping[str, Any]) -> list[str]:
    """Why Slack would reject this message's blocks (empty: it would accept them)."""
    found: list[str] = []
    blocks = message.get("blocks")
    if blocks is None:
        if not message.get("text"):
            found.append("no text and no blocks")
        return found
    if not isinstance(blocks, list) or len(blocks) > 50:
        return [f"blocks: must be a list of at most 50 (got {len(blocks) if isinstance(blocks, list) else blocks!r})"]
    for index, block in enumerate(blocks):
        where = f"blocks[{index}]"
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "header":
            _text(found, f"{where}.text", block.get("text"), 150, ("plain_text",))
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                found.append(f"{where}: section without text or fields")
            if "text" in block:
                _text(found, f"{where}.text", block["text"], 3000)
            fields = block.get("fields", [])
            if len(fields) > 10:
                found.append(f"{where}.fields: more than 10")
            for n, item in enumerate(fields):
                _text(found, f"{where}.fields[{n}]", item, 2000)
        elif kind == "context":
            elements = block.get("elements", [])
            if not elements or len(elements) > 10:
                found.append(f"{where}.elements: 1 to 10 required")
            for n, item in enumerate(elements):
                _text(found, f"{where}.elements[{n}]", item, 3000)
        elif kind == "actions":
            elements = block.get("elements", [])
            if not elements or len(elements) > 25:
                found.append(f"{where}.elements: 1 to 25 required")
            for n, button in enumerate(elements):
                _text(found, f"{where}.elements[{n}].text", button.get("text"), 75, ("plain_text",))
                if len(str(button.get("value", ""))) > 2000:
                    found.append(f"{where}.elements[{n}].value: more than 2000")
                if len(str(button.get("action_id", ""))) > 255:
                    found.append(f"{where}.elements[{n}].action_id: more than 255")
        elif kind != "divider":
            found.append(f"{where}: unknown block type {kind!r}")
    return found
