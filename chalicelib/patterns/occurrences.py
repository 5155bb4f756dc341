"""Collecting the event's leaf values at the field paths some pattern names, in one walk.

Only keys present in the path trie are visited, so the cost depends on the patterns' fields, not on the
size of the event. Arrays are "crushed" as in EventBridge (an array's elements are values of the field
that holds the array), and each leaf remembers which element of which array it came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib.patterns.errors import Path
from chalicelib.patterns.values import Leaf

#: Arrays nested deeper than this inside one field are not looked into (JSON parsers stop far earlier),
#: nor more arrays than this in one event (a guard against self-containing Python lists).
MAX_ARRAY_DEPTH = 256
MAX_ARRAYS = 100_000

_MISSING: Any = object()


class _Node:
    __slots__ = ("children", "slot")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.slot = -1  # index of the path ending here, -1 if no pattern names this exact path


class PathCollector:
    """Walks events along a fixed set of field paths; ``slots[path]`` is the path's index in the result."""

    __slots__ = ("_root", "slots")

    def __init__(self, paths: Iterable[Path]) -> None:
        self._root = _Node()
        self.slots: dict[Path, int] = {}
        for path in paths:
            if path in self.slots:
                continue
            node = self._root
            for key in path:
                node = node.children.setdefault(key, _Node())
            node.slot = len(self.slots)
            self.slots[path] = node.slot

    def collect(self, event: Mapping[str, Any]) -> list[list[Leaf]]:
        """The leaves of ``event`` at each path, in document order (empty list where there are none).

        An array of one element gets no membership: it cannot make two leaves inconsistent.
        """
        found: list[list[Leaf]] = [[] for _ in range(len(self.slots))]
        arrays = 0
        todo: list[tuple[_Node, Any, tuple[tuple[int, int], ...]]] = [(self._root, event, ())]
        push = todo.append
        while todo:
            node, value, membership = todo.pop()
            kind = type(value)
            if kind is dict or (kind is not list and kind is not tuple and isinstance(value, Mapping)):
                children = node.children
                if len(children) <= len(value):
                    for key, child in reversed(children.items()):
                        item = value.get(key, _MISSING)
                        if item is _MISSING:
                            continue
                        if type(item) in _SCALARS:
                            if child.slot >= 0:
                                found[child.slot].append(Leaf(item, membership))
                        else:
                            push((child, item, membership))
                else:
                    for key in reversed(list(value)):
                        found_child = children.get(key) if type(key) is str else None
                        if found_child is not None:
                            push((found_child, value[key], membership))
            elif kind is list or kind is tuple:
                arrays += 1
                if len(membership) >= MAX_ARRAY_DEPTH or arrays > MAX_ARRAYS:
                    continue
                if len(value) == 1:
                    push((node, value[0], membership))
                    continue
                for index in range(len(value) - 1, -1, -1):
                    push((node, value[index], (*membership, (arrays, index))))
            elif node.slot >= 0:
                found[node.slot].append(Leaf(value, membership))
        return found


_SCALARS = frozenset({str, int, float, bool, type(None)})
