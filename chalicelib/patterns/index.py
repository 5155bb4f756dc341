"""Many patterns compiled into one index, so that matching an event does not loop over patterns.

Every alternative (``$or`` expanded) of every pattern gets a bit. Per field path (a dotted name, however
the patterns and the event spell it; see ``fieldnames``), a ``PathIndex`` maps a leaf of the event to the
bits of the alternatives whose test on that path accepts it; a path the event lacks keeps the alternatives
that do not test it or accept its absence. The AND over all paths leaves the alternatives whose every
field is satisfied: the cost is a few lookups per leaf on the paths the patterns name, not a loop over
patterns (what still grows with them is in the package docstring).

That is exact unless the event has an array of two or more elements on an alternative's paths: then
fields must be matched in the same element (array consistency) and absence is judged per element, so
those candidates are confirmed with the direct evaluator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.patterns.compiled import CompiledPattern, PatternSource, compile_pattern
from chalicelib.patterns.compiler import Alternative
from chalicelib.patterns.errors import InvalidPattern, UnknownPatternName
from chalicelib.patterns.evaluate import alternative_matches
from chalicelib.patterns.explain import Mismatch
from chalicelib.patterns.occurrences import PathCollector
from chalicelib.patterns.path_index import PathIndex


class PatternSet:
    """Named event patterns compiled into one index; ``match`` returns the names an event matches."""

    __slots__ = ("_alternatives", "_collector", "_compiled", "_everyone", "_indexes", "_names")

    def __init__(self, named_patterns: Mapping[str, PatternSource | CompiledPattern]) -> None:
        self._compiled: dict[str, CompiledPattern] = {}
        for name, pattern in named_patterns.items():
            if not isinstance(name, str):
                raise InvalidPattern((), f"pattern names must be strings, not {type(name).__name__}", name=repr(name))
            try:
                self._compiled[name] = compile_pattern(pattern)
            except InvalidPattern as exc:
                raise InvalidPattern(exc.path, exc.reason, name=name) from None
        self._names = tuple(self._compiled)
        # bit i <-> alternative i; patterns in insertion order, so bits come out in that order
        self._alternatives: list[tuple[int, Alternative, tuple[int, ...]]] = []
        alternatives = [
            (index, alternative)
            for index, compiled in enumerate(self._compiled.values())
            for alternative in compiled.alternatives
        ]
        self._collector = PathCollector(test.field for _, alternative in alternatives for test in alternative)
        slots = self._collector.slots
        self._indexes = [PathIndex() for _ in slots]
        for bit, (index, alternative) in enumerate(alternatives):
            for test in alternative:
                self._indexes[slots[test.field]].add(test, 1 << bit)
            self._alternatives.append((index, alternative, tuple(slots[test.field] for test in alternative)))
        self._everyone = (1 << len(alternatives)) - 1
        for path_index in self._indexes:
            path_index.freeze(self._everyone)

    @property
    def names(self) -> tuple[str, ...]:
        """Pattern names in insertion order."""
        return self._names

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._compiled

    def compiled(self, name: str) -> CompiledPattern:
        """The compiled pattern of ``name``."""
        try:
            return self._compiled[name]
        except (KeyError, TypeError):
            raise UnknownPatternName(name, self._names) from None

    def pattern(self, name: str) -> dict[str, Any]:
        """The normalized pattern of ``name``."""
        return self.compiled(name).pattern

    def explain(self, name: str, event: Mapping[str, Any]) -> Mismatch | None:
        """Why ``event`` does not match pattern ``name`` (``None`` if it does)."""
        return self.compiled(name).explain(event)

    def match(self, event: Mapping[str, Any]) -> list[str]:
        """Names of all patterns that match ``event``, in insertion order."""
        if not isinstance(event, Mapping) or not self._names:
            return []
        leaves = self._collector.collect(event)
        candidates = self._everyone
        in_arrays = 0  # alternatives with a leaf from a multi-element array on one of their paths
        for found, path_index in zip(leaves, self._indexes, strict=True):
            if not found:
                candidates &= path_index.missing
            else:
                accepted = path_index.untested
                in_array = False
                for leaf in found:
                    accepted |= path_index.accepting(leaf)
                    in_array = in_array or bool(leaf.membership)
                if in_array:
                    in_arrays |= path_index.tested
                    accepted |= path_index.absent_ok  # absence may hold in some element: confirm below
                candidates &= accepted
            if not candidates:
                return []
        matched: list[int] = []
        bits = bin(candidates)[:1:-1]  # bit i of candidates is bits[i]
        bit = bits.find("1")
        while bit >= 0:
            index, alternative, slots = self._alternatives[bit]
            if not (matched and matched[-1] == index) and (  # skip other alternatives of a matched pattern
                not (in_arrays >> bit) & 1 or alternative_matches(alternative, [leaves[slot] for slot in slots])
            ):
                matched.append(index)
            bit = bits.find("1", bit + 1)
        names = self._names
        return [names[index] for index in matched]

    def __repr__(self) -> str:
        return f"PatternSet({len(self._names)} patterns)"
