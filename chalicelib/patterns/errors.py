"""Errors raised for bad patterns, and how field paths are shown in messages."""

from __future__ import annotations

import json
from collections.abc import Iterable

Path = tuple[str, ...]
#: Where a clause is written in a pattern: its keys, with ``"$or", i`` for the i-th alternative of an ``$or``.
Location = tuple[str | int, ...]


def format_path(path: Iterable[str | int]) -> str:
    """``detail.severity``, ``$or[1].detail.severity``; a key that would be ambiguous joined with dots is
    shown as ``["a.b"]``."""
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        elif _plain(key):
            out += f".{key}" if out else key
        else:
            out += f"[{json.dumps(key, ensure_ascii=False)}]"
    return out


def _plain(key: str) -> bool:
    return bool(key) and all(ch.isprintable() and not ch.isspace() and ch not in '.[]"' for ch in key)


class InvalidPattern(ValueError):
    """An event pattern that EventBridge would reject (or that Clampdown cannot run safely).

    ``path`` is where the offending clause is written (``()`` for the whole pattern): the keys as
    written, with ``"$or", i`` for the i-th alternative of an ``$or`` (``("$or", 1, "detail", "severity")``,
    shown ``$or[1].detail.severity``), so that it points into the document the pattern came from. ``reason``
    is phrased like the reason AWS gives, and ``name`` is the pattern's name inside a ``PatternSet``.
    """

    def __init__(self, path: Iterable[str | int], reason: str, name: str | None = None) -> None:
        self.path: Location = tuple(path)
        self.reason = reason
        self.name = name
        subject = "Event pattern" if name is None else f"Event pattern {json.dumps(name, ensure_ascii=False)}"
        where = f" at {format_path(self.path)}" if self.path else ""
        super().__init__(f"{subject} is not valid{where}: {reason}")

    def __reduce__(self) -> tuple[type[InvalidPattern], tuple[Location, str, str | None]]:
        return (InvalidPattern, (self.path, self.reason, self.name))


class UnknownPatternName(KeyError):
    """``PatternSet.pattern``/``explain`` was asked for a name the set does not hold."""

    def __init__(self, name: object, known: Iterable[str]) -> None:
        self.name = name
        shown = ", ".join(sorted(known)[:10])
        super().__init__(f"no pattern named {name!r} in this PatternSet (known: {shown or 'none'})")

    def __str__(self) -> str:
        return str(self.args[0])
