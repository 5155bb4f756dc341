"""An independent, deliberately naive interpreter of EventBridge pattern semantics, for property tests.

Written from the documented semantics (AWS docs, aws/event-ruler README, ``JsonRuleCompiler``, ``Event``
and ``GenericMachine.isFieldStepUsed``), separately from ``chalicelib.patterns``: it flattens the *whole*
event into dotted field names, expands ``$or`` into rules keyed by dotted names (a later spelling of a field
replaces an earlier one) and tries every choice of leaves recursively. Slow on purpose; it only has to be
obviously right. It takes patterns that are already valid.
"""

from __future__ import annotations

import ipaddress
import math
import re
from functools import cache
from typing import Any

_IPV4 = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IPV6 = re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*")


def reference_matches(pattern: dict[str, Any], event: Any) -> bool:
    if not isinstance(event, dict):
        return False
    rules = _rules(pattern)
    steps = {step for rule in rules for name in rule for step in _java_split(name)}
    leaves = list(_flatten(event, [], (), steps))
    return any(_rule_matches(rule, leaves) for rule in rules)


# --- pattern -> rules (dict of dotted name -> list of clause values), $or expanded -----------------


def _rules(pattern: dict[str, Any]) -> list[dict[str, list[Any]]]:
    rules: list[dict[str, list[Any]]] = [{}]
    _walk(pattern, [], rules)
    return rules


def _walk(obj: dict[str, Any], path: list[str], rules: list[dict]) -> None:
    for key, value in obj.items():
        if key == "$or":
            current = [dict(rule) for rule in rules]
            rules.clear()
            for branch in value:
                copies = [dict(rule) for rule in current]
                _walk(branch, path, copies)
                rules.extend(copies)
        elif isinstance(value, dict):
            _walk(value, [*path, key], rules)
        else:
            for rule in rules:
                rule[_extended_name(path, key)] = list(value)  # Java's Map.put: the later one wins


def _extended_name(path: list[str], step: str) -> str:
    """``Path.extendedName``: no separator after a path whose name is empty."""
    base = ".".join(path)
    if base:
        base += "."
    return base + step


# --- event -> leaves (dotted name, value, array memberships) ---------------------------------------


def _java_split(text: str) -> list[str]:
    """Java's ``text.split("\\\\.")``: no match gives ``[text]``; trailing empty strings are removed."""
    if "." not in text:
        return [text]
    parts = text.split(".")
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _step_used(key: str, steps: set[str]) -> bool:
    """``GenericMachine.isFieldStepUsed``: the event walk skips keys for which this is false."""
    if key in steps:
        return True
    if "." in key:
        return all(part in steps for part in _java_split(key))
    return False


_counter = [0]


def _flatten(value: Any, path: list[str], membership: tuple[tuple[int, int], ...], steps: set[str]):
    if isinstance(value, dict):
        for key, item in value.items():
            if _step_used(key, steps):
                yield from _flatten(item, [*path, key], membership, steps)
    elif isinstance(value, list):
        _counter[0] += 1
        array = _counter[0]
        for index, item in enumerate(value):
            yield from _flatten(item, path, (*membership, (array, index)), steps)
    else:
        yield ".".join(path), value, membership


def _compatible(a: dict[int, int], membership: tuple[tuple[int, int], ...]) -> bool:
    return all(a.get(array, index) == index for array, index in membership)


def _rule_matches(rule: dict[str, list[Any]], leaves: list) -> bool:
    order = sorted(rule, key=lambda name: name.encode("utf-16-be", "surrogatepass"))

    def attempt(i: int, chosen: dict[int, int]) -> bool:
        if i == len(order):
            return True
        path = order[i]
        clause = rule[path]
        here = [leaf for leaf in leaves if leaf[0] == path and _compatible(chosen, leaf[2])]
        if {"exists": False} in clause and not here and attempt(i + 1, chosen):
            return True
        for _, value, membership in here:
            accepted = any(_value_matches(item, value) for item in clause if item != {"exists": False})
            if accepted and attempt(i + 1, {**chosen, **dict(membership)}):
                return True
        return False

    return attempt(0, {})


# --- one clause item against one leaf value --------------------------------------------------------


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _as_double(v: Any) -> float | None:
    """The number as a double if it is exactly one (what EventBridge compares numerically)."""
    if not _is_num(v):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    if math.isinf(f) or math.isnan(f):
        return None
    if isinstance(v, int) and int(f) != v:
        return None
    return f


def _same_json(a: Any, b: Any) -> bool:
    if _is_str(a) or _is_str(b):
        return _is_str(a) and _is_str(b) and a == b
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b
    if _is_num(a) and _is_num(b):
        da, db = _as_double(a), _as_double(b)
        if da is not None and db is not None:
            return da == db
        return type(a) is type(b) and a == b
    return False


def _ip(text: Any) -> Any:
    if not isinstance(text, str) or not (_IPV4.fullmatch(text) or _IPV6.fullmatch(text)):
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _value_matches(item: Any, value: Any) -> bool:
    if not isinstance(item, dict):
        if _is_str(item) and _ip(item) is not None and _ip(value) == _ip(item):
            return True
        return _same_json(item, value)
    ((operator, arg),) = item.items()
    if operator == "exists":
        return arg is True
    if operator == "anything-but":
        return not _excluded(arg, value)
    if operator == "numeric":
        return _numeric(arg, value)
    if not _is_str(value):
        return False
    if operator == "prefix":
        if isinstance(arg, dict):
            return _ignore_case(arg["equals-ignore-case"], value, "prefix")
        return value.startswith(arg)
    if operator == "suffix":
        if isinstance(arg, dict):
            return _ignore_case(arg["equals-ignore-case"], value, "suffix")
        return value.endswith(arg)
    if operator == "equals-ignore-case":
        return _ignore_case(arg, value, "whole")
    if operator == "wildcard":
        return _glob(arg, value)
    if operator == "cidr":
        address = _ip(value)
        network = ipaddress.ip_network(arg, strict=False)
        return address is not None and address.version == network.version and address in network
    raise AssertionError(operator)


def _excluded(arg: Any, value: Any) -> bool:
    if isinstance(arg, dict):
        ((kind, members),) = arg.items()
        members = members if isinstance(members, list) else [members]
        if not _is_str(value):
            return False
        if kind == "prefix":
            return any(value.startswith(m) for m in members)
        if kind == "suffix":
            return any(value.endswith(m) for m in members)
        if kind == "equals-ignore-case":
            return any(_ignore_case(m, value, "whole") for m in members)
        return any(_glob(m, value) for m in members)
    members = arg if isinstance(arg, list) else [arg]
    return any(_same_json(m, value) for m in members)


def _numeric(terms: list[Any], value: Any) -> bool:
    number = _as_double(value)
    if number is None:
        return False
    checks = {
        "=": lambda x, b: x == b,
        "<": lambda x, b: x < b,
        "<=": lambda x, b: x <= b,
        ">": lambda x, b: x > b,
        ">=": lambda x, b: x >= b,
    }
    return all(checks[terms[i]](number, terms[i + 1]) for i in range(0, len(terms), 2))


def _ignore_case(pattern: str, value: str, mode: str) -> bool:
    """Java semantics: each pattern character (UTF-16 unit) matches its lower- or upper-case form."""
    options = []
    for ch in pattern:
        if ord(ch) > 0xFFFF:
            options.append({ch})
        else:
            options.append({ch.lower(), ch.upper()})

    @cache
    def from_(i: int, pos: int) -> bool:
        if i == len(options):
            return mode == "prefix" or pos == len(value)
        return any(value.startswith(o, pos) and from_(i + 1, pos + len(o)) for o in options[i])

    starts = range(len(value) + 1) if mode == "suffix" else [0]
    return any(from_(0, start) for start in starts)


def _glob(pattern: str, value: str) -> bool:
    """Wildcard match by dynamic programming over (pattern token, value position)."""
    tokens: list[str | None] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            tokens.append(pattern[i + 1])
            i += 2
        elif pattern[i] == "*":
            tokens.append(None)
            i += 1
        else:
            tokens.append(pattern[i])
            i += 1

    @cache
    def go(t: int, v: int) -> bool:
        if t == len(tokens):
            return v == len(value)
        if tokens[t] is None:
            return go(t + 1, v) or (v < len(value) and go(t, v + 1))
        return v < len(value) and value[v] == tokens[t] and go(t + 1, v + 1)

    return go(0, 0)
