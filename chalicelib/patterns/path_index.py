"""For one field path: which alternatives' tests accept a given leaf, as a bitmask (bit i: alternative i).

Every operator is indexed, so a leaf costs a few lookups however many patterns test the path: exact
values, ignore-case values, prefixes, suffixes and wildcards through the tables of ``string_index``;
numeric ranges and CIDR ranges (IP addresses as integers, per IP version) through one bisection each
(``ranges``). A test made of one ``anything-but`` (of any form) accepts every leaf except the ones its
own tables mark as excluded. Only a test with several ``anything-but`` clauses is tested directly.
"""

from __future__ import annotations

from typing import Any

from chalicelib.patterns.compiler import FieldTest
from chalicelib.patterns.matchers import (
    AnythingBut,
    AnythingButIgnoreCase,
    AnythingButPrefix,
    AnythingButSuffix,
    AnythingButWildcard,
    Cidr,
    EqualsIgnoreCase,
    Exact,
    Exists,
    Matcher,
    Numeric,
    Prefix,
    PrefixIgnoreCase,
    Suffix,
    SuffixIgnoreCase,
    Wildcard,
)
from chalicelib.patterns.ranges import RangeIndex
from chalicelib.patterns.string_index import CaseFolds, Strings, Wildcards
from chalicelib.patterns.text import IgnoreCase
from chalicelib.patterns.values import OTHER, STR, Leaf

_EXCLUDING = (AnythingBut, AnythingButPrefix, AnythingButSuffix, AnythingButIgnoreCase, AnythingButWildcard)
_IGNORE_CASE = {EqualsIgnoreCase: "equals", PrefixIgnoreCase: "prefix", SuffixIgnoreCase: "suffix"}
_FOLDED_TABLE = {"equals": "folded", "prefix": "folded_prefix", "suffix": "folded_suffix"}


class _StringTests:
    """Every string test of one role (accepting, or excluding for anything-but) on one path."""

    __slots__ = ("any", "folds", "has_folds", "has_wildcards", "strings", "wildcards")

    def __init__(self) -> None:
        self.strings = Strings()
        self.wildcards = Wildcards()
        self.folds = CaseFolds()
        self.any = 0  # empty prefixes/suffixes and "*" accept any string (set by freeze)
        self.has_wildcards = self.has_folds = False  # (set by freeze: plain attributes are cheaper to test)

    def add_ignore_case(self, text: IgnoreCase, how: str, bits: int) -> None:
        if text.ascii:
            self.strings.add(_FOLDED_TABLE[how], text.lower, bits)
        else:
            self.folds.add(text, how, bits)

    def add_wildcard(self, pieces: tuple[str, ...], bits: int) -> None:
        if len(pieces) == 1:  # no *: an exact value
            self.strings.add("equal", pieces[0], bits)
        else:
            self.wildcards.add(pieces, bits)

    def freeze(self) -> None:
        self.any = self.strings.freeze()
        self.wildcards.freeze()
        self.has_wildcards, self.has_folds = bool(self.wildcards), bool(self.folds)

    def mask(self, leaf: Leaf) -> int:
        mask = self.any | self.strings.mask(leaf)
        if self.has_wildcards:
            mask |= self.wildcards.mask(leaf.key)
        if self.has_folds:
            mask |= self.folds.mask(leaf.key)
        return mask


class PathIndex:
    __slots__ = (
        "absent_ok",
        "any_leaf",
        "cidr",
        "excluded",
        "excluded_numbers",
        "excluding",
        "generic",
        "has_cidr",
        "has_numeric",
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
        self.strings = _StringTests()
        self.ip_exact: dict[Any, int] = {}
        self.other_exact: dict[Any, int] = {}  # numbers, true, false, null
        self.numeric = RangeIndex()
        self.cidr = {4: RangeIndex(), 6: RangeIndex()}  # by IP version, over the address as an integer
        self.has_numeric = self.has_cidr = False  # (set by freeze)
        self.excluding = 0  # alternatives whose test is one anything-but: accepted unless excluded
        self.excluded = _StringTests()
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
                self.strings.strings.add("equal", matcher.value, bit)
            else:
                self.other_exact[matcher.value] = self.other_exact.get(matcher.value, 0) | bit
            if matcher.ip is not None:
                self.ip_exact[matcher.ip] = self.ip_exact.get(matcher.ip, 0) | bit
        elif isinstance(matcher, Exists):
            self.any_leaf |= bit
        elif isinstance(matcher, Prefix | Suffix):
            self.strings.strings.add("prefix" if isinstance(matcher, Prefix) else "suffix", matcher.text, bit)
        elif isinstance(matcher, EqualsIgnoreCase | PrefixIgnoreCase | SuffixIgnoreCase):
            self.strings.add_ignore_case(matcher.text, _IGNORE_CASE[type(matcher)], bit)
        elif isinstance(matcher, Wildcard):
            self.strings.add_wildcard(matcher.pieces, bit)
        elif isinstance(matcher, Numeric):
            self.numeric.add(matcher.low, matcher.low_open, matcher.high, matcher.high_open, bit)
        elif isinstance(matcher, Cidr):
            network = matcher.network
            first, last = int(network.network_address), int(network.broadcast_address)
            self.cidr[network.version].add(first, False, last, False, bit)
        else:
            self.generic.append((matcher, bit))

    def _add_exclusion(self, matcher: Matcher, bit: int) -> None:
        """A test made of one anything-but: any leaf is accepted unless this matcher excludes it."""
        self.excluding |= bit
        excluded = self.excluded
        if isinstance(matcher, AnythingBut):
            for text in matcher.strings:
                excluded.strings.add("equal", text, bit)
            for number in matcher.numbers:
                self.excluded_numbers[number] = self.excluded_numbers.get(number, 0) | bit
        elif isinstance(matcher, AnythingButIgnoreCase):
            for folded in matcher.texts:
                excluded.add_ignore_case(folded, "equals", bit)
        elif isinstance(matcher, AnythingButWildcard):
            for pieces in matcher.wildcards:
                excluded.add_wildcard(pieces, bit)
        else:
            assert isinstance(matcher, AnythingButPrefix | AnythingButSuffix)
            table = "prefix" if isinstance(matcher, AnythingButPrefix) else "suffix"
            for text in matcher.texts:
                excluded.strings.add(table, text, bit)

    def freeze(self, everyone: int) -> None:
        self.untested = everyone & ~self.tested
        self.missing = self.untested | self.absent_ok
        self.strings.freeze()
        self.excluded.freeze()
        for ranges in (self.numeric, *self.cidr.values()):
            ranges.freeze()
        self.has_numeric = bool(self.numeric)
        self.has_cidr = bool(self.ip_exact) or any(self.cidr.values())

    def accepting(self, leaf: Leaf) -> int:
        """The alternatives whose test on this path accepts ``leaf``."""
        kind = leaf.kind
        mask = self.any_leaf
        if kind == STR:
            mask |= self.strings.mask(leaf)
            if self.has_cidr and leaf.ip is not None:  # IP literals: exact values and CIDR blocks
                ip = leaf.ip
                mask |= self.ip_exact.get(ip, 0)
                mask |= self.cidr[ip.version].mask(int(ip))
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
                if self.has_numeric:
                    mask |= self.numeric.mask(number)
                if self.excluding:
                    mask |= self.excluding & ~self.excluded_numbers.get(number, 0)
        for matcher, bits in self.generic:
            if matcher.test(leaf):
                mask |= bits
        return mask
