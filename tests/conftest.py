"""Shared fixtures. AWS is always moto here: fake credentials are forced so no test can reach AWS."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "corpus"
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"

for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}.items():
    os.environ[_name] = _value
for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_name, None)


def corpus_event(relative: str) -> dict[str, Any]:
    """A real event from the corpus copy, e.g. ``guardduty/gd_c7n_...json``."""
    loaded: dict[str, Any] = json.loads((CORPUS / relative).read_text())
    return loaded


@dataclass
class CallRecorder:
    """Every AWS API call made through a boto3 session, as (service, operation, params)."""

    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, model: Any, params: Any, **_: Any) -> None:
        self.calls.append((model.service_model.service_name, model.name, params))

    @property
    def operations(self) -> list[str]:
        return [f"{service}:{operation}" for service, operation, _ in self.calls]

    def permissions(self) -> set[str]:
        from chalicelib.actions.base import iam_action

        return {iam_action(service, operation) for service, operation, _ in self.calls}

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def moto_aws() -> Iterator[None]:
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


@pytest.fixture
def boto_session(moto_aws: None) -> Any:
    import boto3

    return boto3.session.Session(region_name=REGION)


@pytest.fixture
def recorder(boto_session: Any) -> CallRecorder:
    recorder = CallRecorder()
    boto_session.events.register("before-call", recorder)
    return recorder


@pytest.fixture
def aws_clients(boto_session: Any, recorder: CallRecorder) -> Any:
    """The responder's client factory on moto, counting every call through ``recorder``."""
    from chalicelib.aws import AwsClients

    return AwsClients(home_account=ACCOUNT, default_region=REGION, session_factory=lambda: boto_session)
