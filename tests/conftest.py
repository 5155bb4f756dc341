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


def hypothesis_profile(examples: int, fuzz_examples: int = 2_000) -> Any:
    """Settings for one suite's property tests (usable as a decorator): ``examples`` per test in CI,
    ``fuzz_examples`` with ``HYPOTHESIS_PROFILE=fuzz`` (``make fuzz``). No deadline: moto and the
    event corpus make single examples slow, never wrong."""
    from hypothesis import HealthCheck, settings

    fuzz = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
    health = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
    return settings(max_examples=fuzz_examples if fuzz else examples, deadline=None, suppress_health_check=health)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every Hypothesis test is a ``fuzz`` test (``make fuzz`` selects ``-m fuzz``), whatever its name."""
    from hypothesis import is_hypothesis_test

    for item in items:
        if is_hypothesis_test(getattr(item, "obj", None)):
            item.add_marker(pytest.mark.fuzz)


def corpus_event(relative: str) -> dict[str, Any]:
    """A real event from the corpus copy, e.g. ``guardduty/gd_c7n_...json``."""
    loaded: dict[str, Any] = json.loads((CORPUS / relative).read_text())
    return loaded


def member_client(session: Any, account: str, service: str = "iam", **kwargs: Any) -> Any:
    """A client in another (moto) account, through the role the responder assumes there."""
    creds = session.client("sts", **kwargs).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/ClampdownMemberResponder", RoleSessionName="setup"
    )["Credentials"]
    return session.client(
        service,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        **kwargs,
    )


@dataclass
class CallRecorder:
    """Every AWS API call made through a boto3 session, as (service, operation, API parameters)."""

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
    boto_session.events.register("before-parameter-build", recorder)
    return recorder


@pytest.fixture
def aws_clients(boto_session: Any, recorder: CallRecorder) -> Any:
    """The responder's client factory on moto, counting every call through ``recorder``."""
    from chalicelib.aws import AwsClients

    return AwsClients(home_account=ACCOUNT, default_region=REGION, session_factory=lambda: boto_session)


@dataclass
class InjectedFault:
    """Makes the next ``times`` HTTP sends of one operation answer an AWS error, as AWS would.

    Registered first on ``before-send`` (ahead of moto), so botocore parses the error response and
    its retry logic treats it exactly like the real thing (a throttle is retried with backoff), and
    the faulted attempt has no effect in moto.
    """

    code: str
    times: int
    status: int = 400
    protocol: str = "query"
    sent: int = 0

    def __call__(self, request: Any, **_: Any) -> Any:
        # botocore calls every before-send handler and uses the first response: moto's handler would
        # still carry out the request. Pointing the request elsewhere makes moto ignore it; the URL
        # is restored on the attempt that is let through.
        original = getattr(request, "_clampdown_url", None)
        if self.sent >= self.times:
            if original:
                request.url = original
            return None
        self.sent += 1
        if not original:
            request._clampdown_url = request.url
        request.url = "https://injected-fault.clampdown.invalid/"
        from botocore.awsrequest import AWSResponse

        if self.protocol == "json":
            body = json.dumps({"__type": self.code, "message": "injected by the test"}).encode()
        else:
            body = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{self.code}</Code>"
                f"<Message>injected by the test</Message></Error><RequestId>test</RequestId></ErrorResponse>"
            ).encode()
        return AWSResponse(request.url, self.status, {}, _Raw(body))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def inject_fault(session: Any, service: str, operation: str, code: str, times: int = 1, **kwargs: Any) -> InjectedFault:
    """Register an :class:`InjectedFault` for ``service.operation`` on a boto3 session (before clients exist)."""
    fault = InjectedFault(code, times, **kwargs)
    session.events.register_first(f"before-send.{service}.{operation}", fault)
    return fault
