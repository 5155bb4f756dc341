"""Property tests: the engine against an independent reference interpreter, the index against the
single-pattern path, and robustness on garbage (patterns raise only InvalidPattern, events never raise).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from chalicelib.patterns import InvalidPattern, Mismatch, PatternSet, compile_pattern

from .corpus import VALID_CORPUS_PATTERNS, corpus_events
from .reference import reference_matches
from .strategies import PROFILE, events, garbage, garbage_patterns, pattern_and_event, patterns


def _compiled_or_skip(pattern: dict[str, Any]):
    try:
        return compile_pattern(pattern)
    except InvalidPattern as exc:
        # Generated patterns are valid by construction except for our own complexity guards.
        assert "too complex" in exc.reason, exc
        assume(False)
        raise


@PROFILE
@given(case=pattern_and_event)
def test_matches_agrees_with_reference_interpreter(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    pattern, event = case
    compiled = _compiled_or_skip(pattern)
    assert compiled.matches(event) is reference_matches(pattern, event)


@PROFILE
@given(case=pattern_and_event)
def test_explain_is_none_exactly_when_it_matches(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    pattern, event = case
    compiled = _compiled_or_skip(pattern)
    mismatch = compiled.explain(event)
    assert (mismatch is None) is compiled.matches(event)
    if mismatch is not None:
        assert isinstance(mismatch, Mismatch)
        assert mismatch.path in compiled.fields
        assert str(mismatch).strip()


@PROFILE
@given(pattern=patterns, event=events)
def test_json_text_and_mapping_compile_alike(pattern: dict[str, Any], event: dict[str, Any]) -> None:
    compiled = _compiled_or_skip(pattern)
    from_text = compile_pattern(json.dumps(pattern))
    assert from_text.pattern == compiled.pattern
    assert from_text.matches(event) is compiled.matches(event)


@PROFILE
@given(cases=st.lists(pattern_and_event, min_size=1, max_size=8), extra=st.lists(events, max_size=2))
def test_pattern_set_equals_per_pattern_matching(
    cases: list[tuple[dict[str, Any], dict[str, Any]]], extra: list[dict[str, Any]]
) -> None:
    named = {f"p{i}": pattern for i, (pattern, _) in enumerate(cases)}
    batch = [event for _, event in cases] + extra
    compiled = {name: _compiled_or_skip(p) for name, p in named.items()}
    index = PatternSet(named)
    for event in batch:
        assert index.match(event) == [name for name in index.names if compiled[name].matches(event)]


@PROFILE
@given(pattern=garbage_patterns)
def test_garbage_patterns_raise_only_invalid_pattern(pattern: Any) -> None:
    try:
        compiled = compile_pattern(pattern)
    except InvalidPattern as exc:
        assert exc.reason and str(exc)
        return
    assert isinstance(compiled.pattern, dict)


@PROFILE
@given(text=st.text(max_size=40) | garbage_patterns.map(lambda p: json.dumps(p, default=repr)))
def test_garbage_pattern_text_raises_only_invalid_pattern(text: str) -> None:
    try:
        compile_pattern(text)
    except InvalidPattern as exc:
        assert exc.reason


_CORPUS_SET = PatternSet(VALID_CORPUS_PATTERNS)


@PROFILE
@given(event=garbage)
def test_garbage_events_never_raise(event: Any) -> None:
    matched = _CORPUS_SET.match(event)
    assert set(matched) <= set(_CORPUS_SET.names)
    for name in _CORPUS_SET.names[:40]:
        compiled = _CORPUS_SET.compiled(name)
        assert (compiled.explain(event) is None) is compiled.matches(event)


def test_real_events_agree_with_reference_for_every_corpus_pattern() -> None:
    """Every valid corpus pattern against every real GuardDuty/CloudTrail/Security Hub event."""
    for name, pattern in VALID_CORPUS_PATTERNS.items():
        if not isinstance(pattern, dict):
            continue  # raw-text cases
        compiled = compile_pattern(pattern)
        for event_name, event in corpus_events().items():
            assert compiled.matches(event) is reference_matches(pattern, event), (name, event_name)
