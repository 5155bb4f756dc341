"""Warn about GuardDuty finding types a pattern names but GuardDuty does not generate.

A rename is silent: GuardDuty renamed ``InstanceCredentialExfiltration`` to ``...OutsideAWS`` and a
rule naming the old type simply stopped responding. ``clampdown validate`` checks every exact type,
prefix and wildcard under ``detail.type`` of a GuardDuty pattern against the shipped list of finding
types (``clampdown/data/guardduty_finding_types.json``, with its source and date).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any

Path = tuple[str | int, ...]


def _type_clauses(pattern: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every (path, clause item) under a ``detail.type`` key, ``$or`` branches included."""
    if isinstance(pattern, Mapping):
        for key, value in pattern.items():
            here = (*path, key)
            if key == "$or" and isinstance(value, list):
                for index, branch in enumerate(value):
                    yield from _type_clauses(branch, (*here, index))
            elif key == "type" and path[-1:] == ("detail",) and isinstance(value, list):
                for index, item in enumerate(value):
                    yield (*here, index), item
            else:
                yield from _type_clauses(value, here)


def _mentions_guardduty(pattern: Any) -> bool:
    if isinstance(pattern, Mapping):
        return any(
            (key == "source" and isinstance(value, list) and "aws.guardduty" in value) or _mentions_guardduty(value)
            for key, value in pattern.items()
        )
    if isinstance(pattern, list):
        return any(_mentions_guardduty(item) for item in pattern)
    return False


def guardduty_type_warnings(pattern: Mapping[str, Any]) -> list[tuple[Path, str]]:
    if not _mentions_guardduty(pattern):
        return []
    from clampdown.data.finding_types import guardduty_finding_types

    known = guardduty_finding_types()
    active = set(known.names())
    retired = {t.name: t for t in known.retired}
    every = active | set(retired)
    where = f"(list taken {known.source.get('taken', '?')} from {known.source.get('url', 'the GuardDuty User Guide')})"
    warnings: list[tuple[Path, str]] = []
    for path, item in _type_clauses(pattern):
        if isinstance(item, str):
            if item in active:
                continue
            old = retired.get(item)
            if old is not None:
                now = f" to {', '.join(old.renamed_to)}" if old.renamed_to else ""
                warnings.append(
                    (path, f"GuardDuty retired {item!r}{now}: new findings will not match; match the family by prefix")
                )
            else:
                warnings.append((path, f"{item!r} is not a known GuardDuty finding type {where}"))
        elif isinstance(item, Mapping) and isinstance(item.get("prefix"), str):
            prefix = item["prefix"]
            if not any(name.startswith(prefix) for name in every):
                warnings.append((path, f"no known GuardDuty finding type starts with {prefix!r} {where}"))
        elif isinstance(item, Mapping) and isinstance(item.get("wildcard"), str):
            glob = item["wildcard"].replace("[", "[[]")
            if not any(fnmatchcase(name, glob) for name in every):
                warnings.append((path, f"no known GuardDuty finding type matches {item['wildcard']!r} {where}"))
    return warnings
