"""Hypothesis strategies for hostile input: mutated real events, random JSON, non-JSON text, huge and deeply
nested payloads, unicode and nulls. Every string a finding carries is attacker-controlled, so the
replacement values include control characters, terminal escapes, bidi overrides and lone surrogates.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from clampdown import sandbox as sb

CORPUS = Path(__file__).resolve().parents[1] / "data"
EVENT_DIRS = ("corpus/guardduty", "corpus/cloudtrail", "corpus/securityhub", "corpus/securityhub-ocsf", "constructed")
_MAX_PATHS = 2000

#: Text an attacker puts in finding fields (titles, user names, tags, user agents...).
HOSTILE_TEXT = [
    "",
    " ",
    "\x00",
    "null",
    "line one\nline two",
    '\r\n{"level":"ERROR","message":"forged"}',
    "\x1b[2J\x1b[1;1H\x1b]0;pwned\x07",  # clear screen, move cursor, set the terminal title
    "\x9b31m C1 CSI",
    "\u202eevil\u202c",  # right-to-left override
    "\u2028\u2029\x85",  # line/paragraph separators, next line
    "\ud800 lone surrogate",
    "ünïcödé ☃ \U0001d518",
    "{{ finding.type }}",
    "${jndi:ldap://x/a}",
    "'; DROP TABLE incidents; --",
    "../../../../etc/passwd",
    "arn:aws:iam::123456789012:role/clampdown-dev",
    "AKIA" + "A" * 16,
    "*",
]


def deep(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = {"Nested": value} if i % 2 else [value]
    return value


REPLACEMENTS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(HOSTILE_TEXT),
    st.just("A" * 100_000),
    st.sampled_from([[], {}, [None], {"": None}, [1, "two", {}]]).map(copy.deepcopy),
    st.integers(min_value=20, max_value=900).map(deep),
)


def event_files() -> list[str]:
    return [f"{d}/{p.name}" for d in EVENT_DIRS for p in sorted((CORPUS / d).glob("*.json"))]


@cache
def _read(name: str) -> Any:
    return json.loads((CORPUS / name).read_text())


def load(name: str) -> Any:
    return copy.deepcopy(_read(name))


def pointed(event: Any) -> Any:
    """The event as an EventBridge envelope from the sandbox account (so that intake lets it through)."""
    from chalicelib.findings import InvalidEvent, canonical_event

    try:
        envelope = copy.deepcopy(canonical_event(event))
    except InvalidEvent:
        return event
    envelope["account"] = sb.ACCOUNT
    envelope.setdefault("region", sb.REGION)
    detail = envelope.get("detail")
    if isinstance(detail, dict):
        if "accountId" in detail:
            detail["accountId"] = sb.ACCOUNT
        if "recipientAccountId" in detail:
            detail["recipientAccountId"] = sb.ACCOUNT
        for finding in detail.get("findings") or []:
            if isinstance(finding, dict) and "AwsAccountId" in finding:
                finding["AwsAccountId"] = sb.ACCOUNT
            cloud = finding.get("cloud") if isinstance(finding, dict) else None
            if isinstance(cloud, dict) and isinstance(cloud.get("account"), dict):
                cloud["account"]["uid"] = sb.ACCOUNT
    return envelope


def paths(value: Any) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value`` (breadth first, capped)."""
    out: list[tuple[Any, ...]] = []
    queue: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while queue and len(out) < _MAX_PATHS:
        path, node = queue.pop(0)
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in children:
            out.append((*path, key))
            queue.append(((*path, key), child))
    return out


def mutate(event: Any, path: tuple[Any, ...], action: str, replacement: Any) -> Any:
    if not path:
        return replacement
    parent = event
    for step in path[:-1]:
        parent = parent[step]
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return event


@st.composite
def mutated_events(draw: st.DrawFn, base: st.SearchStrategy[Any] | None = None, most: int = 4) -> Any:
    """A real event (pointed at the sandbox account most of the time) with up to ``most`` mutations."""
    if base is None:
        event = load(draw(st.sampled_from(event_files()), label="file"))
        if draw(st.integers(0, 9), label="point") < 8:
            event = pointed(event)
    else:
        event = draw(base)
    for _ in range(draw(st.integers(min_value=0, max_value=most), label="mutations")):
        candidates = paths(event)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates), label="path")
        action = draw(st.sampled_from(["delete", "replace", "replace"]), label="action")
        event = mutate(event, path, action, draw(REPLACEMENTS, label="value"))
    return event


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
DETAIL_TYPES = [
    "GuardDuty Finding",
    "Security Hub Findings - Imported",
    "Findings Imported V2",
    "AWS API Call via CloudTrail",
]
random_envelopes = st.fixed_dictionaries(
    {},
    optional={
        "source": st.sampled_from(["aws.guardduty", "aws.securityhub", "aws.iam", "aws.lambda", "com.attacker"])
        | st.text(max_size=10),
        "detail-type": st.sampled_from(DETAIL_TYPES) | st.text(max_size=10),
        "detail": json_values,
        "account": st.sampled_from([sb.ACCOUNT, "111111111111", "", "*"]) | json_values,
        "region": st.sampled_from([sb.REGION, ""]) | json_values,
        "id": st.text(max_size=20) | json_values,
    },
)


#: Clampdown's own queue commands, forged (anyone who can send to the queue can send these).
forged_commands = st.fixed_dictionaries(
    {"clampdown-command": st.sampled_from(["approval-decided", "canary"]) | st.text(max_size=8)},
    optional={
        "incident_id": st.text(max_size=30) | json_values,
        "approval_id": st.text(max_size=30) | st.just("A" * 5000) | json_values,
        "id": st.text(max_size=30) | json_values,
        "source": st.just("aws.guardduty"),
    },
)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def _deep_text(depth: int) -> str:
    return "[" * depth + "]" * depth


NON_JSON = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.sampled_from(
        [
            "",
            " ",
            "{",
            '{"source": "aws.guardduty",',
            "null",
            "[]",
            '"a string"',
            "42",
            "NaN",
            "Infinity",
            "1e999999",
            "9" * 5000,  # more digits than Python converts
            '{"a": "\\ud800"}',
            "\ud800",
            '{"source": "aws.guardduty"}\n{"source": "aws.guardduty"}',
        ]
    ),
    st.integers(min_value=1000, max_value=200_000).map(_deep_text),
    st.just('{"detail": "' + "A" * 1_000_000 + '"}'),
)


def message_bodies(scenario_events: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[str]:
    """SQS message bodies: mostly events (mutated or not), sometimes anything at all."""
    events = [mutated_events()]
    if scenario_events is not None:
        events.append(mutated_events(base=scenario_events, most=2))
    return st.one_of(
        st.one_of(*events).map(_dumps),
        random_envelopes.map(_dumps),
        forged_commands.map(_dumps),
        json_values.map(_dumps),
        NON_JSON,
    )


def scenario_events(env: Any) -> st.SearchStrategy[Any]:
    """The demo's scenarios: real findings pointed at resources that exist in the sandbox."""
    from clampdown import scenarios

    builders: list[Callable[[Any], Any]] = [s.build for s in scenarios.DEMO]
    return st.sampled_from(builders).map(lambda build: build(env))
