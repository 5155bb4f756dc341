"""Field names as EventBridge sees them: the keys on the way to a value, joined with ".".

event-ruler (``Path``, ``JsonRuleCompiler``, ``Event``) flattens the pattern and the event alike by joining
keys with a dot, and compares the joined names. So ``{"a.b": ...}``, ``{"a": {"b": ...}}`` and
``{"a.b": {"c": ...}}`` vs ``{"a": {"b.c": ...}}`` name the same fields, in patterns and in events, and an
event that spells a field both ways has the values of both. Nothing is escaped or normalized: a key that
starts or ends with a dot, or holds consecutive dots, just contributes empty steps (``{"a.": {"b": ...}}``
is ``a..b``, as are ``{"a": {"": {"b": ...}}}`` and ``{"a": {".b": ...}}``).

A field is held as its dotted name split at every dot (a :data:`Path`), e.g. ``("detail", "state",
"status")`` whichever way it is spelled; ``".".join(path)`` is event-ruler's name for it.

event-ruler has two quirks with empty steps, which we follow:

* Pattern side: ``JsonRuleCompiler`` names a clause with ``Path.extendedName``, which adds no dot after a
  prefix that joins to ``""``. So a pattern's ``{"": {"a": [1]}}`` names the field ``a`` (not ``.a``, as the
  event ``{"": {"a": 1}}`` does), and ``{"": {"": [1]}}`` names ``""``; deeper empty keys are joined as
  usual (``{"": {"": {"a": [1]}}}`` is ``..a``). See :func:`pattern_field_path`.
* Event side: ``GenericMachine.isFieldStepUsed``, applied to every key while reading an event, skips a key
  unless it is a *step* of some field of the rule, or holds a dot and each of its steps is one (steps: names
  split at dots as Java's ``String.split`` does, which drops trailing empty strings). For keys that lead to
  a field of the rule the one consequence is for an event key that is exactly ``""``: it is followed only
  if some field of the rule has an empty step before a non-empty one (``".a"``, ``"a..b"``) or is ``""``
  itself. So the field ``a.`` (``{"a.": [1]}`` or ``{"a": {"": [1]}}``) matches the event ``{"a.": 1}`` but
  not ``{"a": {"": 1}}``, unless the same pattern also names e.g. ``.x``. We judge this per pattern, as for
  a rule alone in its machine (``TestEventPattern``): in a machine shared by several rules, event-ruler
  would also follow the key when *another* rule names such a field. See :class:`FieldKey`.

Both were checked against event-ruler's code (one machine per pattern), with the reference interpreter
of the tests and thousands of generated patterns and events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import partial
from typing import NamedTuple

from chalicelib.patterns.errors import Path


def pattern_field_path(keys: Sequence[str]) -> Path:
    """The field a pattern's clause at ``keys`` names (the keys of the objects around it, then its own):
    ``("detail", "state.status")`` -> ``("detail", "state", "status")``.

    The keys are joined with dots, except that, like ``Path.extendedName``, no dot follows a prefix that
    joins to ``""``: ``("", "a")`` names ``a``.
    """
    name = keys[1] if len(keys) == 2 and not keys[0] else ".".join(keys)  # the prefix joins to "" only then
    return tuple(name.split("."))


def java_steps(name: str) -> list[str]:
    """``name.split("\\\\.")`` in Java: trailing empty strings dropped (``"a."`` -> ``["a"]``, ``"."`` -> ``[]``)."""
    if "." not in name:
        return [name]
    steps = name.split(".")
    while steps and not steps[-1]:
        steps.pop()
    return steps


def follows_empty_keys(paths: Iterable[Path]) -> bool:
    """Whether event-ruler reads an event key ``""`` for a rule whose fields are ``paths``."""
    return any("" in java_steps(".".join(path)) for path in paths)


class FieldKey(NamedTuple):
    """A field as the event walk sees it: its path, and whether an event key ``""`` is skipped on the way.

    ``skips_empty_keys`` is only ever true for a path with an empty step (the others cannot be reached
    through an empty key anyway), so ordinary fields of different patterns share one key.
    """

    path: Path
    skips_empty_keys: bool


def field_key(path: Path, pattern_follows_empty_keys: bool) -> FieldKey:
    return _new_field_key((path, "" in path and not pattern_follows_empty_keys))


_new_field_key = partial(tuple.__new__, FieldKey)  # FieldKey(...) without the Python-level __new__


def format_field(path: Iterable[str]) -> str:
    """The dotted name, e.g. ``detail.state.status``; JSON-quoted if it is empty or has spaces, quotes or
    unprintable characters."""
    name = ".".join(path)
    if name and all(ch.isprintable() and not ch.isspace() and ch != '"' for ch in name):
        return name
    return json.dumps(name, ensure_ascii=False)
