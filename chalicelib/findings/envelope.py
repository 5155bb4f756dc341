"""The EventBridge-shaped event that playbook patterns match: live events as they are, raw records wrapped.

Wrapping follows what EventBridge itself delivers, so one pattern matches a live event and a
replayed log record alike:

* CloudTrail record (an element of a log file's ``Records``) → ``detail-type`` by ``eventType``
  (:data:`CLOUDTRAIL_DETAIL_TYPES`), ``source`` ``aws.`` + the ``eventSource`` prefix
  (``iam.amazonaws.com`` → ``aws.iam``), ``account`` = ``recipientAccountId`` (else
  ``userIdentity.accountId``), ``time`` = ``eventTime``, ``region`` = ``awsRegion``,
  ``resources`` = ``[]``, ``detail`` = the record. Checked against the native events in
  ``tests/data/corpus/cloudtrail/ct_eb_*`` and the EventBridge user guide ("AWS service events
  delivered via AWS CloudTrail"). Sign-in events are delivered as ``AWS Console Sign In via
  CloudTrail`` (the guide's list spells it ``Signin``; delivered events and the guide's own
  patterns use ``Sign In``) and normalize accepts both.
* GuardDuty finding, API (PascalCase) or camelCase → ``GuardDuty Finding`` from
  ``aws.guardduty`` with a camelCase ``detail``; an envelope whose ``detail`` is PascalCase gets
  its ``detail`` converted (:mod:`.camelcase`).
* ASFF finding → ``Security Hub Findings - Imported``; OCSF finding → ``Findings Imported V2``,
  both from ``aws.securityhub`` with ``detail.findings = [finding]``.

Envelope ``id``s of wrapped records are deterministic UUIDs (uuid5 of the record's own id), so a
replayed record always gets the same id. Envelope fields the record does not have are left out.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from .arn import parse_arn
from .camelcase import camelize_finding, is_pascal_finding
from .fields import first, get, ident, iso_time, mapping
from .model import InvalidEvent

#: CloudTrail ``eventType`` → the ``detail-type`` EventBridge gives it.
CLOUDTRAIL_DETAIL_TYPES = {
    "AwsApiCall": "AWS API Call via CloudTrail",
    "AwsConsoleSignIn": "AWS Console Sign In via CloudTrail",
    "AwsServiceEvent": "AWS Service Event via CloudTrail",
    "AwsConsoleAction": "AWS Console Action via CloudTrail",
    "AwsCloudTrailInsight": "AWS Insight via CloudTrail",
    "AwsVpceEvent": "AWS Network Activity Event via CloudTrail",
}
GUARDDUTY_DETAIL_TYPE = "GuardDuty Finding"
ASFF_DETAIL_TYPE = "Security Hub Findings - Imported"
OCSF_DETAIL_TYPE = "Findings Imported V2"
_SIGN_IN_EVENTS = {"ConsoleLogin", "CheckMfa", "ExitRole", "SwitchRole", "RenewRole", "PasswordUpdated"}
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "clampdown:canonical-event")


def canonical_event(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The EventBridge-shaped form of ``obj``; raises :class:`InvalidEvent` for anything unrecognisable.

    An EventBridge event (a ``dict``) is returned as the same object unless its GuardDuty
    ``detail`` needs camelCasing; nothing is modified in place.
    """
    if not isinstance(obj, Mapping):
        raise InvalidEvent(f"event must be a JSON object, not {type(obj).__name__}")
    if "detail-type" in obj or "detail" in obj:
        return _eventbridge(obj)
    if "eventVersion" in obj or ("eventSource" in obj and "eventName" in obj):
        return _wrap_cloudtrail(obj)
    if "finding_info" in obj and ("metadata" in obj or "class_uid" in obj):
        return _wrap_ocsf(obj)
    if "SchemaVersion" in obj and ("ProductArn" in obj or "AwsAccountId" in obj):
        return _wrap_asff(obj)
    if ("Service" in obj or "Resource" in obj) and is_pascal_finding(obj):
        return _wrap_guardduty(camelize_finding(obj))
    if "schemaVersion" in obj and "accountId" in obj and ("service" in obj or "resource" in obj):
        return _wrap_guardduty(obj)
    raise InvalidEvent(
        "unrecognised event: not an EventBridge event (no detail-type/detail), a CloudTrail record, "
        "a GuardDuty finding, a Security Hub ASFF finding or an OCSF finding"
    )


def _eventbridge(event: Mapping[str, Any]) -> dict[str, Any]:
    detail = event.get("detail")
    if (
        event.get("source") == "aws.guardduty"
        and event.get("detail-type") == GUARDDUTY_DETAIL_TYPE
        and isinstance(detail, Mapping)
        and is_pascal_finding(detail)
    ):
        return {**event, "detail": camelize_finding(detail)}
    return event if isinstance(event, dict) else dict(event)


def _envelope(key: str, detail_type: str, source: str, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "version": "0",
        "id": str(uuid.uuid5(_NAMESPACE, key)),
        "detail-type": detail_type,
        "source": source,
    }
    out.update({k: v for k, v in fields.items() if v is not None and k != "detail"})
    out["resources"] = fields.get("resources") or []
    out["detail"] = fields["detail"]
    return out


def _seconds(value: Any) -> str | None:
    """EventBridge ``time``: ISO-8601 UTC to the second."""
    stamp = iso_time(value)
    return stamp[:19] + "Z" if stamp else None


def cloudtrail_detail_type(record: Mapping[str, Any]) -> str:
    """The ``detail-type`` EventBridge gives a CloudTrail record (by ``eventType``)."""
    event_type = ident(record, "eventType")
    if event_type in CLOUDTRAIL_DETAIL_TYPES:
        return CLOUDTRAIL_DETAIL_TYPES[event_type]
    if ident(record, "eventSource") == "signin.amazonaws.com" and ident(record, "eventName") in _SIGN_IN_EVENTS:
        return CLOUDTRAIL_DETAIL_TYPES["AwsConsoleSignIn"]
    return CLOUDTRAIL_DETAIL_TYPES["AwsApiCall"]


def cloudtrail_source(event_source: str | None) -> str | None:
    """``iam.amazonaws.com`` → ``aws.iam``."""
    if not event_source:
        return None
    return "aws." + event_source.split(".", 1)[0]


def cloudtrail_record_key(record: Mapping[str, Any]) -> str:
    """A stable identity for a record: its ``eventID``, else the fields that make it unique."""
    event_id = ident(record, "eventID")
    if event_id:
        return event_id
    parts = (
        ident(record, "eventSource"),
        ident(record, "eventName"),
        ident(record, "eventTime"),
        ident(record, "requestID"),
        ident(record, "recipientAccountId"),
        ident(record, "userIdentity", "arn") or ident(record, "userIdentity", "principalId"),
        ident(record, "sourceIPAddress"),
    )
    return "|".join(p or "" for p in parts)


def _wrap_cloudtrail(record: Mapping[str, Any]) -> dict[str, Any]:
    return _envelope(
        "cloudtrail:" + cloudtrail_record_key(record),
        cloudtrail_detail_type(record),
        cloudtrail_source(ident(record, "eventSource")) or "aws.cloudtrail",
        account=first(ident(record, "recipientAccountId"), ident(record, "userIdentity", "accountId")),
        time=ident(record, "eventTime"),
        region=ident(record, "awsRegion"),
        detail=record,
    )


def _wrap_guardduty(finding: Mapping[str, Any]) -> dict[str, Any]:
    return _envelope(
        "guardduty:" + (ident(finding, "arn") or ident(finding, "id") or ""),
        GUARDDUTY_DETAIL_TYPE,
        "aws.guardduty",
        account=ident(finding, "accountId"),
        time=_seconds(get(finding, "updatedAt")),
        region=ident(finding, "region"),
        detail=finding,
    )


def _wrap_asff(finding: Mapping[str, Any]) -> dict[str, Any]:
    product = parse_arn(get(finding, "ProductArn"))
    finding_id = ident(finding, "Id")
    return _envelope(
        "securityhub:" + (finding_id or ""),
        ASFF_DETAIL_TYPE,
        "aws.securityhub",
        account=ident(finding, "AwsAccountId"),
        time=_seconds(get(finding, "UpdatedAt")),
        region=first(ident(finding, "Region"), product.region if product and product.region else None),
        resources=[r for r in (first(ident(finding, "ProductFields", "aws/securityhub/FindingId"), finding_id),) if r],
        detail={"findings": [finding]},
    )


def _wrap_ocsf(finding: Mapping[str, Any]) -> dict[str, Any]:
    info = mapping(finding, "finding_info") or {}
    metadata_uid = ident(finding, "metadata", "uid")
    return _envelope(
        "securityhub-ocsf:" + (metadata_uid or ident(info, "uid") or ""),
        OCSF_DETAIL_TYPE,
        "aws.securityhub",
        account=ident(finding, "cloud", "account", "uid"),
        time=_seconds(first(get(info, "modified_time_dt"), get(finding, "time_dt"))),
        region=ident(finding, "cloud", "region"),
        resources=[metadata_uid] if metadata_uid else [],
        detail={"findings": [finding]},
    )
