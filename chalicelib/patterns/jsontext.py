"""Reading a pattern from JSON text the way EventBridge reads it.

Duplicate keys: the last value wins, except that two objects under the same key are merged (event-ruler
streams the text and records every field path it meets). A match expression such as
``{"prefix": "a", "prefix": "b"}`` keeps the information that it had a duplicate, so that the compiler
can reject it as event-ruler does ("Only one key allowed in match expression").
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.patterns.errors import InvalidPattern


class JsonObject(dict[str, Any]):
    """A JSON object read from text; ``duplicated`` tells whether a key appeared more than once."""

    duplicated = False


def load_pattern_text(text: str | bytes | bytearray) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_reject_constant)
    except RecursionError:
        raise InvalidPattern((), "Filter is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
        raise InvalidPattern((), f"Filter is not valid JSON: {exc}") from None


def _object(pairs: list[tuple[str, Any]]) -> JsonObject:
    out = JsonObject()
    for key, value in pairs:
        if key in out:
            out.duplicated = True
            previous = out[key]
            if isinstance(previous, dict) and isinstance(value, dict):
                value = _merge(previous, value)
        out[key] = value
    return out


def _merge(first: dict[str, Any], second: dict[str, Any]) -> JsonObject:
    merged = JsonObject(first)
    merged.duplicated = True
    for key, value in second.items():
        previous = merged.get(key)
        if isinstance(previous, dict) and isinstance(value, dict):
            value = _merge(previous, value)
        merged[key] = value
    return merged


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")
