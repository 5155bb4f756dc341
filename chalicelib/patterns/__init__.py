"""The Amazon EventBridge event-pattern language: validate, match, index and explain.

A playbook's ``match:`` is exactly what an EventBridge rule accepts, with EventBridge's semantics
(those of aws/event-ruler, which EventBridge runs), so the same pattern can be installed as a rule.
Pure Python, no I/O, no third-party imports.

Public API (stable):

``compile_pattern(pattern) -> CompiledPattern``
    ``pattern`` is a mapping or JSON text (duplicate keys: the last one wins). Raises
    ``InvalidPattern(ValueError)`` with ``.path`` (the keys as written in the pattern, e.g.
    ``("detail", "severity")``), ``.reason`` (AWS's wording where AWS has one) and a message naming both.
``CompiledPattern``
    ``.matches(event) -> bool``; ``.explain(event) -> Mismatch | None`` (``None`` when it matches);
    ``.pattern`` (the normalized pattern, a fresh dict); ``.fields`` (the fields tested, as paths).
``PatternSet(named_patterns)``
    Compiles a mapping of name -> pattern into one index. ``.match(event) -> list[str]`` (names of
    all matching patterns, in insertion order), ``.explain(name, event)``, ``.names``, ``len()``,
    ``.pattern(name) -> dict``, ``.compiled(name)``. An invalid pattern raises ``InvalidPattern``
    whose ``.name`` is the pattern's name; an unknown name raises ``UnknownPatternName(KeyError)``.
``Mismatch``
    Frozen dataclass: ``path`` (the field), ``clause`` (the JSON clause that failed, e.g.
    ``[{"prefix": "UnauthorizedAccess:"}]``), ``actual`` (the event's value there, or ``MISSING``),
    ``reason``; ``str()`` gives ``detail.type: value "Recon:EC2/Portscan" does not match [...]``.
    For ``$or`` it reports the alternative closest to matching.
``pattern_fields(pattern) -> set[tuple[str, ...]]``
    The fields a pattern tests (for generating EventBridge rules).

A field path is EventBridge's dotted field name split at dots: ``("detail", "state", "status")`` is the
field ``detail.state.status`` (``".".join(path)``), whichever way it is spelled.

Semantics worth knowing:

* Keys are joined with dots, in patterns and in events, as EventBridge does: ``{"a.b": ...}`` and
  ``{"a": {"b": ...}}`` are the same field, an event that has both spellings offers the values of both,
  and when a pattern spells one field twice the later clause wins. Keys with leading, trailing or
  consecutive dots just add empty steps, with event-ruler's two quirks (details in ``fieldnames.py``): an
  event key that is exactly ``""`` is followed only when some field of the pattern has an empty step
  before a non-empty one, and a pattern's outermost ``""`` key adds no dot (``{"": {"a": [1]}}`` tests
  ``a``). Consequence: an event key holding dots can stand in for nested keys.
* Matching is type-aware (``"5"`` is not ``5``; ``true`` is not ``1``); numbers compare numerically
  when exactly representable as doubles; a string that is an IP address literal matches other
  spellings of the same address; ``exists`` concerns leaf values only.
* Arrays in the event match if any element matches; fields matched under one array must come from
  the same element (event-ruler's array consistency), and ``exists: false`` is then judged per element.
* Event strings are data: they are never evaluated or turned into regular expressions.
* Limits beyond AWS's: objects nested at most 64 deep, ``$or`` expanding to at most 1024
  alternatives; wildcard complexity is capped at 10 (AWS publishes no number; see ``text.py``).

Cost: ``PatternSet.match`` collects the event's values at the paths the patterns name; per value it does
a few hash lookups and bisections per operator kind used on that path (ranges: one bisection; prefixes
and suffixes: one lookup per distinct length sharing the value's first or last character; wildcards: one
scan of the value for their inner pieces, then a check of the candidates only), and ANDs bitmasks holding
a bit per ``$or`` alternative. The lookups grow with the number of distinct paths and operators, not of
patterns. What still grows with the patterns is small: the width of the bitmasks (a machine word per 64
alternatives), the candidates that must be confirmed (alternatives whose fields sit in arrays of objects;
wildcards sharing the piece a value holds), the names returned, and tests with several ``anything-but``
clauses, which are evaluated directly (``benchmarks/bench_patterns.py``).
"""

from chalicelib.patterns.compiled import CompiledPattern, compile_pattern, pattern_fields
from chalicelib.patterns.errors import InvalidPattern, UnknownPatternName
from chalicelib.patterns.explain import MISSING, Mismatch
from chalicelib.patterns.index import PatternSet

__all__ = [
    "MISSING",
    "CompiledPattern",
    "InvalidPattern",
    "Mismatch",
    "PatternSet",
    "UnknownPatternName",
    "compile_pattern",
    "pattern_fields",
]
