"""A stage with Slack configured, on moto (in-process or server): tables, queue, secrets, an IAM user
with an access key to contain, the Slack settings, and a responder built like the deployed one."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.settings import Settings
from chalicelib.wiring import build_responder
from clampdown.local_slack.server import FakeSlack
from tests.conftest import REGION
from tests.functional import responder_env as env

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5-signing"
SLACK_SECRET = "clampdown/test/slack"
QUEUE = "clampdown-events"
ALICE, BOB, MALLORY = "U0ALICE", "U0BOB", "U0MALLORY"
ONCALL_GROUP = "S0ONCALL"

APPROVAL_PLAYBOOK = """\
name: tor-user
description: Deactivate the key of a user calling from Tor, after approval.
match:
  source: [aws.guardduty]
  detail-type: [GuardDuty Finding]
  detail:
    type: [{prefix: "UnauthorizedAccess:IAMUser/"}]
mode: approval
approvers: [U0ALICE, S0ONCALL]
steps:
  - action: iam.deactivate-access-key
"""

AUTO_PLAYBOOK = APPROVAL_PLAYBOOK.replace("mode: approval", "mode: auto")


@dataclass
class Stage:
    session: Any
    slack: FakeSlack
    queue_url: str
    user: str
    key: str
    tmp: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def settings(self, **overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "queue_url": self.queue_url,
            "slack_token_secret": f"{SLACK_SECRET}#bot_token",
            "slack_signing_secret": f"{SLACK_SECRET}#signing_secret",
            "slack_channel": "#security-alerts",
            "slack_api_url": self.slack.api_url,
            "slack_response_url_prefix": self.slack.url + "/",
            "notify_max_wait_s": 1.0,
            **self.extra,
        }
        base.update(overrides)
        return env.settings(**base)

    def environ(self, **overrides: Any) -> dict[str, str]:
        """The function's environment for these settings (what a deployed stage sets)."""
        settings = self.settings(**overrides)
        values = {
            "CLAMPDOWN_INCIDENTS_TABLE": settings.incidents_table,
            "CLAMPDOWN_IDEMPOTENCY_TABLE": settings.idempotency_table,
            "CLAMPDOWN_QUEUE_URL": settings.queue_url,
            "CLAMPDOWN_KILL_SWITCH_PARAMETER": settings.kill_switch_parameter,
            "CLAMPDOWN_SLACK_TOKEN_SECRET": settings.slack_token_secret,
            "CLAMPDOWN_SLACK_SIGNING_SECRET": settings.slack_signing_secret,
            "CLAMPDOWN_SLACK_CHANNEL": settings.slack_channel,
            "CLAMPDOWN_SLACK_API_URL": settings.slack_api_url,
            "CLAMPDOWN_SLACK_RESPONSE_URL_PREFIX": settings.slack_response_url_prefix,
            "CLAMPDOWN_SLACK_APPROVERS": ",".join(settings.slack_approvers),
            "CLAMPDOWN_SLACK_IDENTITIES": json.dumps(dict(settings.slack_identities)),
            "CLAMPDOWN_SEPARATION_OF_DUTIES": str(settings.separation_of_duties).lower(),
            "CLAMPDOWN_CUSTOM_SOURCES": ",".join(settings.custom_sources),
            "CLAMPDOWN_HOME_ACCOUNT": settings.home_account,
            "CLAMPDOWN_ACCOUNTS": ",".join(settings.accounts),
            "CLAMPDOWN_NOTIFY_MAX_WAIT_S": str(settings.notify_max_wait_s),
        }
        return {k: v for k, v in values.items() if v}

    def responder(self, *playbooks: str, **overrides: Any) -> Any:
        library = env.library(self.tmp, *(playbooks or (APPROVAL_PLAYBOOK,)))
        return build_responder(self.settings(**overrides), library=library, session=self.session)

    def chalice_client(self) -> Any:
        """The Chalice test client on our app, without the repository's stage configuration: the
        function's environment is the one the test set (``environ``), as a deployed stage would."""
        from chalice.test import Client

        from app import app

        project = self.tmp / "chalice-project"
        project.mkdir(exist_ok=True)
        return Client(app, stage_name="test", project_dir=str(project))

    def key_status(self) -> str:
        keys = self.session.client("iam").list_access_keys(UserName=self.user)["AccessKeyMetadata"]
        return str(keys[0]["Status"])

    def finding(self, **kwargs: Any) -> dict[str, Any]:
        return env.tor_user_finding(user=self.user, key=self.key, **kwargs)

    def drain(self) -> list[dict[str, Any]]:
        """Every message on the responder's queue (received and deleted), oldest first."""
        sqs = self.session.client("sqs")
        bodies: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = got.get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


def create_stage(session: Any, slack: FakeSlack, tmp: Path, user: str = "mallory") -> Stage:
    env.create_tables(session.client("dynamodb", region_name=REGION))
    queue_url = session.client("sqs", region_name=REGION).create_queue(QueueName=QUEUE)["QueueUrl"]
    iam = session.client("iam")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    session.client("secretsmanager", region_name=REGION).create_secret(
        Name=SLACK_SECRET, SecretString=json.dumps({"bot_token": slack.token, "signing_secret": SIGNING_SECRET})
    )
    slack.usergroups[ONCALL_GROUP] = [BOB]
    return Stage(session, slack, queue_url, user, key, tmp)
