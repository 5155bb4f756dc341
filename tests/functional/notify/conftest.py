"""Fixtures: a fake Slack on 127.0.0.1 and a Slack-enabled stage on in-process moto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clampdown.local_slack.server import FakeSlack, WebhookReceiver
from tests.functional.notify.stage import Stage, create_stage


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
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as fake:
        yield fake


@pytest.fixture
def stage(boto_session: Any, slack: FakeSlack, tmp_path: Path) -> Stage:
    return create_stage(boto_session, slack, tmp_path)
