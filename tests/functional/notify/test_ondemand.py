"""On-demand response: ``/clampdown contain ...`` and Security Hub's "Contain with Clampdown" custom
action, through the same queue, plan, guardrails and audit trail as any finding."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clampdown.local_slack.server import command_body, sign
from clampdown.playbooks.loader import load_library
from tests.conftest import corpus_event
from tests.functional.notify.stage import ALICE, MALLORY, SIGNING_SECRET, Stage

ON_DEMAND = """\
name: quarantine-user-on-demand
description: Quarantine an IAM user named by a responder.
match:
  source: [clampdown.ondemand]
  detail-type: [Clampdown:OnDemand/Contain]
  detail:
    playbook: [quarantine-user-on-demand]
steps:
  - action: iam.quarantine-user
    target: iam-user
"""

CUSTOM_ACTION = """\
name: contain-with-clampdown
description: Security Hub custom action "Contain with Clampdown".
match:
  source: [aws.securityhub]
  detail-type: [Security Hub Findings - Custom Action]
  detail:
    actionName: [Lambda remediate]
steps:
  - action: notify.log
"""


@pytest.fixture
def ondemand(stage: Stage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stage]:
    folder = tmp_path / "library"
    folder.mkdir()
    (folder / "ondemand.yaml").write_text(ON_DEMAND)
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(load_library([folder]).to_bundle()))
    stage.extra.update(custom_sources=("clampdown.ondemand",), slack_approvers=(ALICE,), home_account="123456789012")
    for name, value in stage.environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CLAMPDOWN_BUNDLE", str(bundle))
    yield stage


def slash(stage: Stage, text: str, user: str = ALICE, secret: str = SIGNING_SECRET) -> Any:
    body = command_body(text, user_id=user, user_name=user.lower(), response_url=stage.slack.response_url())
    with stage.chalice_client() as client:
        return client.http.post("/slack/commands", headers=sign(secret, body), body=body)


def test_an_approver_contains_a_named_user(ondemand: Stage) -> None:
    arn = "arn:aws:iam::123456789012:user/mallory"
    reply = slash(ondemand, f"contain {arn} quarantine-user-on-demand")
    assert reply.status_code == 200
    answer = reply.json_body
    assert answer["response_type"] == "in_channel"
    assert answer["text"].startswith(f"<@U0ALICE> asked Clampdown to contain `{arn}`; request `")
    assert answer["text"].endswith("Planned:\n• `quarantine-user-on-demand` `iam.quarantine-user` on `mallory` (auto)")
    [event] = ondemand.drain()
    assert (event["source"], event["detail-type"], event["resources"]) == (
        "clampdown.ondemand",
        "Clampdown:OnDemand/Contain",
        [arn],
    )
    responder = ondemand.responder(ON_DEMAND)
    report = responder.handle(event)
    assert [(s.action, s.status) for s in report.steps] == [("iam.quarantine-user", "contained")]
    iam = ondemand.session.client("iam")
    assert "clampdown-quarantine" in iam.list_user_policies(UserName="mallory")["PolicyNames"]
    [incident] = responder.store.list_incidents()
    assert incident.title == f"On-demand containment of {arn} requested in Slack by U0ALICE (u0alice)"
    assert incident.sources == ["eventbridge"] and incident.type == "Clampdown:OnDemand/Contain"


def test_bare_instance_ids_are_resolved_in_the_home_account(ondemand: Stage) -> None:
    reply = slash(ondemand, "contain i-0123456789abcdef0")
    assert reply.json_body == {
        "response_type": "ephemeral",
        "text": "No playbook accepts an on-demand request for "
        "`arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0`.",
    }
    assert ondemand.drain() == []


@pytest.mark.parametrize(
    ("text", "user", "answer"),
    [
        (
            "contain arn:aws:iam::123456789012:user/mallory",
            MALLORY,
            "Not allowed: only Clampdown approvers can ask for on-demand containment.",
        ),
        ("", ALICE, "Usage: `/clampdown contain <resource ARN or instance/security-group id> [playbook]`"),
        (
            "contain ../../etc/passwd",
            ALICE,
            "Usage: `/clampdown contain <resource ARN or instance/security-group id> [playbook]`",
        ),
        (
            "contain arn:aws:iam::123456789012:user/mallory NO_SUCH",
            ALICE,
            "a playbook name is lower-case letters, digits and dashes",
        ),
        ("contain arn:aws:iam::123456789012:user/mallory other-book", ALICE, "No playbook named `other-book`."),
    ],
    ids=["not-an-approver", "help", "not-a-resource", "bad-playbook-name", "unknown-playbook"],
)
def test_refusals_are_ephemeral_and_queue_nothing(ondemand: Stage, text: str, user: str, answer: str) -> None:
    reply = slash(ondemand, text, user=user)
    assert reply.status_code == 200
    assert reply.json_body == {"response_type": "ephemeral", "text": answer}
    assert ondemand.drain() == []


def test_on_demand_is_off_unless_its_source_is_accepted(ondemand: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAMPDOWN_CUSTOM_SOURCES")
    reply = slash(ondemand, "contain arn:aws:iam::123456789012:user/mallory")
    assert "On-demand response is off for this stage" in reply.json_body["text"]
    assert ondemand.drain() == []


def test_commands_are_signed_like_interactions(ondemand: Stage) -> None:
    assert slash(ondemand, "contain arn:aws:iam::123456789012:user/mallory", secret="wrong").status_code == 401
    assert ondemand.drain() == []


def test_a_security_hub_custom_action_takes_the_responder_path(stage: Stage) -> None:
    """The real custom-action event from the corpus (c7n's test data), as EventBridge delivers it."""
    event = corpus_event("securityhub/sh_c7n_Custom-Action_event-securityhub-lambda-cross.json")
    responder = stage.responder(CUSTOM_ACTION, accounts=("519413311747", "644160558196"))
    report = responder.handle(event)
    assert [(s.action, s.status) for s in report.steps] == [("notify.log", "done")]
    [incident] = responder.store.list_incidents()
    assert incident.sources == ["securityhub"] and incident.account == "644160558196"
    assert incident.finding["details"]["custom_action_name"] == "Lambda remediate"
    [alert] = stage.slack.calls("chat.postMessage")
    text = json.dumps(alert.params["blocks"], ensure_ascii=False)
    assert "• lambda-function `custodian-enterprise-ec2-instances-no-elastic-ip-isolate`" in text
    assert "✔️ *1. notify.log* on the finding — done" in text
