"""Security Hub OCSF findings (``Findings Imported V2``) → one :class:`Finding` per ``detail.findings[]``.

Fields: ``id`` = ``finding_info.uid``; ``account`` = ``cloud.account.uid``; ``region`` =
``cloud.region``; ``time`` = ``finding_info.modified_time_dt`` (else ``time_dt``, the epoch
variants, the envelope ``time``; ``""`` when a trimmed capture has none); severity from
``severity_id`` (:mod:`.severity`); ``type`` = the GuardDuty-style entry of
``finding_info.types`` (``Threats`` comes first in real GuardDuty captures), else the first
type, else ``class_name``. Classes seen: 2004 Detection, 2003 Compliance, 2002 Vulnerability,
2006 Data Security.

``origin_id``: for GuardDuty (``metadata.product.name`` GuardDuty or product uid
``…/productv2/aws/guardduty``) ``finding_info.uid`` is the GuardDuty finding ARN and
``finding_info.uid_alt`` the native finding id: ``origin_id`` is ``uid_alt``, else the ARN's
last segment. Otherwise it is ``finding_info.uid``.

Real captures differ from the OCSF documents: an ``AWS::IAM::AccessKey`` resource's ``uid`` is
the bare key id with the user at ``data.user_name``/``data.user_type`` or ``user.name``, and an
EC2 instance is described either in ``data`` (GuardDuty's snake_case instance details) or in
``device``. Both are read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .arn import KIND_BY_CFN_TYPE, parse_arn, resource_from_arn
from .fields import (
    compact,
    first,
    get,
    ident,
    idents,
    ip_address,
    iso_time,
    items,
    mapping,
    number,
    present,
    required,
    text,
)
from .model import Actor, Finding, InvalidEvent, Resource
from .resources import access_key_resources, ec2_instance_arn, finalize, resource, s3_bucket_arn, tags_from
from .severity import ocsf_severity

_GUARDDUTY_TYPE = re.compile(r"[A-Za-z]+:[A-Za-z0-9]+/.+")
_GUARDDUTY_ID = re.compile(r":guardduty:.*/finding/([A-Za-z0-9-]{1,128})$")
#: OCSF ``status_id``: 3 Suppressed, 5 Archived.
_ARCHIVED_STATUS = {"Suppressed": 3, "Archived": 5}


def normalize_ocsf(event: Mapping[str, Any]) -> list[Finding]:
    findings = get(event, "detail", "findings")
    if not isinstance(findings, list) or not findings:
        raise InvalidEvent("Security Hub OCSF event: detail.findings is missing or empty")
    out = []
    for index, finding in enumerate(findings):
        where = f"OCSF finding [{index}]"
        if not isinstance(finding, Mapping):
            raise InvalidEvent(f"{where}: is not an object")
        out.append(_finding(finding, event, where))
    return out


def _finding(f: Mapping[str, Any], event: Mapping[str, Any], where: str) -> Finding:
    info = mapping(f, "finding_info") or {}
    finding_id = required(ident(info, "uid"), f"{where}: finding_info.uid")
    raw_resources = items(f, "resources")
    account = required(
        first(
            ident(f, "cloud", "account", "uid"),
            ident(event, "account"),
            first(*(ident(r, "owner", "account", "uid") for r in raw_resources)),
        ),
        f"{where}: cloud.account.uid",
    )
    region = required(
        first(
            ident(f, "cloud", "region"),
            first(*(ident(r, "region") for r in raw_resources)),
            ident(event, "region"),
        ),
        f"{where}: cloud.region",
    )
    time = first(
        iso_time(get(info, "modified_time_dt")),
        iso_time(get(info, "modified_time")),
        iso_time(get(f, "time_dt")),
        iso_time(get(f, "time")),
        iso_time(get(event, "time")),
    )
    product = ident(f, "metadata", "product", "name")
    product_uid = ident(f, "metadata", "product", "uid")
    is_guardduty = product == "GuardDuty" or bool(product_uid and product_uid.endswith("/guardduty"))
    types = idents(info, "types")
    finding_type = first(
        next((t for t in types if _GUARDDUTY_TYPE.fullmatch(t)), None),
        types[0] if types else None,
        ident(f, "class_name"),
        "unknown",
    )
    score, label = ocsf_severity(number(f, "severity_id"), ident(f, "severity"))
    status = ident(f, "status")
    status_id = number(f, "status_id")
    resources = [r for raw in raw_resources for r in _resource(raw, account, region)]
    actor = _actor(f, resources)
    count = number(f, "count")
    return Finding(
        source="securityhub",
        id=finding_id,
        type=finding_type or "unknown",
        title=text(info, "title", limit=1024) or finding_type or "unknown",
        severity=score,
        severity_label=label,
        account=account,
        region=region,
        time=time or "",
        resources=finalize(resources),
        actor=actor,
        actors=(actor,) if actor else (),
        event=event,
        description=text(info, "desc") or "",
        product=product,
        origin_id=_origin_id(info, finding_id) if is_guardduty else finding_id,
        archived=status in _ARCHIVED_STATUS or status_id in _ARCHIVED_STATUS.values(),
        count=int(count) if count is not None and 1 <= count <= 2**53 else 1,
        first_seen=first(iso_time(get(info, "first_seen_time_dt")), iso_time(get(info, "first_seen_time"))),
        last_seen=first(iso_time(get(info, "last_seen_time_dt")), iso_time(get(info, "last_seen_time"))),
        details=_details(f, info, types, status, status_id),
    )


def _origin_id(info: Mapping[str, Any], finding_id: str) -> str:
    uid_alt = ident(info, "uid_alt")
    if uid_alt and not uid_alt.startswith("arn:"):
        return uid_alt
    match = _GUARDDUTY_ID.search(finding_id)
    return match.group(1) if match else finding_id


def _details(
    f: Mapping[str, Any],
    info: Mapping[str, Any],
    types: list[str],
    status: str | None,
    status_id: float | None,
) -> dict[str, Any]:
    evidence = next(iter(items(f, "evidences", limit=1)), {})
    affected = mapping(evidence, "data", "affected_resource") or {}
    return compact(
        {
            "class_uid": number(f, "class_uid"),
            "class_name": ident(f, "class_name"),
            "product_uid": ident(f, "metadata", "product", "uid"),
            "feature": first(
                ident(f, "metadata", "product", "feature", "name"),
                ident(f, "metadata", "product", "feature", "uid"),
            ),
            "status": status,
            "status_id": status_id,
            "activity": ident(f, "activity_name"),
            "types": types,
            "severity_id": number(f, "severity_id"),
            "compliance_status": ident(f, "compliance", "status"),
            "control": ident(f, "compliance", "control"),
            "api": ident(evidence, "api", "operation"),
            "service_name": ident(evidence, "api", "service", "name"),
            "affected_resources": {k: v for k, v in list(affected.items())[:50] if ident(k) and ident(v)},
            "data_security_category": ident(f, "data_security", "category"),
            "vulnerabilities": [
                v for v in (ident(vuln, "cve", "uid") for vuln in items(f, "vulnerabilities", limit=50)) if v
            ],
        }
    )


# -- resources -----------------------------------------------------------------------------------


def _resource(r: Mapping[str, Any], account: str, region: str) -> list[Resource]:
    rtype = ident(r, "type") or ""
    kind = KIND_BY_CFN_TYPE.get(rtype)
    uid, name = ident(r, "uid"), ident(r, "name")
    data = mapping(r, "data") or {}
    account = ident(r, "owner", "account", "uid") or account
    region = ident(r, "region") or region
    tags = tags_from(get(r, "tags")) or tags_from(get(data, "tags"))
    from_arn = resource_from_arn(uid)
    if kind == "access-key":
        return access_key_resources(
            first(ident(data, "access_key_id"), uid if not from_arn else None),
            user_name=first(ident(data, "user_name"), ident(r, "user", "name"), name),
            user_type=first(ident(data, "user_type"), ident(r, "user", "type")),
            principal_id=first(ident(data, "principal_id"), ident(r, "user", "uid")),
            account=account,
        )
    if kind == "ec2-instance":
        return _instance(r, data, uid, account, region, tags)
    if from_arn is not None and kind in (None, from_arn.kind):
        return [
            resource(
                from_arn.kind,
                id=from_arn.id,
                arn=from_arn.arn,
                name=from_arn.name or name,
                account=from_arn.account or account,
                region=from_arn.region or region,
                tags=tags,
                details={**from_arn.details, "type": rtype},
            )
        ]
    if kind == "container":
        details = {
            "image": first(ident(r, "device", "container", "image", "name"), ident(r, "image", "name")),
            "runtime": ident(r, "device", "container", "runtime"),
        }
        return [resource("container", id=uid, name=name, account=account, region=region, tags=tags, details=details)]
    if kind is None:
        if uid is None and name is None:
            return []
        details = {"type": rtype, "uid_alt": ident(r, "uid_alt")}
        return [resource("other", id=uid, name=name, account=account, region=region, tags=tags, details=details)]
    handle = first(name, uid)
    if kind == "s3-bucket" and handle:
        partition = ident(r, "cloud_partition") or "aws"
        return [resource(kind, name=handle, arn=s3_bucket_arn(partition, handle), account=account, tags=tags)]
    if kind == "security-group":
        return [resource(kind, id=uid, name=name, account=account, region=region, tags=tags)]
    if handle is None:
        return []
    return [resource(kind, name=handle, account=account, region=region, tags=tags)]


def _instance(
    r: Mapping[str, Any],
    data: Mapping[str, Any],
    uid: str | None,
    account: str,
    region: str,
    tags: dict[str, str],
) -> list[Resource]:
    arn = parse_arn(uid)
    device = mapping(r, "device") or {}
    instance_id = first(
        ident(data, "instance_id"),
        arn.resource_id if arn and arn.resource_type == "instance" else None,
        uid if uid and uid.startswith("i-") else None,
        ident(device, "uid"),
    )
    if instance_id is None:
        return []
    data_enis, device_enis = items(data, "network_interfaces"), items(device, "network_interfaces")
    groups = [ident(g, "group_id") for eni in data_enis for g in items(eni, "security_groups")]
    groups += [ident(g, "uid") for eni in device_enis for g in items(eni, "security_groups")]
    details = {
        "vpc_id": first(*(ident(eni, "vpc_id") for eni in data_enis)),
        "subnet_id": first(*(ident(eni, "subnet_id") for eni in data_enis)),
        "security_groups": list(dict.fromkeys(present(groups))),
        "network_interface_ids": present(
            [ident(eni, "network_interface_id") for eni in data_enis] + [ident(eni, "uid") for eni in device_enis]
        ),
        "public_ips": present(
            [ip_address(eni, "public_ip") for eni in data_enis] + [ip_address(eni, "ip") for eni in device_enis]
        ),
        "iam_instance_profile_arn": first(
            ident(data, "iam_instance_profile", "arn"), ident(device, "instance_profile", "uid_alt")
        ),
        "image_id": first(ident(data, "image_id"), ident(device, "image", "uid")),
        "instance_state": ident(data, "instance_state"),
        "instance_type": first(ident(data, "instance_type"), ident(device, "model")),
        "availability_zone": first(ident(data, "availability_zone"), ident(r, "zone")),
    }
    partition = ident(r, "cloud_partition") or "aws"
    return [
        resource(
            "ec2-instance",
            id=instance_id,
            arn=ec2_instance_arn(partition, region, account, instance_id),
            account=account,
            region=region,
            tags=tags,
            details=details,
        )
    ]


# -- actor ---------------------------------------------------------------------------------------


def _actor(f: Mapping[str, Any], resources: list[Resource]) -> Actor:
    """``actor.user`` (or an AWS identity in ``evidences[].actor.user``), else the access key's owner."""
    user = mapping(f, "actor", "user")
    if user is None:
        user = next(
            (
                u
                for e in items(f, "evidences", limit=50)
                if (u := mapping(e, "actor", "user")) and (ident(u, "type") or ident(u, "credential_uid"))
            ),
            None,
        )
    key = next((r for r in resources if r.kind == "access-key"), None)
    ip = first(
        ip_address(f, "src_endpoint", "ip"),
        first(*(ip_address(e, "src_endpoint", "ip") for e in items(f, "evidences", limit=50))),
    )
    uid = ident(user, "uid") if user else None
    return Actor(
        principal_arn=uid if parse_arn(uid) else None,
        user_name=first(ident(user, "name") if user else None, key.details.get("user_name") if key else None),
        user_type=first(ident(user, "type") if user else None, key.details.get("user_type") if key else None),
        principal_id=first(
            uid if uid and not parse_arn(uid) else None, key.details.get("principal_id") if key else None
        ),
        access_key_id=first(ident(user, "credential_uid") if user else None, key.id if key else None),
        account=first(ident(user, "account", "uid") if user else None, key.account if key else None),
        source_ip=ip,
        user_agent=text(f, "http_request", "user_agent", limit=1024),
    )
