"""Finding strings are attacker-controlled: what reaches Slack must be inert, and within Slack's limits.

Messages are sent by the Slack channel to the fake Slack, which checks Block Kit limits as Slack
does; the assertions read the exact JSON it received.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.findings import normalize
from chalicelib.findings.model import Actor, Finding, Resource
from chalicelib.incidents import Approval, MemoryIncidentStore, StepRecord
from chalicelib.notify import slack_blocks as blocks
from chalicelib.notify.slack import SlackNotifier
from chalicelib.notify.slack_api import SlackApi
from clampdown.local_slack.limits import problems
from clampdown.local_slack.server import FakeSlack
from tests.conftest import CORPUS, corpus_event

INJECTION = (
    "<!channel> <@U0ADMIN> <#C0SECRET|secret> <https://evil.example/x|Open the report> @here @Everyone *b* _i_ ~s~ "
    "`c` &lt; > q\u202egnp.exe\x85\u2028\u2029\u061c\x9b"
)
#: The same string as it must appear in mrkdwn (controls, separators and bidi marks dropped,
#: broadcast words broken).
ESCAPED = (
    "&lt;!channel&gt; &lt;@U0ADMIN&gt; &lt;#C0SECRET|secret&gt; &lt;https://evil.example/x|Open the report&gt; "
    "@\u200bhere @\u200bEveryone *b* _i_ ~s~ `c` &amp;lt; &gt; qgnp.exe"
)
#: What must never reach Slack: C0 (but tab and newline) and C1 controls, DEL, line and paragraph
#: separators, bidi marks, embeddings, overrides and isolates.
DROPPED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: In inline code: backticks become U+02CB.
ESCAPED_CODE = "`" + ESCAPED.replace("`c`", "\u02cbc\u02cb") + "`"

#: The only control sequences Clampdown itself writes: console links, configured approvers, dates.
ALLOWED = re.compile(
    r"<(?:https://us-east-1\.console\.aws\.amazon\.com/[^|<>\s]+\|(?:GuardDuty finding|Security Hub finding|CloudTrail events)"
    r"|@U0ALICE|!subteam\^S0ONCALL"
    r"|!date\^\d+\^\{date_short_pretty\} \{time\}\|[0-9: -]+UTC)>"
)


def texts(value: Any) -> Iterator[str]:
    """Every string in a message (text objects, fields, values)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts(item)


def assert_inert(message: dict[str, Any]) -> None:
    for text in texts(message):
        leftover = ALLOWED.sub("", text)
        assert "<" not in leftover and ">" not in leftover, text
        assert not re.search(r"@(here|channel|everyone)\b", leftover, re.IGNORECASE), text
        assert not re.search(r"&(?!amp;|lt;|gt;)", leftover), f"a bare or broken entity: {text!r}"
        assert not DROPPED.search(text), f"a control, separator or bidi character: {text!r}"


def hostile_finding(inj: str = INJECTION, n_resources: int = 2, n_tags: int = 3, tag: str | None = None) -> Finding:
    tag = inj if tag is None else tag
    tags = {f"{tag}{i}": tag for i in range(n_tags)}
    resources = tuple(
        Resource(
            "ec2-instance",
            id=f"i-0abc{i:04d}{inj}",
            arn=f"arn:aws:ec2:us-east-1:123456789012:instance/{inj}{i}",
            name=inj,
            account="123456789012",
            region="us-east-1",
            tags=tags,
        )
        for i in range(n_resources)
    )
    actor = Actor(principal_arn=f"arn:aws:iam::123456789012:user/{inj}", user_name=inj, user_type=inj, source_ip=inj)
    return Finding(
        source="guardduty",
        id="4cb5a629e9757b650d102f683cdbcd7b",
        origin_id="4cb5a629e9757b650d102f683cdbcd7b",
        type=f"Backdoor:EC2/{inj}",
        title=inj,
        description=inj,
        severity=8.0,
        severity_label="HIGH",
        account="123456789012",
        region="us-east-1",
        time="2026-01-01T00:00:00Z",
        resources=resources,
        actor=actor,
        product="GuardDuty",
    )


def step(incident_id: str, n: int, inj: str = INJECTION, **extra: Any) -> StepRecord:
    params = {"InstanceId": inj, "Groups": [inj], "Policy": {"Statement": [{"Resource": inj}]}}
    record = StepRecord(
        incident_id=incident_id,
        key=f"k{n}",
        playbook="isolate",
        step=n,
        action="ec2.isolate-instance",
        status=extra.pop("status", "failed"),
        mode="auto",
        target={"kind": "ec2-instance", "id": inj, "name": inj},
        plan={
            "action": "ec2.isolate-instance",
            "calls": [{"call": "ec2:ModifyInstanceAttribute", "params": params}],
            "notes": [inj],
        },
        result={"status": "failed", "error_code": inj},
        reason=inj,
        created_at=f"2026-01-01T00:00:{n:02d}Z",
        **extra,
    )
    return record


def notifier(slack: FakeSlack, store: MemoryIncidentStore) -> SlackNotifier:
    api = SlackApi(token=lambda: slack.token, api_url=slack.api_url, retries=0)
    return SlackNotifier(api=api, channel="#security-alerts", store=store)


def test_every_finding_field_is_rendered_inert(slack: FakeSlack) -> None:
    store = MemoryIncidentStore()
    incident, _ = store.upsert_incident(hostile_finding(), "2026-01-01T00:00:00Z")
    incident.notes.append(INJECTION)
    steps = [step(incident.id, 0), step(incident.id, 1, status="pending-approval", approval_id="a" * 22)]
    approval = Approval(
        "a" * 22, incident.id, "k1", "pending", "2026-01-01T00:00:00Z", 1.9e9, ["U0ALICE", "S0ONCALL", INJECTION]
    )
    channel = notifier(slack, store)
    channel.approval_requested(incident, steps[1], approval)
    channel.incident_changed(incident, steps)
    approval_post, alert_post = slack.calls("chat.postMessage")
    for post in (approval_post, alert_post):
        assert post.answer["ok"] is True, post.answer
        assert_inert(post.params)

    alert = alert_post.params["blocks"]
    prefix = "🟧 HIGH · "  # 10 UTF-16 units: the emoji counts 2
    cut = ESCAPED[: 150 - blocks.slack_len(prefix) - 1]
    assert alert[0] == {"type": "header", "text": {"type": "plain_text", "text": prefix + cut + "…", "emoji": False}}
    fields = [f["text"] for f in alert[1]["fields"]]
    assert f"*Finding type*\n`Backdoor:EC2/{ESCAPED_CODE[1:]}" in fields
    [actor] = [f for f in fields if f.startswith("*Actor*")]
    assert actor.split("\n")[0] == "*Actor* `&lt;!channel&gt; &lt;@U0ADMIN&gt; &lt;#C0SECRET|secret…`"  # type ≤ 60
    assert actor.split("\n")[1] == f"`arn:aws:iam::123456789012:user/{ESCAPED_CODE[1:]}"
    assert f"*Source IP*\n{ESCAPED_CODE}" in fields
    resources = alert[2]["text"]["text"]
    assert (
        f"• ec2-instance {ESCAPED_CODE} `arn:aws:ec2:us-east-1:123456789012:instance/{ESCAPED_CODE[1:-1]}0`"
        in resources
    )
    assert "\n    tags: `&lt;!channel&gt; &lt;@U0ADMIN&gt; &lt;#C0SECRET|secret&gt;" in resources  # each tag ≤ 120
    assert alert[3] == {"type": "section", "text": {"type": "plain_text", "text": ESCAPED, "emoji": False}}
    [line] = [x for x in alert[5]["text"]["text"].split("\n") if x.startswith("❌ *1.")]
    assert line.startswith(f"❌ *1. ec2.isolate-instance* on {ESCAPED_CODE} — failed `&lt;!channel&gt;")
    assert line.endswith(f"…`: {ESCAPED_CODE}"), "the error code (≤ 100) and the reason, both as inline code"
    links = alert[6]["elements"][0]["text"]
    assert links == (
        "<https://us-east-1.console.aws.amazon.com/guardduty/home?region=us-east-1#/findings?search=id%3D4cb5a629e9757b650d102f683cdbcd7b|GuardDuty finding>"
    ), "no link is built from the hostile user name, key or ARN"
    assert all(
        m.get("verbatim")
        for b in alert
        for m in [b.get("text", {}), *b.get("fields", []), *b.get("elements", [])]
        if m.get("type") == "mrkdwn"
    )

    approval_blocks = approval_post.params["blocks"]
    assert approval_blocks[1] == {"type": "section", "text": {"type": "plain_text", "text": ESCAPED, "emoji": False}}
    plan = approval_blocks[4]["text"]["text"]
    assert plan.startswith("`ec2:ModifyInstanceAttribute`\n```")
    assert '"InstanceId": "' + ESCAPED.replace("`", "\u02cb") + '"' in plan
    assert "Approvers: <@U0ALICE> <!subteam^S0ONCALL>" in str(approval_blocks), "a hostile approver entry is dropped"
    buttons = approval_blocks[-1]["elements"]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        ("clampdown.approve", "a" * 22),
        ("clampdown.deny", "a" * 22),
    ]


def test_huge_fields_are_cut_within_slacks_limits_without_breaking_escapes(slack: FakeSlack) -> None:
    store = MemoryIncidentStore()
    huge = "&<>" * 40_000  # every character escapes: a cut anywhere would split an entity
    finding = hostile_finding(huge, n_resources=200, n_tags=12, tag="&<>" * 1000)
    incident, _ = store.upsert_incident(finding, "2026-01-01T00:00:00Z")
    steps = [step(incident.id, n, huge) for n in range(300)]
    steps[0] = step(incident.id, 0, huge, status="pending-approval", approval_id="b" * 22)
    approval = Approval("b" * 22, incident.id, "k0", "pending", "2026-01-01T00:00:00Z", 1.9e9, ["U0ALICE"])
    channel = notifier(slack, store)
    channel.approval_requested(incident, steps[0], approval)
    channel.incident_changed(incident, steps)
    for post in slack.calls("chat.postMessage"):
        assert post.answer["ok"] is True, post.answer  # the fake checks Slack's limits
        message = post.params
        assert problems(message) == []
        assert len(message["blocks"]) <= 50
        assert len(json.dumps(message)) < 60_000
        assert_inert(message)
    alert = slack.calls("chat.postMessage")[1].params["blocks"]
    assert (
        alert[0]["text"]["text"].endswith("&amp;…")
        or alert[0]["text"]["text"].endswith("&gt;…")
        or alert[0]["text"]["text"].endswith("&lt;…")
    )
    sections = [b["text"]["text"] for b in alert if b["type"] == "section" and "text" in b]
    steps_shown = [t for t in sections if t.startswith(("*Steps*", "❌", "⏳"))]
    assert 1 < len(steps_shown) <= blocks.MAX_STEP_SECTIONS
    more = re.search(r"\n… and (\d+) more steps$", steps_shown[-1])
    assert more, steps_shown[-1][-200:]
    lines = sum(len(t.split("\n")) for t in steps_shown) - 2  # the *Steps* title, the "… more" line
    assert lines + int(more.group(1)) == 300
    shown = [t for t in sections if t.startswith(("*Resources*", "• "))]
    more = re.search(r"\n… and (\d+) more$", shown[-1])
    assert more and sum(t.count("\n• ") + t.startswith("• ") for t in shown) + int(more.group(1)) == 200


@pytest.mark.parametrize(
    ("region", "origin", "expected"),
    [
        ("us-east-1", "4cb5a629e9757b650d102f683cdbcd7b", 1),
        ("us-east-1.evil.example/#", "4cb5a629e9757b650d102f683cdbcd7b", 0),
        ("us-east-1", "4cb5a629e9757b650d102f683cdbcd7b|Click", 0),
        ("us-east-1", "../../x", 0),
        ("cn-north-1", "4cb5a629e9757b650d102f683cdbcd7b", 0),
    ],
)
def test_console_links_only_from_values_of_the_expected_shape(region: str, origin: str, expected: int) -> None:
    finding = Finding(
        source="guardduty",
        id=origin,
        origin_id=origin,
        type="T",
        title="t",
        severity=5,
        severity_label="MEDIUM",
        account="123456789012",
        region=region,
        time="2026-01-01T00:00:00Z",
    )
    assert len(blocks.console_links(finding)) == expected


def test_security_hub_and_cloudtrail_links() -> None:
    finding_id = "arn:aws:securityhub:us-east-1:123456789012:subscription/cis/v/1.2.0/1.3/finding/0f7d7b1c-1b7e-4a7e-9e4d-123456789abc"
    securityhub = Finding(
        source="securityhub",
        id=finding_id,
        type="T",
        title="t",
        severity=5,
        severity_label="MEDIUM",
        account="123456789012",
        region="us-east-1",
        time="2026-01-01T00:00:00Z",
        actor=Actor(user_name="alice+ops@example.com"),
    )
    [(label, url), (_trail_label, trail)] = blocks.console_links(securityhub)
    assert label == "Security Hub finding"
    assert url.endswith(
        "search=Id%3D%255Coperator%255C%253AEQUALS%255C%253Aarn%253Aaws%253Asecurityhub%253Aus-east-1%253A123456789012%253Asubscription%252Fcis%252Fv%252F1.2.0%252F1.3%252Ffinding%252F0f7d7b1c-1b7e-4a7e-9e4d-123456789abc"
    )
    assert (
        trail
        == "https://us-east-1.console.aws.amazon.com/cloudtrail/home?region=us-east-1#/events?Username=alice%2Bops%40example.com"
    )


def test_escape_never_cuts_an_entity() -> None:
    for limit in range(1, 40):
        cut = blocks.escape("a&<>" * 20, limit)
        assert blocks.slack_len(cut) <= limit
        assert not re.search(r"&(?!amp;|lt;|gt;)", cut.removesuffix("…")), cut
    assert blocks.escape("😀" * 10, 7) == "😀😀😀…"  # emoji count 2 (UTF-16), never split


@pytest.mark.parametrize(
    "char",
    ["\x00", "\x1b", "\r", "\x7f", "\x85", "\x9b", "\u061c", "\u200e", "\u200f", "\u2028", "\u2029"]
    + [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)],
    ids=repr,
)
def test_control_separator_and_bidi_characters_are_dropped(char: str) -> None:
    for render in (blocks.escape, blocks.code, blocks.code_block):
        assert char not in render(f"invoice{char}exe.pdf", 100)
    assert blocks.escape(f"a{char}b") == "ab"
    assert blocks.code(f"a{char}b") == "`ab`"


@pytest.mark.parametrize("limit", range(0, 12))
def test_every_renderer_keeps_within_its_limit_even_a_tiny_one(limit: int) -> None:
    for render in (blocks.escape, blocks.code, blocks.code_block):
        assert blocks.slack_len(render("abcdef&<>" * 3, limit)) <= max(limit, 1)
    assert blocks.code("abcdef", 3) == "`…`" and blocks.code("abcdef", 2) == "…"


# -- real GuardDuty findings, every string field hostile, through the real normalizer --------------
#: Fields the normalizer dispatches on or parses: with a hostile value the event is refused (no
#: timestamp) or the value is never used as text (an unknown resource type names no resource).
#: Everything else a finding carries is replaced.
ROUTING = frozenset({"source", "detail-type", "version", "time", "updatedAt", "UpdatedAt"})
RESOURCE_TYPES = ROUTING | {"resourceType", "ResourceType"}
GUARDDUTY_EVENTS = sorted(
    path.relative_to(CORPUS).as_posix()
    for path in (CORPUS / "guardduty").glob("*.json")
    if "PARTIAL" not in path.name  # an excerpt without its envelope: not an event
)


def hostile(value: Any, keep: frozenset[str], counter: Iterator[int], key: str | None = None) -> Any:
    """Every string not under a ``keep`` key replaced by a numbered injection payload."""
    if isinstance(value, dict):
        return {k: hostile(v, keep, counter, k) for k, v in value.items()}
    if isinstance(value, list):
        return [hostile(v, keep, counter, key) for v in value]
    if isinstance(value, str) and key not in keep:
        return f"F{next(counter):04d} {INJECTION}"
    return value


def marker(text: str | None) -> str | None:
    """The payload number a finding string starts with (``F0042``), if it came from the event."""
    found = re.match(r"F\d{4} ", text or "")
    return found.group(0) if found else None


@pytest.mark.parametrize("keep", [ROUTING, RESOURCE_TYPES], ids=["every-string", "resource-types-kept"])
@pytest.mark.parametrize("relative", GUARDDUTY_EVENTS)
def test_real_findings_with_every_string_hostile_are_rendered_inert(
    slack: FakeSlack, relative: str, keep: frozenset[str]
) -> None:
    event = hostile(corpus_event(relative), keep, itertools.count())
    [finding, *_] = normalize(event)
    store = MemoryIncidentStore()
    incident, _ = store.upsert_incident(finding, "2026-01-01T00:00:00Z")
    target = finding.resources[0].to_dict() if finding.resources else None
    plan = {"calls": [{"call": "iam:UpdateAccessKey", "params": {"Target": target, "Actor": finding.actor.to_dict()}}]}
    waiting = StepRecord(
        incident.id, "k0", "p", 0, "iam.deactivate-access-key", "pending-approval", "approval",
        target=target, plan=plan, reason=finding.title, approval_id="a" * 22, created_at="2026-01-01T00:00:00Z",
    )  # fmt: skip
    approval = Approval("a" * 22, incident.id, "k0", "pending", "2026-01-01T00:00:00Z", 1.9e9, ["U0ALICE"])
    channel = notifier(slack, store)
    channel.approval_requested(incident, waiting, approval)
    channel.incident_changed(incident, [waiting])
    posts = slack.calls("chat.postMessage")
    assert len(posts) == 2
    for post in posts:
        assert post.answer["ok"] is True, post.answer  # within Slack's limits
        assert_inert(post.params)

    # The hostile text did reach the messages (escaped): the finding's own strings are shown.
    approval_text, alert_text = (json.dumps(p.params, ensure_ascii=False) for p in posts)
    actor = finding.actor
    shown = [finding.title, finding.type, actor.principal_arn or actor.user_name, actor.source_ip]
    shown += [r.name or r.id or r.arn for r in finding.resources[: blocks.MAX_RESOURCES]]
    expected = {m for m in map(marker, shown) if m}
    assert marker(finding.title), "the title came from the hostile event"
    assert not {m for m in expected if m not in alert_text}, "finding strings missing from the alert"
    assert marker(finding.title) in approval_text


def test_steps_of_several_playbooks_are_listed_under_each_playbooks_name() -> None:
    """Steps are numbered within their playbook: two playbooks' step 1 must not read as one list."""

    def quiet(n: int, playbook: str, **changes: Any) -> StepRecord:
        record = step("inc-1", n, status=changes.pop("status", "contained"))
        return dataclasses.replace(record, playbook=playbook, target=None, result=None, reason=None, **changes)

    notify = quiet(0, "gd-default-notify", action="notify.log", status="done")
    first = quiet(0, "gd-ec2-compromised-instance")
    second = quiet(1, "gd-ec2-compromised-instance")
    one_playbook = blocks.step_lines([first, second])
    assert [line.split(" on ")[0] for line in one_playbook] == [
        "✅ *1. ec2.isolate-instance*",
        "✅ *2. ec2.isolate-instance*",
    ], "a single playbook's steps need no heading"
    grouped = blocks.step_lines([notify, first, second])
    assert [line.split(" on ")[0] for line in grouped] == [
        "*Playbook* `gd-default-notify`",
        "✔️ *1. notify.log*",
        "*Playbook* `gd-ec2-compromised-instance`",
        "✅ *1. ec2.isolate-instance*",
        "✅ *2. ec2.isolate-instance*",
    ]
    hostile = blocks.step_lines([notify, quiet(0, "<!channel> *x*")])
    assert "*Playbook* `&lt;!channel&gt; *x*`" in hostile
