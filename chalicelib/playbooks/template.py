"""The safe template syntax of step parameters: ``{{ finding.actor.source_ip }}``.

A template only *reads* values: a path from a fixed set of roots (``finding``, ``resource``,
``event``, ``playbook``, ``incident``, ``now``) through keys and list indexes, then optional
filters from a fixed list. Nothing is ever evaluated, so a value taken from an attacker-controlled
finding cannot become code, and an unknown root or filter is a validation error.

A parameter that is exactly one template keeps the value's type (a list stays a list); a template
inside other text is rendered as text.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

ROOTS = frozenset({"finding", "resource", "event", "playbook", "incident", "now"})
_MISSING: Any = object()

_TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INDEX = re.compile(r"\[\s*(?:(-?\d+)|'([^'\\]*)'|\"([^\"\\]*)\")\s*\]")
_FILTER = re.compile(r"\s*([a-z_]+)\s*(?:\((.*)\))?\s*$", re.DOTALL)


class TemplateError(ValueError):
    """A template that cannot be parsed (at validation time)."""


class UnresolvedTemplate(LookupError):
    """A template whose path is absent from this finding (at plan time)."""

    def __init__(self, expression: str, missing_at: str) -> None:
        self.expression = expression
        self.missing_at = missing_at
        super().__init__(f"{{{{ {expression} }}}}: the finding has no {missing_at}")


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def _join(value: Any, sep: Any = ", ") -> Any:
    if isinstance(value, list):
        return str(sep).join(_to_text(v) for v in value)
    return value


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else _MISSING
    return value


_FILTERS: dict[str, Callable[..., Any]] = {
    "lower": lambda v: v.lower() if isinstance(v, str) else v,
    "upper": lambda v: v.upper() if isinstance(v, str) else v,
    "json": lambda v: json.dumps(v, sort_keys=True, default=str),
    "join": _join,
    "first": _first,
    "length": lambda v: len(v) if isinstance(v, list | dict | str) else 0,
}


@dataclass(frozen=True)
class _Expression:
    text: str
    root: str
    steps: tuple[str | int, ...]
    filters: tuple[tuple[str, tuple[Any, ...]], ...]

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        value = scope.get(self.root, _MISSING)
        walked = self.root
        for step in self.steps:
            if value is _MISSING:
                break
            value = _step(value, step)
            walked += f"[{step}]" if isinstance(step, int) else f".{step}"
        default = _MISSING
        for name, args in self.filters:
            if name == "default":
                default = args[0] if args else ""
                continue
            if value is not _MISSING:
                value = _FILTERS[name](value, *args)
        if value is _MISSING or value is None:
            if default is not _MISSING:
                return default
            if value is None:
                return None
            raise UnresolvedTemplate(self.text, walked)
        return value


def _step(value: Any, step: str | int) -> Any:
    if isinstance(step, int):
        if isinstance(value, list | tuple) and -len(value) <= step < len(value):
            return value[step]
        return _MISSING
    if isinstance(value, Mapping):
        return value.get(step, _MISSING)
    return _MISSING


def _parse_path(text: str, expression: str) -> tuple[str, tuple[str | int, ...]]:
    match = _NAME.match(text)
    if not match:
        raise TemplateError(f"{{{{ {expression} }}}}: expected a name such as finding.type")
    root = match.group(0)
    if root not in ROOTS:
        raise TemplateError(f"{{{{ {expression} }}}}: unknown root {root!r} (use one of {', '.join(sorted(ROOTS))})")
    steps: list[str | int] = []
    pos = match.end()
    while pos < len(text):
        if text[pos] == ".":
            name = _NAME.match(text, pos + 1)
            if not name:
                raise TemplateError(f"{{{{ {expression} }}}}: expected a key after '.' at {text[pos:]!r}")
            steps.append(name.group(0))
            pos = name.end()
        elif text[pos] == "[":
            index = _INDEX.match(text, pos)
            if not index:
                raise TemplateError(f"{{{{ {expression} }}}}: bad index at {text[pos:]!r}")
            number, single, double = index.groups()
            steps.append(int(number) if number is not None else (single if single is not None else double))
            pos = index.end()
        else:
            raise TemplateError(f"{{{{ {expression} }}}}: unexpected {text[pos:]!r}")
    return root, tuple(steps)


#: How many arguments each filter takes (at most).
_ARITY = {"default": 1, "join": 1, "lower": 0, "upper": 0, "json": 0, "first": 0, "length": 0}


def _parse_filter(text: str, expression: str) -> tuple[str, tuple[Any, ...]]:
    match = _FILTER.match(text)
    known = sorted({*_FILTERS, "default"})
    if not match or match.group(1) not in known:
        raise TemplateError(f"{{{{ {expression} }}}}: unknown filter {text.strip()!r} (known: {', '.join(known)})")
    name, raw_args = match.groups()
    args: tuple[Any, ...] = ()
    if raw_args is not None and raw_args.strip():
        try:
            # Arguments are JSON literals, never expressions.
            parsed = json.loads(f"[{raw_args}]")
        except (ValueError, RecursionError):
            raise TemplateError(
                f'{{{{ {expression} }}}}: filter {name} takes JSON literals, e.g. default("n/a")'
            ) from None
        args = tuple(parsed)
    if len(args) > _ARITY[name]:
        most = _ARITY[name]
        takes = "no arguments" if most == 0 else f"at most {most} argument{'s' if most > 1 else ''}"
        raise TemplateError(f"{{{{ {expression} }}}}: filter {name} takes {takes}, got {len(args)}")
    return name, args


def _parse_expression(body: str) -> _Expression:
    expression = body.strip()
    # Split on pipes that are outside of quotes and parentheses.
    parts, depth, quote, current = [], 0, "", ""
    for char in expression:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    root, steps = _parse_path(parts[0].strip(), expression)
    filters = tuple(_parse_filter(part, expression) for part in parts[1:])
    return _Expression(expression, root, steps, filters)


@dataclass(frozen=True)
class Template:
    """A parsed string that may contain ``{{ ... }}`` expressions."""

    source: str
    pieces: tuple[str | _Expression, ...]

    @property
    def is_constant(self) -> bool:
        return all(isinstance(p, str) for p in self.pieces)

    @property
    def roots(self) -> frozenset[str]:
        return frozenset(p.root for p in self.pieces if isinstance(p, _Expression))

    def render(self, scope: Mapping[str, Any]) -> Any:
        if len(self.pieces) == 1 and isinstance(self.pieces[0], _Expression):
            return self.pieces[0].evaluate(scope)
        return "".join(p if isinstance(p, str) else _to_text(p.evaluate(scope)) for p in self.pieces)


@functools.lru_cache(maxsize=4096)
def parse_template(text: str) -> Template:
    """Parse a string; raise :class:`TemplateError` naming the bad expression."""
    pieces: list[str | _Expression] = []
    pos = 0
    for match in _TEMPLATE.finditer(text):
        if match.start() > pos:
            pieces.append(text[pos : match.start()])
        pieces.append(_parse_expression(match.group(1)))
        pos = match.end()
    if pos < len(text):
        pieces.append(text[pos:])
    if "{{" in "".join(p for p in pieces if isinstance(p, str)):
        raise TemplateError(f"{text!r}: '{{{{' without a matching '}}}}'")
    return Template(text, tuple(pieces) or ("",))


def has_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def contains_template(value: Any) -> bool:
    """Whether a parameter structure holds a template anywhere (its rendered value needs checking)."""
    if isinstance(value, str):
        return has_template(value)
    if isinstance(value, Mapping):
        return any(contains_template(item) for item in value.values())
    if isinstance(value, list):
        return any(contains_template(item) for item in value)
    return False


def check_templates(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """Every template error inside a parameter structure, with its path."""
    errors: list[tuple[tuple[str | int, ...], str]] = []
    if isinstance(value, str):
        if has_template(value):
            try:
                parse_template(value)
            except TemplateError as exc:
                errors.append((path, str(exc)))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            errors.extend(check_templates(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            errors.extend(check_templates(item, (*path, index)))
    return errors


def render_value(value: Any, scope: Mapping[str, Any]) -> Any:
    """Resolve every template inside a parameter structure (raises :class:`UnresolvedTemplate`)."""
    if isinstance(value, str):
        return parse_template(value).render(scope) if has_template(value) else value
    if isinstance(value, Mapping):
        return {key: render_value(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, scope) for item in value]
    return value
