"""Property: every Slack message Clampdown builds is one Slack accepts, and stays inert, whatever the
finding, plan, parameters or decision contain.

Incidents, steps (with plans of any number of calls and any parameters), approvals and decisions are
generated at random, with hostile and oversized strings; each message kind we send (the incident
alert, its thread reply, the approval request, the decision and expiry updates, a playbook's text
message) is checked against Slack's Block Kit limits by the stand-in's ``problems()``.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.findings.model import Actor, Finding, Resource
from chalicelib.incidents import Approval, Incident, StepRecord
from chalicelib.notify import slack_blocks as blocks
from clampdown.local_slack.limits import problems
from tests.functional.notify.conftest import PROFILE
from tests.functional.notify.test_slack_blocks import INJECTION, texts

#: Characters that escape to more (entities), count double (UTF-16), or are dropped (controls, bidi).
HOSTILE = "&<>`*_~@|\n\r\t\x00\x85\u061c\u200b\u200e\u2028\u2029\u202e\u2066😀é"
pieces = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=HOSTILE, max_size=40),
    st.sampled_from([INJECTION, "@here", "<!channel>", "&amp;", "", " ", "slack:U0ALICE (alice)"]),
)
#: Up to ~16,000 UTF-16 units: several times any block's limit, so every cut is exercised.
strings = st.one_of(pieces, st.builds(lambda piece, n: (piece or "&") * n, pieces, st.integers(0, 400)))
STEP_STATES = st.sampled_from([*blocks.STATUS_ICON, "?"])
INCIDENT_STATES = st.sampled_from([*blocks.INCIDENT_ICON])
SEVERITIES = st.sampled_from([*blocks.SEVERITY_ICON])
APPROVERS = st.sampled_from(["U0ALICE", "W0BOB", "S0ONCALL", "not an id"])
APPROVAL_IDS = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=8, max_size=64
)


#: Cheap draws (module-level strategies are built once): which word, and small counts.
PICK = st.integers(0, 5)
MAYBE = st.integers(-1, 5)
COUNT = st.integers(0, 4)
SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)


class Words:
    """A few hostile strings drawn once per example, then picked for every field (a fresh long
    string per field makes examples slow to generate without finding more)."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.pool = draw(st.lists(strings, min_size=1, max_size=6))

    def __call__(self) -> str:
        return self.pool[self.draw(PICK) % len(self.pool)]

    def maybe(self) -> str | None:
        index = self.draw(MAYBE)
        return None if index < 0 else self.pool[index % len(self.pool)]

    def json(self, depth: int = 0) -> Any:
        """A JSON object of words, scalars and nested lists/objects (an API call's parameters)."""
        out: dict[str, Any] = {}
        for _ in range(self.draw(COUNT)):
            kind = self.draw(COUNT) if depth < 2 else 0
            value: Any = (
                self() if kind == 0 else self.draw(SCALAR) if kind == 1 else
                [self() for _ in range(self.draw(COUNT))] if kind == 2 else self.json(depth + 1)
            )  # fmt: skip
            out[self()] = value
        return out


def finding(words: Words) -> Finding:
    draw = words.draw

    def resource() -> Resource:
        tags = {words(): words() for _ in range(draw(st.integers(0, 7)))}
        return Resource(
            words(), id=words.maybe(), arn=words.maybe(), name=words.maybe(), account=words.maybe(),
            region=words.maybe(), tags=tags,
        )  # fmt: skip

    actor = Actor(
        principal_arn=words.maybe(), user_name=words.maybe(), user_type=words.maybe(),
        access_key_id=words.maybe(), source_ip=words.maybe(),
    )  # fmt: skip
    return Finding(
        source=draw(st.sampled_from(["guardduty", "securityhub", "cloudtrail", "eventbridge"])),
        id=words(),
        origin_id=words.maybe(),
        type=words(),
        title=words(),
        description=words(),
        severity=draw(st.floats(0, 10)),
        severity_label=words(),
        account=words(),
        region=draw(st.sampled_from(["us-east-1", "eu-west-3"])) if draw(st.booleans()) else words(),
        time="2026-01-01T00:00:00Z",
        resources=tuple(resource() for _ in range(draw(st.integers(0, 12)))),
        actor=actor,
        product=words.maybe(),
    )


def incident(words: Words) -> Incident:
    draw = words.draw
    found = finding(words)
    return Incident(
        id=words(),
        origin_id=words(),
        title=found.title,
        type=found.type,
        severity=found.severity,
        severity_label=draw(SEVERITIES) if draw(st.booleans()) else words(),
        account=found.account,
        region=found.region,
        first_seen=words(),
        last_seen="2026-01-01T00:00:00Z",
        deliveries=draw(st.integers(1, 10**6)),
        status=draw(INCIDENT_STATES) if draw(st.booleans()) else words(),
        finding=found.to_dict(),
        notes=[words() for _ in range(draw(st.integers(0, 5)))],
    )


def plan(words: Words) -> dict[str, Any]:
    draw = words.draw
    calls = []
    for _ in range(draw(st.integers(0, 12))):
        call: dict[str, Any] = {"call": words(), "params": words.json()}
        if draw(st.booleans()):
            call["purpose"] = words()
        calls.append(call)
    planned: dict[str, Any] = {"calls": calls, "notes": [words() for _ in range(draw(st.integers(0, 5)))]}
    if draw(st.booleans()):
        planned["refused"] = words()
    planned["already_contained"] = draw(st.booleans())
    return planned


def step_record(words: Words, incident_id: str, n: int, planned: bool) -> StepRecord:
    draw = words.draw
    target = None if draw(st.booleans()) else {"kind": words(), "id": words.maybe(), "name": words.maybe()}
    return StepRecord(
        incident_id=incident_id,
        key=f"k{n}",
        playbook=words(),
        step=n,
        action=words(),
        status=draw(STEP_STATES) if draw(st.booleans()) else words(),
        mode="approval",
        target=target,
        plan=plan(words) if planned and draw(st.booleans()) else None,
        result=None if draw(st.booleans()) else {"error_code": words.maybe()},
        reason=words.maybe(),
        approval_id=draw(st.none() | APPROVAL_IDS),
        approved_by=words.maybe(),
    )


def approval(words: Words, incident_id: str) -> Approval:
    draw = words.draw
    return Approval(
        id=draw(APPROVAL_IDS),
        incident_id=incident_id,
        step_key="k0",
        status=draw(st.sampled_from(["pending", "approved", "denied", "expired"])),
        requested_at="2026-01-01T00:00:00Z",
        expires_at=draw(st.floats(0, 4e9)),
        approvers=[draw(APPROVERS) if draw(st.booleans()) else words() for _ in range(draw(st.integers(0, 30)))],
        decided_by=words.maybe(),
    )


@st.composite
def situations(draw: st.DrawFn, steps: int, planned: bool) -> tuple[Incident, list[StepRecord], Approval, Words]:
    """An incident with 1 to ``steps`` steps (with plans when ``planned``), and an approval request."""
    words = Words(draw)
    opened = incident(words)
    records = [step_record(words, opened.id, n, planned) for n in range(draw(st.integers(1, steps)))]
    return opened, records, approval(words, opened.id), words


#: What Clampdown itself writes in mrkdwn: mentions of configured approvers and recorded deciders
#: (validated ids only), console links, dates.
OURS = re.compile(
    r"<(?:@[UW][A-Z0-9]{2,30}|!subteam\^S[A-Z0-9]{2,30}|https://[a-z0-9-]+\.console\.aws\.amazon\.com/[^|<>\s]+\|[A-Za-z ]+"
    r"|!date\^-?\d+\^\{date_short_pretty\} \{time\}\|[0-9: -]+UTC)>"
)


def accepted(message: dict[str, Any]) -> None:
    """Slack would accept it, and nothing from the data can act as a mention, link or control."""
    assert problems(message) == [], problems(message)
    for text in texts(message):
        leftover = OURS.sub("", text)
        assert "<" not in leftover and ">" not in leftover, text
        assert not re.search(r"@(here|channel|everyone)\b", leftover, re.IGNORECASE), text
        assert not re.search(r"&(?!amp;|lt;|gt;)", leftover), text
        assert not re.search(
            "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]", text
        )


@PROFILE
@given(situations(steps=40, planned=False))
def test_property_incident_messages_and_thread_replies_fit_slack(
    situation: tuple[Incident, list[StepRecord], Approval, Words],
) -> None:
    incident, steps, _approval, words = situation
    accepted(blocks.incident_message(incident, steps, note=words.maybe()))
    accepted(blocks.steps_changed_message(steps))


@PROFILE
@given(situations(steps=1, planned=True), st.sampled_from(["approved", "denied", "expired"]))
def test_property_approval_requests_decisions_and_expiry_updates_fit_slack(
    situation: tuple[Incident, list[StepRecord], Approval, Words], status: str
) -> None:
    incident, steps, approval, words = situation
    step = steps[0]
    accepted(blocks.approval_message(incident, step, approval))
    banner = blocks.decision_banner(status, words.maybe(), words.maybe(), words.maybe())
    accepted(blocks.approval_message(incident, step, approval, banner=banner, buttons=False))


@PROFILE
@given(strings, st.dictionaries(pieces, st.none() | strings, max_size=12))
def test_property_playbook_text_messages_fit_slack(text: str, context: dict[str, Any]) -> None:
    accepted(blocks.text_message(text, blocks.context_line(context)))
