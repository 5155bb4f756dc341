"""Fixtures of the reliability suites (fuzzing, faults, attacks) and their Hypothesis settings.

``PROFILE``: 100 examples per test (bounded for CI), 2,000 with ``make fuzz`` (``HYPOTHESIS_PROFILE=fuzz``).
"""

from __future__ import annotations

import time
import types
from collections.abc import Iterator

import pytest

from tests.conftest import hypothesis_profile
from tests.reliability.harness import Deployment, deployment

PROFILE = hypothesis_profile(100)


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
