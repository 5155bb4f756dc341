"""Fixtures of the reliability suites (fuzzing, faults, attacks) and their Hypothesis profiles.

``reliability`` (the default, bounded for CI): 100 examples per test; ``fuzz`` (``make fuzz``, i.e.
``HYPOTHESIS_PROFILE=fuzz``): 2,000.
"""

from __future__ import annotations

import os
import time
import types
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.errors import InvalidArgument

from tests.reliability.harness import Deployment, deployment


def _register(name: str, **options: Any) -> None:
    try:
        settings.get_profile(name)
    except InvalidArgument:
        settings.register_profile(name, **options)


_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
_register("reliability", max_examples=100, deadline=None, suppress_health_check=_HEALTH)
_register("fuzz", max_examples=2000, deadline=None, suppress_health_check=_HEALTH)
PROFILE = settings.get_profile("fuzz" if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else "reliability")


class SleepLog:
    """botocore's retry sleeps, recorded instead of slept (the backoff is checked, never waited for)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def backoff(monkeypatch: pytest.MonkeyPatch) -> SleepLog:
    """botocore's endpoint sleeps between retries through ``time.sleep``; record the delays instead."""
    import botocore.endpoint

    log = SleepLog()
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=log.sleep, time=time.time))
    return log


@pytest.fixture
def stage(backoff: SleepLog) -> Iterator[Deployment]:
    """A fresh sandbox deployment per test (the shipped playbooks), retries never sleeping."""
    with deployment() as deployed:
        yield deployed
