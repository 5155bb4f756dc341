"""Every recorded case of the shared corpus, through compile_pattern and through one PatternSet per file.

Expected values are the sources' own assertions (AWS-validated for the LocalStack files), and every case
must agree with them: a playbook's ``match:`` is installed as an EventBridge rule, so it must accept
exactly what the rule accepts. (That includes the dot-joining cases, ``dot_joining_event``,
``dot_joining_pattern``, ``test_event_with_large_and_complex_payload:complex`` and
``test_or_matching_top_level#assert3``: EventBridge joins keys with ".", so ``a.b`` is nested ``a``/``b``.)
moto's own recorded expectations agree with AWS on every case of its file: its known gaps (arrays of
objects, CIDR with host bits, exists on []) only show when moto's matcher runs other cases, which
``benchmarks/bench_patterns.py`` counts.
"""

from __future__ import annotations

import json
from functools import cache

import pytest

from chalicelib.patterns import CompiledPattern, InvalidPattern, PatternSet, compile_pattern

from .corpus import PATTERN_FILES, Case, all_cases, cases

VALID = [c for c in all_cases() if c.expected is not None]
INVALID = [c for c in all_cases() if c.expected is None]


def _expected(case: Case) -> bool:
    assert case.expected is not None
    return case.expected


@pytest.mark.parametrize("case", VALID, ids=[c.id for c in VALID])
def test_recorded_match_result(case: Case) -> None:
    compiled = compile_pattern(case.pattern)
    assert compiled.matches(case.event) is _expected(case), compiled.explain(case.event)


@pytest.mark.parametrize("case", VALID, ids=[c.id for c in VALID])
def test_explain_agrees_with_matches(case: Case) -> None:
    compiled = compile_pattern(case.pattern)
    mismatch = compiled.explain(case.event)
    assert (mismatch is None) is _expected(case)
    if mismatch is not None:
        assert mismatch.path in compiled.fields or mismatch.path == ()
        assert str(mismatch)


@pytest.mark.parametrize("case", INVALID, ids=[c.id for c in INVALID])
def test_recorded_invalid_pattern_is_rejected_with_aws_reason(case: Case) -> None:
    with pytest.raises(InvalidPattern) as raised:
        compile_pattern(case.pattern)
    assert raised.value.reason == case.error
    assert raised.value.reason in str(raised.value)


@pytest.mark.parametrize("case", INVALID, ids=[c.id for c in INVALID])
def test_invalid_pattern_text_is_rejected_alike(case: Case) -> None:
    with pytest.raises(InvalidPattern) as raised:
        compile_pattern(json.dumps(case.pattern))
    assert raised.value.reason == case.error


@cache
def _library(file: str) -> tuple[PatternSet, dict[str, CompiledPattern]]:
    """All valid patterns of one corpus file in one set (cases share patterns, so names are case ids)."""
    named = {c.id: c.pattern for c in cases(file) if c.expected is not None}
    return PatternSet(named), {name: compile_pattern(p) for name, p in named.items()}


SET_CASES = [c for c in all_cases() if c.event is not None and c.file in PATTERN_FILES]


@pytest.mark.parametrize("case", SET_CASES, ids=[c.id for c in SET_CASES])
def test_pattern_set_agrees_with_single_patterns(case: Case) -> None:
    library, compiled = _library(case.file)
    matched = library.match(case.event)
    assert matched == [name for name in library.names if compiled[name].matches(case.event)]
    if case.expected is not None:
        assert (case.id in matched) is _expected(case)


def test_every_pattern_file_is_exercised() -> None:
    assert {c.file for c in all_cases()} == set(PATTERN_FILES)
    assert len(VALID) > 200
    assert len(INVALID) >= 38


DOT_JOINING = (
    "localstack_aws_validated:dot_joining_event",
    "localstack_aws_validated:dot_joining_event_NEG",
    "localstack_aws_validated:dot_joining_pattern",
    "localstack_aws_validated:dot_joining_pattern_NEG",
    "special_raw_text:test_event_with_large_and_complex_payload:complex",
    "moto_test_event_pattern:test_or_matching_top_level#assert3",
)


def test_dot_joining_cases_are_in_the_corpus() -> None:
    """The cases that used to be listed as deliberate differences are still there, and run above."""
    assert set(DOT_JOINING) <= {c.id for c in VALID}
