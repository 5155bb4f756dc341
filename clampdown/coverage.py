"""What the playbook library covers, computed from the playbooks themselves.

Everything here is derived from the library's ``match:`` patterns, conditions and steps and from the
known GuardDuty finding types (``clampdown/data/guardduty_finding_types.json``); nothing is written by
hand. ``docs/playbooks.md`` is :func:`render_markdown` of the shipped library (regenerate it with
``python -m clampdown.coverage`` or ``clampdown playbooks --coverage --format md``; a test checks it).

How a GuardDuty type is found covered: for every type, probe events are built with the type, each
``resourceType`` GuardDuty documents for the type's page (``Instance`` for EC2 findings, ``EKSCluster``
for EKS Protection...), each ``resourceRole`` (ACTOR, TARGET) and both ends of each severity band
(LOW 1-3.9, MEDIUM 4-6.9, HIGH 7-8.9, CRITICAL 9-10). Each pattern alternative is cut down to the
fields a probe has (source, detail-type, type, resource type, resource role, severity) and the
playbook's severity conditions are applied, so a response is credited only for the roles and the
severity bands it really covers ("announced at HIGH+ only"); the other fields (request parameters...)
and conditions become the coverage's qualifiers.

A playbook *contains* when one of its steps changes AWS reversibly and is not bookkeeping (tags,
finding workflow updates): evidence capture (snapshots) and notifications are not containment.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.actions import REGISTRY
from chalicelib.patterns import compile_pattern
from chalicelib.planner import effective_mode
from chalicelib.playbooks.library import Library
from chalicelib.playbooks.model import Playbook
from clampdown.data.finding_types import FindingType, FindingTypes, guardduty_finding_types

ROOT = Path(__file__).resolve().parents[1]
DOC_PATH = ROOT / "docs" / "playbooks.md"

GUARDDUTY = ("aws.guardduty", "GuardDuty Finding")
#: Actions that change AWS but contain nothing.
BOOKKEEPING = frozenset({"tag", "securityhub.update-finding", "guardduty.archive-finding"})
#: The ``resource.resourceType`` values GuardDuty documents for the findings of each user guide page.
RESOURCE_TYPES_BY_PAGE: Mapping[str, tuple[str, ...]] = {
    "ec2": ("Instance",),
    "iam": ("AccessKey",),
    "s3": ("S3Bucket",),
    "lambda": ("Lambda",),
    "eks": ("EKSCluster",),
    "rds": ("RDSDBInstance", "RDSLimitlessDB"),
    "runtime": ("Instance", "EKSCluster", "ECSCluster", "Container"),
    "malware-ec2": ("Instance", "EKSCluster", "ECSCluster", "Container"),
    "malware-s3": ("S3Object",),
    "malware-backup": ("EBSSnapshot", "EC2Image", "RecoveryPoint"),
    "attack-sequence": ("AttackSequence",),
    "custom-detection-rules": ("Other",),
}
#: Pages whose findings name different resources by the type's resource segment (Malware Protection
#: for EC2 scans instances and containers; Custom Detection Rules cover several services).
RESOURCE_TYPES_BY_SEGMENT: Mapping[str, tuple[str, ...]] = {
    "EC2": ("Instance",), "ECS": ("ECSCluster",), "Kubernetes": ("EKSCluster",), "Container": ("Container",),
    "IAMUser": ("AccessKey",), "S3": ("S3Bucket",), "Lambda": ("Lambda",), "RDS": ("RDSDBInstance",),
}  # fmt: skip
SEGMENT_PAGES = frozenset({"malware-ec2", "custom-detection-rules"})
#: A retired type's page, from the resource segment of its name.
PAGE_BY_SEGMENT = {
    "EC2": "ec2", "IAMUser": "iam", "S3": "s3", "Lambda": "lambda", "Kubernetes": "eks", "RDS": "rds",
    "Runtime": "runtime", "ECS": "malware-ec2", "Container": "malware-ec2",
}  # fmt: skip
ROLES = ("ACTOR", "TARGET")
PROBE_PATHS = frozenset(
    {
        ("source",),
        ("detail-type",),
        ("detail", "type"),
        ("detail", "resource", "resourceType"),
        ("detail", "service", "resourceRole"),
        ("detail", "severity"),
    }
)
#: GuardDuty's severity bands (name, lowest, highest value), low to high.
BANDS: tuple[tuple[str, float, float], ...] = (
    ("LOW", 1.0, 3.9), ("MEDIUM", 4.0, 6.9), ("HIGH", 7.0, 8.9), ("CRITICAL", 9.0, 10.0),
)  # fmt: skip
BAND_NAMES = tuple(name for name, _, _ in BANDS)
#: Response levels, best first.
LEVELS = ("auto", "approval", "dry-run", "notify", "none")
LEVEL_WORDS = {
    "auto": "contained automatically",
    "approval": "contained after approval",
    "dry-run": "containment planned in dry-run only",
    "notify": "announced only",
    "none": "no response",
}
#: The same, for a response that holds only at some severities ("announced at HIGH+ only").
LEVEL_SHORT = {
    "auto": "contained automatically",
    "approval": "contained after approval",
    "dry-run": "containment planned in dry-run",
    "notify": "announced",
    "none": "no response",
}
FIELD_ORDER = [("detail", "type"), ("detail", "resource", "resourceType"), ("detail", "service", "resourceRole")]
FIELD_WORDS = {
    ("detail", "type"): "type",
    ("detail", "resource", "resourceType"): "resource type",
    ("detail", "service", "resourceRole"): "resource role",
    ("detail", "severity"): "severity",
    ("detail", "errorCode"): "error code",
    ("resources",): "custom action",
}


# -- clauses in words --------------------------------------------------------------------------------
def _value_words(value: Any) -> str:
    if isinstance(value, Mapping) and len(value) == 1:
        ((op, arg),) = value.items()
        if op == "prefix":
            return f"{arg}*" if isinstance(arg, str) else f"prefix {json.dumps(arg)}"
        if op == "suffix":
            return f"*{arg}" if isinstance(arg, str) else f"suffix {json.dumps(arg)}"
        if op == "wildcard":
            return str(arg)
        if op == "numeric" and isinstance(arg, list):
            return (
                " and ".join(f"{arg[i]} {arg[i + 1]}" for i in range(0, len(arg) - 1, 2))
                .replace(">=", "≥")
                .replace("<=", "≤")
            )
        if op == "exists":
            return "present" if arg else "absent"
        if op == "anything-but":
            return f"anything but {json.dumps(arg, ensure_ascii=False)}"
        return f"{op} {json.dumps(arg, ensure_ascii=False)}"
    if isinstance(value, str):
        return json.dumps(value) if "*" in value or not value else value
    return json.dumps(value, ensure_ascii=False)


def _path_words(path: Sequence[str]) -> str:
    return FIELD_WORDS.get(tuple(path), ".".join(path[1:] if path and path[0] == "detail" else path))


def _alternatives_words(values: Sequence[str], grouped: bool) -> str:
    """``a or b``; in parentheses when ``grouped`` (the clause sits among others joined by "and")."""
    text = " or ".join(values)
    return f"({text})" if grouped and len(values) > 1 else text


def clause_words(path: Sequence[str], clause: Sequence[Any], grouped: bool = False) -> str:
    """``severity ≥ 7``, ``type Backdoor:EC2/* or Trojan:EC2/*``, ``error code absent``."""
    name = _path_words(path)
    values = [_value_words(v) for v in clause]
    if len(values) == 1 and values[0].startswith(("≥", "≤", ">", "<", "=")):
        return f"{name} {values[0]}"
    if values == ["absent"] or values == ["present"]:
        return f"{name} {values[0]}"
    return f"{name} {_alternatives_words(values, grouped)}"


def condition_words(playbook: Playbook) -> list[str]:
    c = playbook.conditions
    out = []
    if c.min_severity is not None:
        out.append(f"severity ≥ {c.min_severity:g}")
    if c.max_severity is not None:
        out.append(f"severity ≤ {c.max_severity:g}")
    if c.sources:
        out.append(f"source {' or '.join(c.sources)}")
    if c.resource_kinds:
        out.append(f"naming a {' or '.join(c.resource_kinds)}")
    if c.accounts:
        out.append(f"accounts {', '.join(c.accounts)}")
    if c.regions:
        out.append(f"regions {', '.join(c.regions)}")
    if c.include_archived:
        out.append("archived findings included")
    if not c.include_samples:
        out.append("sample findings excluded")
    return out


# -- per playbook ------------------------------------------------------------------------------------
@dataclass
class StepSummary:
    action: str
    mode: str
    target: str
    contains: bool

    def words(self) -> str:
        return f"{self.action} ({self.mode})"


@dataclass
class PlaybookSummary:
    name: str
    file: str
    description: str
    mode: str
    enabled: bool
    kind: str  # guardduty | cloudtrail | securityhub | other
    matches: str
    mitre: list[str]
    steps: list[StepSummary]
    api_calls: list[str] = field(default_factory=list)
    guardduty_types: list[str] = field(default_factory=list)

    @property
    def containment(self) -> str:
        """The best containment level of the playbook's steps (auto, approval, dry-run), else notify."""
        levels = {s.mode for s in self.steps if s.contains}
        return next((level for level in LEVELS if level in levels), "notify")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "mode": self.mode,
            "enabled": self.enabled,
            "kind": self.kind,
            "matches": self.matches,
            "mitre": list(self.mitre),
            "containment": self.containment,
            "steps": [
                {"action": s.action, "mode": s.mode, "target": s.target, "contains": s.contains} for s in self.steps
            ],
            "api_calls": list(self.api_calls),
            "guardduty_types": list(self.guardduty_types),
        }


def is_containment(action: str) -> bool:
    cls = REGISTRY[action]
    return bool(cls.changes_aws and cls.reversible and action not in BOOKKEEPING)


def _kind(playbook: Playbook) -> str:
    sources = set(_envelope_values(playbook, "source"))
    detail_types = set(_envelope_values(playbook, "detail-type"))
    if sources == {"aws.guardduty"}:
        return "guardduty"
    if sources == {"aws.securityhub"}:
        return "securityhub"
    if detail_types and all("via CloudTrail" in d for d in detail_types):
        return "cloudtrail"
    return "other"


def _envelope_values(playbook: Playbook, key: str) -> list[str]:
    values: list[str] = []
    for alternative in compile_pattern(playbook.match).alternatives:
        for test in alternative:
            if test.path == (key,):
                values.extend(v for v in test.clause if isinstance(v, str) and v not in values)
    return values


def api_calls(playbook: Playbook) -> list[str]:
    """``cloudtrail:StopLogging``, ``lambda:AddPermission*``: the CloudTrail API calls a pattern takes."""
    calls: list[str] = []
    for alternative in compile_pattern(playbook.match).alternatives:
        tests = {test.path: test for test in alternative}
        sources = tests.get(("detail", "eventSource"))
        names = tests.get(("detail", "eventName"))
        if sources is None:
            continue
        services = [str(s).split(".", 1)[0] for s in sources.clause if isinstance(s, str)]
        rendered = [_value_words(n) for n in names.clause] if names is not None else ["*"]
        for service in services:
            for name in rendered:
                call = f"{service}:{name}"
                if call not in calls:
                    calls.append(call)
    return calls


# -- a pattern in words: AND as "; " (top level) or " and " (inside a branch), $or as "(A) or (B)" ----
ENVELOPE_KEYS = ("source", "detail-type")
CALL_KEYS = ("eventSource", "eventName")


def _numeric_bound(value: Any) -> tuple[str, Any] | None:
    """``[{"numeric": ["<=", 22]}]`` → ("<=", 22)."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], Mapping) and list(value[0]) == ["numeric"]:
        arg = value[0]["numeric"]
        if isinstance(arg, list) and len(arg) == 2 and arg[0] in ("<=", ">="):
            return arg[0], arg[1]
    return None


def _range_branch(branch: Any) -> tuple[str, str, Any] | None:
    """``{fromPort: [≤ N], toPort: [≥ N]}`` → ("fromPort", "toPort", N): a range that includes N."""
    if not isinstance(branch, Mapping) or len(branch) != 2:
        return None
    bounds = {}
    for key, value in branch.items():
        bound = _numeric_bound(value)
        if bound is None:
            return None
        bounds[bound[0]] = (key, bound[1])
    if set(bounds) != {"<=", ">="} or bounds["<="][1] != bounds[">="][1]:
        return None
    return bounds["<="][0], bounds[">="][0], bounds["<="][1]


def _call_words(sources: Any, names: Any, grouped: bool) -> str:
    services = [str(src).split(".", 1)[0] for src in sources if isinstance(src, str)]
    if names is None:
        return "any API call to " + ", ".join(services)
    rendered = [_value_words(n) for n in names]
    return "API call " + _alternatives_words([f"{svc}:{name}" for svc in services for name in rendered], grouped)


def _branch_words(node: Mapping[str, Any], path: tuple[str, ...], sources: Any, grouped: bool) -> list[str]:
    """The AND-ed parts of one pattern object; ``sources`` is the eventSource clause above it, and
    ``grouped`` puts a clause's alternatives in parentheses (the parts will be joined by "and")."""
    parts: list[str] = []
    if path == ("detail",):
        sources = node.get("eventSource", sources)
        branches: list[Any] = node["$or"] if isinstance(node.get("$or"), list) else []
        named_below = any(isinstance(b, Mapping) and "eventName" in b for b in branches)
        if "eventName" in node or ("eventSource" in node and not named_below):
            parts.append(_call_words(sources or [], node.get("eventName"), grouped))
    for key, value in node.items():
        if (not path and key in ENVELOPE_KEYS) or (path == ("detail",) and key in CALL_KEYS):
            continue
        if key == "$or" and isinstance(value, list):
            parts.append(_or_words(value, path, sources, grouped))
        elif isinstance(value, Mapping):
            parts.extend(_branch_words(value, (*path, key), sources, grouped))
        else:
            parts.append(clause_words((*path, key), value, grouped))
    return parts


def _or_words(branches: list[Any], path: tuple[str, ...], sources: Any, grouped: bool) -> str:
    """``$or`` as alternatives, each in parentheses (and all of them too when ``grouped``); branches that
    each say ``from ≤ N and to ≥ N`` are folded into ``from..to includes N1, N2`` (a range with any of N)."""
    rendered: list[str | tuple[str, str]] = []
    ranges: dict[tuple[str, str], list[str]] = {}
    for branch in branches:
        found = _range_branch(branch)
        if found is not None:
            low, high, number = found
            if (low, high) not in ranges:
                rendered.append((low, high))  # where the folded ranges go, in order
            ranges.setdefault((low, high), []).append(_value_words(number))
            continue
        parts = _branch_words(branch, path, sources, grouped=True) if isinstance(branch, Mapping) else []
        rendered.append(" and ".join(parts) or "anything")
    out = [
        item
        if isinstance(item, str)
        else f"{_path_words((*path, item[0]))}..{item[1]} includes {', '.join(ranges[item])}"
        for item in rendered
    ]
    if len(out) == 1:
        return out[0]
    text = " or ".join(f"({item})" for item in out)
    return f"[{text}]" if grouped else text


def pattern_words(match: Mapping[str, Any]) -> list[str]:
    """What a pattern tests besides its envelope, each top-level part a string (the parts are AND-ed)."""
    return _branch_words(match, (), None, grouped=False)


def _match_words(playbook: Playbook, kind: str) -> str:
    if kind == "guardduty":
        head = "GuardDuty findings"
    elif kind == "cloudtrail":
        head = "CloudTrail"
    else:
        detail_types = _envelope_values(playbook, "detail-type")
        sources = _envelope_values(playbook, "source")
        head = " / ".join(detail_types or sources or ["any event"])
    words = pattern_words(playbook.match) + condition_words(playbook)
    if kind == "cloudtrail":
        words = ["successful calls only" if w == "error code absent" else w for w in words]
    return head + (": " + "; ".join(words) if words else "")


def summarize(playbook: Playbook) -> PlaybookSummary:
    kind = _kind(playbook)
    steps = []
    for step in playbook.steps:
        target = (
            "finding"
            if not REGISTRY[step.action].resource_kinds
            else ", ".join(step.target or REGISTRY[step.action].resource_kinds)
        )
        steps.append(StepSummary(step.action, effective_mode(playbook, step), target, is_containment(step.action)))
    return PlaybookSummary(
        name=playbook.name,
        file=Path(playbook.file).name if playbook.file else "",
        description=" ".join(playbook.description.split()),
        mode=playbook.mode,
        enabled=playbook.enabled,
        kind=kind,
        matches=_match_words(playbook, kind),
        mitre=list(playbook.threat.get("mitre", ())),
        steps=steps,
        api_calls=api_calls(playbook) if kind == "cloudtrail" else [],
    )


# -- GuardDuty finding types ------------------------------------------------------------------------
@dataclass
class Cover:
    """One playbook's response to one finding type, and when it applies."""

    playbook: str
    level: str  # auto | approval | dry-run | notify
    when: list[str]
    #: The (resource role, severity band) pairs it responds to.
    applies: frozenset[tuple[str, str]] = frozenset()

    def words(self) -> str:
        return self.playbook + (f" ({'; '.join(self.when)})" if self.when else "")


def _band_runs(levels: Sequence[str]) -> list[tuple[str, int, int]]:
    """(level, first band index, last band index) of each run of equal levels."""
    runs: list[tuple[str, int, int]] = []
    for index, level in enumerate(levels):
        if runs and runs[-1][0] == level:
            runs[-1] = (level, runs[-1][1], index)
        else:
            runs.append((level, index, index))
    return runs


def _bands_words(first: int, last: int) -> str:
    if last == len(BANDS) - 1 and first < last:
        return f"{BAND_NAMES[first]}+"
    return BAND_NAMES[first] if first == last else f"{BAND_NAMES[first]}-{BAND_NAMES[last]}"


def levels_words(levels: Sequence[str]) -> str:
    """``contained automatically``; ``announced at HIGH+ only``; ``announced at LOW, contained ... at MEDIUM+``."""
    runs = _band_runs(levels)
    if len(runs) == 1:
        return LEVEL_WORDS[runs[0][0]]
    if len(runs) == 2 and runs[0][0] == "none":
        level, first, last = runs[1]
        return f"{LEVEL_SHORT[level]} at {_bands_words(first, last)} only"
    return ", ".join(f"{LEVEL_SHORT[level]} at {_bands_words(first, last)}" for level, first, last in runs)


@dataclass
class TypeCoverage:
    name: str
    page: str
    retired: bool
    renamed_to: tuple[str, ...]
    covers: list[Cover]

    def levels(self, role: str) -> tuple[str, ...]:
        """The best response in each severity band (LOW..CRITICAL) when the resource has this role."""
        out = []
        for band in BAND_NAMES:
            found = {c.level for c in self.covers if (role, band) in c.applies}
            out.append(next((level for level in LEVELS if level in found), "none"))
        return tuple(out)

    @property
    def level(self) -> str:
        """The best response at any severity and resource role."""
        found = {level for role in ROLES for level in self.levels(role)}
        return next((level for level in LEVELS if level in found), "none")

    @property
    def partial(self) -> bool:
        """Whether the response depends on the severity or the resource role."""
        return len({level for role in ROLES for level in self.levels(role)}) > 1

    @property
    def response(self) -> str:
        """The response in words, by resource role and severity band where they make a difference."""
        by_role = {role: self.levels(role) for role in ROLES}
        if len(set(by_role.values())) == 1:
            return levels_words(by_role[ROLES[0]])
        return "; ".join(f"{role}: {levels_words(levels)}" for role, levels in by_role.items())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.name,
            "page": self.page,
            "response": self.level,
            "response_words": self.response,
            "by_severity": {role: dict(zip(BAND_NAMES, self.levels(role), strict=True)) for role in ROLES},
            "playbooks": [{"name": c.playbook, "response": c.level, "when": list(c.when)} for c in self.covers],
        }
        if self.retired:
            out["retired"] = True
        if self.renamed_to:
            out["renamed_to"] = list(self.renamed_to)
        return out


def _unflatten(tests: Iterable[Any]) -> dict[str, Any]:
    pattern: dict[str, Any] = {}
    for test in tests:
        node = pattern
        for key in test.path[:-1]:
            node = node.setdefault(key, {})
        node[test.path[-1]] = list(test.clause)
    return pattern


#: A probe: the event, its resource role and its severity.
ProbeEvent = tuple[dict[str, Any], str, float]


@dataclass
class _Probe:
    """A playbook's pattern cut down to what a probe event carries, one entry per alternative."""

    playbook: Playbook
    level: str
    alternatives: list[tuple[Any, list[str]]]  # (compiled restricted pattern or None for "anything", qualifiers)

    @classmethod
    def of(cls, playbook: Playbook, level: str) -> _Probe:
        alternatives = []
        for alternative in compile_pattern(playbook.match).alternatives:
            kept = [t for t in alternative if t.path in PROBE_PATHS]
            dropped = [t for t in alternative if t.path not in PROBE_PATHS]
            restricted = compile_pattern(_unflatten(kept)) if kept else None
            severity = [clause_words(t.path, t.clause) for t in kept if t.path == ("detail", "severity")]
            qualifiers = severity + [clause_words(t.path, t.clause) for t in dropped] + condition_words(playbook)
            alternatives.append((restricted, qualifiers))
        return cls(playbook, level, alternatives)

    def _severity_ok(self, severity: float) -> bool:
        c = self.playbook.conditions
        return (c.min_severity is None or severity >= c.min_severity) and (
            c.max_severity is None or severity <= c.max_severity
        )

    def cover(self, events: list[ProbeEvent]) -> Cover | None:
        hits: set[tuple[str, float]] = set()
        when: list[str] = []
        for pattern, qualifiers in self.alternatives:
            found = {
                (role, severity)
                for event, role, severity in events
                if self._severity_ok(severity) and (pattern is None or pattern.matches(event))
            }
            if found:
                hits |= found
                when.extend(q for q in qualifiers if q not in when)
        applies = frozenset(
            (role, name) for role in ROLES for name, low, high in BANDS if {(role, low), (role, high)} <= hits
        )
        if not applies:
            return None
        roles = {role for role, _ in applies}
        if roles != set(ROLES):
            when.insert(0, f"resource role {' or '.join(sorted(roles))}")
        return Cover(self.playbook.name, self.level, when, applies)


def _probe_events(finding_type: FindingType) -> list[ProbeEvent]:
    page = finding_type.page or PAGE_BY_SEGMENT.get(finding_type.resource_type, "")
    if finding_type.threat_purpose == "AttackSequence":
        page = "attack-sequence"
    if page in SEGMENT_PAGES:
        resource_types = RESOURCE_TYPES_BY_SEGMENT.get(finding_type.resource_type, ("Other",))
    else:
        resource_types = RESOURCE_TYPES_BY_PAGE.get(page, ("Other",))
    return [
        (
            {
                "source": GUARDDUTY[0],
                "detail-type": GUARDDUTY[1],
                "detail": {
                    "type": finding_type.name,
                    "severity": severity,
                    "resource": {"resourceType": r},
                    "service": {"resourceRole": role},
                },
            },
            role,
            severity,
        )
        for r in resource_types
        for role in ROLES
        for _, low, high in BANDS
        for severity in (low, high)
    ]


def guardduty_coverage(library: Library, known: FindingTypes) -> list[TypeCoverage]:
    """Every known type (active first, then retired) with the enabled playbooks that respond to it."""
    probes = []
    for playbook in library.enabled:
        summary = summarize(playbook)
        if summary.kind == "guardduty":
            probes.append(_Probe.of(playbook, summary.containment))
    out = []
    for finding_type in known.all:
        events = _probe_events(finding_type)
        covers = [cover for probe in probes if (cover := probe.cover(events)) is not None]
        covers.sort(key=lambda c: (LEVELS.index(c.level), c.playbook))
        page = finding_type.page or PAGE_BY_SEGMENT.get(finding_type.resource_type, "")
        out.append(TypeCoverage(finding_type.name, page, finding_type.retired, finding_type.renamed_to, covers))
    return out


# -- the report ---------------------------------------------------------------------------------------
@dataclass
class Coverage:
    playbooks: list[PlaybookSummary]
    types: list[TypeCoverage]
    known: FindingTypes

    @property
    def active(self) -> list[TypeCoverage]:
        return [t for t in self.types if not t.retired]

    @property
    def retired(self) -> list[TypeCoverage]:
        return [t for t in self.types if t.retired]

    def counts(self) -> dict[str, int]:
        """Known active types by their best response (at some severity and resource role)."""
        counts = {level: 0 for level in LEVELS}
        for t in self.active:
            counts[t.level] += 1
        return counts

    def partial_counts(self) -> dict[str, int]:
        """Of :meth:`counts`, the types whose best response holds only at some severities or roles."""
        counts = {level: 0 for level in LEVELS}
        for t in self.active:
            counts[t.level] += t.partial
        return counts

    def uncontained(self) -> list[TypeCoverage]:
        return [t for t in self.active if t.level in ("notify", "none", "dry-run")]

    def api_calls(self) -> list[tuple[str, list[str]]]:
        calls: dict[str, list[str]] = {}
        for p in self.playbooks:
            if not p.enabled:
                continue
            for call in p.api_calls:
                calls.setdefault(call, []).append(p.name)
        return sorted(calls.items(), key=lambda item: item[0].lower())

    def summary(self) -> dict[str, Any]:
        kinds: dict[str, int] = {}
        for p in self.playbooks:
            kinds[p.kind] = kinds.get(p.kind, 0) + 1
        return {
            "playbooks": len(self.playbooks),
            "enabled": sum(1 for p in self.playbooks if p.enabled),
            "by_kind": dict(sorted(kinds.items())),
            "guardduty_types": {
                "known_active": len(self.active),
                **{level.replace("-", "_"): n for level, n in self.counts().items()},
                "only_at_some_severities_or_roles": {
                    level.replace("-", "_"): n for level, n in self.partial_counts().items()
                },
                "known_retired": len(self.retired),
                "retired_still_matched": sum(1 for t in self.retired if t.level != "none"),
            },
            "cloudtrail_api_calls": len(self.api_calls()),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "finding_types_source": dict(self.known.source),
            "playbooks": [p.to_dict() for p in self.playbooks],
            "cloudtrail_api_calls": [{"call": c, "playbooks": names} for c, names in self.api_calls()],
            "guardduty_types": [t.to_dict() for t in self.active],
            "guardduty_retired_types": [t.to_dict() for t in self.retired],
            "guardduty_types_without_containment": [t.name for t in self.uncontained()],
        }


def coverage(library: Library, known: FindingTypes | None = None) -> Coverage:
    known = known or guardduty_finding_types()
    return Coverage([summarize(p) for p in library.playbooks], guardduty_coverage(library, known), known)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Coverage) -> str:
    """``docs/playbooks.md``: deterministic (the same library gives the same bytes)."""
    s = report.summary()
    gd = s["guardduty_types"]
    source = report.known.source
    lines = [
        "# The playbook library",
        "",
        "<!-- Generated by `clampdown playbooks --coverage --format md` (clampdown/coverage.py) from",
        "playbooks/ and clampdown/data/guardduty_finding_types.json. Do not edit: a test regenerates it. -->",
        "",
        "What each shipped playbook matches and does, which CloudTrail API calls and which known GuardDuty",
        "finding types get a response, and which GuardDuty types have no containment yet. Every number on",
        "this page is computed from the playbooks; `clampdown playbooks --coverage` gives the same for your",
        "own library (with `--playbooks DIR`).",
        "",
        "## Summary",
        "",
        f"- {s['playbooks']} playbooks, {s['enabled']} enabled: "
        + ", ".join(f"{n} {kind}" for kind, n in s["by_kind"].items())
        + ".",
        f"- {s['cloudtrail_api_calls']} CloudTrail API calls detected.",
        f"- {gd['known_active']} known active GuardDuty finding types ([source]({source['url']}), taken"
        f" {source['taken']}):",
    ]
    partial = gd["only_at_some_severities_or_roles"]
    for level in LEVELS:
        key = level.replace("-", "_")
        some = f" ({partial[key]} of them only at some severities or resource roles)" if partial[key] else ""
        lines.append(f"  - {LEVEL_WORDS[level]}: {gd[key]}{some}")
    lines += [
        f"- {gd['known_retired']} retired or renamed types are known; {gd['retired_still_matched']} of them are still"
        " matched (old findings, replays and Security Hub copies carry them).",
        "",
        "A type is counted under the best response it gets at some severity and resource role: it counts as",
        "contained when a playbook with a containment step (a reversible change to AWS other than tags and",
        "finding updates) matches it for at least one resource type and role GuardDuty documents for it. The",
        "table says where the response holds: by severity band (LOW 1-3.9, MEDIUM 4-6.9, HIGH 7-8.9, CRITICAL",
        '9-10; "announced at HIGH+ only" means nothing happens below 7) and by resource role (ACTOR,',
        "TARGET) where they make a difference; the conditions under which each playbook responds are listed",
        "with it. In the playbooks table, `(A) or (B)` are the alternatives of an `$or`, and `;` joins what",
        "must all hold.",
        "",
        "## Playbooks",
        "",
        "| playbook | mode | enabled | matches | steps (effective mode) | MITRE ATT&CK |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for p in report.playbooks:
        steps = "<br>".join(_cell(st.words()) for st in p.steps)
        lines.append(
            f"| `{p.name}` | {p.mode} | {'yes' if p.enabled else 'no'} | {_cell(p.matches)} | {steps} | "
            f"{', '.join(p.mitre) or '-'} |"
        )
    lines += ["", "## CloudTrail API calls", "", "| API call | playbooks |", "| --- | --- |"]
    for call, names in report.api_calls():
        lines.append(f"| `{_cell(call)}` | {', '.join(f'`{n}`' for n in names)} |")
    lines += [
        "",
        "## GuardDuty finding types",
        "",
        "| finding type | response | playbooks (when) |",
        "| --- | --- | --- |",
    ]
    for t in report.active:
        covers = "<br>".join(_cell(c.words()) for c in t.covers) or "-"
        lines.append(f"| `{_cell(t.name)}` | {_cell(t.response)} | {covers} |")
    uncontained = report.uncontained()
    lines += [
        "",
        "## GuardDuty finding types without containment",
        "",
        f"{len(uncontained)} of {len(report.active)} known active types have no containment playbook yet"
        " (they may still be announced):",
        "",
    ]
    by_page: dict[str, list[TypeCoverage]] = {}
    for t in uncontained:
        by_page.setdefault(t.page or "other", []).append(t)
    for page, types in sorted(by_page.items()):
        url = report.known.pages.get(page)
        title = f"[{page}]({url})" if url else page
        lines.append(f"- {title}: " + ", ".join(f"`{_cell(t.name)}` ({_cell(t.response)})" for t in types))
    lines += [
        "",
        "## Retired and renamed GuardDuty finding types",
        "",
        "| finding type | renamed to | response |",
        "| --- | --- | --- |",
    ]
    for t in report.retired:
        renamed = ", ".join(f"`{n}`" for n in t.renamed_to) or "-"
        lines.append(f"| `{_cell(t.name)}` | {renamed} | {_cell(t.response)} |")
    lines += ["", "Finding types source: " + " ".join(source.get("how", "").split()), ""]
    for caveat in source.get("caveats", ()):
        lines.append(f"- {caveat}")
    return "\n".join(lines).rstrip("\n") + "\n"


def render_json(report: Coverage) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def shipped_library() -> Library:
    from clampdown.playbooks.loader import load_library

    return load_library([ROOT / "playbooks"])


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m clampdown.coverage [--check]``: write (or check) docs/playbooks.md."""
    parser = argparse.ArgumentParser(prog="python -m clampdown.coverage", description=main.__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/playbooks.md is not up to date")
    args = parser.parse_args(argv)
    text = render_markdown(coverage(shipped_library()))
    if args.check:
        current = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
        if current != text:
            print(f"{DOC_PATH} is out of date: run python -m clampdown.coverage", file=sys.stderr)
            return 1
        return 0
    DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOC_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
