"""Why an event does not match a pattern: the first failing field of the closest alternative."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.patterns.compiler import Alternative, FieldTest
from chalicelib.patterns.errors import Path
from chalicelib.patterns.evaluate import deepest_failure
from chalicelib.patterns.fieldnames import format_field
from chalicelib.patterns.values import Leaf

_SHOWN_CHARS = 200


class _Missing:
    """Marks ``Mismatch.actual`` when the event has nothing at the path."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Mismatch:
    """The reason an event does not match: the field, the clause it failed and what the event holds there.

    ``path`` is the field's dotted name split at dots (``("detail", "state", "status")`` however the pattern
    spells it; ``str()`` shows ``detail.state.status``). ``actual`` is the event's value there (a list when
    the path crosses arrays or the event spells the field several ways), or ``MISSING``.
    """

    path: Path
    clause: Any
    actual: Any
    reason: str

    def __str__(self) -> str:
        return f"{format_field(self.path) if self.path else 'event'}: {self.reason}"


def show(value: Any) -> str:
    """Compact JSON for messages, escaped (event strings are attacker-controlled) and cut to a sane length."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr, separators=(", ", ": "))
    except ValueError:  # circular structure
        text = repr(value)
    text = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def not_an_object(pattern: Mapping[str, Any], event: Any) -> Mismatch:
    return Mismatch((), dict(pattern), event, f"the event is not a JSON object ({type(event).__name__})")


def explain_alternatives(
    alternatives: Sequence[Alternative], leaves: Sequence[Sequence[list[Leaf]]], event: Mapping[str, Any]
) -> Mismatch | None:
    """``None`` if some alternative matches, else the failure of the alternative closest to matching.

    ``leaves[i][j]`` are the event's leaves for field j of alternative i. "Closest" is the alternative
    with the most fields that are satisfied on their own (ties go to the first).
    """
    best: tuple[int, FieldTest, list[Leaf], bool] | None = None
    for fields, found in zip(alternatives, leaves, strict=True):
        failed = deepest_failure(fields, found)
        if failed is None:
            return None
        alone = [_satisfied_alone(test, values) for test, values in zip(fields, found, strict=True)]
        score = sum(alone)
        if best is None or score > best[0]:
            best = (score, fields[failed], found[failed], alone[failed])
    assert best is not None  # a pattern has at least one alternative
    _, test, values, only_with_others = best
    mismatch = _describe(test, values, only_with_others, event)
    if len(alternatives) > 1:
        suffix = f" (closest of {len(alternatives)} $or alternatives)"
        mismatch = Mismatch(mismatch.path, mismatch.clause, mismatch.actual, mismatch.reason + suffix)
    return mismatch


def _satisfied_alone(test: FieldTest, values: list[Leaf]) -> bool:
    return (test.absent_ok and not values) or any(test.accepts(leaf) for leaf in values)


def _describe(test: FieldTest, values: list[Leaf], only_with_others: bool, event: Mapping[str, Any]) -> Mismatch:
    raw = values_at(event, test.path, test.field.skips_empty_keys)
    actual = MISSING if not raw else raw[0] if len(raw) == 1 else raw
    clause = show(test.clause)
    found = show(values[0].value) if len(values) == 1 else show([leaf.value for leaf in values])
    noun = "value" if len(values) == 1 else "values"
    if only_with_others:
        reason = (
            f"{noun} {found} match {clause} only in a different array element "
            "than the values matched by the pattern's other fields"
        )
    elif not values and raw:
        reason = f"holds {show(actual)}, not a value; {clause} only tests strings, numbers, booleans and null"
    elif not values:
        reason = f"field is missing; {clause} requires it"
        if test.field.skips_empty_keys and values_at(event, test.path):
            reason += (
                ' (the event has it only through an empty key "", which EventBridge does not follow '
                "for this pattern: none of its fields has an empty step before a non-empty one)"
            )
    elif not test.matchers:
        reason = f"field is present ({noun} {found}) but {clause} requires it to be absent"
    else:
        reason = f"{noun} {found} {'does' if len(values) == 1 else 'do'} not match {clause}"
    return Mismatch(test.path, _copy(test.clause), actual, reason)


_MAX_VISITS = 10_000  # explanations look at no more of the event than this (and stop on cyclic lists)


def values_at(event: Any, path: Path, skip_empty_keys: bool = False) -> list[Any]:
    """The event's values at the dotted field ``path``, however the event spells it (``{"a.b": 1}`` or
    ``{"a": {"b": 1}}``), descending through arrays (each element in turn), in document order.

    ``skip_empty_keys``: do not follow an event key ``""`` (see ``fieldnames``).
    """
    found: list[Any] = []
    todo: list[tuple[Any, int]] = [(event, 0)]
    budget = _MAX_VISITS
    while todo and budget:
        budget -= 1
        value, depth = todo.pop()
        if depth == len(path):
            found.append(value)
        elif isinstance(value, list | tuple):
            todo.extend((item, depth) for item in reversed(value))
        elif isinstance(value, Mapping):
            following = []
            for key, item in value.items():
                if not isinstance(key, str) or (skip_empty_keys and key == ""):
                    continue
                steps = tuple(key.split("."))
                if path[depth : depth + len(steps)] == steps:
                    following.append((item, depth + len(steps)))
            todo.extend(reversed(following))
    return found


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(item) for item in value]
    return value
