"""One compiled pattern: validate once, then match and explain events directly (no index)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.patterns.compiler import Alternative, compile_alternatives
from chalicelib.patterns.errors import InvalidPattern, Path
from chalicelib.patterns.evaluate import alternative_matches
from chalicelib.patterns.explain import Mismatch, explain_alternatives, not_an_object
from chalicelib.patterns.jsontext import load_pattern_text
from chalicelib.patterns.occurrences import PathCollector

PatternSource = Mapping[str, Any] | str | bytes


class CompiledPattern:
    """A validated event pattern. Build it with :func:`compile_pattern`."""

    __slots__ = ("_alternatives", "_collector", "_pattern", "_slots")

    def __init__(self, normalized: dict[str, Any], alternatives: tuple[Alternative, ...]) -> None:
        self._pattern = normalized
        self._alternatives = alternatives
        fields = (test.field for alternative in alternatives for test in alternative)
        self._collector = PathCollector(fields, lazy=True)  # a PatternSet matches with its own
        slots = self._collector.slots
        self._slots = tuple(tuple(slots[test.field] for test in alternative) for alternative in alternatives)

    @property
    def pattern(self) -> dict[str, Any]:
        """The normalized pattern (a fresh copy): duplicate keys resolved, arrays as lists."""
        return _copy_json(self._pattern)

    @property
    def alternatives(self) -> tuple[Alternative, ...]:
        """The ``$or``-expanded conjunctions of field tests, each in event-ruler's field order."""
        return self._alternatives

    @property
    def fields(self) -> frozenset[Path]:
        """The fields this pattern tests: dotted names split at dots, however the pattern spells them."""
        return frozenset(field.path for field in self._collector.slots)

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether EventBridge would deliver ``event`` to a rule with this pattern."""
        if not isinstance(event, Mapping):
            return False
        leaves = self._collector.collect(event)
        return any(
            alternative_matches(alternative, [leaves[slot] for slot in slots])
            for alternative, slots in zip(self._alternatives, self._slots, strict=True)
        )

    def explain(self, event: Mapping[str, Any]) -> Mismatch | None:
        """``None`` if ``event`` matches, else where and why it does not."""
        if not isinstance(event, Mapping):
            return not_an_object(self._pattern, event)
        leaves = self._collector.collect(event)
        per_alternative = [[leaves[slot] for slot in slots] for slots in self._slots]
        return explain_alternatives(self._alternatives, per_alternative, event)

    def __repr__(self) -> str:
        return f"CompiledPattern({self._pattern!r})"


def compile_pattern(pattern: PatternSource | CompiledPattern) -> CompiledPattern:
    """Validate an event pattern (a mapping or its JSON text) and compile it.

    Raises :class:`InvalidPattern` with the offending path and AWS's reason.
    """
    if isinstance(pattern, CompiledPattern):
        return pattern
    if isinstance(pattern, str | bytes | bytearray):
        pattern = load_pattern_text(pattern)
    elif not isinstance(pattern, Mapping):
        raise InvalidPattern((), f"Filter is not an object (got {type(pattern).__name__})")
    normalized, alternatives = compile_alternatives(pattern)
    return CompiledPattern(normalized, alternatives)


def pattern_fields(pattern: PatternSource | CompiledPattern) -> set[Path]:
    """The fields a pattern tests, e.g. ``{("source",), ("detail", "type")}``.

    Each is EventBridge's dotted field name split at dots: ``{"detail": {"state.status": [...]}}`` tests
    ``("detail", "state", "status")``, as ``{"detail": {"state": {"status": [...]}}}`` does.
    """
    return set(compile_pattern(pattern).fields)


def _copy_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copy_json(item) for item in value]
    return value
