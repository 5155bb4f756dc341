"""String tests of one field path, hashed so that a leaf costs a few lookups whatever their number.

Each table maps what a pattern names to a bitmask (bit i: alternative i of the ``PatternSet``):

* :class:`Strings`: exact values, ASCII ignore-case values, prefixes and suffixes (an affix by its first or
  last character, then by length: one slice and one hash lookup per distinct length);
* :class:`Wildcards`: each wildcard is found through one literal piece (a prefix, a suffix, or an inner
  piece found by one Aho-Corasick scan of the value), then confirmed; only candidates are tested;
* :class:`CaseFolds`: non-ASCII equals-ignore-case texts (whole value, prefix or suffix), found by the
  characters their value can start or end with, then confirmed.

Nothing is compiled from pattern or event text into a regular expression.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator

from chalicelib.patterns.text import IgnoreCase, wildcard_matches
from chalicelib.patterns.values import Leaf


def set_bits(mask: int) -> Iterator[int]:
    """The positions of the bits set in ``mask``, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


class Affixes:
    """Prefixes (or suffixes) by edge character, then by length; ``folded``: ASCII ignore-case."""

    __slots__ = ("_by_edge", "_by_length", "empty", "folded", "suffix")

    def __init__(self, *, suffix: bool = False, folded: bool = False) -> None:
        self.suffix = suffix
        self.folded = folded
        self._by_length: dict[int, dict[str, int]] = {}
        self._by_edge: dict[str, tuple[tuple[int, dict[str, int]], ...]] = {}
        self.empty = 0  # the empty affix: any string (set by freeze)

    def __bool__(self) -> bool:
        return bool(self._by_edge)

    def add(self, text: str, bits: int) -> None:
        """``text`` is already lower-cased when ``folded``."""
        texts = self._by_length.setdefault(len(text), {})
        texts[text] = texts.get(text, 0) | bits

    def freeze(self) -> None:
        self.empty = self._by_length.pop(0, {}).get("", 0)
        grouped: dict[str, dict[int, dict[str, int]]] = {}
        edge = -1 if self.suffix else 0
        for length, texts in self._by_length.items():
            for text, bits in texts.items():
                grouped.setdefault(text[edge], {}).setdefault(length, {})[text] = bits
        self._by_edge = {char: tuple(sorted(by_length.items())) for char, by_length in grouped.items()}

    def mask(self, text: str) -> int:
        """The bits of the (non-empty) affixes ``text`` starts (ends) with."""
        if not text:
            return 0
        edge = text[-1] if self.suffix else text[0]
        size = len(text)
        out = 0
        for length, table in self._by_edge.get(edge.lower() if self.folded else edge, ()):
            if length > size:
                break
            piece = text[size - length :] if self.suffix else text[:length]
            if self.folded:
                if not piece.isascii():
                    continue
                piece = piece.lower()
            out |= table.get(piece, 0)
        return out


class Strings:
    """Exact values (case-sensitive or ASCII-lowered), prefixes and suffixes (likewise)."""

    __slots__ = ("_affixes", "equal", "folded", "folded_prefix", "folded_suffix", "prefix", "suffix")

    def __init__(self) -> None:
        self.equal: dict[str, int] = {}
        self.folded: dict[str, int] = {}  # ASCII ignore-case, by lower-case text
        self.prefix = Affixes()
        self.suffix = Affixes(suffix=True)
        self.folded_prefix = Affixes(folded=True)
        self.folded_suffix = Affixes(suffix=True, folded=True)
        self._affixes: tuple[Affixes, ...] = ()  # the non-empty tables (set by freeze)

    def add(self, table: str, text: str, bits: int) -> None:
        """``table``: ``equal``, ``folded``, ``prefix``, ``suffix``, ``folded_prefix`` or ``folded_suffix``."""
        if table in ("equal", "folded"):
            texts: dict[str, int] = getattr(self, table)
            texts[text] = texts.get(text, 0) | bits
        else:
            getattr(self, table).add(text, bits)

    def freeze(self) -> int:
        """Returns the bits of empty affixes (they accept any string)."""
        empty = 0
        for affixes in (self.prefix, self.suffix, self.folded_prefix, self.folded_suffix):
            affixes.freeze()
            empty |= affixes.empty
        self._affixes = tuple(a for a in (self.prefix, self.suffix, self.folded_prefix, self.folded_suffix) if a)
        return empty

    def mask(self, leaf: Leaf) -> int:
        text: str = leaf.key
        mask = self.equal.get(text, 0)
        if self.folded:
            lower = leaf.ascii_lower
            if lower is not None:
                mask |= self.folded.get(lower, 0)
        for affixes in self._affixes:
            mask |= affixes.mask(text)
        return mask


class Substrings:
    """Which of many words occur in a text, in one pass over the text (Aho-Corasick automaton)."""

    __slots__ = ("_fail", "_goto", "_out")

    def __init__(self, words: dict[str, int]) -> None:
        goto: list[dict[str, int]] = [{}]
        out = [0]
        for word, bits in words.items():
            state = 0
            for ch in word:
                following = goto[state].get(ch)
                if following is None:
                    following = len(goto)
                    goto[state][ch] = following
                    goto.append({})
                    out.append(0)
                state = following
            out[state] |= bits
        fail = [0] * len(goto)
        queue = deque(goto[0].values())
        while queue:
            state = queue.popleft()
            for ch, following in goto[state].items():
                queue.append(following)
                back = fail[state]
                while back and ch not in goto[back]:
                    back = fail[back]
                fail[following] = goto[back].get(ch, 0) if state else 0
                out[following] |= out[fail[following]]
        self._goto, self._fail, self._out = goto, fail, out

    def mask(self, text: str) -> int:
        """The bits of every word that occurs in ``text``."""
        goto, fail, out = self._goto, self._fail, self._out
        state = 0
        found = 0
        for ch in text:
            while state and ch not in goto[state]:
                state = fail[state]
            state = goto[state].get(ch, 0)
            found |= out[state]
        return found


def _anchors(pieces: tuple[str, ...]) -> list[tuple[str, str]]:
    """The literal pieces a value must hold for the wildcard to match: ``(where, text)``."""
    options = [("prefix", pieces[0])] if pieces[0] else []
    if pieces[-1]:
        options.append(("suffix", pieces[-1]))
    options.extend(("inner", piece) for piece in pieces[1:-1] if piece)
    return options


class Wildcards:
    """Wildcards with at least one ``*`` (``pieces`` of two or more), each found through its rarest piece."""

    __slots__ = ("_any", "_bits", "_entries", "_inner", "_prefixes", "_suffixes")

    def __init__(self) -> None:
        self._bits: dict[tuple[str, ...], int] = {}
        self._entries: list[tuple[tuple[str, ...], int]] = []
        self._any = 0  # "*": every string
        self._prefixes = Affixes()
        self._suffixes = Affixes(suffix=True)
        self._inner: Substrings | None = None

    def __bool__(self) -> bool:
        return bool(self._bits)

    def add(self, pieces: tuple[str, ...], bits: int) -> None:
        assert len(pieces) >= 2, "a wildcard without * is an exact value"
        self._bits[pieces] = self._bits.get(pieces, 0) | bits

    def freeze(self) -> None:
        self._entries = list(self._bits.items())
        shared = Counter(anchor for pieces in self._bits for anchor in set(_anchors(pieces)))
        inner: dict[str, int] = {}
        for position, (pieces, bits) in enumerate(self._entries):
            anchors = _anchors(pieces)
            if not anchors:
                self._any |= bits
                continue
            where, text = min(anchors, key=lambda a: (shared[a], a[0] == "inner", -len(a[1])))
            candidate = 1 << position
            if where == "prefix":
                self._prefixes.add(text, candidate)
            elif where == "suffix":
                self._suffixes.add(text, candidate)
            else:
                inner[text] = inner.get(text, 0) | candidate
        self._prefixes.freeze()
        self._suffixes.freeze()
        self._inner = Substrings(inner) if inner else None

    def mask(self, text: str) -> int:
        """The bits of the wildcards ``text`` matches."""
        candidates = self._prefixes.mask(text) | self._suffixes.mask(text)
        if self._inner is not None:
            candidates |= self._inner.mask(text)
        found = self._any
        entries = self._entries
        for position in set_bits(candidates):
            pieces, bits = entries[position]
            if wildcard_matches(pieces, text):
                found |= bits
        return found


class CaseFolds:
    """Non-ASCII equals-ignore-case texts (whole value, prefix or suffix), by the value's edge character."""

    __slots__ = ("_ends", "_starts")

    def __init__(self) -> None:
        self._starts: dict[str, list[tuple[IgnoreCase, bool, int]]] = {}  # whole (True) or prefix (False)
        self._ends: dict[str, list[tuple[IgnoreCase, bool, int]]] = {}

    def __bool__(self) -> bool:
        return bool(self._starts or self._ends)

    def add(self, text: IgnoreCase, how: str, bits: int) -> None:
        """``how``: ``equals``, ``prefix`` or ``suffix``; ``text`` is not ASCII (so not empty)."""
        if how == "suffix":
            for char in {option[-1] for option in text.alternatives[-1]}:
                self._ends.setdefault(char, []).append((text, False, bits))
        else:
            for char in {option[0] for option in text.alternatives[0]}:
                self._starts.setdefault(char, []).append((text, how == "equals", bits))

    def mask(self, text: str) -> int:
        if not text:
            return 0
        found = 0
        for folded, whole, bits in self._starts.get(text[0], ()):
            if folded.equals(text) if whole else folded.starts(text):
                found |= bits
        for folded, _, bits in self._ends.get(text[-1], ()):
            if folded.ends(text):
                found |= bits
        return found
