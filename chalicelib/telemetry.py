"""Metrics and structured events, behind a small interface so the core does not import Powertools.

The deployed app plugs in Powertools (EMF metrics, JSON logs with the incident id as correlation
id); simulations and tests use :class:`CountingTelemetry`.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Protocol


class Telemetry(Protocol):
    def count(self, name: str, value: float = 1) -> None: ...

    def timing(self, name: str, seconds: float) -> None: ...

    def event(self, message: str, **fields: Any) -> None: ...

    def correlate(self, incident_id: str | None) -> None:
        """Tag every log line from now on with this incident id (None: stop tagging)."""
        ...


class CountingTelemetry:
    """Keeps counts in memory (thread-safe); also what the demo and load benchmarks read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.timings: dict[str, list[float]] = {}
        self.events: list[tuple[str, dict[str, Any]]] = []
        #: The incident the current message concerns (what Powertools logs as ``correlation_id``).
        self.correlation_id: str | None = None

    def count(self, name: str, value: float = 1) -> None:
        with self._lock:
            self.counts[name] += int(value)  # counts are whole numbers (the metric unit is Count)

    def timing(self, name: str, seconds: float) -> None:
        with self._lock:
            self.timings.setdefault(name, []).append(seconds)

    def event(self, message: str, **fields: Any) -> None:
        with self._lock:
            self.events.append((message, fields))

    def correlate(self, incident_id: str | None) -> None:
        self.correlation_id = incident_id
