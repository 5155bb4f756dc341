"""Secrets from Secrets Manager and SSM (moto), cached, and never in logs, records or error messages."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from chalicelib.secrets import SecretReader, SecretUnavailable, _Cache
from clampdown.local_slack.server import WebhookReceiver, approval_ids, block_actions_body, sign
from tests.conftest import CallRecorder
from tests.functional.notify.stage import SIGNING_SECRET, Stage


def reader(session: Any, clock: Any = None, ttl_s: float = 300) -> SecretReader:
    def clients(service: str, region: str | None) -> Any:
        return session.client(service, region_name=region)

    return SecretReader(clients, ttl_s=ttl_s, clock=clock or (lambda: 0.0), cache=_Cache())


def test_secrets_manager_by_name_arn_and_json_key(boto_session: Any) -> None:
    client = boto_session.client("secretsmanager")
    arn = client.create_secret(Name="app/token", SecretString=" xoxb-1 \n")["ARN"]
    client.create_secret(Name="app/both", SecretString=json.dumps({"bot_token": "xoxb-2", "signing_secret": "s3"}))
    secrets = reader(boto_session)
    assert secrets.get("app/token") == "xoxb-1"
    assert secrets.get(arn) == "xoxb-1"
    assert secrets.get("app/both#signing_secret") == "s3"


def test_ssm_secure_strings(boto_session: Any) -> None:
    ssm = boto_session.client("ssm")
    ssm.put_parameter(Name="/clampdown/webhook", Value="https://hooks.example/abc", Type="SecureString")
    secrets = reader(boto_session)
    assert secrets.get("ssm:/clampdown/webhook") == "https://hooks.example/abc"
    assert secrets.get("/clampdown/webhook") == "https://hooks.example/abc"


def test_values_are_cached_for_the_ttl(boto_session: Any, recorder: CallRecorder) -> None:
    boto_session.client("secretsmanager").create_secret(Name="app/token", SecretString="v1")
    now = [0.0]
    secrets = reader(boto_session, clock=lambda: now[0], ttl_s=300)
    assert [secrets.get("app/token") for _ in range(5)] == ["v1"] * 5
    boto_session.client("secretsmanager").put_secret_value(SecretId="app/token", SecretString="v2")
    now[0] = 299
    assert secrets.get("app/token") == "v1"
    now[0] = 301  # rotated values are picked up after the TTL
    assert secrets.get("app/token") == "v2"
    assert recorder.operations.count("secretsmanager:GetSecretValue") == 2


def test_errors_name_the_secret_never_a_value(boto_session: Any) -> None:
    boto_session.client("secretsmanager").create_secret(Name="app/json", SecretString='{"other": "hunter2"}')
    secrets = reader(boto_session)
    with pytest.raises(SecretUnavailable, match=r"^secret 'app/missing' could not be read: ResourceNotFoundException$"):
        secrets.get("app/missing")
    with pytest.raises(SecretUnavailable) as caught:
        secrets.get("app/json#bot_token")
    assert str(caught.value) == "secret 'app/json' is not a JSON object with the key 'bot_token'"
    assert "hunter2" not in repr(caught.value)


def test_no_secret_reaches_logs_or_records(
    stage: Stage, receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole run at DEBUG: alert, approval over the Chalice route, execution, a failing webhook."""
    webhook = f"{receiver.url}/hooks/T0/B0/webhook-path-secret"
    stage.session.client("secretsmanager").create_secret(Name="clampdown/test/webhook", SecretString=webhook)
    caplog.set_level(logging.DEBUG)  # from here on: what the deployed code logs, at DEBUG
    app_log = logging.getLogger("clampdown")  # the app's own logger (Powertools; it does not propagate)
    monkeypatch.setattr(app_log, "handlers", [*app_log.handlers, caplog.handler])
    monkeypatch.setattr(app_log, "level", logging.DEBUG)
    receiver.fail("/hooks/", 500, times=1)  # a failure whose message must not carry the URL
    stage.extra.update(webhook_url_secret="clampdown/test/webhook", notify_retries=0)
    for name, value in stage.environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CLAMPDOWN_WEBHOOK_URL_SECRET", "clampdown/test/webhook")
    responder = stage.responder()
    responder.handle(stage.finding())
    [approval_id] = approval_ids(stage.slack)
    body = block_actions_body(
        action_id="clampdown.approve",
        value=approval_id,
        user_id="U0ALICE",
        user_name="alice",
        response_url=stage.slack.response_url(),
    )
    with stage.chalice_client() as client:
        assert client.http.post("/slack/interactions", headers=sign(SIGNING_SECRET, body), body=body).status_code == 200
    for message in stage.drain():
        responder.handle(message)
    assert stage.key_status() == "Inactive"
    [incident] = responder.store.list_incidents()
    assert "webhook: HTTP 500" in " ".join(incident.notes), "the failure is recorded"

    table = stage.session.client("dynamodb").scan(TableName="clampdown-incidents")["Items"]
    records = json.dumps(table)
    # "responses" is moto's in-process HTTP interception (it logs each passed-through URL); Lambda has none.
    ours = [r for r in caplog.records if r.name != "responses"]
    logs = " ".join(r.getMessage() + repr(r.__dict__) for r in ours)
    assert {r.name for r in ours} >= {"botocore.endpoint", "clampdown"}, "the run did log, at DEBUG"
    assert any(r.getMessage() == "slack decision" for r in ours)
    for secret in (stage.slack.token, SIGNING_SECRET, webhook, "webhook-path-secret"):
        assert secret not in logs
        assert secret not in records
