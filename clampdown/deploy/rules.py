"""EventBridge rules from the enabled playbooks' ``match:`` patterns.

Every rule pins ``source`` and ``detail-type`` to exact values: ``aws.*`` sources cannot be sent
with ``events:PutEvents``, so a pinned rule cannot be fed forged events, while a rule on
``detail-type`` alone matches custom events anyone with ``PutEvents`` can send. A pattern that does
not pin both gets the missing one filled from what it implies (a known detail-type's source, a
CloudTrail ``eventSource``'s service), or generation fails naming the playbook.

Patterns are merged without ever accepting more than the playbooks do: identical patterns become
one, a pattern another one covers is dropped, patterns differing in one field's values get that
field's values united, and what remains of overlapping playbooks becomes one rule with ``$or`` (one
rule per overlap: EventBridge delivers an event once per matching rule, so overlapping rules would
queue duplicates). ``clampdown.*`` sources are never given a rule: Clampdown's own commands reach
the queue directly, and a rule would let ``PutEvents`` forge them. Every rule is validated with
:mod:`chalicelib.patterns`, the engine the responder matches with.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from chalicelib.patterns import CompiledPattern, InvalidPattern, compile_pattern
from chalicelib.playbooks.library import Library

#: EventBridge quotas: characters of one rule's event pattern; rules per event bus (default).
MAX_PATTERN_CHARS = 4096
MAX_RULES = 300
#: Detail-types only one AWS source sends.
DETAIL_TYPE_SOURCES: Mapping[str, str] = {
    "GuardDuty Finding": "aws.guardduty",
    "Security Hub Findings - Imported": "aws.securityhub",
    "Security Hub Findings - Custom Action": "aws.securityhub",
    "Security Hub Insight Results": "aws.securityhub",
    "Findings Imported V2": "aws.securityhub",
    "Inspector2 Finding": "aws.inspector2",
    "Macie Finding": "aws.macie",
    "Access Analyzer Finding": "aws.access-analyzer",
    "AWS Console Sign In via CloudTrail": "aws.signin",
}
#: Detail-types of CloudTrail events, whose source follows from ``detail.eventSource``.
CLOUDTRAIL_DETAIL_TYPES = frozenset(
    {"AWS API Call via CloudTrail", "AWS Service Event via CloudTrail", "AWS Console Action via CloudTrail"}
)
API_CALL = "AWS API Call via CloudTrail"
#: eventSource → EventBridge source where it is not ``aws.`` + the service's host name.
EVENT_SOURCE_EXCEPTIONS: Mapping[str, str] = {"monitoring.amazonaws.com": "aws.cloudwatch"}
#: The finding detail-types of sources that send findings (filled in when a pattern names only the source).
SOURCE_DETAIL_TYPES: Mapping[str, tuple[str, ...]] = {
    "aws.guardduty": ("GuardDuty Finding",),
    "aws.securityhub": ("Findings Imported V2", "Security Hub Findings - Imported"),
    "aws.inspector2": ("Inspector2 Finding",),
    "aws.macie": ("Macie Finding",),
    "aws.access-analyzer": ("Access Analyzer Finding",),
    "aws.signin": ("AWS Console Sign In via CloudTrail",),
}
#: Sources of Clampdown's own messages, sent to the queue directly (never through EventBridge).
DIRECT_SOURCE_PREFIX = "clampdown."
ENVELOPE = ("source", "detail-type")
OR = "$or"

Path = tuple[str, ...]


class RuleError(ValueError):
    """A playbook pattern that cannot become a safe rule; ``playbook`` names it (None: the rule set)."""

    def __init__(self, playbook: str | None, message: str) -> None:
        self.playbook = playbook
        super().__init__(f"playbook {playbook}: {message}" if playbook else message)


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: dict[str, Any]
    playbooks: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The pattern as EventBridge stores it (its length counts against the 4096-character quota)."""
        return json.dumps(self.pattern)

    def compiled(self) -> CompiledPattern:
        return compile_pattern(self.pattern)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "playbooks": list(self.playbooks),
            "notes": list(self.notes),
            "pattern": self.pattern,
        }


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    #: Playbooks that get no rule, and why (e.g. their events reach the queue directly).
    skipped: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"rules": [r.to_dict() for r in self.rules], "skipped": dict(self.skipped)}


# -- pinning ----------------------------------------------------------------------------------------
def _exact_strings(clause: Any) -> TypeGuard[list[str]]:
    return isinstance(clause, list) and bool(clause) and all(isinstance(v, str) for v in clause)


def _sources_for(playbook: str, detail_types: Sequence[str], pattern: Mapping[str, Any]) -> list[str]:
    sources: list[str] = []
    for detail_type in detail_types:
        if detail_type in DETAIL_TYPE_SOURCES:
            sources.append(DETAIL_TYPE_SOURCES[detail_type])
            continue
        event_sources = (
            (pattern.get("detail") or {}).get("eventSource") if detail_type in CLOUDTRAIL_DETAIL_TYPES else None
        )
        if not _exact_strings(event_sources):
            raise RuleError(
                playbook,
                f"the pattern does not pin `source`, and detail-type {detail_type!r} does not tell which source "
                "sends it: add `source: [...]` (a rule without a pinned source accepts forged custom events)",
            )
        for event_source in event_sources:
            host = event_source.removesuffix(".amazonaws.com")
            if host == event_source:
                raise RuleError(playbook, f"cannot derive an EventBridge source from eventSource {event_source!r}")
            sources.append(EVENT_SOURCE_EXCEPTIONS.get(event_source, f"aws.{host}"))
    return sorted(set(sources))


def _detail_types_for(playbook: str, sources: Sequence[str], pattern: Mapping[str, Any]) -> list[str]:
    detail = pattern.get("detail") or {}
    detail_types: list[str] = []
    for source in sources:
        if source in SOURCE_DETAIL_TYPES:
            detail_types.extend(SOURCE_DETAIL_TYPES[source])
        elif source.startswith("aws.") and ("eventSource" in detail or "eventName" in detail):
            detail_types.append(API_CALL)
        else:
            raise RuleError(
                playbook,
                f"the pattern does not pin `detail-type`, and source {source!r} does not imply one: "
                "add `detail-type: [...]`",
            )
    return sorted(set(detail_types))


def pin(
    playbook: str, match: Mapping[str, Any], custom_sources: Iterable[str] = ()
) -> tuple[dict[str, Any] | None, list[str]]:
    """The playbook's pattern with ``source`` and ``detail-type`` pinned, and notes on what was filled in.

    ``None`` (with the reason as the last note) when none of its sources should get a rule.
    """
    try:
        pattern = compile_pattern(match).pattern
    except InvalidPattern as exc:
        raise RuleError(playbook, str(exc)) from None
    for key in ENVELOPE:
        if key in pattern and not _exact_strings(pattern[key]):
            raise RuleError(
                playbook,
                f"`{key}` must list exact values to be pinned, not {json.dumps(pattern[key])}",
            )
    if any(key in alternative for alternative in pattern.get(OR, ()) for key in ENVELOPE):
        raise RuleError(playbook, "pin `source` and `detail-type` at the top level of the pattern, not inside $or")
    notes: list[str] = []
    if "source" not in pattern:
        if "detail-type" not in pattern:
            raise RuleError(
                playbook,
                "the pattern pins neither `source` nor `detail-type`: add both "
                "(e.g. source: [aws.guardduty], detail-type: [GuardDuty Finding])",
            )
        pattern["source"] = _sources_for(playbook, pattern["detail-type"], pattern)
        notes.append(f"{playbook}: source {pattern['source']} inferred from its detail-type")
    if "detail-type" not in pattern:
        pattern["detail-type"] = _detail_types_for(playbook, pattern["source"], pattern)
        notes.append(f"{playbook}: detail-type {pattern['detail-type']} filled in from its source")
    allowed = set(custom_sources)
    kept = []
    for source in pattern["source"]:
        if source.startswith(DIRECT_SOURCE_PREFIX):
            notes.append(f"{playbook}: no rule for {source} (Clampdown sends those events to the queue directly)")
        elif source.startswith("aws.") or source in allowed:
            kept.append(source)
        else:
            notes.append(
                f"{playbook}: no rule for {source} (not in CLAMPDOWN_CUSTOM_SOURCES; the responder refuses it)"
            )
    if not kept:
        return None, notes
    pattern["source"] = kept
    ordered = {key: pattern[key] for key in ENVELOPE}
    ordered.update((k, v) for k, v in pattern.items() if k not in ENVELOPE)
    return ordered, notes


# -- merging (each step keeps exactly the union of what the merged patterns accept) ---------------
def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _flatten(pattern: Mapping[str, Any], prefix: Path = ()) -> dict[Path, Any]:
    """Field path → clause; a ``$or`` is one opaque clause at its path."""
    flat: dict[Path, Any] = {}
    for key, value in pattern.items():
        if key != OR and isinstance(value, Mapping):
            flat.update(_flatten(value, (*prefix, key)))
        else:
            flat[(*prefix, key)] = value
    return flat


def _unflatten(flat: Mapping[Path, Any]) -> dict[str, Any]:
    pattern: dict[str, Any] = {}
    for path, value in flat.items():
        node = pattern
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return pattern


def covers(wider: Mapping[str, Any], narrower: Mapping[str, Any]) -> bool:
    """True when every event ``narrower`` matches is matched by ``wider`` (a sound syntactic check:
    ``wider`` tests a subset of the fields, each with a superset of the values)."""
    flat_wide, flat_narrow = _flatten(wider), _flatten(narrower)
    for path, clause in flat_wide.items():
        if path not in flat_narrow:
            return False
        other = flat_narrow[path]
        if path[-1] == OR:
            if _canon(clause) != _canon(other):
                return False
        elif not {_canon(v) for v in other} <= {_canon(v) for v in clause}:
            return False
    return True


def _united(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any] | None:
    """One pattern accepting exactly what ``a`` or ``b`` accepts, when they differ in one field's values."""
    flat_a, flat_b = _flatten(a), _flatten(b)
    if flat_a.keys() != flat_b.keys():
        return None
    differing = [p for p in flat_a if _canon(flat_a[p]) != _canon(flat_b[p])]
    if len(differing) != 1 or differing[0][-1] == OR:
        return None
    path = differing[0]
    seen = {_canon(v) for v in flat_a[path]}
    merged = dict(flat_a)
    merged[path] = list(flat_a[path]) + [v for v in flat_b[path] if _canon(v) not in seen]
    result = _unflatten(merged)
    try:
        compile_pattern(result)
    except InvalidPattern:
        return None  # e.g. a clause EventBridge does not allow combined: keep them apart
    return result


def simplify(items: list[tuple[list[str], dict[str, Any]]]) -> list[tuple[list[str], dict[str, Any]]]:
    """Merge (playbooks, pattern) pairs: duplicates, covered patterns, one-field differences."""
    items = [(list(names), pattern) for names, pattern in items]
    changed = True
    while changed:
        changed = False
        for i, j in ((i, j) for i in range(len(items)) for j in range(len(items)) if i != j):
            (names_i, a), (names_j, b) = items[i], items[j]
            merged = a if covers(a, b) else (_united(a, b) if i < j else None)
            if merged is not None:
                items[i] = (names_i + [n for n in names_j if n not in names_i], merged)
                del items[j]
                changed = True
                break
    return items


def _rule_pattern(patterns: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One pattern for patterns that overlap: the envelope factored out when they share it."""
    if len(patterns) == 1:
        return patterns[0]
    envelopes = {_canon({k: sorted(p[k]) for k in ENVELOPE}) for p in patterns}
    if len(envelopes) > 1:
        return {OR: list(patterns)}
    alternatives: list[dict[str, Any]] = []
    for pattern in patterns:
        residual = {k: v for k, v in pattern.items() if k not in ENVELOPE}
        alternatives.extend(residual[OR] if list(residual) == [OR] else [residual])
    return {"source": patterns[0]["source"], "detail-type": patterns[0]["detail-type"], OR: alternatives}


def _components(pinned: list[tuple[str, dict[str, Any]]]) -> list[list[int]]:
    """Groups of patterns whose (source, detail-type) overlap: an event could match several."""
    parent = list(range(len(pinned)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (_, a) in enumerate(pinned):
        for j in range(i):
            b = pinned[j][1]
            if set(a["source"]) & set(b["source"]) and set(a["detail-type"]) & set(b["detail-type"]):
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(pinned)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


# -- naming, size, validation -----------------------------------------------------------------------
def _rule_name(patterns: Sequence[Mapping[str, Any]], part: int) -> str:
    sources = sorted({s for p in patterns for s in p["source"]})
    detail_types = sorted({d for p in patterns for d in p["detail-type"]})
    digest = hashlib.sha256(_canon([sources, detail_types]).encode()).hexdigest()[:8]
    service = re.sub(r"[^a-z0-9-]", "-", sources[0].removeprefix("aws.").lower())[:24]
    return f"{service}-{digest}" + (f"-{part}" if part else "")


def _chunks(alternatives: list[dict[str, Any]], envelope: Mapping[str, Any]) -> list[list[dict[str, Any]]]:
    """Split ``$or`` alternatives so that each rule's pattern (envelope + ``$or``) fits the quota."""
    chunks: list[list[dict[str, Any]]] = [[]]
    for alternative in alternatives:
        if chunks[-1] and len(json.dumps({**envelope, OR: [*chunks[-1], alternative]})) > MAX_PATTERN_CHARS:
            chunks.append([])
        chunks[-1].append(alternative)
    return chunks


def check_rule(rule: Rule) -> CompiledPattern:
    """Validate a rule: a valid pattern within the quota, every alternative pinned to exact values."""
    try:
        compiled = rule.compiled()
    except InvalidPattern as exc:
        raise RuleError(None, f"rule {rule.name} (playbooks {', '.join(rule.playbooks)}): {exc}") from None
    if len(rule.text) > MAX_PATTERN_CHARS:
        raise RuleError(
            ",".join(rule.playbooks),
            f"its pattern alone is {len(rule.text)} characters; EventBridge allows {MAX_PATTERN_CHARS}",
        )
    for alternative in compiled.alternatives:
        tests = {test.path: test for test in alternative}
        for key in ENVELOPE:
            test = tests.get((key,))
            if test is None or test.absent_ok or not _exact_strings(test.clause):
                raise RuleError(None, f"rule {rule.name} does not pin {key} in every alternative")
    return compiled


def generate_rules(library: Library | Mapping[str, Mapping[str, Any]], custom_sources: Iterable[str] = ()) -> RuleSet:
    """The rules for the enabled playbooks of ``library`` (or a mapping of name → pattern)."""
    named = [(p.name, p.match) for p in library.enabled] if isinstance(library, Library) else list(library.items())
    custom = tuple(custom_sources)
    pinned: list[tuple[str, dict[str, Any]]] = []
    notes: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    for name, match in named:
        pattern, pin_notes = pin(name, match, custom)
        notes[name] = pin_notes
        if pattern is None:
            skipped[name] = pin_notes[-1].split(": ", 1)[1]
        else:
            pinned.append((name, pattern))
    rules: list[Rule] = []
    for group in _components(pinned):
        merged = simplify([([pinned[i][0]], pinned[i][1]) for i in group])
        names = [n for members, _ in merged for n in members]
        rule_notes = [note for n in names for note in notes[n]]
        patterns = [pattern for _, pattern in merged]
        whole = _rule_pattern(patterns)
        if len(json.dumps(whole)) <= MAX_PATTERN_CHARS or OR not in whole:
            rules.append(Rule(_rule_name(patterns, 0), whole, tuple(names), tuple(rule_notes)))
            continue
        envelope = {k: whole[k] for k in ENVELOPE if k in whole}
        parts = _chunks(whole[OR], envelope)
        split_note = "split to fit the pattern quota: an event matching two parts is queued twice"
        for index, part in enumerate(parts, start=1):
            pattern = {**envelope, OR: part} if len(part) > 1 else {**envelope, **part[0]}
            members = tuple(n for members, p in merged for n in members if _part_of(p, part, envelope))
            rules.append(Rule(_rule_name(patterns, index), pattern, members or tuple(names), (*rule_notes, split_note)))
    rules.sort(key=lambda r: r.name)
    if len(rules) > MAX_RULES:
        raise RuleError(None, f"{len(rules)} rules exceed EventBridge's {MAX_RULES} rules per event bus")
    for rule in rules:
        check_rule(rule)
    return RuleSet(tuple(rules), skipped)


def _part_of(pattern: Mapping[str, Any], part: list[dict[str, Any]], envelope: Mapping[str, Any]) -> bool:
    residual = {k: v for k, v in pattern.items() if k not in envelope}
    candidates = residual[OR] if list(residual) == [OR] else [residual if envelope else pattern]
    wanted = {_canon(p) for p in part}
    return any(_canon(c) in wanted for c in candidates)
