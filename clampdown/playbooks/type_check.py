"""Warn about GuardDuty finding types a pattern names but GuardDuty does not generate.

A rename is silent: GuardDuty renamed ``InstanceCredentialExfiltration`` to ``...OutsideAWS`` and a
rule naming the old type simply stopped responding. ``clampdown validate`` checks every clause on a
field that holds GuardDuty finding types against the shipped list (``clampdown/data/
guardduty_finding_types.json``, with its source and date):

* ``detail.type`` of a GuardDuty event, however the pattern spells it (``detail: {type: ...}`` or
  ``detail.type``, inside ``$or`` or not);
* ``detail.findings.finding_info.types`` of a Security Hub OCSF event (clauses that look like a
  GuardDuty type, ``Purpose:Resource/...``; the other OCSF types such as ``Threats`` are not ours to judge).

Each clause item is judged with the pattern engine's own semantics (wildcards with ``*`` only,
ignore-case, prefixes, suffixes, ``anything-but``) against every known type: a clause that accepts no
known type is unknown; one that accepts only retired types will not match new findings; an
``anything-but`` that excludes only retired types no longer excludes what they were renamed to.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from chalicelib.patterns import compile_pattern
from chalicelib.patterns.compiler import FieldTest
from chalicelib.patterns.matchers import (
    AnythingBut,
    AnythingButIgnoreCase,
    AnythingButPrefix,
    AnythingButSuffix,
    AnythingButWildcard,
)
from chalicelib.patterns.values import Leaf
from clampdown.data.finding_types import FindingTypes, guardduty_finding_types

Path = tuple[str | int, ...]

#: Fields that hold GuardDuty finding types, with the event ``source`` they belong to.
TYPE_FIELDS = {
    ("detail", "type"): "aws.guardduty",
    ("detail", "findings", "finding_info", "types"): "aws.securityhub",
}
_EXCLUDING = (AnythingBut, AnythingButIgnoreCase, AnythingButPrefix, AnythingButSuffix, AnythingButWildcard)


def guardduty_type_warnings(pattern: Mapping[str, Any]) -> list[tuple[Path, str]]:
    """(where in the pattern, message) for each clause item naming no current GuardDuty type."""
    known = guardduty_finding_types()
    warnings: list[tuple[Path, str]] = []
    for test in _type_tests(pattern):
        for index, item in enumerate(test.clause):
            message = _judge(item, known, guardduty_shaped_only=test.path != ("detail", "type"))
            if message is not None:
                warnings.append(((*test.where, index), message))
    return warnings


def _type_tests(pattern: Mapping[str, Any]) -> Iterator[FieldTest]:
    """The clauses on a type field of alternatives that can match that field's source (each once)."""
    seen: set[int] = set()
    for alternative in compile_pattern(pattern).alternatives:
        sources = next((test for test in alternative if test.path == ("source",)), None)
        for test in alternative:
            source = TYPE_FIELDS.get(test.path)
            if source is None or id(test) in seen:
                continue
            if sources is None or not any(m.test(Leaf(source, ())) for m in sources.matchers):
                continue  # a pattern that does not pin the source could be about any event
            seen.add(id(test))
            yield test


def _judge(item: Any, known: FindingTypes, *, guardduty_shaped_only: bool) -> str | None:
    text = _text_of(item)
    if text is None or (guardduty_shaped_only and ":" not in text):
        return None  # numbers, exists, cidr...; or an OCSF type that is not GuardDuty's
    matchers = compile_pattern({"type": [item]}).alternatives[0][0].matchers
    if not matchers:
        return None
    matcher = matchers[0]
    retired = {t.name: t for t in known.retired}
    active = set(known.names())
    shown = json.dumps(item, ensure_ascii=False)
    where = f"(list taken {known.source.get('taken', '?')} from {known.source.get('url', 'the GuardDuty User Guide')})"
    if isinstance(matcher, _EXCLUDING):
        excluded = [name for name in (*active, *retired) if not matcher.test(Leaf(name, ()))]
        if not excluded:
            return f"anything-but {shown} excludes no known GuardDuty finding type {where}"
        if all(name in retired for name in excluded):
            renamed = _renames(excluded, retired)
            return f"{shown} excludes only retired types ({renamed}): findings of the current types are not excluded"
        return None
    accepted = [name for name in (*active, *retired) if matcher.test(Leaf(name, ()))]
    if isinstance(item, str):
        if item in active:
            return None
        if item in retired:
            now = _now(retired[item].renamed_to)
            return f"GuardDuty retired {item!r}{now}: new findings will not match; match the family by prefix"
        return f"{item!r} is not a known GuardDuty finding type {where}"
    if not accepted:
        return f"no known GuardDuty finding type matches {shown} {where}"
    if all(name in retired for name in accepted):
        return f"{shown} matches only retired types ({_renames(accepted, retired)}): new findings will not match"
    return None


def _text_of(item: Any) -> str | None:
    """The literal text of a string clause item (``"x"``, ``{"prefix": "x"}``, ``{"anything-but": [...]}``)."""
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping) and len(item) == 1:
        (value,) = item.values()
        if isinstance(value, Mapping) and len(value) == 1:
            (value,) = value.values()
        texts = value if isinstance(value, list) else [value]
        strings = [t for t in texts if isinstance(t, str)]
        return " ".join(strings) if strings and len(strings) == len(texts) else None
    return None


def _now(renamed_to: tuple[str, ...]) -> str:
    return f" to {', '.join(renamed_to)}" if renamed_to else ""


def _renames(names: list[str], retired: Mapping[str, Any]) -> str:
    return "; ".join(f"{name}{_now(retired[name].renamed_to)}" for name in sorted(names))
