"""Many ranges over one ordered axis (numbers, or IP addresses as integers) answered by one bisection.

The ranges' distinct bounds cut the axis into elementary pieces: each bound itself, and the open
interval between consecutive bounds. A range covers a contiguous run of pieces, so the set of ranges
holding each piece is built in one sweep over the sorted bounds (XOR of toggles at the run ends),
O(n log n) for n ranges rather than testing every range at every bound. A lookup is one bisection.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any


class RangeIndex:
    """Add ``(low, low_open, high, high_open, bits)`` ranges (``None``: unbounded), ``freeze``, then ``mask``."""

    __slots__ = ("_bounds", "_masks", "_ranges")

    def __init__(self) -> None:
        self._ranges: list[tuple[Any, bool, Any, bool, int]] = []
        self._bounds: list[Any] = []
        #: piece 2i is the open interval just below bounds[i] (2 * len(bounds): above the last bound),
        #: piece 2i + 1 is bounds[i] itself.
        self._masks: list[int] = [0]

    def __bool__(self) -> bool:
        return bool(self._ranges)

    def add(self, low: Any, low_open: bool, high: Any, high_open: bool, bits: int) -> None:
        self._ranges.append((low, low_open, high, high_open, bits))

    def freeze(self) -> None:
        bounds = sorted({b for low, _, high, _, _ in self._ranges for b in (low, high) if b is not None})
        position = {bound: i for i, bound in enumerate(bounds)}
        last = 2 * len(bounds)
        runs: dict[int, list[tuple[int, int]]] = {}  # bits -> [(first piece, last piece)]
        for low, low_open, high, high_open, bits in self._ranges:
            first = 0 if low is None else 2 * position[low] + (2 if low_open else 1)
            end = last if high is None else 2 * position[high] + (0 if high_open else 1)
            if first <= end:
                runs.setdefault(bits, []).append((first, end))
        toggles = [0] * (last + 2)
        for bits, spans in runs.items():
            for first, end in _union(spans):  # a range toggles its bits on at ``first``, off after ``end``
                toggles[first] ^= bits
                toggles[end + 1] ^= bits
        masks = []
        current = 0
        for toggle in toggles[:-1]:
            current ^= toggle
            masks.append(current)
        self._bounds, self._masks = bounds, masks

    def mask(self, value: Any) -> int:
        """The bits of the ranges that hold ``value``."""
        bounds = self._bounds
        at = bisect_left(bounds, value)
        if at < len(bounds) and bounds[at] == value:
            return self._masks[2 * at + 1]
        return self._masks[2 * at]


def _union(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or adjacent runs of pieces merged (one toggle pair per run keeps XOR exact)."""
    spans.sort()
    merged = [spans[0]]
    for first, end in spans[1:]:
        last_first, last_end = merged[-1]
        if first <= last_end + 1:
            merged[-1] = (last_first, max(last_end, end))
        else:
            merged.append((first, end))
    return merged
