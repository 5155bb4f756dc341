"""End-to-end fixtures: the threaded moto server over real HTTP, and a deployed-like stage on it."""

from __future__ import annotations

import json
import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REGION
from tests.reliability.conftest import backoff  # noqa: F401 - botocore's retry sleeps recorded, not slept
from tests.reliability.harness import Calls, Faults, session_hooks


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_endpoint(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every boto3 client created during the test talks to the moto server; state reset after."""
    import requests

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    yield moto_server
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)


STAGE = "dev"


@pytest.fixture
def stage(aws_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The resources of the ``dev`` stage (tables and kill switch named as in .chalice/config.json,
    which Chalice's test client applies during each invoke; queue, DLQ and evidence bucket as the
    template would give them) on the moto server, and a bundle of the shipped playbooks."""
    import boto3

    from chalicelib import wiring
    from clampdown import sandbox as sb
    from clampdown.cli.common import stage_environment

    session = boto3.session.Session(region_name=REGION)
    bundle = sb.write_bundle(Path(__file__).resolve().parents[2] / "playbooks", tmp_path)
    stage_env = {k: str(v) for k, v in stage_environment(STAGE).items()}
    queue_url, dlq_url = sb._create_platform(session, bundle, stage_env)
    env = sb._create_environment(session)
    for name, value in {**sb.settings_environ(queue_url, bundle), **stage_env}.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    yield {
        "session": session,
        "queue_url": queue_url,
        "dlq_url": dlq_url,
        "env": env,
        "bundle": bundle,
        "stage_env": stage_env,
    }
    wiring.reset()


@pytest.fixture
def responder_hooks(stage: dict[str, Any]) -> Iterator[tuple[Calls, Faults]]:
    """Every API call the responder makes (its own botocore session, built on the first invocation), and
    faults injected at its HTTP boundary (:class:`tests.reliability.harness.Faults`): botocore hooks, so
    throttles and errors are parsed and retried by botocore as real AWS answers are."""
    from botocore import handlers as botocore_handlers

    from chalicelib import wiring

    calls, faults = Calls(), Faults()
    with session_hooks(("before-parameter-build", calls), ("before-send", faults, botocore_handlers.REGISTER_FIRST)):
        wiring.reset()
        yield calls, faults
        wiring.reset()


def invoke(bodies: list[Any]) -> dict[str, Any]:
    """One SQS batch through the ``respond`` function with Chalice's test client (the dev stage's settings)."""
    return invoke_event(sqs_record_event(bodies))


def invoke_event(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """``context`` is ignored: Chalice's test client gives the function its own Lambda context."""
    from chalice.test import Client

    from app import app

    with Client(app, stage_name=STAGE) as client:
        payload: dict[str, Any] = client.lambda_.invoke("respond", event).payload
    return payload


def incident_store(stage: dict[str, Any]) -> Any:
    from chalicelib.incidents import DynamoIncidentStore

    return DynamoIncidentStore(stage["session"].client("dynamodb"), stage["stage_env"]["CLAMPDOWN_INCIDENTS_TABLE"])


def steps_of(stage: dict[str, Any]) -> dict[str, Any]:
    """The one incident's step records by action."""
    store = incident_store(stage)
    [incident] = store.list_incidents()
    return {s.action: s for s in store.list_steps(incident.id)}


def key_status(stage: dict[str, Any], user: str | None = None, iam: Any = None) -> str:
    iam = iam or stage["session"].client("iam")
    keys = iam.list_access_keys(UserName=user or stage["env"].user_name)["AccessKeyMetadata"]
    return str(keys[0]["Status"])


def drain(stage: dict[str, Any], *, max_batches: int = 100) -> Any:
    """Lambda's event source mapping on the stage's queue, invoking ``respond`` through Chalice's test client."""
    from clampdown import sandbox as sb

    box = sb.Sandbox(stage["session"], stage["queue_url"], stage["dlq_url"], stage["bundle"], stage["env"])
    return sb.pump(box, invoke_event, max_batches=max_batches)


def sqs_record_event(bodies: list[Any], queue: str = "clampdown-events") -> dict[str, Any]:
    """The SQS event Lambda delivers, built by Chalice's own test helper."""
    from chalice.test import Client

    from app import app

    with Client(app) as client:
        event: dict[str, Any] = client.events.generate_sqs_event(
            message_bodies=[b if isinstance(b, str) else json.dumps(b) for b in bodies], queue_name=queue
        )
    # Chalice gives every record the same messageId; SQS never does, and partial batch failures name
    # records by it.
    for record in event["Records"]:
        record["messageId"], record["receiptHandle"] = str(uuid.uuid4()), f"handle-{uuid.uuid4()}"
    return event
