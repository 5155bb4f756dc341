"""Deciding one alternative (a conjunction of field tests) on the leaves collected from an event.

Array consistency, as event-ruler's ``rulesForJSONEvent``: the leaves chosen for the fields of one
alternative must agree on every array they share (come from the same element). ``{"exists": false}``
holds when no leaf of the field is consistent with the leaves chosen for the fields *before* it in
event-ruler's field order (sorted dotted names); so with arrays, absence is judged per element.
"""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib.patterns.compiler import FieldTest
from chalicelib.patterns.values import Leaf

Membership = tuple[tuple[int, int], ...]


def consistent(so_far: Membership, membership: Membership) -> bool:
    """Whether a leaf in ``membership`` can join leaves already chosen in ``so_far``."""
    for array, index in membership:
        for chosen_array, chosen_index in so_far:
            if array == chosen_array and index != chosen_index:
                return False
    return True


def merged(so_far: Membership, membership: Membership) -> Membership:
    extra = tuple(pair for pair in membership if pair not in so_far)
    return so_far + extra if extra else so_far


def alternative_matches(fields: Sequence[FieldTest], leaves: Sequence[list[Leaf]]) -> bool:
    """Whether the alternative made of ``fields`` (event-ruler order) matches; ``leaves[i]`` is field i's."""
    return deepest_failure(fields, leaves) is None


def deepest_failure(fields: Sequence[FieldTest], leaves: Sequence[list[Leaf]]) -> int | None:
    """``None`` if the alternative matches, else the index of the field where the best attempt failed."""
    in_arrays = []
    for index, (test, found) in enumerate(zip(fields, leaves, strict=True)):
        if any(leaf.membership for leaf in found):
            in_arrays.append(index)
        elif not (test.absent_ok and not found) and not any(test.accepts(leaf) for leaf in found):
            return index  # fields outside arrays are independent of each other
    if not in_arrays:
        return None
    return _search([fields[i] for i in in_arrays], [leaves[i] for i in in_arrays], in_arrays)


def _search(fields: list[FieldTest], leaves: list[list[Leaf]], positions: list[int]) -> int | None:
    """Depth-first search for array-consistent choices, remembering failed (field, membership) states."""
    accepted = [[leaf for leaf in found if test.accepts(leaf)] for test, found in zip(fields, leaves, strict=True)]
    failed: set[tuple[int, frozenset[tuple[int, int]]]] = set()
    deepest = 0

    def options(depth: int, so_far: Membership) -> list[Membership]:
        test = fields[depth]
        out: dict[frozenset[tuple[int, int]], Membership] = {}
        if test.absent_ok and not any(consistent(so_far, leaf.membership) for leaf in leaves[depth]):
            out[frozenset(so_far)] = so_far
        for leaf in accepted[depth]:
            if consistent(so_far, leaf.membership):
                choice = merged(so_far, leaf.membership)
                out.setdefault(frozenset(choice), choice)
        return list(out.values())

    empty: Membership = ()
    stack = [(0, empty, iter(options(0, empty)))]
    while stack:
        depth, so_far, pending = stack[-1]
        choice = next(pending, None)
        if choice is None:
            failed.add((depth, frozenset(so_far)))
            stack.pop()
            continue
        if depth + 1 == len(fields):
            return None
        if (depth + 1, frozenset(choice)) in failed:
            continue
        deepest = max(deepest, depth + 1)
        stack.append((depth + 1, choice, iter(options(depth + 1, choice))))
    return positions[deepest]
