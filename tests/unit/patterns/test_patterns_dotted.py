"""Dot-joined field names, as EventBridge (event-ruler) flattens patterns and events.

``{"a.b": ...}`` and ``{"a": {"b": ...}}`` name the same field in a pattern and in an event; an event with
both spellings offers the values of both; arrays along the way are crushed as usual; keys with leading,
trailing or consecutive dots add empty steps, and an event key that is exactly ``""`` is only followed when
the pattern has a field with an empty step before a non-empty one (event-ruler's ``isFieldStepUsed``); in a
pattern, an outermost ``""`` key adds no dot (``Path.extendedName``). Every case is checked through
``compile_pattern``, a ``PatternSet`` and the reference interpreter; the expectations were also checked
against event-ruler itself (one machine per pattern, as ``TestEventPattern``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.patterns import PatternSet, compile_pattern, pattern_fields

from .reference import reference_matches

NESTED_SPELLINGS: list[Any] = [
    {"a": {"b": {"c": "X"}}},
    {"a.b": {"c": "X"}},
    {"a": {"b.c": "X"}},
    {"a.b.c": "X"},
]


def _respelled(spelling: Any, leaf: Any) -> Any:
    return json.loads(json.dumps(spelling).replace('"X"', json.dumps(leaf)))


def check(pattern: Any, event: Any, expected: bool) -> None:
    """The single pattern, an index holding it among others, and the reference all say ``expected``."""
    compiled = compile_pattern(pattern)
    assert compiled.matches(event) is expected
    assert (compiled.explain(event) is None) is expected
    index = PatternSet({"other": {"z": ["z"]}, "it": pattern, "absent": {"a": {"b": [{"exists": False}]}}})
    assert ("it" in index.match(event)) is expected
    assert index.match(event) == [n for n in index.names if index.compiled(n).matches(event)]
    assert reference_matches(pattern, event) is expected


@pytest.mark.parametrize("pattern_spelling", NESTED_SPELLINGS)
@pytest.mark.parametrize("event_spelling", NESTED_SPELLINGS)
def test_every_spelling_of_a_field_is_the_same_field(pattern_spelling: Any, event_spelling: Any) -> None:
    pattern = _respelled(pattern_spelling, [1])
    check(pattern, _respelled(event_spelling, 1), True)
    check(pattern, _respelled(event_spelling, 2), False)
    assert pattern_fields(pattern) == {("a", "b", "c")}


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        (["x"], True),
        (["y"], True),
        (["z"], False),
        ([{"exists": True}], True),
        ([{"exists": False}], False),
        ([{"anything-but": "x"}], True),  # "y" is not "x"
        ([{"anything-but": ["x", "y"]}], False),
        ([{"prefix": "y"}], True),
    ],
)
def test_an_event_with_both_spellings_offers_the_values_of_both(clause: list[Any], expected: bool) -> None:
    event = {"a": {"b": "y"}, "a.b": "x"}
    check({"a": {"b": clause}}, event, expected)
    check({"a.b": clause}, event, expected)


def test_values_of_both_spellings_in_document_order() -> None:
    compiled = compile_pattern({"a": {"b": ["z"]}})
    mismatch = compiled.explain({"a.b": "x", "a": {"b": "y"}, "c": 1})
    assert mismatch is not None
    assert (mismatch.path, mismatch.actual) == (("a", "b"), ["x", "y"])


def test_a_pattern_that_spells_a_field_twice_keeps_the_later_clause() -> None:
    """event-ruler's rule map is keyed by dotted name: the later ``put`` replaces the earlier one."""
    later_nested = {"a.b": ["x"], "a": {"b": ["y"]}}
    later_dotted = {"a": {"b": ["y"]}, "a.b": ["x"]}
    check(later_nested, {"a": {"b": "y"}}, True)
    check(later_nested, {"a": {"b": "x"}}, False)
    check(later_dotted, {"a": {"b": "x"}}, True)
    check(later_dotted, {"a": {"b": "y"}}, False)
    assert compile_pattern(json.dumps(later_nested)).matches({"a.b": "y"})
    assert pattern_fields(later_nested) == {("a", "b")}
    assert compile_pattern(later_nested).pattern == later_nested  # the normalized pattern keeps both


def test_a_later_field_replaces_the_same_field_in_every_or_branch() -> None:
    pattern = {"$or": [{"a": {"b": ["x"]}}, {"c": ["c"]}], "a.b": ["y"]}
    check(pattern, {"a": {"b": "x"}}, False)
    check(pattern, {"a": {"b": "y"}}, True)
    check(pattern, {"a": {"b": "y"}, "c": "c"}, True)
    earlier = {"a.b": ["y"], "$or": [{"a": {"b": ["x"]}}, {"c": ["c"]}]}
    check(earlier, {"a": {"b": "x"}}, True)  # the branch's own a.b replaced the top-level one
    check(earlier, {"a": {"b": "y"}, "c": "c"}, True)
    check(earlier, {"a": {"b": "x"}, "c": "c"}, True)
    check(earlier, {"a": {"b": "z"}, "c": "c"}, False)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"a": [{"b.c": 1}, {"b": {"c": 2}}]}, True),
        ({"a.b": [{"c": 3}, {"c": 2}]}, True),
        ({"a": [{"b.c": [1, 2]}]}, True),
        ({"a": [{"b.c": 1}, {"b": [{"c": 3}]}]}, False),
    ],
)
def test_arrays_along_either_spelling_are_crushed(event: Any, expected: bool) -> None:
    check({"a": {"b": {"c": [2]}}}, event, expected)
    check({"a.b.c": [2]}, event, expected)


def test_array_consistency_holds_across_spellings() -> None:
    pattern = {"a": {"b.c": [1], "d": [2]}}
    check(pattern, {"a": [{"b": {"c": 1}, "d": 3}, {"b.c": 2, "d": 2}]}, False)  # 1 and 2 in different elements
    check(pattern, {"a": [{"b": {"c": 1}, "d": 3}, {"b.c": 1, "d": 2}]}, True)
    check(pattern, {"a": [{"b": {"c": 2}, "b.c": 1, "d": 2}, {"d": 3}]}, True)
    check({"a.b": {"c": [1]}, "a": {"d": [{"exists": False}]}}, {"a": [{"b.c": 1}, {"d": 2}]}, True)
    check({"a.b": {"c": [1]}, "a": {"d": [{"exists": False}]}}, {"a": [{"b.c": 1, "d": 2}, {"d": 2}]}, False)


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        # a trailing dot is an empty last step: "a." is reached by the key "a.", not by an empty key
        ({"a.": [1]}, {"a.": 1}, True),
        ({"a.": [1]}, {"a": {"": 1}}, False),
        ({"a": {"": [1]}}, {"a": {"": 1}}, False),  # the same field "a.", spelled like the event
        ({"a": {"": [1]}}, {"a.": 1}, True),
        ({"a.": [{"exists": False}]}, {"a": {"": 1}}, True),
        # ... unless a field has an empty step before a non-empty one: then empty keys are read
        ({"a.": [1], ".x": [{"exists": False}]}, {"a": {"": 1}}, True),
        ({"a": {"": [1]}, "b": {"": {"x": [{"exists": False}]}}}, {"a": {"": 1}}, True),  # b..x
        ({"": [1]}, {"": 1}, True),  # the field "" itself
        ({".a": [1]}, {"": {"a": 1}}, True),
        ({".a": [1]}, {".a": 1}, True),
        # in a pattern (only), an outermost empty key adds no dot (Path.extendedName): {"": {"a": ...}} is "a"
        ({"": {"a": [1]}}, {"a": 1}, True),
        ({"": {"a": [1]}}, {"": {"a": 1}}, False),
        ({"": {"a": [1]}}, {".a": 1}, False),
        ({"": {"": [1]}}, {"": 1}, True),
        ({"": {"": [1]}}, {".": 1}, False),
        ({"a": {"": [1]}, "": {"x": [{"exists": False}]}}, {"a": {"": 1}}, False),  # "x", not ".x"
        ({"": {"": {"a": [1]}}}, {"..a": 1}, True),  # deeper empty keys are joined as usual
        ({"": {"": {"a": [1]}}}, {"": {"": {"a": 1}}}, True),
        ({"$or": [{"": {"a": [1]}}, {"b": [2]}]}, {"a": 1}, True),
        # consecutive dots
        ({"a..b": [1]}, {"a": {"": {"b": 1}}}, True),
        ({"a..b": [1]}, {"a.": {"b": 1}}, True),
        ({"a..b": [1]}, {"a": {".b": 1}}, True),
        ({"a.": {"b": [1]}}, {"a..b": 1}, True),
        ({"a..b": [1]}, {"a": {"": {"": {"b": 1}}}}, False),  # that is a...b
        ({"a..": [1]}, {"a": {".": 1}}, True),
        ({"a.": {"": [1]}}, {"a": {"": {"": 1}}}, False),
        ({".": [1]}, {".": 1}, True),
        ({".": [1]}, {"": {"": 1}}, False),
        ({"x": {"": {"": [1]}}}, {"x": {".": 1}}, True),
        # a dot is never special in values, and only keys are joined
        ({"a": ["b.c"]}, {"a": "b.c"}, True),
        ({"a": {"b": [1]}}, {"a": [{"b": 1}, {"b.": 2}]}, True),
        ({"a": {"b": [2]}}, {"a": [{"b": 1}, {"b.": 2}]}, False),
    ],
)
def test_keys_with_empty_steps(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    check(pattern, event, expected)


def test_an_index_judges_empty_keys_per_pattern() -> None:
    """Two patterns test the field "a."; only the one that also names ".x" follows the empty key."""
    index = PatternSet(
        {
            "skips": {"a.": [1]},
            "follows": {"a": {"": [1]}, ".x": [{"exists": False}]},
            "also-skips": {"a.": [{"numeric": [">", 0]}]},
        }
    )
    assert index.match({"a": {"": 1}}) == ["follows"]
    assert index.match({"a.": 1}) == ["skips", "follows", "also-skips"]
    assert index.match({"a": {"": 1}, "a.": 1}) == ["skips", "follows", "also-skips"]
    assert index.match({"a": [{"": 1}, {"": 2}]}) == ["follows"]


def test_very_long_dotted_names_are_matched_without_precomputing_every_spelling() -> None:
    name = ".".join(["k"] * 2000)
    pattern = {name: [1], "k": {"k": [{"exists": True}]}}
    compiled = compile_pattern(pattern)
    index = PatternSet({"long": pattern})
    for event, expected in (
        ({name: 1, "k.k": 0}, True),
        ({"k": {name[2:]: 1, "k": 0}}, True),
        ({"k.k": {name[4:]: 1}, "k": {"k": 5}}, True),
        ({"k.k": {name[4:]: 1}}, False),  # k.k holds an object, not a value: exists is false
        ({"k": {name[2:]: 2, "k": 0}}, False),
        ({name: 1}, False),
    ):
        assert compiled.matches(event) is expected
        assert (index.match(event) == ["long"]) is expected
