"""Collecting the event's leaf values at the fields some pattern names, in one walk.

Fields are dotted names (see ``fieldnames``). The walk follows a trie of their steps; an event key that
holds dots moves several steps at once, so ``{"a.b": 1}`` and ``{"a": {"b": 1}}`` both reach the field
``a.b``, and when an event has both, the values of both count (in document order). Each trie node knows
every key that leads somewhere from it: its children, and the dotted spellings of deeper steps. An
object of the event is read by looking up the node's children in it, plus, at nodes with deeper steps,
one C-level set test of the object's keys against those spellings (``frozenset.isdisjoint``); only if
one is present, or the object has fewer keys than the node has children, are the object's keys read in
document order. So the Python-level work depends on the patterns' fields, not on the size of the event
(only that C-level test grows with the size of the objects on the patterns' paths).

Arrays are "crushed" as in EventBridge (an array's elements are values of the field that holds the
array), and each leaf remembers which element of which array it came from.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib.patterns.fieldnames import FieldKey
from chalicelib.patterns.values import Leaf

#: Arrays nested deeper than this inside one field are not looked into (JSON parsers stop far earlier),
#: nor more arrays than this in one event (a guard against self-containing Python lists).
MAX_ARRAY_DEPTH = 256
MAX_ARRAYS = 100_000
#: Dotted spellings precomputed for the trie, at most this many characters in all (each counting 32 more);
#: nodes past it read every key of the event's objects instead (only absurdly long dotted names get there).
MAX_SPELLING_CHARS = 2_000_000

_MISSING: Any = object()
_SEVERAL = -2  # _Node.slot when several fields end at the node (see _Node.slots)


class _Node:
    __slots__ = ("children", "empty", "lookup", "pairs", "scan", "slot", "slots", "special", "width")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}  # next non-empty step -> node
        self.empty: _Node | None = None  # the empty step (of a dotted key such as "a." or "a..b")
        self.slots: list[int] = []  # fields ending here
        self.slot = -1  # the one field ending here, -1 if none, _SEVERAL if more than one
        # set by _finish:
        self.lookup: dict[str, _Node] = {}  # every event key that leads somewhere from here -> where
        self.special: frozenset[str] | None = None  # the keys of lookup that are not children
        self.scan = False  # lookup lacks the dotted spellings (budget spent): resolve them step by step
        self.width = 0  # len(children); sys.maxsize when scanning, so that every key is read
        self.pairs: tuple[tuple[str, _Node], ...] = ()  # children's items, last first


class PathCollector:
    """Walks events along a fixed set of fields; ``slots[field]`` is the field's index in the result.

    ``lazy``: build the trie on the first ``collect`` (for a pattern that may never be matched on its own).
    """

    __slots__ = ("_root", "slots")

    def __init__(self, fields: Iterable[FieldKey], *, lazy: bool = False) -> None:
        self.slots: dict[FieldKey, int] = {}
        for field in fields:
            self.slots.setdefault(field, len(self.slots))
        self._root = None if lazy else _build(self.slots)

    def collect(self, event: Mapping[str, Any]) -> list[list[Leaf]]:
        """The leaves of ``event`` at each field, in document order (empty list where there are none).

        An array of one element gets no membership: it cannot make two leaves inconsistent.
        """
        root = self._root
        if root is None:
            root = self._root = _build(self.slots)  # racing threads each build one: no shared mutation
        found: list[list[Leaf]] = [[] for _ in range(len(self.slots))]
        arrays = 0
        todo: list[tuple[_Node, Any, tuple[tuple[int, int], ...]]] = [(root, event, ())]
        push = todo.append
        while todo:
            node, value, membership = todo.pop()
            kind = type(value)
            if kind is dict or (kind is not list and kind is not tuple and isinstance(value, Mapping)):
                special = node.special
                if node.width <= len(value) and (special is None or special.isdisjoint(value)):
                    for key, child in node.pairs:
                        item = value.get(key, _MISSING)
                        if item is _MISSING:
                            continue
                        if type(item) in _SCALARS:
                            slot = child.slot
                            if slot >= 0:
                                found[slot].append(Leaf(item, membership))
                            elif slot == _SEVERAL:
                                _add(found, child.slots, Leaf(item, membership))
                        else:
                            push((child, item, membership))
                else:
                    lookup = node.lookup
                    for key in reversed(list(value)):
                        if type(key) is not str:
                            continue
                        target = lookup.get(key)
                        if target is None and node.scan and "." in key:
                            target = _walk(node, key)
                        if target is not None:
                            push((target, value[key], membership))
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
            elif node.slot == _SEVERAL:
                _add(found, node.slots, Leaf(value, membership))
        return found


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _add(found: list[list[Leaf]], slots: list[int], leaf: Leaf) -> None:
    for slot in slots:
        found[slot].append(leaf)


def _walk(node: _Node, key: str) -> _Node | None:
    """Where a dotted event key leads from ``node``, step by step (``None`` if nowhere)."""
    current: _Node | None = node
    for step in key.split("."):
        if current is None:
            return None
        current = current.children.get(step) if step else current.empty
    return current


def _build(slots: dict[FieldKey, int]) -> _Node:
    root = _Node()
    skipping: set[int] = set()
    for field, slot in slots.items():
        node = root
        for step in field.path:
            if step:
                child = node.children.get(step)
                if child is None:
                    child = node.children[step] = _Node()
                node = child
            else:
                if node.empty is None:
                    node.empty = _Node()
                node = node.empty
        node.slots.append(slot)
        if field.skips_empty_keys:
            skipping.add(slot)
    _finish(root, skipping)
    return root


def _finish(root: _Node, skipping: set[int]) -> None:
    """Fill in every node's ``slot``, ``lookup``, ``special``, ``scan`` and ``width``.

    An event key that is exactly ``""`` leads to a copy of the empty step's node without the fields that
    skip such keys (``_without_skipping``); dotted keys, even with empty steps, lead to the nodes themselves.
    """
    copies: dict[int, _Node | None] = {}
    budget = [MAX_SPELLING_CHARS]
    done: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in done:
            continue
        done.add(id(node))
        node.slot = node.slots[0] if len(node.slots) == 1 else (_SEVERAL if node.slots else -1)
        lookup = dict(node.children)
        spellings = _spellings(node, budget)
        node.scan = spellings is None
        lookup.update(spellings or {})
        if node.empty is not None:
            todo.append(node.empty)
            target = _without_skipping(node.empty, skipping, copies)
            if target is not None:
                lookup[""] = target
        node.lookup = lookup
        node.special = frozenset(lookup.keys() - node.children.keys()) or None
        node.width = sys.maxsize if node.scan else len(node.children)
        node.pairs = tuple(reversed(node.children.items()))
        todo.extend(lookup.values())


def _spellings(node: _Node, budget: list[int]) -> dict[str, _Node] | None:
    """Every dotted key (two steps or more) that leads somewhere from ``node``; ``None`` past the budget."""
    out: dict[str, _Node] = {}
    todo: list[tuple[str, _Node, bool]] = []
    for step, child in _edges(node):
        if child.children or child.empty is not None:
            todo.append((step, child, False))
    while todo:
        name, target, dotted = todo.pop()
        if dotted:
            budget[0] -= len(name) + 32
            if budget[0] < 0:
                return None
            out[name] = target
        for step, child in _edges(target):
            todo.append((f"{name}.{step}", child, True))
    return out


def _edges(node: _Node) -> list[tuple[str, _Node]]:
    edges = list(node.children.items())
    if node.empty is not None:
        edges.append(("", node.empty))
    return edges


def _without_skipping(node: _Node, skipping: set[int], copies: dict[int, _Node | None]) -> _Node | None:
    """``node`` as reached through an event key ``""``: without the fields that skip such keys (``None`` if
    nothing is left).

    Such fields have no empty step followed by a non-empty one, so below an empty step they lie on the
    chain of further empty steps: only that chain is copied; the other children are shared.
    """
    chain = []
    current: _Node | None = node
    while current is not None and id(current) not in copies:
        chain.append(current)
        current = current.empty
    below = copies[id(current)] if current is not None else None
    for original in reversed(chain):
        kept = [slot for slot in original.slots if slot not in skipping]
        if len(kept) == len(original.slots) and below is original.empty:
            copy: _Node | None = original
        elif not kept and not original.children and below is None:
            copy = None
        else:
            copy = _Node()
            copy.children = original.children
            copy.empty = below
            copy.slots = kept
        copies[id(original)] = copy
        below = copy
    return copies[id(node)]
