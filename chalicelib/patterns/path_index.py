"""For one field path: which alternatives' tests accept a given leaf, as a bitmask (bit i: alternative i).

Exact values, ASCII ignore-case values, prefixes and suffixes are hashed (affixes by their first/last
character, then by length); numeric ranges are cut into elementary intervals found by bisection; a test
with one ``anything-but`` subtracts the alternatives that exclude the value, found the same way. Only
the remaining operators (wildcards, non-ASCII ignore-case, several anything-buts in one test) are tested
one by one.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from chalicelib.patterns.compiler import FieldTest
from chalicelib.patterns.matchers import (
    AnythingBut,
    AnythingButIgnoreCase,
    AnythingButPrefix,
    AnythingButSuffix,
    EqualsIgnoreCase,
    Exact,
    Exists,
    Matcher,
    Numeric,
    Prefix,
    PrefixIgnoreCase,
    Suffix,
    SuffixIgnoreCase,
)
from chalicelib.patterns.values import OTHER, STR, Leaf

_EXCLUDING = (AnythingBut, AnythingButPrefix, AnythingButSuffix, AnythingButIgnoreCase)


class _Strings:
    """String tests hashed by kind: exact (case-sensitive or ASCII-lowered), prefix, suffix."""

    __slots__ = ("equal", "folded", "folded_prefix", "folded_suffix", "prefix", "suffix")

    def __init__(self) -> None:
        self.equal: dict[str, int] = {}
        self.folded: dict[str, int] = {}  # ASCII ignore-case, by lower-case text
        self.prefix: Any = {}  # {length: {text: mask}}, then {edge char: ((length, {text: mask}), ...)}
        self.suffix: Any = {}
        self.folded_prefix: Any = {}
        self.folded_suffix: Any = {}

    def add(self, table: str, text: str, bit: int) -> None:
        if table in ("equal", "folded"):
            texts: dict[str, int] = getattr(self, table)
        else:
            texts = getattr(self, table).setdefault(len(text), {})
        texts[text] = texts.get(text, 0) | bit

    def freeze(self) -> int:
        """Regroup affixes by edge character; returns the mask of empty affixes (they accept any string)."""
        empty = 0
        for name, edge in (("prefix", 0), ("suffix", -1), ("folded_prefix", 0), ("folded_suffix", -1)):
            table = getattr(self, name)
            empty |= table.pop(0, {}).get("", 0)
            setattr(self, name, _by_edge_char(table, edge))
        return empty

    def mask(self, leaf: Leaf) -> int:
        text: str = leaf.key
        mask = self.equal.get(text, 0)
        if self.folded:
            lower = leaf.ascii_lower
            if lower is not None:
                mask |= self.folded.get(lower, 0)
        if not text:
            return mask
        if self.prefix:
            for length, table in self.prefix.get(text[0], ()):
                mask |= table.get(text[:length], 0)
        size = len(text)
        if self.suffix:
            for length, table in self.suffix.get(text[-1], ()):
                mask |= table.get(text[size - length :], 0)
        if self.folded_prefix:
            for length, table in self.folded_prefix.get(text[0].lower(), ()):
                head = text[:length]
                if head.isascii():
                    mask |= table.get(head.lower(), 0)
        if self.folded_suffix:
            for length, table in self.folded_suffix.get(text[-1].lower(), ()):
                tail = text[size - length :]
                if tail.isascii():
                    mask |= table.get(tail.lower(), 0)
        return mask


class PathIndex:
    __slots__ = (
        "absent_ok",
        "any_leaf",
        "any_string",
        "excluded",
        "excluded_numbers",
        "excluding",
        "generic",
        "ip_exact",
        "missing",
        "numeric",
        "other_exact",
        "strings",
        "tested",
        "untested",
    )

    def __init__(self) -> None:
        self.tested = 0  # alternatives that test this path
        self.absent_ok = 0  # ... and accept its absence ({"exists": false})
        self.missing = 0  # alternatives still possible when the path has no leaf (set by freeze)
        self.untested = 0  # alternatives that do not test this path (set by freeze)
        self.any_leaf = 0  # {"exists": true}
        self.any_string = 0  # empty prefix/suffix (set by freeze)
        self.strings = _Strings()
        self.ip_exact: dict[Any, int] = {}
        self.other_exact: dict[Any, int] = {}  # numbers, true, false, null
        self.numeric: Any = []  # [(Numeric, mask)], then (bounds, point masks, gap masks) or None
        self.excluding = 0  # alternatives whose test is one anything-but: accepted unless excluded
        self.excluded = _Strings()
        self.excluded_numbers: dict[float, int] = {}
        self.generic: list[tuple[Matcher, int]] = []

    def add(self, test: FieldTest, bit: int) -> None:
        self.tested |= bit
        if test.absent_ok:
            self.absent_ok |= bit
        single_exclusion = sum(isinstance(m, _EXCLUDING) for m in test.matchers) == 1
        for matcher in test.matchers:
            if single_exclusion and isinstance(matcher, _EXCLUDING):
                self._add_exclusion(matcher, bit)
            else:
                self._add(matcher, bit)

    def _add(self, matcher: Matcher, bit: int) -> None:
        if isinstance(matcher, Exact):
            if isinstance(matcher.value, str):
                self.strings.add("equal", matcher.value, bit)
            else:
                self.other_exact[matcher.value] = self.other_exact.get(matcher.value, 0) | bit
            if matcher.ip is not None:
                self.ip_exact[matcher.ip] = self.ip_exact.get(matcher.ip, 0) | bit
        elif isinstance(matcher, Exists):
            self.any_leaf |= bit
        elif isinstance(matcher, Prefix | Suffix):
            self.strings.add("prefix" if isinstance(matcher, Prefix) else "suffix", matcher.text, bit)
        elif isinstance(matcher, EqualsIgnoreCase | PrefixIgnoreCase | SuffixIgnoreCase) and matcher.text.ascii:
            table = {EqualsIgnoreCase: "folded", PrefixIgnoreCase: "folded_prefix"}.get(type(matcher), "folded_suffix")
            self.strings.add(table, matcher.text.lower, bit)
        elif isinstance(matcher, Numeric):
            self.numeric.append((matcher, bit))
        else:
            self.generic.append((matcher, bit))

    def _add_exclusion(self, matcher: Matcher, bit: int) -> None:
        """A test made of one anything-but: any leaf is accepted unless this matcher excludes it."""
        if isinstance(matcher, AnythingButIgnoreCase) and not all(t.ascii for t in matcher.texts):
            self.generic.append((matcher, bit))
            return
        self.excluding |= bit
        if isinstance(matcher, AnythingBut):
            for text in matcher.strings:
                self.excluded.add("equal", text, bit)
            for number in matcher.numbers:
                self.excluded_numbers[number] = self.excluded_numbers.get(number, 0) | bit
        elif isinstance(matcher, AnythingButIgnoreCase):
            for folded in matcher.texts:
                self.excluded.add("folded", folded.lower, bit)
        else:
            assert isinstance(matcher, AnythingButPrefix | AnythingButSuffix)
            table = "prefix" if isinstance(matcher, AnythingButPrefix) else "suffix"
            for text in matcher.texts:
                self.excluded.add(table, text, bit)

    def freeze(self, everyone: int) -> None:
        self.untested = everyone & ~self.tested
        self.missing = self.untested | self.absent_ok
        self.any_string = self.strings.freeze()
        self.excluded.freeze()  # anything-but prefixes and suffixes are never empty
        self.numeric = _intervals(self.numeric) if self.numeric else None

    def accepting(self, leaf: Leaf) -> int:
        """The alternatives whose test on this path accepts ``leaf``."""
        kind = leaf.kind
        mask = self.any_leaf
        if kind == STR:
            mask |= self.any_string | self.strings.mask(leaf)
            if self.ip_exact and leaf.ip is not None:
                mask |= self.ip_exact.get(leaf.ip, 0)
            if self.excluding:
                mask |= self.excluding & ~self.excluded.mask(leaf)
        elif kind == OTHER:
            mask |= self.excluding
        else:
            mask |= self.other_exact.get(leaf.key, 0)
            number = leaf.num
            if number is None:
                mask |= self.excluding
            else:
                if self.numeric is not None:
                    bounds, points, gaps = self.numeric
                    at = bisect_left(bounds, number)
                    mask |= points[at] if at < len(bounds) and bounds[at] == number else gaps[at]
                if self.excluding:
                    mask |= self.excluding & ~self.excluded_numbers.get(number, 0)
        for matcher, bits in self.generic:
            if matcher.test(leaf):
                mask |= bits
        return mask


def _by_edge_char(table: dict[int, dict[str, int]], edge: int) -> dict[str, tuple[tuple[int, dict[str, int]], ...]]:
    """``{length: {text: mask}}`` regrouped as ``{first or last char: ((length, {text: mask}), ...)}``."""
    grouped: dict[str, dict[int, dict[str, int]]] = {}
    for length, texts in table.items():
        for text, mask in texts.items():
            grouped.setdefault(text[edge], {}).setdefault(length, {})[text] = mask
    return {char: tuple(sorted(by_length.items())) for char, by_length in grouped.items()}


def _intervals(ranges: list[tuple[Numeric, int]]) -> tuple[list[float], list[int], list[int]]:
    """Elementary intervals of the ranges' bounds: ``points[i]`` holds for ``bounds[i]`` itself,
    ``gaps[i]`` for the open interval just below ``bounds[i]`` (``gaps[-1]``: above the last bound)."""
    bounds = sorted({b for matcher, _ in ranges for b in (matcher.low, matcher.high) if b is not None})
    points = [0] * len(bounds)
    gaps = [0] * (len(bounds) + 1)
    for matcher, bit in ranges:
        for i, bound in enumerate(bounds):
            if matcher.contains(bound):
                points[i] |= bit
        for i in range(len(gaps)):
            if i == 0:
                inside = matcher.low is None  # below every bound
            elif i == len(bounds):
                inside = matcher.high is None  # above every bound
            else:
                inside = matcher.contains(bounds[i - 1] / 2 + bounds[i] / 2)
            if inside:
                gaps[i] |= bit
    return bounds, points, gaps
