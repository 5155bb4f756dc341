"""Checks rendered step parameters against an action's ``schema`` at plan time, without jsonschema.

``clampdown validate`` checks parameters with jsonschema, but a templated value (``{{ finding.type }}``)
is only known once a finding fills it in. Those are checked here, on the Lambda path, where importing
jsonschema would cost ~160 ms of cold start: this covers the subset of JSON Schema that action schemas
use (``SUPPORTED``; a test keeps every registered action inside it) and reports the first problem
with the parameter's path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

SUPPORTED = frozenset(
    {
        "type", "enum", "const", "properties", "additionalProperties", "minProperties", "maxProperties",
        "propertyNames", "items", "minItems", "maxItems", "minLength", "maxLength", "pattern", "minimum",
        "maximum", "default", "description",
    }
)  # fmt: skip

_TYPES: dict[str, Any] = {
    "object": Mapping,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _where(path: tuple[str | int, ...]) -> str:
    text = "params"
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def param_problem(schema: Mapping[str, Any], value: Any, path: tuple[str | int, ...] = ()) -> str | None:
    """The first way ``value`` breaks ``schema``, naming the parameter (``params.level: ...``), or None."""
    where = _where(path)
    expected = schema.get("type")
    if expected is not None:
        names = [expected] if isinstance(expected, str) else list(expected)
        if not any(_is_type(value, name) for name in names):
            return f"{where}: {_show(value)} is not of type {' or '.join(names)}"
    if "const" in schema and value != schema["const"]:
        return f"{where}: {_show(value)} is not {_show(schema['const'])}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where}: {_show(value)} is not one of {', '.join(map(str, schema['enum']))}"
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return f"{where}: {_show(value)} is shorter than {schema['minLength']} characters"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return f"{where}: the value is longer than {schema['maxLength']} characters ({len(value)})"
        if "pattern" in schema and not _regex(schema["pattern"]).search(value):
            return f"{where}: {_show(value)} does not match {schema['pattern']}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{where}: {value} is below the minimum {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{where}: {value} is above the maximum {schema['maximum']}"
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            return f"{where}: needs at least {schema['minItems']} items, has {len(value)}"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"{where}: has {len(value)} items, at most {schema['maxItems']} allowed"
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                problem = param_problem(items, item, (*path, index))
                if problem:
                    return problem
    if isinstance(value, Mapping):
        return _object_problem(schema, value, path)
    return None


def _object_problem(schema: Mapping[str, Any], value: Mapping[str, Any], path: tuple[str | int, ...]) -> str | None:
    where = _where(path)
    if len(value) < schema.get("minProperties", 0):
        return f"{where}: needs at least {schema['minProperties']} entries, has {len(value)}"
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        return f"{where}: has {len(value)} entries, at most {schema['maxProperties']} allowed"
    properties = schema.get("properties") or {}
    extra = schema.get("additionalProperties", True)
    names = schema.get("propertyNames")
    for key, item in value.items():
        if isinstance(names, Mapping):
            problem = param_problem(names, key, (*path, key))
            if problem:
                return f"{_where((*path, key))}: the name {_show(key)} is not allowed ({problem.split(': ', 1)[1]})"
        if key in properties:
            problem = param_problem(properties[key], item, (*path, key))
        elif extra is False:
            allowed = ", ".join(sorted(properties)) or "none"
            problem = f"{_where((*path, key))}: unknown parameter (allowed: {allowed})"
        elif isinstance(extra, Mapping):
            problem = param_problem(extra, item, (*path, key))
        else:
            problem = None
        if problem:
            return problem
    return None


def unsupported_keywords(schema: Any) -> set[str]:
    """Keywords of ``schema`` this checker does not know (kept empty for every action by a test)."""
    found: set[str] = set()
    if not isinstance(schema, Mapping):
        return found
    found |= set(schema) - SUPPORTED
    for name in ("items", "additionalProperties", "propertyNames"):
        found |= unsupported_keywords(schema.get(name))
    for sub in (schema.get("properties") or {}).values():
        found |= unsupported_keywords(sub)
    return found
