"""What an HTTP 429 asks us to wait, the same for every channel (Slack's Web API, webhooks).

``Retry-After`` is read case-insensitively from any header mapping (slack_sdk gives lists of
values, requests a string). An unreadable value (an HTTP date, garbage) is infinite: the caller
fails fast instead of guessing, as it does for a wait longer than it may sleep.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The wait when a 429 names none.
DEFAULT_WAIT_S = 1.0


def retry_after(headers: Mapping[str, Any] | None) -> float:
    """Seconds to wait before retrying, from a response's headers."""
    for name, value in dict(headers or {}).items():
        if str(name).lower() == "retry-after":
            first = value[0] if isinstance(value, list | tuple) and value else value
            try:
                seconds = float(first)
            except (TypeError, ValueError):
                return float("inf")
            return max(seconds, 0.0) if seconds == seconds else float("inf")  # NaN: unreadable
    return DEFAULT_WAIT_S
