"""Validation beyond the recorded AWS cases: event-ruler's other messages, limits, and Clampdown's guards.

Each case gives the path and the reason expected (event-ruler's ``JsonRuleCompiler`` wording where it
has one).
"""

from __future__ import annotations

import json
import pickle

import pytest

from chalicelib.patterns import InvalidPattern, PatternSet, compile_pattern

GD = {"source": ["aws.guardduty"]}

INVALID = {
    "or-not-array": ({"$or": {"a": ["x"]}}, ("$or",), "It must be an Array followed with $or."),
    "or-one-branch": (
        {"$or": [{"a": ["x"]}]},
        ("$or",),
        "There must have at least 2 Objects in $or relationship.",
    ),
    "or-non-object": (
        {"$or": [{"a": ["x"]}, ["b"]]},
        ("$or", 1),
        "Only JSON object is allowed in array of $or relationship.",
    ),
    "or-reserved-name": (
        {"detail": {"$or": [{"numeric": [1]}, {"b": ["x"]}]}},
        ("detail", "$or", 0, "numeric"),
        "numeric is Ruler reserved fieldName which cannot be used inside $or.",
    ),
    "or-branch-clause": ({"$or": [{"a": ["x"]}, {"b": []}]}, ("$or", 1, "b"), "Empty arrays are not allowed"),
    "nested-or-branch-clause": (
        {"detail": {"$or": [{"a": ["x"]}, {"$or": [{"c": [1]}, {"d": {"e": [{"numeric": [">", "x"]}]}}]}]}},
        ("detail", "$or", 1, "$or", 1, "d", "e"),
        "Value of > must be numeric",
    ),
    "empty-object": ({"detail": {}}, ("detail",), "Empty objects are not allowed"),
    "whole-pattern-empty": ({}, (), "Empty objects are not allowed"),
    "nested-array-value": (
        {"a": [["x"]]},
        ("a",),
        "Match value must be String, number, true, false, or null",
    ),
    "empty-match-expression": ({"a": [{}]}, ("a",), "Match expression name not found"),
    "two-operators": (
        {"a": [{"prefix": "x", "suffix": "y"}]},
        ("a",),
        "Only one key allowed in match expression",
    ),
    "numeric-extra-key": (
        {"a": [{"numeric": [">", 1], "x": 1}]},
        ("a",),
        "Too many elements in numeric expression",
    ),
    "numeric-empty": ({"a": [{"numeric": []}]}, ("a",), "Invalid member in numeric match: ]"),
    "numeric-unknown-op": (
        {"a": [{"numeric": ["!=", 1]}]},
        ("a",),
        "Unrecognized numeric range operator: !=",
    ),
    "numeric-equals-text": ({"a": [{"numeric": ["=", "1"]}]}, ("a",), "Value of equals must be numeric"),
    "numeric-bottom-top": ({"a": [{"numeric": [">", 5, "<", 5]}]}, ("a",), "Bottom must be less than top"),
    "numeric-too-many-terms": (
        {"a": [{"numeric": [">", 1, "<", 5, 6]}]},
        ("a",),
        "Too many terms in numeric range expression",
    ),
    "numeric-less-than-range": (
        {"a": [{"numeric": ["<", 1, ">", 0]}]},
        ("a",),
        "Too many elements in numeric expression",
    ),
    "numeric-bad-second": ({"a": [{"numeric": [">", 1, 5, 6]}]}, ("a",), "Bad value in numeric range: 5"),
    "numeric-not-a-double": (
        {"a": [{"numeric": [">", 2**53 + 1]}]},
        ("a",),
        f"Cannot compare number : {2**53 + 1}",
    ),
    "exists-string": (
        {"a": [{"exists": "true"}]},
        ("a",),
        "exists match pattern must be either true or false.",
    ),
    "prefix-ic-unknown": (
        {"a": [{"prefix": {"wildcard": "x"}}]},
        ("a",),
        "Unsupported prefix pattern: wildcard",
    ),
    "anything-but-unknown": (
        {"a": [{"anything-but": {"numeric": [">", 1]}}]},
        ("a",),
        "Unsupported anything-but pattern: numeric",
    ),
    "anything-but-mixed": (
        {"account": [{"anything-but": ["111122223333", 5]}]},
        ("account",),
        "Inside anything but list, either all values are number or string, mixed type is not supported",
    ),
    "wildcard-bad-escape": ({"a": [{"wildcard": "a\\b"}]}, ("a",), "Invalid escape character at pos 2"),
    "wildcard-trailing-backslash": (
        {"a": [{"wildcard": "ab\\"}]},
        ("a",),
        "Invalid escape character at pos 3",
    ),
    "cidr-32": ({"ip": [{"cidr": "10.0.0.1/32"}]}, ("ip",), "IPv4 mask bits must be < 32"),
    "cidr-ipv6-128": ({"ip": [{"cidr": "2001:db8::1/128"}]}, ("ip",), "IPv6 mask bits must be < 128"),
    "cidr-negative": (
        {"ip": [{"cidr": "10.0.0.0/-1"}]},
        ("ip",),
        "Malformed CIDR, mask bits must not be negative",
    ),
    "cidr-bad-octet": ({"ip": [{"cidr": "10.0.0.256/24"}]}, ("ip",), "Invalid IP address: 10.0.0.256"),
    "cidr-no-mask": ({"ip": [{"cidr": "10.0.0.0/"}]}, ("ip",), "Malformed CIDR, one '/' required"),
    "non-string-key": ({1: ["x"]}, (), "Field names must be strings, not int"),
    "nan": ({"a": [float("nan")]}, ("a",), "NaN is not a JSON number"),
    "set-value": ({"a": [{"x"}]}, ("a",), "Match value must be String, number, true, false, or null"),
    "not-an-object": (["source"], (), "Filter is not an object (got list)"),
}


@pytest.mark.parametrize(("pattern", "path", "reason"), INVALID.values(), ids=INVALID.keys())
def test_invalid_pattern_names_path_and_reason(pattern: object, path: tuple[str | int, ...], reason: str) -> None:
    with pytest.raises(InvalidPattern) as raised:
        compile_pattern(pattern)  # type: ignore[arg-type]
    assert (raised.value.path, raised.value.reason) == (path, reason)
    assert isinstance(raised.value, ValueError)


def test_message_names_path_and_reason() -> None:
    with pytest.raises(InvalidPattern) as raised:
        compile_pattern({"detail": {"severity": [{"numeric": 7}]}})
    assert str(raised.value) == "Event pattern is not valid at detail.severity: Value of numeric must be an array."


def test_message_inside_or_names_the_alternative() -> None:
    with pytest.raises(InvalidPattern) as raised:
        compile_pattern({"source": ["aws.guardduty"], "$or": [{"detail": {"type": ["x"]}}, {"detail": {"a.b": []}}]})
    assert str(raised.value) == 'Event pattern is not valid at $or[1].detail["a.b"]: Empty arrays are not allowed'


def test_wildcard_complexity_limit_is_calibrated_on_aws_answers() -> None:
    """AWS accepted three ``*:stack/<name>/*`` values on one field and rejected four (a public deploy log)."""
    stacks = ["DataStack", "ApiStack", "WebStack", "MonitoringStack"]
    three = {"detail": {"stack-id": [{"wildcard": f"*:stack/{name}/*"} for name in stacks[:3]]}}
    four = {"detail": {"stack-id": [{"wildcard": f"*:stack/{name}/*"} for name in stacks]}}
    compile_pattern(three)
    with pytest.raises(InvalidPattern, match="Rule is too complex") as raised:
        compile_pattern(four)
    assert raised.value.path == ("detail", "stack-id")
    compile_pattern({"FileName": [{"wildcard": "/Users/*/dir/dir/dir/dir/dir/doc.txt"}]})  # AWS-validated


def test_or_expansion_is_bounded() -> None:
    branches = [{"a": ["x"]}, {"b": ["y"]}]
    pattern: dict[str, object] = {f"k{i}": {"$or": branches} for i in range(11)}  # 2**11 alternatives
    with pytest.raises(InvalidPattern, match="more than 1024 alternatives"):
        compile_pattern(pattern)
    compile_pattern({f"k{i}": {"$or": branches} for i in range(10)})


def test_depth_is_bounded_for_mappings_and_text() -> None:
    deep: dict[str, object] = {"leaf": ["x"]}
    for _ in range(70):
        deep = {"n": deep}
    with pytest.raises(InvalidPattern, match="nested more than 64 levels"):
        compile_pattern(deep)
    with pytest.raises(InvalidPattern):
        compile_pattern('{"a":' * 100_000 + "[1]" + "}" * 100_000)


@pytest.mark.parametrize(
    ("text", "reason_start"),
    [
        ('{"a": ["x"]', "Filter is not valid JSON"),
        ('{"a": [NaN]}', "Filter is not valid JSON: NaN is not a JSON value"),
        ("[1]", "Filter is not an object"),
        (b"\xff\xfe\x00", "Filter is not valid JSON"),
    ],
)
def test_bad_json_text(text: str | bytes, reason_start: str) -> None:
    with pytest.raises(InvalidPattern) as raised:
        compile_pattern(text)
    assert raised.value.reason.startswith(reason_start)


def test_duplicate_operator_inside_a_match_expression_is_rejected_like_aws() -> None:
    with pytest.raises(InvalidPattern, match="Only one key allowed in match expression"):
        compile_pattern('{"a": [{"prefix": "x", "prefix": "y"}]}')
    assert compile_pattern('{"a": ["x"], "a": ["y"]}').pattern == {"a": ["y"]}


def test_pattern_set_error_names_the_pattern() -> None:
    with pytest.raises(InvalidPattern) as raised:
        PatternSet({"ok": GD, "broken-playbook": {"detail": {"severity": [{"numeric": [">", "high"]}]}}})
    assert raised.value.name == "broken-playbook"
    assert raised.value.path == ("detail", "severity")
    assert str(raised.value).startswith('Event pattern "broken-playbook" is not valid at detail.severity:')


def test_invalid_pattern_survives_pickling() -> None:
    original = InvalidPattern(("detail", "a.b"), "Empty arrays are not allowed", name="p")
    copy = pickle.loads(pickle.dumps(original))  # noqa: S301 - our own bytes
    assert (copy.path, copy.reason, copy.name, str(copy)) == (
        original.path,
        original.reason,
        "p",
        str(original),
    )
    assert 'detail["a.b"]' in str(copy)


def test_normalized_pattern_is_a_fresh_json_copy() -> None:
    compiled = compile_pattern({"source": ("aws.guardduty",), "detail": {"type": [{"prefix": "Recon:"}]}})
    normalized = compiled.pattern
    assert normalized == {"source": ["aws.guardduty"], "detail": {"type": [{"prefix": "Recon:"}]}}
    normalized["source"].append("mutated")
    assert compiled.pattern["source"] == ["aws.guardduty"]
    assert json.loads(json.dumps(normalized))
