"""The normalized finding: one shape for every source, read by playbooks, actions and notifiers.

Every string in here came from an event and is attacker-controlled: consumers escape it
before it reaches markup and never evaluate it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SOURCES = ("guardduty", "securityhub", "cloudtrail", "eventbridge")

#: Resource kinds understood by conditions, targets and actions.
RESOURCE_KINDS = (
    "iam-role",
    "iam-user",
    "access-key",
    "lambda-function",
    "ec2-instance",
    "s3-bucket",
    "eks-cluster",
    "ecs-cluster",
    "rds-instance",
    "container",
    "security-group",
    "cloudtrail-trail",
    "other",
)

#: Kinds whose identity does not depend on a region.
GLOBAL_KINDS = frozenset({"iam-role", "iam-user", "access-key", "s3-bucket"})

SEVERITY_LABELS = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")


class InvalidEvent(ValueError):
    """An event that cannot be normalized; the message names what is missing or wrong."""


def severity_label(score: float) -> str:
    """GuardDuty's bands, which Security Hub's normalized labels share: 0 informational, <4 low...

    GuardDuty: 1.0-3.9 LOW, 4.0-6.9 MEDIUM, 7.0-8.9 HIGH, 9.0-10 CRITICAL.
    """
    if score <= 0:
        return "INFORMATIONAL"
    if score < 4:
        return "LOW"
    if score < 7:
        return "MEDIUM"
    if score < 9:
        return "HIGH"
    return "CRITICAL"


@dataclass(frozen=True, slots=True)
class Resource:
    """Something a finding names and a playbook step may act on."""

    kind: str
    id: str | None = None
    arn: str | None = None
    name: str | None = None
    account: str | None = None
    region: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    #: Kind-specific facts an action needs (e.g. an access key's ``user_type`` and ``user_name``,
    #: an instance's ``vpc_id``); plain JSON values only.
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """A stable identity for dedup and idempotency keys, the same whichever shape named it.

        Built from kind, account, region (blank for global kinds) and id or name rather than the ARN,
        because one delivery shape may carry the ARN and another only the name.
        """
        region = "" if self.kind in GLOBAL_KINDS else (self.region or "")
        ident = self.id or self.name or self.arn or ""
        return f"{self.kind}:{self.account or ''}:{region}:{ident}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Resource:
        return cls(
            kind=data["kind"],
            **{k: data.get(k) for k in ("id", "arn", "name", "account", "region")},
            tags=dict(data.get("tags") or {}),
            details=dict(data.get("details") or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for name in ("id", "arn", "name", "account", "region"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.tags:
            out["tags"] = dict(self.tags)
        if self.details:
            out["details"] = dict(self.details)
        return out


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it, as far as the event says."""

    principal_arn: str | None = None
    user_name: str | None = None
    user_type: str | None = None  # IAMUser, AssumedRole, Root, FederatedUser, AWSService...
    principal_id: str | None = None
    access_key_id: str | None = None
    account: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    #: For assumed-role sessions: the role that issued the session (CloudTrail's sessionIssuer).
    session_issuer_arn: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}

    def __bool__(self) -> bool:
        return any(getattr(self, k) is not None for k in self.__slots__)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Actor:
        return cls(**{k: data.get(k) for k in cls.__slots__})


@dataclass(frozen=True, slots=True)
class Finding:
    """One normalized finding. ``event`` is the original (envelope) event the finding came from."""

    source: str
    id: str
    type: str
    title: str
    severity: float
    severity_label: str
    account: str
    region: str
    time: str
    resources: tuple[Resource, ...] = ()
    actor: Actor = field(default_factory=Actor)
    #: Every actor the finding names (attack sequences name many); ``actor`` is the primary one.
    actors: tuple[Actor, ...] = ()
    event: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    description: str = ""
    #: Which product raised it (GuardDuty, Inspector, Security Hub...), for Security Hub findings.
    product: str | None = None
    #: Identity of the underlying detection across delivery shapes: the GuardDuty finding id for a
    #: GuardDuty finding whether it arrived natively, via Security Hub ASFF or OCSF. Keys incidents.
    origin_id: str | None = None
    archived: bool = False
    sample: bool = False
    count: int = 1
    first_seen: str | None = None
    last_seen: str | None = None
    #: Source-specific facts that are useful in conditions and messages (API name, error code...).
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], event: Mapping[str, Any] | None = None) -> Finding:
        """The inverse of :meth:`to_dict` (used to act on a stored finding after an approval)."""
        actor = Actor.from_dict(data.get("actor") or {})
        return cls(
            source=data["source"],
            id=data["id"],
            type=data["type"],
            title=data["title"],
            severity=float(data["severity"]),
            severity_label=data["severity_label"],
            account=data["account"],
            region=data["region"],
            time=data["time"],
            resources=tuple(Resource.from_dict(r) for r in data.get("resources", ())),
            actor=actor,
            actors=tuple(Actor.from_dict(a) for a in data.get("actors", ())) or ((actor,) if actor else ()),
            event=event or data.get("event") or {},
            description=data.get("description", ""),
            product=data.get("product"),
            origin_id=data.get("origin_id"),
            archived=bool(data.get("archived", False)),
            sample=bool(data.get("sample", False)),
            count=int(data.get("count", 1)),
            first_seen=data.get("first_seen"),
            last_seen=data.get("last_seen"),
            details=dict(data.get("details") or {}),
        )

    def resources_of(self, *kinds: str) -> tuple[Resource, ...]:
        return tuple(r for r in self.resources if r.kind in kinds)

    def to_dict(self, *, with_event: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "id": self.id,
            "type": self.type,
            "title": self.title,
            "severity": self.severity,
            "severity_label": self.severity_label,
            "account": self.account,
            "region": self.region,
            "time": self.time,
            "resources": [r.to_dict() for r in self.resources],
            "actor": self.actor.to_dict(),
        }
        if len(self.actors) > 1:
            out["actors"] = [a.to_dict() for a in self.actors]
        for name in ("description", "product", "origin_id", "first_seen", "last_seen"):
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.archived:
            out["archived"] = True
        if self.sample:
            out["sample"] = True
        if self.count != 1:
            out["count"] = self.count
        if self.details:
            out["details"] = dict(self.details)
        if with_event:
            out["event"] = self.event
        return out
