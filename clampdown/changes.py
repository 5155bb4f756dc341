"""What a step changed, as short readable lines: a per-field diff of its recorded before/after state.

``describe_changes(before, after)`` compares the two states an action recorded and says, field by
field, what is different: scalars as ``old → new``; IAM/S3/Lambda policy documents as the statements
added or removed (by ``Sid``, with their effect and actions); lists as the items added or removed
(objects matched by their ``id``/``Sid`` and compared inside); nested objects by dotted path. A
field the after-state does not record is not reported (the action only re-reads what it changed).
Every value is shown whole up to a limit, then cut in the middle with ``…``, so lines stay short and
what they show is never rewritten.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

#: Keys that identify an object inside a list (matched across before and after).
IDENTITY_KEYS = ("Sid", "id", "Id", "volume_id", "name", "Name", "arn", "Arn")
#: Keys that best label an object shown as a single value (a group, a URL...).
LABEL_KEYS = ("Sid", "id", "Id", "name", "Name", "FunctionUrl", "arn", "Arn")
MAX_VALUE = 72


def shorten(text: str, limit: int = MAX_VALUE) -> str:
    """``text`` whole if it fits, else its start and end around ``…``."""
    if len(text) <= limit:
        return text
    keep = limit - 1
    return text[: keep - keep // 3] + "…" + text[-(keep // 3) :]


def _as_policy(value: Any) -> Mapping[str, Any] | None:
    """A policy document, also when given as its JSON text (as S3 and Lambda return it); else None."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, Mapping) and isinstance(value.get("Statement"), (list, Mapping)):
        return value
    return None


def _is_policy(value: Any) -> bool:
    return _as_policy(value) is not None


def _statements(document: Any) -> list[Mapping[str, Any]]:
    policy = _as_policy(document)
    if policy is None:
        return []
    found = policy["Statement"]
    return [s for s in (found if isinstance(found, list) else [found]) if isinstance(s, Mapping)]


def _listed(value: Any) -> str:
    items = value if isinstance(value, list) else [value]
    return ",".join(str(v) for v in items)


def describe_statement(statement: Mapping[str, Any]) -> str:
    """``Deny ClampdownDenyAll (* on *, conditional)``: effect, Sid, actions, principal, condition."""
    sid = statement.get("Sid") or "(no Sid)"
    parts = [_listed(statement.get("Action") or statement.get("NotAction") or "?")]
    principal = statement.get("Principal")
    if principal is not None:
        parts.append(f"for {_listed(principal.get('AWS', principal) if isinstance(principal, Mapping) else principal)}")
    if statement.get("Condition"):
        parts.append("conditional")
    return f"{statement.get('Effect', '?')} {sid} ({shorten(', '.join(parts), 48)})"


def _statement_identity(statement: Mapping[str, Any]) -> str:
    return str(statement.get("Sid") or json.dumps(statement, sort_keys=True, default=str))


def _policy_change(before: Any, after: Any) -> str:
    old = {_statement_identity(s): s for s in _statements(before)}
    new = {_statement_identity(s): s for s in _statements(after)}
    removed = [f"- {describe_statement(s)}" for k, s in old.items() if k not in new]
    added = [f"+ {describe_statement(s)}" for k, s in new.items() if k not in old]
    changed = [f"~ {describe_statement(s)}" for k, s in new.items() if k in old and old[k] != s]
    if before is None and added:
        return "; ".join(added) + " (new policy)"
    if after is None and removed:
        return "; ".join(removed) + " (policy deleted)"
    return "; ".join(removed + added + changed) or "rewritten (same statements)"


def label(value: Any) -> str:
    """A value in a few characters: scalars as JSON, objects by their best label."""
    if value is None:
        return "none"
    if isinstance(value, str):
        return shorten(value)
    if isinstance(value, Mapping):
        if _is_policy(value):
            return "policy: " + "; ".join(describe_statement(s) for s in _statements(value))
        if "Effect" in value:
            return describe_statement(value)
        for key in LABEL_KEYS:
            if isinstance(value.get(key), str):
                return shorten(str(value[key]))
        if value and all(isinstance(v, bool) for v in value.values()):
            on = [k for k, v in value.items() if v]
            return f"all {len(on)} on" if len(on) == len(value) else ("on: " + ", ".join(on) if on else "all off")
        return shorten(json.dumps(value, sort_keys=True, default=str))
    if isinstance(value, list):
        return "[" + ", ".join(label(v) for v in value[:4]) + (", …" if len(value) > 4 else "") + "]"
    return json.dumps(value, default=str)


def _identity(item: Any) -> str | None:
    if isinstance(item, Mapping):
        for key in IDENTITY_KEYS:
            if isinstance(item.get(key), str):
                return str(item[key])
    return None


def _list_change(path: str, before: Sequence[Any], after: Sequence[Any]) -> list[str]:
    ids_before = [_identity(i) for i in before]
    ids_after = [_identity(i) for i in after]
    if all(ids_before) and all(ids_after):
        old = dict(zip(ids_before, before, strict=True))
        new = dict(zip(ids_after, after, strict=True))
        lines = [f"{path}: - {label(old[k])}" for k in old if k not in new]
        lines += [f"{path}: + {label(new[k])}" for k in new if k not in old]
        for key in (k for k in new if k in old):
            lines += _changes(f"{path}[{key}]", old[key], new[key])
        return lines
    removed = [label(i) for i in before if i not in after]
    added = [label(i) for i in after if i not in before]
    parts = [f"- {v}" for v in removed] + [f"+ {v}" for v in added]
    return [f"{path}: {', '.join(parts)}"] if parts else []


def _changes(path: str, before: Any, after: Any) -> list[str]:
    if before == after:
        return []
    if _is_policy(before) or _is_policy(after):
        return [f"{path}: {_policy_change(before, after)}"]
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        lines: list[str] = []
        for key in list(before) + [k for k in after if k not in before]:
            if key not in after:
                continue  # not re-read after the change: nothing to compare
            lines += _changes(f"{path}.{key}" if path else str(key), before.get(key), after[key])
        return lines
    if isinstance(before, list) and isinstance(after, list):
        return _list_change(path, before, after)
    return [f"{path}: {label(before)} → {label(after)}"]


def describe_changes(before: Any, after: Any) -> list[str]:
    """One line per changed field (empty when nothing recorded differs, or either state is missing)."""
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return []
    return _changes("", before, after)
