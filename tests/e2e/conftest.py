"""End-to-end fixtures: the threaded moto server over real HTTP, and a deployed-like stage on it."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REGION


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


def sqs_record_event(bodies: list[Any], queue: str = "clampdown-events") -> dict[str, Any]:
    """The SQS event Lambda delivers, built by Chalice's own test helper."""
    from chalice.test import Client

    from app import app

    with Client(app) as client:
        return client.events.generate_sqs_event(
            message_bodies=[b if isinstance(b, str) else json.dumps(b) for b in bodies], queue_name=queue
        )
