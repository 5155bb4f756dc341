"""Safe reads from attacker-controlled JSON, shared by every source module.

Each helper answers ``None`` (never raises) when a value is missing or has the wrong type, so a
source module only has to decide what is *required* and call :func:`required`, which raises
:class:`InvalidEvent` with a message naming the field.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from .model import InvalidEvent

T = TypeVar("T")

#: Longest identifier accepted (ids, names, ARNs); anything longer is treated as missing.
MAX_ID = 2048
#: Free text (titles, descriptions) is truncated to this many characters.
MAX_TEXT = 8192
#: Longest list walked in any one place (GuardDuty sequences allow 400 members).
MAX_ITEMS = 400

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def get(obj: Any, *path: str | int) -> Any:
    """Walk ``path`` through mappings (str steps) and lists (int steps); ``None`` on any mismatch."""
    current = obj
    for step in path:
        if isinstance(step, int):
            if not isinstance(current, list) or not -len(current) <= step < len(current):
                return None
            current = current[step]
        elif isinstance(current, Mapping):
            current = current.get(step)
        else:
            return None
    return current


def mapping(obj: Any, *path: str | int) -> Mapping[str, Any] | None:
    value = get(obj, *path)
    return value if isinstance(value, Mapping) else None


def items(obj: Any, *path: str | int, limit: int = MAX_ITEMS) -> list[Mapping[str, Any]]:
    """The mappings in the list at ``path`` (other elements skipped), at most ``limit`` of them."""
    value = get(obj, *path)
    if not isinstance(value, list):
        return []
    return [item for item in value[:limit] if isinstance(item, Mapping)]


def ident(obj: Any, *path: str | int) -> str | None:
    """An identifier: a non-empty single-line string (ints accepted, e.g. account ids), bounded length."""
    value = get(obj, *path)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_ID or _CONTROL.search(value):
        return None
    return value


def idents(obj: Any, *path: str | int, limit: int = MAX_ITEMS) -> list[str]:
    """The identifiers in the list at ``path`` (invalid elements skipped)."""
    value = get(obj, *path)
    if not isinstance(value, list):
        return []
    return [v for v in (ident(item) for item in value[:limit]) if v is not None]


def present(values: Iterable[T | None]) -> list[T]:
    """``values`` without the ``None``s."""
    return [v for v in values if v is not None]


def text(obj: Any, *path: str | int, limit: int = MAX_TEXT) -> str | None:
    """Free text, truncated to ``limit`` characters."""
    value = get(obj, *path)
    if not isinstance(value, str):
        return None
    return value[:limit]


def number(obj: Any, *path: str | int) -> float | None:
    """A finite number; numeric strings (as in ASFF ``ProductFields``) are accepted."""
    value = get(obj, *path)
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and len(value) <= 64:
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int):
        value = float(value)
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def flag(obj: Any, *path: str | int) -> bool | None:
    """A boolean; the strings ``"true"``/``"false"`` (ASFF ``ProductFields``) are accepted."""
    value = get(obj, *path)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def ip_address(obj: Any, *path: str | int) -> str | None:
    """A valid IPv4/IPv6 address in canonical form; anything else (``"AWS Internal"``) is ``None``."""
    value = ident(obj, *path)
    if value is None or len(value) > 64:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def iso_time(value: Any) -> str | None:
    """An ISO-8601 UTC string (``2017-12-08T15:32:49.862Z``) from an ISO string or epoch seconds/ms.

    Accepts the variants seen in real findings: ``Z``/``+0000``/``-05:00`` offsets, a space instead
    of ``T`` and nanosecond fractions (GuardDuty attack sequences). A time without an offset is UTC.
    """
    moment: datetime | None = None
    try:
        if isinstance(value, str) and 10 <= len(value) <= 64:
            moment = datetime.fromisoformat(value.strip())
        elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            seconds = value / 1000 if abs(value) > 1e11 else value
            moment = datetime.fromtimestamp(seconds, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    millis = f".{moment.microsecond // 1000:03d}" if moment.microsecond else ""
    return f"{moment:%Y-%m-%dT%H:%M:%S}{millis}Z"


def first(*values: T | None) -> T | None:
    """The first value that is not ``None``."""
    for value in values:
        if value is not None:
            return value
    return None


def required(value: T | None, what: str) -> T:
    """``value``, or :class:`InvalidEvent` saying ``what`` (``"GuardDuty finding: detail.id"``) is missing."""
    if value is None:
        raise InvalidEvent(f"{what} is missing or invalid")
    return value


def compact(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` without the ``None``, empty-string and empty-container entries."""
    return {k: v for k, v in values.items() if v is not None and v != "" and v != [] and v != {}}
