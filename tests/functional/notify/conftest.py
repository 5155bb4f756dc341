"""Fixtures: a fake Slack on 127.0.0.1 and a Slack-enabled stage on in-process moto; Hypothesis profiles.

``notify`` (the default here): 100 examples per property test; ``fuzz`` (``make fuzz``, i.e.
``HYPOTHESIS_PROFILE=fuzz``): 2,000. The property tests pick the profile themselves (``PROFILE``),
so nothing is loaded globally for other test directories.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.errors import InvalidArgument

from clampdown.local_slack.server import FakeSlack, WebhookReceiver
from tests.functional.notify.stage import Stage, create_stage


def _register(name: str, **options: Any) -> None:
    """Register a Hypothesis profile unless another conftest already did."""
    try:
        settings.get_profile(name)
    except InvalidArgument:
        settings.register_profile(name, **options)


_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
_register("notify", max_examples=100, deadline=None, suppress_health_check=_HEALTH)
_register("fuzz", max_examples=2000, deadline=None, suppress_health_check=_HEALTH)
PROFILE = settings.get_profile("fuzz" if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else "notify")


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    """Secrets and the Slack handler are cached per process (per Lambda instance): not across tests."""
    from chalicelib import secrets, slack_interactions

    secrets.forget_all()
    slack_interactions.reset()
    yield
    secrets.forget_all()
    slack_interactions.reset()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """The Slack stand-in on a free loopback port (also the e2e tests' fixture)."""
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as fake:
        yield fake


@pytest.fixture
def stage(boto_session: Any, slack: FakeSlack, tmp_path: Path) -> Stage:
    return create_stage(boto_session, slack, tmp_path)
