"""Errors raised for bad patterns, and how field paths are shown in messages."""

from __future__ import annotations

import json
from collections.abc import Iterable

Path = tuple[str, ...]


def format_path(path: Iterable[str]) -> str:
    """``detail.severity``; a key that would be ambiguous joined with dots is shown as ``["a.b"]``."""
    out = ""
    for key in path:
        if _plain(key):
            out += f".{key}" if out else key
        else:
            out += f"[{json.dumps(key, ensure_ascii=False)}]"
    return out


def _plain(key: str) -> bool:
    return bool(key) and all(ch.isprintable() and not ch.isspace() and ch not in '.[]"' for ch in key)


class InvalidPattern(ValueError):
    """An event pattern that EventBridge would reject (or that Clampdown cannot run safely).

    ``path`` is the field path of the offending clause (``()`` for the whole pattern), ``reason``
    is phrased like the reason AWS gives, and ``name`` is the pattern's name inside a ``PatternSet``.
    """

    def __init__(self, path: Iterable[str], reason: str, name: str | None = None) -> None:
        self.path: Path = tuple(path)
        self.reason = reason
        self.name = name
        subject = "Event pattern" if name is None else f"Event pattern {json.dumps(name, ensure_ascii=False)}"
        where = f" at {format_path(self.path)}" if self.path else ""
        super().__init__(f"{subject} is not valid{where}: {reason}")

    def __reduce__(self) -> tuple[type[InvalidPattern], tuple[Path, str, str | None]]:
        return (InvalidPattern, (self.path, self.reason, self.name))


class UnknownPatternName(KeyError):
    """``PatternSet.pattern``/``explain`` was asked for a name the set does not hold."""

    def __init__(self, name: object, known: Iterable[str]) -> None:
        self.name = name
        shown = ", ".join(sorted(known)[:10])
        super().__init__(f"no pattern named {name!r} in this PatternSet (known: {shown or 'none'})")

    def __str__(self) -> str:
        return str(self.args[0])
