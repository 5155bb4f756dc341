"""One class per value operator of the pattern language; each tests a single leaf of the event.

``key`` identifies a matcher by content (two patterns using the same clause share index entries);
``test`` is the reference semantics used by ``CompiledPattern`` and by the index for the operators it
does not hash.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from chalicelib.patterns.text import IgnoreCase, wildcard_matches
from chalicelib.patterns.values import NUM, OTHER, STR, Leaf


class Matcher:
    """Base class: a test on one leaf value."""

    __slots__ = ("key",)

    key: Hashable

    def test(self, leaf: Leaf) -> bool:
        raise NotImplementedError


class Exact(Matcher):
    """An exact value; a string that is an IP address literal also matches other spellings of that IP."""

    __slots__ = ("ip", "value")

    def __init__(self, value: Any, ip: Any = None) -> None:
        self.value = value
        self.ip = ip
        self.key = ("exact", value)

    def test(self, leaf: Leaf) -> bool:
        if leaf.kind == STR:
            return leaf.key == self.value or (self.ip is not None and leaf.ip == self.ip)
        return leaf.kind != OTHER and leaf.key == self.value


class Exists(Matcher):
    """``{"exists": true}``: any leaf value, ``null`` included."""

    __slots__ = ()

    def __init__(self) -> None:
        self.key = ("exists",)

    def test(self, leaf: Leaf) -> bool:
        return True


class Prefix(Matcher):
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text
        self.key = ("prefix", text)

    def test(self, leaf: Leaf) -> bool:
        return leaf.kind == STR and leaf.key.startswith(self.text)


class Suffix(Matcher):
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text
        self.key = ("suffix", text)

    def test(self, leaf: Leaf) -> bool:
        return leaf.kind == STR and leaf.key.endswith(self.text)


class EqualsIgnoreCase(Matcher):
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = IgnoreCase(text)
        self.key = ("equals-ignore-case", text)

    def test(self, leaf: Leaf) -> bool:
        return leaf.kind == STR and self.text.equals(leaf.key)


class PrefixIgnoreCase(Matcher):
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = IgnoreCase(text)
        self.key = ("prefix-ignore-case", text)

    def test(self, leaf: Leaf) -> bool:
        return leaf.kind == STR and self.text.starts(leaf.key)


class SuffixIgnoreCase(Matcher):
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = IgnoreCase(text)
        self.key = ("suffix-ignore-case", text)

    def test(self, leaf: Leaf) -> bool:
        return leaf.kind == STR and self.text.ends(leaf.key)


class Wildcard(Matcher):
    __slots__ = ("pieces",)

    def __init__(self, pieces: tuple[str, ...]) -> None:
        self.pieces = pieces
        self.key = ("wildcard", pieces)

    def test(self, leaf: Leaf) -> bool:
        return leaf.kind == STR and wildcard_matches(self.pieces, leaf.key)


class Numeric(Matcher):
    """A numeric range; ``None`` bounds are open-ended. Only JSON numbers match."""

    __slots__ = ("high", "high_open", "low", "low_open")

    def __init__(self, low: float | None, low_open: bool, high: float | None, high_open: bool) -> None:
        self.low, self.low_open, self.high, self.high_open = low, low_open, high, high_open
        self.key = ("numeric", low, low_open, high, high_open)

    def test(self, leaf: Leaf) -> bool:
        return self.contains(leaf.num)

    def contains(self, number: float | None) -> bool:
        if number is None:
            return False
        low, high = self.low, self.high
        if low is not None and (number < low or (self.low_open and number == low)):
            return False
        return high is None or not (number > high or (self.high_open and number == high))


class Cidr(Matcher):
    """An IP range; only strings that are IP address literals match."""

    __slots__ = ("network",)

    def __init__(self, network: Any) -> None:
        self.network = network
        self.key = ("cidr", str(network))

    def test(self, leaf: Leaf) -> bool:
        ip = leaf.ip if leaf.kind == STR else None
        return ip is not None and ip.version == self.network.version and ip in self.network


class AnythingBut(Matcher):
    """``anything-but`` a set of strings or numbers: any leaf (``null`` included) not in the set."""

    __slots__ = ("numbers", "strings")

    def __init__(self, strings: frozenset[str], numbers: frozenset[float]) -> None:
        self.strings, self.numbers = strings, numbers
        self.key = ("anything-but", strings, numbers)

    def test(self, leaf: Leaf) -> bool:
        if leaf.kind == STR:
            return leaf.key not in self.strings
        return not (leaf.kind == NUM and leaf.num is not None and leaf.num in self.numbers)


class AnythingButIgnoreCase(Matcher):
    __slots__ = ("texts",)

    def __init__(self, texts: frozenset[str]) -> None:
        self.texts = tuple(IgnoreCase(t) for t in sorted(texts))
        self.key = ("anything-but-ignore-case", texts)

    def test(self, leaf: Leaf) -> bool:
        return leaf.kind != STR or not any(t.equals(leaf.key) for t in self.texts)


class AnythingButPrefix(Matcher):
    __slots__ = ("texts",)

    def __init__(self, texts: frozenset[str]) -> None:
        self.texts = tuple(sorted(texts))
        self.key = ("anything-but-prefix", texts)

    def test(self, leaf: Leaf) -> bool:
        return leaf.kind != STR or not leaf.key.startswith(self.texts)


class AnythingButSuffix(Matcher):
    __slots__ = ("texts",)

    def __init__(self, texts: frozenset[str]) -> None:
        self.texts = tuple(sorted(texts))
        self.key = ("anything-but-suffix", texts)

    def test(self, leaf: Leaf) -> bool:
        return leaf.kind != STR or not leaf.key.endswith(self.texts)


class AnythingButWildcard(Matcher):
    __slots__ = ("wildcards",)

    def __init__(self, wildcards: frozenset[tuple[str, ...]]) -> None:
        self.wildcards = tuple(sorted(wildcards))
        self.key = ("anything-but-wildcard", wildcards)

    def test(self, leaf: Leaf) -> bool:
        return leaf.kind != STR or not any(wildcard_matches(w, leaf.key) for w in self.wildcards)
