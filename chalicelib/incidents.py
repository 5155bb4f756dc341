"""The incident store: one incident per underlying finding, its steps, timeline and approvals.

Two backends with the same semantics: DynamoDB (deployed; conditional writes make decisions and
budgets race-free) and memory (simulations, drills, tests). Both take their clock from the caller.

DynamoDB layout (one table): ``pk = INC#<id>`` with ``sk`` = ``META`` (the incident), ``STEP#<key>``,
``LOG#<time>#<n>`` (the audit timeline); ``pk = APPROVAL#<id>`` / ``sk = META``;
``pk = BLAST#<kind>`` / ``sk = <window start>`` (action counters, expiring). Incidents are listed
through the ``by-time`` index (``gsi1pk = INCIDENT``, ``gsi1sk = last seen``).
Nested data is stored as JSON text, so no float/Decimal conversion can alter a before-state.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib.findings.model import Finding

INDEX_NAME = "by-time"
#: What ``save_incident`` writes besides the status (the rest of an incident is set when it opens).
MUTABLE_FIELDS = ("notes", "suppressed", "notification", "settled")
TERMINAL_STEP_STATES = frozenset(
    {"contained", "already-contained", "done", "skipped", "failed", "dry-run", "denied", "expired", "rolled-back"}
)


def iso(moment: datetime) -> str:
    """How every record stores a time: UTC, millisecond precision (records sort by it), ``Z`` suffix."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def step_order(step: StepRecord) -> tuple[str, str, int]:
    return (step.created_at, step.playbook, step.step)


def incident_id_for(finding: Finding) -> str:
    """The same id for every delivery shape of one underlying finding (see ``Finding.origin_id``)."""
    origin = f"{finding.account}:{finding.origin_id or finding.id}"
    return "inc-" + hashlib.sha256(origin.encode()).hexdigest()[:20]


@dataclass
class Incident:
    id: str
    origin_id: str
    title: str
    type: str
    severity: float
    severity_label: str
    account: str
    region: str
    first_seen: str
    last_seen: str
    deliveries: int = 1
    status: str = "open"
    sources: list[str] = field(default_factory=list)
    finding_ids: list[str] = field(default_factory=list)
    finding: dict[str, Any] = field(default_factory=dict)
    suppressed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    notification: dict[str, Any] = field(default_factory=dict)
    #: Keys of the steps that need nothing more (finished, or waiting for a human) when the incident was
    #: last concluded: a redelivery whose planned steps are all here reads no step records.
    settled: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Incident:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class StepRecord:
    incident_id: str
    key: str
    playbook: str
    step: int
    action: str
    status: str
    mode: str
    target: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    reason: str | None = None
    approval_id: str | None = None
    approved_by: str | None = None
    created_at: str = ""
    updated_at: str = ""
    attempts: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STEP_STATES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepRecord:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Approval:
    id: str
    incident_id: str
    step_key: str
    status: str  # pending | approved | denied | expired
    requested_at: str
    expires_at: float
    approvers: list[str] = field(default_factory=list)
    decided_by: str | None = None
    decided_at: str | None = None
    reason: str | None = None
    message: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Approval:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class LogEntry:
    time: str
    kind: str
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)


class IncidentStore(ABC):
    """What the responder, the CLI and the Slack handler need from the audit trail."""

    @abstractmethod
    def upsert_incident(self, finding: Finding, now: str) -> tuple[Incident, bool]:
        """Create the incident for ``finding``, or count a new delivery; True when it was created."""

    @abstractmethod
    def record_delivery(self, finding: Finding, now: str) -> Incident | None:
        """Count a delivery of ``finding`` on its incident if one exists (never creates one)."""

    @abstractmethod
    def get_incident(self, incident_id: str) -> Incident | None: ...

    @abstractmethod
    def save_incident(self, incident: Incident) -> None:
        """Write the incident's mutable fields (status, notes, suppressions, notification)."""

    @abstractmethod
    def list_incidents(self, limit: int = 50) -> list[Incident]:
        """Most recently seen first."""

    @abstractmethod
    def get_step(self, incident_id: str, key: str) -> StepRecord | None: ...

    @abstractmethod
    def put_step(self, record: StepRecord) -> None: ...

    @abstractmethod
    def put_step_if(self, record: StepRecord, expected_status: str) -> bool:
        """Write the step only if its stored status is still ``expected_status``: of several runners moving
        it on at once (duplicate commands), exactly one gets True."""

    @abstractmethod
    def list_steps(self, incident_id: str) -> list[StepRecord]:
        """In the order they were first recorded."""

    @abstractmethod
    def log(self, incident_id: str, entry: LogEntry) -> None: ...

    @abstractmethod
    def timeline(self, incident_id: str) -> list[LogEntry]: ...

    @abstractmethod
    def consume_budget(self, kind: str, window_start: int, limit: int, expires_at: int) -> bool:
        """Count one action of ``kind`` in the window; False (and no count) when the limit is reached."""

    @abstractmethod
    def put_approval(self, approval: Approval) -> None: ...

    @abstractmethod
    def get_approval(self, approval_id: str) -> Approval | None: ...

    @abstractmethod
    def decide_approval(self, approval_id: str, status: str, by: str, at: str, reason: str | None = None) -> bool:
        """Record a decision once: False when the request was already decided (double click, race)."""

    @abstractmethod
    def list_approvals(self, status: str | None = "pending") -> list[Approval]: ...


def _new_incident(finding: Finding, incident_id: str, now: str) -> Incident:
    return Incident(
        id=incident_id,
        origin_id=finding.origin_id or finding.id,
        title=finding.title,
        type=finding.type,
        severity=finding.severity,
        severity_label=finding.severity_label,
        account=finding.account,
        region=finding.region,
        first_seen=now,
        last_seen=now,
        sources=[finding.source],
        finding_ids=[finding.id],
        finding=finding.to_dict(),
    )


class MemoryIncidentStore(IncidentStore):
    """Thread-safe, in-process."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.incidents: dict[str, Incident] = {}
        self.steps: dict[tuple[str, str], StepRecord] = {}
        self.logs: dict[str, list[LogEntry]] = {}
        self.budgets: dict[tuple[str, int], int] = {}
        self.approvals: dict[str, Approval] = {}

    def upsert_incident(self, finding: Finding, now: str) -> tuple[Incident, bool]:
        incident_id = incident_id_for(finding)
        with self._lock:
            existing = self.incidents.get(incident_id)
            if existing is None:
                self.incidents[incident_id] = _new_incident(finding, incident_id, now)
                return _copy(self.incidents[incident_id]), True
            _count_delivery(existing, finding, now)
            return _copy(existing), False

    def record_delivery(self, finding: Finding, now: str) -> Incident | None:
        with self._lock:
            existing = self.incidents.get(incident_id_for(finding))
            if existing is None:
                return None
            _count_delivery(existing, finding, now)
            return _copy(existing)

    def get_incident(self, incident_id: str) -> Incident | None:
        with self._lock:
            found = self.incidents.get(incident_id)
            return _copy(found) if found else None

    def save_incident(self, incident: Incident) -> None:
        with self._lock:
            current = self.incidents[incident.id]
            for name in ("status", *MUTABLE_FIELDS):
                setattr(current, name, json.loads(json.dumps(getattr(incident, name))))

    def list_incidents(self, limit: int = 50) -> list[Incident]:
        with self._lock:
            ordered = sorted(self.incidents.values(), key=lambda i: i.last_seen, reverse=True)
            return [_copy(i) for i in ordered[:limit]]

    def get_step(self, incident_id: str, key: str) -> StepRecord | None:
        with self._lock:
            found = self.steps.get((incident_id, key))
            return StepRecord.from_dict(json.loads(json.dumps(found.to_dict()))) if found else None

    def put_step(self, record: StepRecord) -> None:
        with self._lock:
            self.steps[(record.incident_id, record.key)] = StepRecord.from_dict(
                json.loads(json.dumps(record.to_dict(), default=str))
            )

    def put_step_if(self, record: StepRecord, expected_status: str) -> bool:
        with self._lock:
            stored = self.steps.get((record.incident_id, record.key))
            if stored is None or stored.status != expected_status:
                return False
            self.put_step(record)
            return True

    def list_steps(self, incident_id: str) -> list[StepRecord]:
        with self._lock:
            found = [s for (i, _), s in self.steps.items() if i == incident_id]
        return sorted(found, key=step_order)

    def log(self, incident_id: str, entry: LogEntry) -> None:
        with self._lock:
            self.logs.setdefault(incident_id, []).append(entry)

    def timeline(self, incident_id: str) -> list[LogEntry]:
        with self._lock:
            return list(self.logs.get(incident_id, ()))

    def consume_budget(self, kind: str, window_start: int, limit: int, expires_at: int) -> bool:
        with self._lock:
            used = self.budgets.get((kind, window_start), 0)
            if used >= limit:
                return False
            self.budgets[(kind, window_start)] = used + 1
            return True

    def put_approval(self, approval: Approval) -> None:
        with self._lock:
            self.approvals[approval.id] = Approval.from_dict(approval.to_dict())

    def get_approval(self, approval_id: str) -> Approval | None:
        with self._lock:
            found = self.approvals.get(approval_id)
            return Approval.from_dict(found.to_dict()) if found else None

    def decide_approval(self, approval_id: str, status: str, by: str, at: str, reason: str | None = None) -> bool:
        with self._lock:
            found = self.approvals.get(approval_id)
            if found is None or found.status != "pending":
                return False
            found.status, found.decided_by, found.decided_at, found.reason = status, by, at, reason
            return True

    def list_approvals(self, status: str | None = "pending") -> list[Approval]:
        with self._lock:
            return [
                Approval.from_dict(a.to_dict()) for a in self.approvals.values() if status is None or a.status == status
            ]


def _count_delivery(incident: Incident, finding: Finding, now: str) -> None:
    incident.deliveries += 1
    incident.last_seen = max(incident.last_seen, now)
    if finding.source not in incident.sources:
        incident.sources.append(finding.source)
    if finding.id not in incident.finding_ids:
        incident.finding_ids.append(finding.id)


def _copy(incident: Incident) -> Incident:
    return Incident.from_dict(json.loads(json.dumps(incident.to_dict(), default=str)))


class DynamoIncidentStore(IncidentStore):
    """The deployed store; ``client`` is a boto3 DynamoDB client."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        self._counter = itertools.count()

    # -- incidents --------------------------------------------------------------------------
    def upsert_incident(self, finding: Finding, now: str) -> tuple[Incident, bool]:
        incident = _new_incident(finding, incident_id_for(finding), now)
        response = self.client.update_item(
            TableName=self.table,
            Key={"pk": {"S": f"INC#{incident.id}"}, "sk": {"S": "META"}},
            UpdateExpression=(
                "SET #data = if_not_exists(#data, :data), first_seen = if_not_exists(first_seen, :now), "
                "last_seen = :now, gsi1pk = :gsi, gsi1sk = :now, #status = if_not_exists(#status, :open) "
                "ADD deliveries :one, sources :source, finding_ids :fid"
            ),
            ExpressionAttributeNames={"#data": "data", "#status": "status"},
            ExpressionAttributeValues={
                ":data": {"S": json.dumps(incident.to_dict(), default=str)},
                ":now": {"S": now},
                ":gsi": {"S": "INCIDENT"},
                ":open": {"S": "open"},
                ":one": {"N": "1"},
                ":source": {"SS": [finding.source]},
                ":fid": {"SS": [finding.id]},
            },
            ReturnValues="ALL_NEW",
        )
        item = response["Attributes"]
        return self._incident(item), item["deliveries"]["N"] == "1"

    def record_delivery(self, finding: Finding, now: str) -> Incident | None:
        # Most findings no playbook plans for have no incident: a read (half a capacity unit, no write)
        # settles those; the conditional write covers an incident deleted in between.
        key = {"pk": {"S": f"INC#{incident_id_for(finding)}"}, "sk": {"S": "META"}}
        if "Item" not in self.client.get_item(TableName=self.table, Key=key, ProjectionExpression="pk"):
            return None
        try:
            response = self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression=(
                    "SET last_seen = :now, gsi1sk = :now ADD deliveries :one, sources :source, finding_ids :fid"
                ),
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={
                    ":now": {"S": now},
                    ":one": {"N": "1"},
                    ":source": {"SS": [finding.source]},
                    ":fid": {"SS": [finding.id]},
                },
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return self._incident(response["Attributes"])

    def _incident(self, item: Mapping[str, Any]) -> Incident:
        incident = Incident.from_dict(json.loads(item["data"]["S"]))
        incident.first_seen = item["first_seen"]["S"]
        incident.last_seen = item["last_seen"]["S"]
        incident.deliveries = int(item["deliveries"]["N"])
        incident.status = item["status"]["S"]
        incident.sources = sorted(item.get("sources", {}).get("SS", []))
        incident.finding_ids = sorted(item.get("finding_ids", {}).get("SS", []))
        if "mutable" in item:
            for name, value in json.loads(item["mutable"]["S"]).items():
                setattr(incident, name, value)
        return incident

    def get_incident(self, incident_id: str) -> Incident | None:
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"INC#{incident_id}"}, "sk": {"S": "META"}}, ConsistentRead=True
        ).get("Item")
        return self._incident(item) if item else None

    def save_incident(self, incident: Incident) -> None:
        mutable = {name: getattr(incident, name) for name in MUTABLE_FIELDS}
        self.client.update_item(
            TableName=self.table,
            Key={"pk": {"S": f"INC#{incident.id}"}, "sk": {"S": "META"}},
            UpdateExpression="SET #status = :status, mutable = :mutable",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":status": {"S": incident.status},
                ":mutable": {"S": json.dumps(mutable, default=str)},
            },
        )

    def list_incidents(self, limit: int = 50) -> list[Incident]:
        """Pages through the index until ``limit`` incidents are read (a page holds at most 1 MB)."""
        incidents: list[Incident] = []
        start: dict[str, Any] | None = None
        while len(incidents) < limit:
            query: dict[str, Any] = {
                "TableName": self.table,
                "IndexName": INDEX_NAME,
                "KeyConditionExpression": "gsi1pk = :gsi",
                "ExpressionAttributeValues": {":gsi": {"S": "INCIDENT"}},
                "ScanIndexForward": False,
                "Limit": limit - len(incidents),
            }
            if start:
                query["ExclusiveStartKey"] = start
            response = self.client.query(**query)
            incidents.extend(self._incident(item) for item in response["Items"])
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        return incidents[:limit]

    # -- steps and timeline -----------------------------------------------------------------
    def get_step(self, incident_id: str, key: str) -> StepRecord | None:
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": f"INC#{incident_id}"}, "sk": {"S": f"STEP#{key}"}},
            ConsistentRead=True,
        ).get("Item")
        return StepRecord.from_dict(json.loads(item["data"]["S"])) if item else None

    def put_step(self, record: StepRecord) -> None:
        self.client.put_item(TableName=self.table, Item=self._step_item(record))

    def put_step_if(self, record: StepRecord, expected_status: str) -> bool:
        try:
            self.client.put_item(
                TableName=self.table,
                Item=self._step_item(record),
                ConditionExpression="#status = :expected",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":expected": {"S": expected_status}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    @staticmethod
    def _step_item(record: StepRecord) -> dict[str, Any]:
        return {
            "pk": {"S": f"INC#{record.incident_id}"},
            "sk": {"S": f"STEP#{record.key}"},
            "status": {"S": record.status},
            "data": {"S": json.dumps(record.to_dict(), default=str)},
        }

    def _query(self, pk: str, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": pk}, ":prefix": {"S": prefix}},
            ConsistentRead=True,
        ):
            items.extend(page["Items"])
        return items

    def list_steps(self, incident_id: str) -> list[StepRecord]:
        steps = [StepRecord.from_dict(json.loads(i["data"]["S"])) for i in self._query(f"INC#{incident_id}", "STEP#")]
        return sorted(steps, key=step_order)

    def log(self, incident_id: str, entry: LogEntry) -> None:
        # The process counter keeps order within a second; the random part keeps processes apart.
        unique = f"{next(self._counter):06d}#{secrets.token_hex(4)}"
        body = {"time": entry.time, "kind": entry.kind, "message": entry.message, "data": dict(entry.data)}
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"INC#{incident_id}"},
                "sk": {"S": f"LOG#{entry.time}#{unique}"},
                "data": {"S": json.dumps(body, default=str)},
            },
        )

    def timeline(self, incident_id: str) -> list[LogEntry]:
        entries = []
        for item in self._query(f"INC#{incident_id}", "LOG#"):
            data = json.loads(item["data"]["S"])
            entries.append(LogEntry(data["time"], data["kind"], data["message"], data.get("data", {})))
        return entries

    # -- blast radius -----------------------------------------------------------------------
    def consume_budget(self, kind: str, window_start: int, limit: int, expires_at: int) -> bool:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"BLAST#{kind}"}, "sk": {"S": str(window_start)}},
                UpdateExpression="ADD used :one SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(used) OR used < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":expires": {"N": str(expires_at)},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # -- approvals --------------------------------------------------------------------------
    def put_approval(self, approval: Approval) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"APPROVAL#{approval.id}"},
                "sk": {"S": "META"},
                "status": {"S": approval.status},
                "expires_at": {"N": str(int(approval.expires_at) + 30 * 86400)},
                "data": {"S": json.dumps(approval.to_dict(), default=str)},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_approval(self, approval_id: str) -> Approval | None:
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"APPROVAL#{approval_id}"}, "sk": {"S": "META"}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        approval = Approval.from_dict(json.loads(item["data"]["S"]))
        approval.status = item["status"]["S"]
        for name in ("decided_by", "decided_at", "reason"):
            if name in item:
                setattr(approval, name, item[name]["S"])
        return approval

    def decide_approval(self, approval_id: str, status: str, by: str, at: str, reason: str | None = None) -> bool:
        values = {":status": {"S": status}, ":pending": {"S": "pending"}, ":by": {"S": by}, ":at": {"S": at}}
        expression = "SET #status = :status, decided_by = :by, decided_at = :at"
        if reason:
            values[":reason"] = {"S": reason}
            expression += ", reason = :reason"
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"APPROVAL#{approval_id}"}, "sk": {"S": "META"}},
                UpdateExpression=expression,
                ConditionExpression="#status = :pending",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def list_approvals(self, status: str | None = "pending") -> list[Approval]:
        approvals: list[Approval] = []
        paginator = self.client.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self.table,
            FilterExpression="begins_with(pk, :prefix)",
            ExpressionAttributeValues={":prefix": {"S": "APPROVAL#"}},
        ):
            for item in page["Items"]:
                approval = self.get_approval(item["pk"]["S"].split("#", 1)[1])
                if approval and (status is None or approval.status == status):
                    approvals.append(approval)
        return approvals


TABLE_DEFINITION: dict[str, Any] = {
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
        {"AttributeName": "gsi1pk", "AttributeType": "S"},
        {"AttributeName": "gsi1sk", "AttributeType": "S"},
    ],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": INDEX_NAME,
            "KeySchema": [
                {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
    "BillingMode": "PAY_PER_REQUEST",
}
