"""The notifier a deployed stage uses, chosen by its settings."""

from __future__ import annotations

from typing import Any

from chalicelib.notify import NullNotifier
from chalicelib.settings import Settings


def notifier_from_settings(settings: Settings, clients: Any, store: Any, telemetry: Any) -> Any:
    """No channel configured: incidents are still recorded and logged, nothing is posted."""
    return NullNotifier()
