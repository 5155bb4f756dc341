"""Events near a pattern's boundaries: a real event with one tested field set to values the pattern
names (and values just beside them), or removed. Used to check that a rule accepts exactly what its
playbooks accept, not only on the corpus events that happen to match."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

MISSING = object()
Path = tuple[str, ...]


def _candidates(clause: Any) -> list[Any]:
    values: list[Any] = ["no-such-value-xyz", MISSING]
    for item in clause if isinstance(clause, list) else [clause]:
        if not isinstance(item, Mapping):
            values.append(item)
            continue
        for kind, argument in item.items():
            if kind == "prefix" and isinstance(argument, str):
                values += [argument + "Something", argument[:-1]]
            elif kind == "suffix" and isinstance(argument, str):
                values += ["Some" + argument, argument[1:]]
            elif kind == "numeric":
                values += [n + delta for n in argument if isinstance(n, int | float) for delta in (-1, 0, 1)]
            elif kind == "equals-ignore-case":
                values += [argument.upper(), argument.lower()]
            elif kind == "wildcard":
                values.append(argument.replace("*", "abc"))
            elif kind == "cidr":
                network = ipaddress.ip_network(argument, strict=False)
                values += [str(network.network_address), str(network.broadcast_address + 1)]
            elif kind == "anything-but":
                values += argument if isinstance(argument, list) else [argument]
    return values


def clauses(pattern: Mapping[str, Any], prefix: Path = ()) -> Iterator[tuple[Path, Any]]:
    """(field path, clause) for every clause of a pattern, ``$or`` alternatives included."""
    for key, value in pattern.items():
        if key == "$or":
            for alternative in value:
                yield from clauses(alternative, prefix)
        elif isinstance(value, Mapping):
            yield from clauses(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def _with(event: Mapping[str, Any], path: Path, value: Any) -> dict[str, Any] | None:
    """A copy of ``event`` with ``path`` set (or removed): only the objects along the path are copied."""
    top: dict[str, Any] = dict(event)
    node = top
    for key in path[:-1]:
        child = node.get(key, {})
        if not isinstance(child, Mapping):
            return None  # inside an array or a scalar: leave it to the corpus itself
        node[key] = dict(child)
        node = node[key]
    if value is MISSING:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return top


def variants(event: Mapping[str, Any], *patterns: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The event itself, then one variant per (tested field, candidate value) of the patterns."""
    yield dict(event)
    seen: set[tuple[Path, str]] = set()
    for pattern in patterns:
        for path, clause in clauses(pattern):
            for value in _candidates(clause):
                key = (path, repr(value))
                if key in seen:
                    continue
                seen.add(key)
                changed = _with(event, path, value)
                if changed is not None:
                    yield changed
