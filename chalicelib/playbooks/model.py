"""Playbooks as typed objects. Pure: built from already-validated dicts (YAML files or the bundle)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from chalicelib.findings.model import Finding, Resource

MODES = ("auto", "approval", "dry-run")
#: Stricter modes win when a playbook, a step and the guardrails disagree.
MODE_STRICTNESS = {"auto": 0, "approval": 1, "dry-run": 2}
FINDING_TARGET = "finding"
#: ``target: "resources[N]"``: the finding's N-th resource (0-based; negative counts from the end), in the
#: order normalization lists them (``clampdown simulate`` shows it).
RESOURCE_PATH = re.compile(r"resources\[(-?[0-9]{1,3})\]")
#: Why a playbook leaves an archived or suppressed finding alone (counted by the responder).
ARCHIVED_REASON = "the finding is archived or suppressed"


def strictest(*modes: str | None) -> str:
    present = [m for m in modes if m]
    return max(present, key=MODE_STRICTNESS.__getitem__) if present else "auto"


def _any_glob(patterns: Iterable[str], *values: str | None) -> str | None:
    for pattern in patterns:
        for value in values:
            if value and fnmatchcase(value, pattern):
                return pattern
    return None


@dataclass(frozen=True)
class Conditions:
    """Filters on the normalized finding, checked after the event pattern matched."""

    min_severity: float | None = None
    max_severity: float | None = None
    sources: tuple[str, ...] = ()
    resource_kinds: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    include_archived: bool = False
    include_samples: bool = True

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Conditions:
        data = data or {}
        return cls(
            min_severity=data.get("min_severity"),
            max_severity=data.get("max_severity"),
            sources=tuple(data.get("sources", ())),
            resource_kinds=tuple(data.get("resource_kinds", ())),
            accounts=tuple(data.get("accounts", ())),
            regions=tuple(data.get("regions", ())),
            include_archived=bool(data.get("include_archived", False)),
            include_samples=bool(data.get("include_samples", True)),
        )

    def rejects(self, finding: Finding, *, act_on_archived: bool = False) -> str | None:
        """Why this finding does not qualify, or None when it does.

        Archived and suppressed findings (AWS's own triage, users' suppression rules) qualify only with
        ``include_archived`` here or ``act_on_archived`` for the whole stage (``CLAMPDOWN_ACT_ON_ARCHIVED``).
        """
        if self.min_severity is not None and finding.severity < self.min_severity:
            return f"severity {finding.severity:g} is below {self.min_severity:g}"
        if self.max_severity is not None and finding.severity > self.max_severity:
            return f"severity {finding.severity:g} is above {self.max_severity:g}"
        if self.sources and finding.source not in self.sources:
            return f"source {finding.source} is not one of {', '.join(self.sources)}"
        if self.resource_kinds and not finding.resources_of(*self.resource_kinds):
            return f"the finding names no {' or '.join(self.resource_kinds)}"
        if self.accounts and finding.account not in self.accounts:
            return f"account {finding.account} is not one of {', '.join(self.accounts)}"
        if self.regions and finding.region not in self.regions:
            return f"region {finding.region} is not one of {', '.join(self.regions)}"
        if finding.archived and not (self.include_archived or act_on_archived):
            return ARCHIVED_REASON
        if finding.sample and not self.include_samples:
            return "the finding is sample data"
        return None


@dataclass(frozen=True)
class Exclusions:
    """What a playbook must leave alone: whole findings (accounts, principals) or single resources."""

    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    principals: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Exclusions:
        data = data or {}
        return cls(
            accounts=tuple(data.get("accounts", ())),
            regions=tuple(data.get("regions", ())),
            resources=tuple(data.get("resources", ())),
            principals=tuple(data.get("principals", ())),
            tags=dict(data.get("tags", {})),
        )

    def merged(self, other: Exclusions) -> Exclusions:
        return Exclusions(
            accounts=self.accounts + other.accounts,
            regions=self.regions + other.regions,
            resources=self.resources + other.resources,
            principals=self.principals + other.principals,
            tags={**self.tags, **other.tags},
        )

    def excludes_finding(self, finding: Finding) -> str | None:
        if _any_glob(self.accounts, finding.account):
            return f"account {finding.account} is excluded"
        if _any_glob(self.regions, finding.region):
            return f"region {finding.region} is excluded"
        for actor in finding.actors or (finding.actor,):
            hit = _any_glob(self.principals, actor.principal_arn, actor.session_issuer_arn, actor.user_name)
            if hit:
                return f"the actor matches excluded principal {hit}"
        return None

    def excludes_resource(self, resource: Resource) -> str | None:
        hit = _any_glob(self.resources, resource.arn, resource.id, resource.name)
        if hit:
            return f"{resource.kind} {resource.name or resource.id or resource.arn} matches excluded resource {hit}"
        for key, pattern in self.tags.items():
            value = resource.tags.get(key)
            if value is not None and fnmatchcase(value, pattern):
                return f"{resource.kind} {resource.name or resource.id} is tagged {key}={value}"
        return None


@dataclass(frozen=True)
class Step:
    index: int
    action: str
    params: Mapping[str, Any] = field(default_factory=dict)
    #: Resource kinds to act on; None means the action's own kinds; ("finding",) the finding itself;
    #: ("resources[N]",) the finding's N-th resource (see ``resource_index``).
    target: tuple[str, ...] | None = None
    mode: str | None = None
    #: "stop" or "continue" after this step fails; None means the action's ``default_on_error``.
    on_error: str | None = None
    name: str = ""

    @classmethod
    def from_dict(cls, index: int, data: Mapping[str, Any]) -> Step:
        target = data.get("target")
        return cls(
            index=index,
            action=data["action"],
            params=dict(data.get("params") or {}),
            target=(target,) if isinstance(target, str) else (tuple(target) if target else None),
            mode=data.get("mode"),
            on_error=data.get("on_error"),
            name=data.get("name", ""),
        )

    @property
    def label(self) -> str:
        return self.name or self.action

    @property
    def resource_index(self) -> int | None:
        """N for ``target: "resources[N]"``, else None (a kind, kinds, ``finding`` or the default)."""
        return resource_index(self.target[0]) if self.target and len(self.target) == 1 else None


def resource_index(target: str) -> int | None:
    """N when ``target`` is the path form ``resources[N]``."""
    found = RESOURCE_PATH.fullmatch(target)
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class PlaybookTest:
    name: str
    event: Any  # a path (str, relative to the playbook file) or an inline event
    expect: Mapping[str, Any]


@dataclass(frozen=True)
class Playbook:
    name: str
    description: str
    match: Mapping[str, Any]
    steps: tuple[Step, ...]
    mode: str = "auto"
    enabled: bool = True
    conditions: Conditions = field(default_factory=Conditions)
    exclude: Exclusions = field(default_factory=Exclusions)
    approvers: tuple[str, ...] = ()
    threat: Mapping[str, Any] = field(default_factory=dict)
    tests: tuple[PlaybookTest, ...] = ()
    #: Where it was loaded from, for messages ("playbooks/x.yaml").
    file: str = ""
    #: The validated document, kept for the deployment bundle.
    source: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], file: str = "") -> Playbook:
        return cls(
            name=data["name"],
            description=data["description"],
            match=data["match"],
            steps=tuple(Step.from_dict(i, s) for i, s in enumerate(data["steps"])),
            mode=data.get("mode", "auto"),
            enabled=data.get("enabled", True),
            conditions=Conditions.from_dict(data.get("conditions")),
            exclude=Exclusions.from_dict(data.get("exclude")),
            approvers=tuple(data.get("approvers", ())),
            threat=dict(data.get("threat", {})),
            tests=tuple(PlaybookTest(t["name"], t["event"], t["expect"]) for t in data.get("tests", ())),
            file=file,
            source=data,
        )

    def rejects(self, finding: Finding, *, act_on_archived: bool = False) -> str | None:
        """Why this playbook does not act on the finding at all (conditions, exclusions)."""
        return self.conditions.rejects(finding, act_on_archived=act_on_archived) or self.exclude.excludes_finding(
            finding
        )
