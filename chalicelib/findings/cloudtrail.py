"""CloudTrail events (``AWS API Call via CloudTrail``, console sign-in, service events) → :class:`Finding`.

A CloudTrail event is a record of something that happened, not a verdict: ``severity`` is 0.0
INFORMATIONAL for every event, including failed calls (``details.error_code`` says whether it
failed, for conditions that care). ``type`` is ``<service>:<eventName>`` (``iam:CreateAccessKey``,
``signin:ConsoleLogin``), which is also the IAM action name for most API calls.

Resources are the call's targets, read through :data:`TARGETS` (request parameters and response
elements per event source, e.g. ``requestParameters.userName`` of an IAM call → ``iam-user``)
plus the ``resources`` array CloudTrail itself records. The caller is the actor, not a resource.
Targets of kinds no action handles (snapshots, secrets, keys, detectors...) are ``other`` resources
with ``details.service`` and ``details.resource_type``, so that notifications and conditions name them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from .arn import KIND_BY_CFN_TYPE, parse_arn, resource_from_arn
from .envelope import cloudtrail_record_key
from .fields import (
    MAX_ITEMS,
    compact,
    first,
    flag,
    get,
    ident,
    ip_address,
    iso_time,
    items,
    mapping,
    required,
    text,
)
from .model import GLOBAL_KINDS, Actor, Finding, Resource
from .resources import ec2_instance_arn, finalize, resource, s3_bucket_arn

WHAT = "CloudTrail event"

_IAM_NAME = re.compile(r"[\w+=,.@-]{1,128}")
#: What a target must look like, by kind: parameters are whatever the caller sent (even when the
#: call failed), and e.g. IAM's ``userName`` is ``"AWS ROOT USER"`` in root MFA events.
_SHAPE = {
    "ec2-instance": re.compile(r"i-[0-9A-Za-z]{8,32}"),
    "security-group": re.compile(r"sg-[0-9A-Za-z]{8,32}"),
    "iam-user": _IAM_NAME,
    "iam-role": _IAM_NAME,
    "access-key": re.compile(r"[A-Za-z0-9]{1,128}"),  # IAM's AccessKeyId is \w+; published samples shorten it
    "s3-bucket": re.compile(r"[A-Za-z0-9._-]{1,255}"),
    "cloudtrail-trail": re.compile(r"[A-Za-z0-9._-]{1,128}"),
    "other": re.compile(r"[\w+=,.@:/-]{1,512}"),
}

#: (event source, path from the record, kind). ``[]`` in a path walks every list element. Event source
#: ``*``: any service. Kind ``arn``: the value must be an ARN, of whatever kind it names; ``other/<type>``:
#: an ``other`` resource of that resource type (an ARN of any kind we do not handle is taken too).
TARGETS: tuple[tuple[str, str, str], ...] = (
    ("*", "requestParameters.resourceArn", "arn"),
    ("*", "requestParameters.resourceARN", "arn"),
    ("*", "requestParameters.resourceArns[]", "arn"),
    ("iam.amazonaws.com", "requestParameters.userName", "iam-user"),
    ("iam.amazonaws.com", "requestParameters.roleName", "iam-role"),
    ("iam.amazonaws.com", "requestParameters.groupName", "other/group"),
    ("iam.amazonaws.com", "requestParameters.policyArn", "arn"),
    ("iam.amazonaws.com", "requestParameters.accessKeyId", "access-key"),
    ("iam.amazonaws.com", "responseElements.accessKey.accessKeyId", "access-key"),
    ("sts.amazonaws.com", "requestParameters.roleArn", "iam-role"),
    ("rolesanywhere.amazonaws.com", "requestParameters.roleArns[]", "iam-role"),
    ("rolesanywhere.amazonaws.com", "responseElements.trustAnchor.trustAnchorArn", "arn"),
    ("rolesanywhere.amazonaws.com", "responseElements.profile.profileArn", "arn"),
    ("s3.amazonaws.com", "requestParameters.bucketName", "s3-bucket"),
    ("lambda.amazonaws.com", "requestParameters.functionName", "lambda-function"),
    ("ec2.amazonaws.com", "requestParameters.instanceId", "ec2-instance"),
    ("ec2.amazonaws.com", "requestParameters.instancesSet.items[].instanceId", "ec2-instance"),
    ("ec2.amazonaws.com", "responseElements.instancesSet.items[].instanceId", "ec2-instance"),
    ("ec2.amazonaws.com", "requestParameters.groupId", "security-group"),
    ("ec2.amazonaws.com", "requestParameters.groupSet.items[].groupId", "security-group"),
    ("ec2.amazonaws.com", "requestParameters.snapshotId", "other/snapshot"),
    ("ec2.amazonaws.com", "requestParameters.imageId", "other/image"),
    ("ec2.amazonaws.com", "requestParameters.DeleteFlowLogsRequest.FlowLogId.content", "other/flow-log"),
    ("ec2-instance-connect.amazonaws.com", "requestParameters.instanceId", "ec2-instance"),
    ("ssm.amazonaws.com", "requestParameters.instanceIds[]", "ec2-instance"),
    ("ssm.amazonaws.com", "requestParameters.target", "ec2-instance"),
    ("secretsmanager.amazonaws.com", "requestParameters.secretId", "other/secret"),
    ("kms.amazonaws.com", "requestParameters.keyId", "other/key"),
    ("cloudtrail.amazonaws.com", "requestParameters.name", "cloudtrail-trail"),
    ("cloudtrail.amazonaws.com", "requestParameters.trailName", "cloudtrail-trail"),
    ("guardduty.amazonaws.com", "requestParameters.detectorId", "other/detector"),
    ("rds.amazonaws.com", "requestParameters.dBInstanceIdentifier", "rds-instance"),
    ("rds.amazonaws.com", "requestParameters.vpcSecurityGroupIds[]", "security-group"),
    ("rds.amazonaws.com", "requestParameters.dBSnapshotIdentifier", "other/snapshot"),
    ("rds.amazonaws.com", "requestParameters.dBClusterSnapshotIdentifier", "other/cluster-snapshot"),
    ("eks.amazonaws.com", "requestParameters.name", "eks-cluster"),
    ("eks.amazonaws.com", "requestParameters.clusterName", "eks-cluster"),
    ("ecs.amazonaws.com", "requestParameters.cluster", "ecs-cluster"),
    ("bedrock.amazonaws.com", "requestParameters.modelId", "other/foundation-model"),
    ("events.amazonaws.com", "responseElements.ruleArn", "arn"),
    ("cloudfront.amazonaws.com", "responseElements.distribution.aRN", "arn"),
    ("cloudsearch.amazonaws.com", "responseElements.domainStatus.aRN", "arn"),
    ("route53resolver.amazonaws.com", "responseElements.resolverQueryLogConfig.arn", "arn"),
)
_TARGETS_BY_SOURCE: dict[str, list[tuple[tuple[str, ...], str]]] = {}
for _source, _path, _kind in TARGETS:
    _TARGETS_BY_SOURCE.setdefault(_source, []).append((tuple(_path.split(".")), _kind))


def normalize_cloudtrail(event: Mapping[str, Any]) -> list[Finding]:
    record = required(mapping(event, "detail"), f"{WHAT}: detail")
    event_source = required(ident(record, "eventSource"), f"{WHAT}: detail.eventSource")
    event_name = required(ident(record, "eventName"), f"{WHAT}: detail.eventName")
    identity = mapping(record, "userIdentity") or {}
    account = required(
        first(ident(record, "recipientAccountId"), ident(event, "account"), ident(identity, "accountId")),
        f"{WHAT}: detail.recipientAccountId",
    )
    region = required(first(ident(record, "awsRegion"), ident(event, "region")), f"{WHAT}: detail.awsRegion")
    time = required(
        first(iso_time(get(record, "eventTime")), iso_time(get(event, "time"))), f"{WHAT}: detail.eventTime"
    )
    service = event_source.split(".", 1)[0]
    caller_arn = parse_arn(get(identity, "arn"))
    partition = caller_arn.partition if caller_arn else "aws"
    actor = _actor(record, identity)
    error_code = ident(record, "errorCode")
    who = actor.principal_arn or actor.user_name or actor.user_type or "unknown principal"
    # eventID, else the record's own fields: the same for a live event and a replayed record.
    record_key = cloudtrail_record_key(record)
    title = f"{event_name} by {who}" + (f" failed: {error_code}" if error_code else "")
    return [
        Finding(
            source="cloudtrail",
            id=record_key,
            type=f"{service}:{event_name}",
            title=title[:1024],
            severity=0.0,
            severity_label="INFORMATIONAL",
            account=account,
            region=region,
            time=time,
            resources=finalize(_targets(record, event_source, account, region, partition)),
            actor=actor,
            actors=(actor,) if actor else (),
            event=event,
            description="",
            product="CloudTrail",
            origin_id=record_key,
            details=_details(record, identity, event_source, event_name),
        )
    ]


def _walk(value: Any, path: tuple[str, ...]) -> Iterator[Any]:
    """Values at ``path``; a step ending in ``[]`` fans out over a list."""
    if not path:
        yield value
        return
    step, rest = path[0], path[1:]
    if step.endswith("[]"):
        values = get(value, step[:-2])
        for item in values[:MAX_ITEMS] if isinstance(values, list) else ():
            yield from _walk(item, rest)
    else:
        yield from _walk(get(value, step), rest)


def _targets(record: Mapping[str, Any], event_source: str, account: str, region: str, partition: str) -> list[Resource]:
    out: list[Resource] = []
    for path, kind in (*_TARGETS_BY_SOURCE.get("*", ()), *_TARGETS_BY_SOURCE.get(event_source, ())):
        for value in _walk(record, path):
            target = _target(kind, ident(value), record, account, region, partition)
            if target is not None:
                out.append(target)
    for item in items(record, "resources"):
        from_arn = resource_from_arn(first(ident(item, "ARN"), ident(item, "arn")))
        if from_arn is None:
            continue
        cfn_kind = KIND_BY_CFN_TYPE.get(ident(item, "type") or "")
        kind = from_arn.kind if from_arn.kind != "other" else (cfn_kind or "other")
        details = {**from_arn.details, "type": ident(item, "type")}
        out.append(
            resource(
                kind,
                id=from_arn.id,
                arn=from_arn.arn,
                name=from_arn.name,
                account=from_arn.account or ident(item, "accountId") or account,
                region=from_arn.region or region,
                details=details,
            )
        )
    return out


def _target(
    kind: str, value: str | None, record: Mapping[str, Any], account: str, region: str, partition: str
) -> Resource | None:
    if value is None:
        return None
    kind, _, other_type = kind.partition("/")
    from_arn = resource_from_arn(value)
    if from_arn is not None:
        if kind != "arn" and from_arn.kind != kind:
            return None
        return resource(
            from_arn.kind,
            id=from_arn.id,
            arn=from_arn.arn,
            name=from_arn.name,
            account=from_arn.account or account,
            region=from_arn.region or (None if from_arn.kind in GLOBAL_KINDS else region),
            details=dict(from_arn.details),
        )
    if kind == "arn":
        return None
    shape = _SHAPE.get(kind)
    if shape is not None and not shape.fullmatch(value):
        return None
    if kind in ("iam-user", "iam-role"):
        return resource(kind, name=value, account=account)
    if kind == "access-key":
        return resource(kind, id=value, account=account, details=_key_owner(record))
    if kind == "ec2-instance":
        return resource(
            kind,
            id=value,
            arn=ec2_instance_arn(partition, region, account, value),
            account=account,
            region=region,
        )
    if kind == "security-group":
        return resource(kind, id=value, account=account, region=region)
    if kind == "lambda-function":  # a name, name:qualifier or a partial ARN (123456789012:function:name)
        parts = value.split(":")
        name = parts[2] if len(parts) >= 3 and parts[1] == "function" else parts[0]
        qualifier = parts[3] if len(parts) >= 4 and parts[1] == "function" else parts[1] if len(parts) == 2 else None
        return resource(kind, name=name or None, account=account, region=region, details={"qualifier": qualifier})
    if kind == "s3-bucket":
        return resource(kind, name=value, arn=s3_bucket_arn(partition, value), account=account)
    if kind == "other":
        service = ident(record, "eventSource") or ""
        details = {"service": service.split(".", 1)[0], "resource_type": other_type}
        return resource(kind, id=value, account=account, region=region, details=details)
    return resource(kind, name=value, account=account, region=region)


def _key_owner(record: Mapping[str, Any]) -> dict[str, Any]:
    """Whose key it is: the user the call names, else the caller (IAM's CreateAccessKey, UpdateAccessKey...
    act on the caller's own keys when no ``UserName`` is given), root included."""
    named = first(
        ident(record, "responseElements", "accessKey", "userName"),
        ident(record, "requestParameters", "userName"),
    )
    if named is not None:
        return {"user_name": named, "user_type": "IAMUser"}
    caller_type = ident(record, "userIdentity", "type")
    if caller_type == "Root":
        return {"user_type": "Root"}
    if caller_type == "IAMUser":
        return {"user_name": ident(record, "userIdentity", "userName"), "user_type": "IAMUser"}
    return {}


def _actor(record: Mapping[str, Any], identity: Mapping[str, Any]) -> Actor:
    issuer = mapping(identity, "sessionContext", "sessionIssuer") or {}
    user_type = ident(identity, "type")
    return Actor(
        principal_arn=ident(identity, "arn"),
        user_name=first(ident(identity, "userName"), ident(issuer, "userName")),
        user_type=user_type,
        principal_id=ident(identity, "principalId"),
        access_key_id=ident(identity, "accessKeyId"),
        account=ident(identity, "accountId"),
        source_ip=ip_address(record, "sourceIPAddress"),
        user_agent=text(record, "userAgent", limit=1024),
        session_issuer_arn=ident(issuer, "arn"),
    )


def _details(
    record: Mapping[str, Any], identity: Mapping[str, Any], event_source: str, event_name: str
) -> dict[str, Any]:
    return compact(
        {
            "event_source": event_source,
            "event_name": event_name,
            "event_type": ident(record, "eventType"),
            "error_code": ident(record, "errorCode"),
            "error_message": text(record, "errorMessage", limit=1024),
            "read_only": flag(record, "readOnly"),
            "user_identity_type": ident(identity, "type"),
            "invoked_by": ident(identity, "invokedBy"),
            "source_ip_address": ident(record, "sourceIPAddress"),
            "console_login": ident(record, "responseElements", "ConsoleLogin"),
            "mfa_used": ident(record, "additionalEventData", "MFAUsed"),
            "mfa_authenticated": flag(identity, "sessionContext", "attributes", "mfaAuthenticated"),
            "request_id": ident(record, "requestID"),
        }
    )
