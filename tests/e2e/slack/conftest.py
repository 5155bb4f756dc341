"""Fixtures of the Slack e2e tests: the Slack stand-in (one definition, shared with the functional
notify tests) and a Slack-enabled stage on the moto server."""

from __future__ import annotations

from pathlib import Path

import pytest

from clampdown.local_slack.server import FakeSlack
from tests.functional.notify.conftest import slack
from tests.functional.notify.stage import Stage, create_stage

__all__ = ["slack", "stage"]


@pytest.fixture
def stage(aws_endpoint: str, slack: FakeSlack, tmp_path: Path) -> Stage:
    """Tables, queue, secrets and an IAM user with a key on the moto server (over HTTP)."""
    import boto3

    from chalicelib import secrets

    secrets.forget_all()
    return create_stage(boto3.session.Session(region_name="us-east-1"), slack, tmp_path)
