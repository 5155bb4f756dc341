"""Fixtures: a fake Slack on 127.0.0.1 and a Slack-enabled stage on in-process moto; Hypothesis settings.

``PROFILE``: 100 examples per property test, 2,000 with ``make fuzz`` (``HYPOTHESIS_PROFILE=fuzz``).
The property tests apply it themselves, so nothing is loaded globally for other test directories.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clampdown.local_slack.server import FakeSlack, WebhookReceiver
from tests.conftest import hypothesis_profile
from tests.functional.notify.stage import Stage, create_stage

PROFILE = hypothesis_profile(100)


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
