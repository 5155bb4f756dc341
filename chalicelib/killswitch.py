"""The kill switch: one SSM parameter that stops every change to AWS while still reporting.

Read at most every ``ttl_s`` seconds per Lambda instance. A parameter that does not exist means off
(not configured); a parameter that cannot be read (AccessDenied, throttling) raises, so the event is
retried rather than acted on without knowing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.actions.base import error_code

ON_VALUES = frozenset({"on", "true", "1", "yes", "enabled", "stop"})


class KillSwitchUnreadable(RuntimeError):
    """The kill switch's state is unknown; acting now would be unsafe."""


@dataclass
class KillSwitch:
    parameter: str | None
    ssm: Callable[[], Any] | None = None  # returns a boto3 SSM client
    ttl_s: float = 15.0
    clock: Callable[[], float] = time.monotonic
    _cached: tuple[float, bool] | None = field(default=None, repr=False)

    def engaged(self) -> bool:
        if not self.parameter or self.ssm is None:
            return False
        now = self.clock()
        if self._cached and now - self._cached[0] < self.ttl_s:
            return self._cached[1]
        try:
            value = self.ssm().get_parameter(Name=self.parameter)["Parameter"]["Value"]
        except Exception as exc:
            if error_code(exc) == "ParameterNotFound":
                value = "off"
            else:
                raise KillSwitchUnreadable(f"cannot read kill switch {self.parameter}: {error_code(exc)}") from exc
        engaged = str(value).strip().lower() in ON_VALUES
        self._cached = (now, engaged)
        return engaged


@dataclass
class FixedKillSwitch:
    """For simulations and drills: a switch whose position is set in code."""

    on: bool = False

    def engaged(self) -> bool:
        return self.on
