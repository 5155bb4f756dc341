"""Slack → ``chalice local`` (a real HTTP server in its own process) → moto server → the responder.

Nothing in-process is shared with the app under test: it reads its settings from its environment,
its secrets from the moto server's Secrets Manager, decides in the moto server's DynamoDB, queues on
its SQS, and answers Slack through the fake Slack's response_url, all over HTTP.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from clampdown.local_slack.server import approval_ids, block_actions_body, command_body, sign
from tests.e2e.conftest import free_port
from tests.functional.notify.stage import ALICE, MALLORY, SIGNING_SECRET, Stage

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[3]


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chalice local exited: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"chalice local did not listen on {port}: {log.read_text()[-2000:]}")


@pytest.fixture
def local(stage: Stage, aws_endpoint: str, tmp_path: Path) -> Iterator[str]:
    """``chalice local`` on a free port, its environment pointing at the moto server and the fake Slack."""
    project = tmp_path / "project"
    (project / ".chalice").mkdir(parents=True)
    (project / "app.py").symlink_to(ROOT / "app.py")
    (project / "chalicelib").symlink_to(ROOT / "chalicelib")
    config = {"version": "2.0", "app_name": "clampdown", "stages": {"e2e": {"environment_variables": stage.environ()}}}
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CLAMPDOWN_")},
        "AWS_ENDPOINT_URL": aws_endpoint,
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    log = tmp_path / "chalice-local.log"
    chalice = Path(sys.executable).with_name("chalice")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(chalice),
                "--project-dir",
                str(project),
                "local",
                "--port",
                str(port),
                "--stage",
                "e2e",
                "--no-autoreload",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def post(url: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(url, data=body, headers=headers, timeout=10)


def click_body(stage: Stage, approval_id: str, user: str = ALICE, name: str = "1") -> bytes:
    return block_actions_body(
        action_id="clampdown.approve",
        value=approval_id,
        user_id=user,
        user_name=user.lower(),
        response_url=stage.slack.response_url(name),
    )


def test_a_signed_click_approves_once_and_the_responder_contains(stage: Stage, local: str) -> None:
    responder = stage.responder()
    step = responder.handle(stage.finding()).steps[0]
    [approval_id] = approval_ids(stage.slack)
    body = click_body(stage, approval_id)
    headers = sign(SIGNING_SECRET, body)

    forged = post(f"{local}/slack/interactions", body, sign("guessed-secret", body))
    assert forged.status_code == 401
    refused = post(
        f"{local}/slack/interactions",
        click_body(stage, approval_id, MALLORY, "m"),
        sign(SIGNING_SECRET, click_body(stage, approval_id, MALLORY, "m")),
    )
    assert refused.status_code == 200
    assert stage.slack.to("/actions/T0FAKE/m/")[0].json["text"].startswith("Not allowed")
    assert stage.drain() == []

    assert post(f"{local}/slack/interactions", body, headers).status_code == 200
    [ack] = stage.slack.to("/actions/T0FAKE/1/")
    assert "✅ *Approved* by <@U0ALICE> — running…" in json.dumps(ack.json["blocks"], ensure_ascii=False)
    messages = stage.drain()
    assert messages == [
        {"clampdown-command": "approval-decided", "incident_id": step.incident_id, "approval_id": approval_id}
    ]
    for message in messages:
        responder.handle(message)
    assert stage.key_status() == "Inactive"

    # A replay of the used request: recorded already, nothing queued; older than 5 minutes: 401.
    assert post(f"{local}/slack/interactions", body, headers).status_code == 200
    assert stage.drain() == []
    stale = sign(SIGNING_SECRET, body, int(headers["X-Slack-Request-Timestamp"]) - 301)
    assert post(f"{local}/slack/interactions", body, stale).status_code == 401
    done = responder.store.get_step(step.incident_id, step.key)
    assert (done.status, done.approved_by) == ("contained", "slack:U0ALICE (u0alice)")


def test_malformed_requests_never_get_a_500(stage: Stage, local: str) -> None:
    cases: list[tuple[bytes, dict[str, Any]]] = [
        (b"\xff\xfe", {"X-Slack-Request-Timestamp": "not-a-number", "X-Slack-Signature": "v0=0"}),
        (b"payload=%7B", sign(SIGNING_SECRET, b"payload=%7B")),
        (b"", {}),
    ]
    statuses = []
    for body, headers in cases:
        full = {"Content-Type": "application/x-www-form-urlencoded", **headers}
        statuses.append(post(f"{local}/slack/interactions", body, full).status_code)
        statuses.append(post(f"{local}/slack/commands", body, full).status_code)
    assert statuses == [401, 401, 400, 400, 401, 401]


def test_the_slash_command_is_answered_over_http(stage: Stage, local: str) -> None:
    body = command_body("help", user_id=ALICE, user_name="alice", response_url=stage.slack.response_url())
    reply = post(f"{local}/slack/commands", body, sign(SIGNING_SECRET, body))
    assert reply.status_code == 200
    assert reply.json()["text"].startswith("Usage: `/clampdown contain")
