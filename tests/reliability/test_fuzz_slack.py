"""Fuzzing the Slack routes: ``POST /slack/interactions`` and ``POST /slack/commands`` through Chalice's
test client, on a Slack-enabled stage (moto in-process, the Slack stand-in, a pending approval request,
on-demand requests switched on).

Bodies are random bytes, random forms, and Slack-shaped clicks and slash commands with random fields;
headers carry a valid signature, a wrong secret, a stale or future timestamp, garbage, or nothing.
For every request:

- the answer is 200, 400 or 401, never a 500 (nor anything else); not validly signed is always 401;
- nothing changes (no decision recorded, nothing queued) unless the request is validly signed and
  comes from an approver; a valid click by an approver on the pending request decides it, once, and
  queues exactly one command.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from chalicelib.incidents import Approval
from chalicelib.notify.slack_blocks import APPROVE_ACTION, DENY_ACTION
from clampdown.local_slack.server import FakeSlack, block_actions_body, command_body, sign
from tests.functional.notify.stage import ALICE, BOB, MALLORY, SIGNING_SECRET, Stage, create_stage
from tests.functional.notify.test_ondemand import ON_DEMAND
from tests.reliability.conftest import PROFILE

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Routes:
    stage: Stage
    client: Any
    responder: Any
    approval: Approval  # the pending request, as it was raised

    def queued(self) -> list[dict[str, Any]]:
        return self.stage.drain()

    def status(self) -> str:
        found = self.responder.store.get_approval(self.approval.id)
        return str(found.status) if found else "missing"

    def reset(self) -> None:
        """The request pending again (after a valid decision), nothing queued: the decided record is
        deleted and the request written again as it was raised."""
        store = self.responder.store
        key = {"pk": {"S": f"APPROVAL#{self.approval.id}"}, "sk": {"S": "META"}}
        self.stage.session.client("dynamodb").delete_item(TableName=store.table, Key=key)
        store.put_approval(self.approval)
        self.queued()


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Routes]:
    import boto3
    from moto import mock_aws

    from chalicelib import secrets, slack_interactions
    from clampdown.playbooks.loader import load_library

    tmp = tmp_path_factory.mktemp("fuzz-slack")
    folder = tmp / "library"
    folder.mkdir()
    (folder / "ondemand.yaml").write_text(ON_DEMAND)
    bundle = tmp / "bundle.json"
    bundle.write_text(json.dumps(load_library([folder]).to_bundle()))
    with mock_aws(), FakeSlack() as slack, pytest.MonkeyPatch.context() as env:
        secrets.forget_all()
        slack_interactions.reset()
        stage = create_stage(boto3.session.Session(region_name="us-east-1"), slack, tmp)
        stage.extra.update(
            custom_sources=("clampdown.ondemand",), slack_approvers=(ALICE,), home_account="123456789012"
        )
        for name, value in stage.environ().items():
            env.setenv(name, value)
        env.setenv("CLAMPDOWN_BUNDLE", str(bundle))
        responder = stage.responder()
        step = responder.handle(stage.finding()).steps[0]
        approval = responder.store.get_approval(step.approval_id)
        assert approval is not None and approval.status == "pending"
        with stage.chalice_client() as client:
            yield Routes(stage, client, responder, approval)
        secrets.forget_all()
        slack_interactions.reset()


# -- what is posted --------------------------------------------------------------------------------
texts = st.text(max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=10,
)
#: Approvers often (ALICE directly, BOB through the S0ONCALL group), so the authorised paths are fuzzed too.
users = st.sampled_from([ALICE, ALICE, ALICE, BOB, MALLORY, "U0NOBODY", "", "u0alice", "U0ALICE\n"]) | texts


@st.composite
def click_bodies(draw: st.DrawFn, approval_id: str, response_url: str) -> bytes:
    """A ``block_actions`` body like Slack's, any field of which may be off."""
    if draw(st.booleans()):  # exactly what Slack posts
        return block_actions_body(
            action_id=draw(st.sampled_from([APPROVE_ACTION, DENY_ACTION])),
            value=approval_id,
            user_id=draw(st.sampled_from([ALICE, ALICE, BOB, MALLORY])),
            user_name="someone",
            response_url=response_url,
        )
    action = {
        "action_id": draw(st.sampled_from([APPROVE_ACTION, DENY_ACTION, "other.app"]) | texts),
        "value": draw(st.sampled_from([approval_id, approval_id + "x", "../" * 4, "a" * 65]) | texts),
        "type": "button",
    }
    actions = draw(st.lists(st.just(action) | json_values, max_size=3))
    payload: Any = {
        "type": draw(st.sampled_from(["block_actions", "view_submission", "message_action"]) | texts),
        "user": draw(st.fixed_dictionaries({"id": users}, optional={"username": texts}) | json_values),
        "actions": draw(st.just(actions) | json_values),
        "response_url": draw(st.sampled_from([response_url, "https://evil.example/x"]) | texts),
    }
    if draw(st.booleans()):
        payload = draw(json_values)  # not an object, or an object without the shape
    return urlencode({"payload": json.dumps(payload)}).encode()


#: Slash-command texts: help, a request a playbook accepts, and malformed ones.
COMMANDS = [
    "help",
    "",
    "contain arn:aws:iam::123456789012:user/mallory quarantine-user-on-demand",
    "contain i-0123456789abcdef0",
    "contain arn:aws:iam::123456789012:user/mallory NotAPlaybook!",
    "contain",
]


@st.composite
def command_bodies(draw: st.DrawFn, response_url: str) -> bytes:
    if draw(st.booleans()):  # exactly what Slack posts
        user, text = draw(st.sampled_from([ALICE, MALLORY])), draw(st.sampled_from([COMMANDS[2], *COMMANDS]))
    else:
        user, text = draw(users), draw(st.sampled_from(COMMANDS) | texts)
    return command_body(text, user_id=user, user_name=draw(texts), response_url=response_url)


@st.composite
def bodies(draw: st.DrawFn, shaped: st.SearchStrategy[bytes]) -> bytes:
    kind = draw(st.sampled_from(["shaped", "shaped", "shaped", "shaped", "bytes", "form"]))
    if kind == "bytes":
        return draw(st.binary(max_size=400))
    if kind == "form":
        return urlencode(draw(st.dictionaries(texts, texts, max_size=5))).encode()
    return draw(shaped)


SIGNINGS = ["valid", "valid", "valid-skewed", "wrong-secret", "stale", "future", "tampered", "garbage", "unsigned"]


@st.composite
def headers(draw: st.DrawFn, body: bytes) -> tuple[str, dict[str, str]]:
    """(how it is signed, the headers): only ``valid*`` is a signature Slack could have made."""
    how = draw(st.sampled_from(SIGNINGS))
    now = int(time.time())
    if how == "valid":
        return how, {**FORM, **sign(SIGNING_SECRET, body, now)}
    if how == "valid-skewed":  # within 5 minutes either way (clear of the edge: the test takes time)
        return how, {**FORM, **sign(SIGNING_SECRET, body, now + draw(st.integers(-240, 240)))}
    if how == "wrong-secret":
        secret = draw(st.text(min_size=1, max_size=40).filter(lambda s: s != SIGNING_SECRET))
        return how, {**FORM, **sign(secret, body, now)}
    if how == "stale":
        return how, {**FORM, **sign(SIGNING_SECRET, body, now - draw(st.integers(330, 10**10)))}
    if how == "future":
        return how, {**FORM, **sign(SIGNING_SECRET, body, now + draw(st.integers(330, 10**10)))}
    if how == "tampered":
        return how, {**FORM, **sign(SIGNING_SECRET, body + draw(st.binary(min_size=1, max_size=8)), now)}
    if how == "garbage":
        return how, {
            **FORM,
            "X-Slack-Request-Timestamp": draw(texts | st.integers().map(str)),
            "X-Slack-Signature": draw(texts | st.just("v0=" + "0" * 64)),
        }
    return how, dict(FORM)


def valid(how: str) -> bool:
    return how.startswith("valid")


def form_of(body: bytes) -> dict[str, list[str]]:
    """The form Slack's body encodes ({} when it is not one)."""
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return {}


def approver_click(body: bytes, approval_id: str) -> tuple[str | None, str | None]:
    """(user, decision) when the body is a click on the pending request (what the handler reads)."""
    try:
        payload = json.loads(form_of(body)["payload"][0])
    except (ValueError, KeyError):
        return None, None
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return None, None
    actions = payload.get("actions")
    ours = [a for a in (actions if isinstance(actions, list) else []) if isinstance(a, dict)]
    action = next((a for a in ours if a.get("action_id") in (APPROVE_ACTION, DENY_ACTION)), None)
    user = payload.get("user")
    if action is None or action.get("value") != approval_id or not isinstance(user, dict):
        return None, None
    decision = "approved" if action["action_id"] == APPROVE_ACTION else "denied"
    return str(user.get("id", "")), decision


def post(routes: Routes, path: str, body: bytes, sent: Mapping[str, str]) -> int:
    return int(routes.client.http.post(path, headers=dict(sent), body=body).status_code)


@PROFILE
@given(data=st.data())
def test_fuzz_slack_interactions(routes: Routes, data: st.DataObject) -> None:
    approval_id, response_url = routes.approval.id, routes.stage.slack.response_url("fuzz")
    body = data.draw(bodies(click_bodies(approval_id, response_url)), label="body")
    how, sent = data.draw(headers(body), label="headers")
    user, decision = approver_click(body, approval_id) if valid(how) else (None, None)
    event(f"signature: {how}")

    status = post(routes, "/slack/interactions", body, sent)

    assert status in (200, 400, 401)
    if not valid(how):
        assert status == 401
    queued, now = routes.queued(), routes.status()
    if user == ALICE:  # an approver's valid click on the pending request: decided once, queued once
        event(f"decided: {decision}")
        assert (status, now, len(queued)) == (200, decision, 1)
    elif user == BOB and now != "pending":  # a member of the approver group (if the group was read in time)
        assert (now, len(queued)) == (decision, 1)
    else:
        assert (now, queued) == ("pending", []), "a side effect without a valid approver's click"
    if now != "pending":
        routes.reset()


@PROFILE
@given(data=st.data())
def test_fuzz_slack_commands(routes: Routes, data: st.DataObject) -> None:
    body = data.draw(bodies(command_bodies(routes.stage.slack.response_url("fuzz"))), label="body")
    how, sent = data.draw(headers(body), label="headers")
    event(f"signature: {how}")

    status = post(routes, "/slack/commands", body, sent)

    assert status in (200, 400, 401)
    if not valid(how):
        assert status == 401
    queued = routes.queued()
    approver = valid(how) and form_of(body).get("user_id", [""])[0] == ALICE
    if approver and queued:
        event("on-demand request queued")
        assert len(queued) == 1 and queued[0]["source"] == "clampdown.ondemand"
    else:
        assert queued == [], "queued without a valid approver's command"
    assert routes.status() == "pending"
