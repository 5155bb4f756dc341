"""Large libraries on few paths: the index must give exactly the names the reference interpreter gives.

These libraries are what the index's tables are for: many numeric ranges sharing bounds (open, closed,
adjacent, nested, one test holding several ranges), many wildcards sharing literal pieces, ignore-case
texts outside ASCII, anything-but of every form and many CIDR blocks, all on the same one or two paths,
with events drawn from the same vocabulary so that most patterns are near misses.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from chalicelib.patterns import InvalidPattern, PatternSet, compile_pattern
from chalicelib.patterns.string_index import Substrings

from .reference import reference_matches
from .strategies import PROFILE

BOUNDS = [-3, -1, 0, 0.5, 1, 1.5, 2, 3, 4, 7, 7.5, 9, 10]
NUMBERS = [*BOUNDS, -2, 0.25, 2.5, 5, 8, 11, 100, "1", None, True]
ALPHABET = "abA-é"
IGNORE_CASE = ["ß", "SS", "straße", "STRASSE", "İi", "k", "\u212a", "Éa", "é", "aB"]
CIDRS = [
    *("10.0.0.0/8", "10.0.0.0/24", "10.0.0.128/25", "10.0.1.0/24", "10.0.0.7/31", "0.0.0.0/0", "192.168.0.0/16"),
    *("2001:db8::/32", "2001:db8::/64", "2001:db8:0:1::/64", "::/0", "fe80::/10"),
]
IPS = [
    *("10.0.0.1", "10.0.0.7", "10.0.0.200", "10.0.1.9", "10.1.2.3", "192.168.7.7", "8.8.8.8", "::ffff:10.0.0.1"),
    *("2001:db8::1", "2001:db8:0:1::5", "2001:db9::1", "fe80::1", "::1", "10.0.0", "x", 10),
]

Clause = Callable[[random.Random], Any]


def _range(r: random.Random) -> dict[str, Any]:
    low, high = sorted(r.sample(BOUNDS, 2))
    shape = r.randrange(6)
    if shape == 0:
        return {"numeric": ["=", low]}
    if shape == 1:
        return {"numeric": [r.choice(["<", "<="]), high]}
    if shape == 2:
        return {"numeric": [r.choice([">", ">="]), low]}
    return {"numeric": [r.choice([">", ">="]), low, r.choice(["<", "<="]), high]}


def _word(r: random.Random, low: int = 0, high: int = 4) -> str:
    return "".join(r.choice(ALPHABET) for _ in range(r.randint(low, high)))


def _wildcard(r: random.Random) -> str:
    """Stars between literal pieces; only the first and last piece may be empty (no ``**``)."""
    if not r.randrange(6):
        return _word(r)
    if not r.randrange(3):  # found through an inner piece only
        return f"*{_word(r, 1, 3)}*" if r.randrange(2) else f"*{_word(r, 1, 2)}*{_word(r, 1, 2)}*"
    inner = [_word(r, 1, 3) for _ in range(r.randrange(3))]
    return "*".join([_word(r, 0, 3), *inner, _word(r, 0, 3)])


def _folded(r: random.Random) -> str:
    return r.choice(IGNORE_CASE) if r.randrange(2) else _word(r)


def _anything_but(r: random.Random) -> Any:
    return [
        lambda: _word(r),
        lambda: [_word(r) for _ in range(r.randint(1, 3))],
        lambda: {"wildcard": _wildcard(r)},
        lambda: {"wildcard": [_wildcard(r) for _ in range(r.randint(1, 3))]},
        lambda: {"equals-ignore-case": _folded(r)},
        lambda: {"equals-ignore-case": [_folded(r) for _ in range(r.randint(1, 3))]},
        lambda: {"prefix": _word(r, 1)},
        lambda: {"suffix": _word(r, 1)},
    ][r.randrange(8)]()


def _string(r: random.Random) -> Any:
    return [
        lambda: _word(r),
        lambda: {"wildcard": _wildcard(r)},
        lambda: {"wildcard": _wildcard(r)},
        lambda: {"equals-ignore-case": _folded(r)},
        lambda: {"prefix": _word(r)},
        lambda: {"prefix": {"equals-ignore-case": _folded(r)}},
        lambda: {"suffix": _word(r)},
        lambda: {"suffix": {"equals-ignore-case": _folded(r)}},
        lambda: {"anything-but": _anything_but(r)},
    ][r.randrange(9)]()


def _cidr(r: random.Random) -> dict[str, str]:
    return {"cidr": r.choice(CIDRS)}


def _library(r: random.Random, clause: Clause, size: int) -> dict[str, Any]:
    """Patterns on ``detail.x`` (and sometimes ``detail.y``, or either through ``$or``), 1-3 clauses per field."""

    def field() -> list[Any]:
        return [clause(r) for _ in range(r.randint(1, 3))]

    shapes = [
        lambda: {"detail": {"x": field()}},
        lambda: {"detail": {"x": field(), "y": field()}},
        lambda: {"$or": [{"detail": {"x": field()}}, {"detail": {"y": field()}}]},
    ]
    library = {f"p{i}": r.choice(shapes)() for i in range(size)}
    return {name: pattern for name, pattern in library.items() if _valid(pattern)}


def _valid(pattern: dict[str, Any]) -> bool:
    """Generated patterns are valid by construction, except for the wildcard complexity limit."""
    try:
        compile_pattern(pattern)
    except InvalidPattern as exc:
        assert "too complex" in exc.reason, exc
        return False
    return True


def _events(r: random.Random, value: Callable[[], Any], count: int = 10) -> list[dict[str, Any]]:
    def leaf() -> Any:
        return value() if r.randrange(3) else [value() for _ in range(r.randint(1, 3))]

    return [{"detail": {k: leaf() for k in ("x", "y") if r.randrange(4)}} for _ in range(count)]


def _agrees(library: dict[str, Any], events: list[dict[str, Any]]) -> None:
    index = PatternSet(library)
    for event in events:
        expected = [name for name, pattern in library.items() if reference_matches(pattern, event)]
        assert index.match(event) == expected, event


#: Each example builds a library of 30-90 patterns, so fewer examples than the other property tests; a
#: library drawn from a random generator does not shrink usefully, so a failure reports it as found.
LIBRARIES = settings(
    PROFILE,
    max_examples=max(PROFILE.max_examples // 8, 20),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)


@LIBRARIES
@given(r=st.randoms(use_true_random=False), size=st.integers(30, 90))
def test_many_numeric_ranges_agree_with_reference(r: random.Random, size: int) -> None:
    _agrees(_library(r, _range, size), _events(r, lambda: r.choice(NUMBERS)))


@LIBRARIES
@given(r=st.randoms(use_true_random=False), size=st.integers(30, 90))
def test_many_string_tests_and_wildcards_agree_with_reference(r: random.Random, size: int) -> None:
    def value() -> Any:
        return [lambda: _word(r), lambda: r.choice(IGNORE_CASE), lambda: 7][r.randrange(3)]()

    _agrees(_library(r, _string, size), _events(r, value))


@LIBRARIES
@given(r=st.randoms(use_true_random=False), size=st.integers(20, 80))
def test_many_cidr_blocks_agree_with_reference(r: random.Random, size: int) -> None:
    _agrees(_library(r, _cidr, size), _events(r, lambda: r.choice(IPS)))


@PROFILE
@given(
    words=st.lists(st.text(alphabet="abc", min_size=1, max_size=4), min_size=1, max_size=30, unique=True),
    text=st.text(alphabet="abcd", max_size=20),
)
def test_substring_automaton_finds_every_word_that_occurs(words: list[str], text: str) -> None:
    automaton = Substrings({word: 1 << i for i, word in enumerate(words)})
    assert automaton.mask(text) == sum(1 << i for i, word in enumerate(words) if word in text)


def test_a_thousand_guardduty_thresholds() -> None:
    """The shape that was quadratic to compile: one ``>=`` threshold per playbook, all distinct."""
    library = {f"p{i}": {"detail": {"severity": [{"numeric": [">=", i / 100]}]}} for i in range(1000)}
    index = PatternSet(library)
    assert index.match({"detail": {"severity": 2.5}}) == [f"p{i}" for i in range(251)]
    assert index.match({"detail": {"severity": 0}}) == ["p0"]
    assert index.match({"detail": {"severity": "9"}}) == []


def test_a_thousand_inner_wildcards_are_found_by_their_piece() -> None:
    library = {f"w{i}": {"detail": {"name": [{"wildcard": f"*abc{i}*"}]}} for i in range(1000)}
    index = PatternSet(library)
    assert index.match({"detail": {"name": "xxabc999yy"}}) == ["w9", "w99", "w999"]
    assert index.match({"detail": {"name": "abc"}}) == []
