"""Security Hub ASFF events (``Security Hub Findings - Imported`` / ``- Custom Action``) → :class:`Finding`.

One event carries ``detail.findings[]``; each becomes one Finding. Severity is
``Severity.Normalized / 10`` (else the label's floor, see :mod:`.severity`); the label is
``Severity.Label`` when given (it wins), else ``ProductFields["aws/securityhub/SeverityLabel"]``,
else derived from the score.

``origin_id``: for a GuardDuty finding (product GuardDuty) the ASFF ``Id`` is the GuardDuty
finding ARN (``arn:aws:guardduty:…:detector/<d>/finding/<id>``) and ``origin_id`` is its last
segment, the native finding id; otherwise it is the ASFF ``Id``. For GuardDuty findings ``type``
is the GuardDuty type rebuilt from ``Types`` (GuardDuty writes ``Recon:IAMUser/X`` as the type
segment ``Recon:IAMUser-X``); all ASFF types stay in ``details.types``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .arn import parse_arn, resource_from_arn
from .camelcase import lower_keys
from .fields import (
    compact,
    first,
    flag,
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
from .model import Actor, Finding, InvalidEvent, Resource, severity_label
from .resources import (
    access_key_resources,
    ec2_instance_arn,
    finalize,
    resource,
    s3_bucket_arn,
    sequence_actor,
    tags_from,
)
from .severity import LABEL_FLOOR, known_label

#: ASFF allows at most 32 resources per finding.
MAX_RESOURCES = 32
_GUARDDUTY_ID = re.compile(r":guardduty:.*/finding/([A-Za-z0-9-]{1,128})$")
_GUARDDUTY_TYPE = re.compile(r"([A-Za-z]+:[A-Za-z0-9]+)-(.+)")


def normalize_securityhub(event: Mapping[str, Any]) -> list[Finding]:
    findings = get(event, "detail", "findings")
    if not isinstance(findings, list) or not findings:
        raise InvalidEvent("Security Hub event: detail.findings is missing or empty")
    action = compact(
        {
            "custom_action_name": text(event, "detail", "actionName", limit=256),
            "custom_action_description": text(event, "detail", "actionDescription", limit=1024),
        }
    )
    out = []
    for index, finding in enumerate(findings):
        where = f"Security Hub finding [{index}]"
        if not isinstance(finding, Mapping):
            raise InvalidEvent(f"{where}: is not an object")
        out.append(_finding(finding, event, action, where))
    return out


def _finding(f: Mapping[str, Any], event: Mapping[str, Any], action: dict[str, Any], where: str) -> Finding:
    finding_id = required(ident(f, "Id"), f"{where}: Id")
    account = required(first(ident(f, "AwsAccountId"), ident(event, "account")), f"{where}: AwsAccountId")
    product_arn = parse_arn(get(f, "ProductArn"))
    resources_raw = items(f, "Resources", limit=MAX_RESOURCES)
    region = required(
        first(
            ident(f, "Region"),
            first(*(ident(r, "Region") for r in resources_raw)),
            product_arn.region if product_arn and product_arn.region else None,
            ident(event, "region"),
        ),
        f"{where}: Region",
    )
    time = required(
        first(iso_time(get(f, "UpdatedAt")), iso_time(get(f, "CreatedAt")), iso_time(get(event, "time"))),
        f"{where}: UpdatedAt",
    )
    fields = mapping(f, "ProductFields") or {}
    product = first(ident(f, "ProductName"), ident(fields, "aws/securityhub/ProductName"))
    is_guardduty = product == "GuardDuty" or (product_arn is not None and product_arn.resource.endswith("/guardduty"))
    match = _GUARDDUTY_ID.search(finding_id) if is_guardduty else None
    types = idents(f, "Types")
    finding_type = required(
        first(
            _guardduty_type(types) if is_guardduty else None,
            types[0] if types else None,
            ident(f, "GeneratorId"),
        ),
        f"{where}: Types",
    )
    score, label = _severity(f, fields)
    partition = product_arn.partition if product_arn else "aws"
    resources = [r for raw in resources_raw for r in _resource(raw, account, region, partition)]
    actors = _sequence_actors(f)
    actor = actors[0] if actors else _actor(f, fields, resources_raw, account)
    workflow = first(ident(f, "Workflow", "Status"), ident(f, "WorkflowState"))
    record_state = ident(f, "RecordState")
    details = {
        "product_arn": str(product_arn) if product_arn else ident(f, "ProductArn"),
        "generator_id": ident(f, "GeneratorId"),
        "types": types,
        "compliance_status": ident(f, "Compliance", "Status"),
        "control_id": first(ident(f, "Compliance", "SecurityControlId"), ident(fields, "ControlId")),
        "workflow_status": workflow,
        "record_state": record_state,
        "severity_original": ident(f, "Severity", "Original"),
        **action,
    }
    if actors:
        # Security Hub keeps at most 10 actors of a GuardDuty attack sequence.
        details["sequence_may_be_truncated"] = len(actors) >= 10
    count = first(number(fields, "aws/guardduty/service/count"), number(fields, "count"))
    return Finding(
        source="securityhub",
        id=finding_id,
        type=finding_type,
        title=text(f, "Title", limit=1024) or finding_type,
        severity=score,
        severity_label=label,
        account=account,
        region=region,
        time=time,
        resources=finalize(resources, MAX_RESOURCES * 2),
        actor=actor,
        actors=actors or ((actor,) if actor else ()),
        event=event,
        description=text(f, "Description") or "",
        product=product,
        origin_id=match.group(1) if match else finding_id,
        archived=workflow == "SUPPRESSED" or record_state == "ARCHIVED",
        sample=flag(f, "Sample") is True or flag(fields, "aws/guardduty/service/additionalInfo/sample") is True,
        count=int(count) if count is not None and 1 <= count <= 2**53 else 1,
        first_seen=iso_time(get(f, "FirstObservedAt")),
        last_seen=iso_time(get(f, "LastObservedAt")),
        details=compact(details),
    )


def _guardduty_type(types: list[str]) -> str | None:
    """``TTPs/…/UnauthorizedAccess:EC2-SSHBruteForce`` → ``UnauthorizedAccess:EC2/SSHBruteForce``."""
    for value in types:
        match = _GUARDDUTY_TYPE.fullmatch(value.rsplit("/", 1)[-1])
        if match:
            return f"{match.group(1)}/{match.group(2)}"
    return None


def _severity(f: Mapping[str, Any], fields: Mapping[str, Any]) -> tuple[float, str]:
    label = first(
        known_label(ident(f, "Severity", "Label")),
        known_label(ident(fields, "aws/securityhub/SeverityLabel")),
    )
    normalized = number(f, "Severity", "Normalized")
    if normalized is not None:
        score = min(max(normalized, 0.0), 100.0) / 10
    elif label is not None:
        score = LABEL_FLOOR[label]
    else:
        score = 0.0
    return score, label or severity_label(score)


# -- resources -----------------------------------------------------------------------------------

_Builder = Callable[[Mapping[str, Any], Mapping[str, Any], "_Base"], list[Resource]]


class _Base:
    """What every ASFF resource shares: its Id (often an ARN), account, region, partition, tags."""

    def __init__(self, raw: Mapping[str, Any], account: str, region: str, partition: str) -> None:
        self.id = ident(raw, "Id")
        self.arn = parse_arn(self.id)
        self.account = (self.arn.account if self.arn and self.arn.account else None) or account
        self.region = ident(raw, "Region") or (self.arn.region if self.arn and self.arn.region else None) or region
        self.partition = ident(raw, "Partition") or partition
        self.tags = tags_from(get(raw, "Tags"))

    def with_arn(self, kind: str, **fields: Any) -> Resource:
        return resource(kind, account=self.account, region=self.region, tags=self.tags, **fields)


def _access_key(raw: Mapping[str, Any], d: Mapping[str, Any], base: _Base) -> list[Resource]:
    key_id = first(ident(d, "AccessKeyId"), _after(base.id, "AWS::IAM::AccessKey:"))
    return access_key_resources(
        key_id if key_id != "null" else None,
        user_name=first(ident(d, "PrincipalName"), ident(d, "UserName")),
        user_type=ident(d, "PrincipalType"),
        principal_id=ident(d, "PrincipalId"),
        account=ident(d, "AccountId") or base.account,
    )


def _after(value: str | None, prefix: str) -> str | None:
    return value[len(prefix) :] or None if value and value.startswith(prefix) else None


def _iam(kind: str, name_key: str) -> _Builder:
    def build(raw: Mapping[str, Any], d: Mapping[str, Any], base: _Base) -> list[Resource]:
        from_arn = resource_from_arn(base.id)
        name = first(ident(d, name_key), from_arn.name if from_arn and from_arn.kind == kind else None)
        arn = from_arn.arn if from_arn and from_arn.kind == kind else None
        if name is None and arn is None:
            return []
        return [resource(kind, name=name, arn=arn, account=base.account, tags=base.tags)]

    return build


def _ec2_instance(raw: Mapping[str, Any], d: Mapping[str, Any], base: _Base) -> list[Resource]:
    instance_id = first(_arn_id(base, "instance"), base.id if base.id and base.id.startswith("i-") else None)
    if instance_id is None:
        return []
    details = {
        "vpc_id": ident(d, "VpcId"),
        "subnet_id": ident(d, "SubnetId"),
        "network_interface_ids": present(ident(n, "NetworkInterfaceId") for n in items(d, "NetworkInterfaces")),
        "iam_instance_profile_arn": ident(d, "IamInstanceProfileArn"),
        "image_id": ident(d, "ImageId"),
        "instance_type": ident(d, "Type"),
        "ip_addresses": present(ip_address(v) for v in idents(d, "IpV4Addresses", limit=50)),
    }
    arn = ec2_instance_arn(base.partition, base.region, base.account, instance_id)
    return [base.with_arn("ec2-instance", id=instance_id, arn=arn, details=details)]


def _arn_id(base: _Base, resource_type: str) -> str | None:
    if base.arn and base.arn.resource_type == resource_type:
        return base.arn.resource_id or None
    return None


def _named(kind: str, name_keys: tuple[str, ...], arn_key: str | None = None) -> _Builder:
    """A kind whose handle is a name: from ``Details`` keys, else the last segment of the ARN/Id."""

    def build(raw: Mapping[str, Any], d: Mapping[str, Any], base: _Base) -> list[Resource]:
        arn = first(ident(d, arn_key) if arn_key else None, str(base.arn) if base.arn else None)
        name = first(*(ident(d, k) for k in name_keys))
        if name is None and base.id:
            name = base.id.rsplit("/", 1)[-1].rsplit(":", 1)[-1] or None
        if name is None:
            return []
        details: dict[str, Any] = {}
        if kind == "s3-bucket":  # bucket ARNs are fully determined by the name
            arn = s3_bucket_arn(base.partition, name)
        elif kind == "lambda-function":
            details = {"role_arn": ident(d, "Role"), "runtime": ident(d, "Runtime")}
        elif kind == "rds-instance":
            details = {"cluster_id": ident(d, "DBClusterIdentifier"), "engine": ident(d, "Engine")}
        return [base.with_arn(kind, name=name, arn=arn, details=details)]

    return build


def _security_group(raw: Mapping[str, Any], d: Mapping[str, Any], base: _Base) -> list[Resource]:
    group_id = first(ident(d, "GroupId"), _arn_id(base, "security-group"))
    if group_id is None:
        return []
    details = {"group_name": ident(d, "GroupName"), "vpc_id": ident(d, "VpcId")}
    return [base.with_arn("security-group", id=group_id, arn=str(base.arn) if base.arn else None, details=details)]


def _container(raw: Mapping[str, Any], d: Mapping[str, Any], base: _Base) -> list[Resource]:
    name = ident(d, "Name")
    if name is None and base.id is None:
        return []
    details = {
        "image": first(ident(d, "ImageName"), ident(d, "ImageId")),
        "privileged": flag(d, "Privileged"),
    }
    return [base.with_arn("container", id=base.id, name=name, details=details)]


def _account(raw: Mapping[str, Any], d: Mapping[str, Any], base: _Base) -> list[Resource]:
    return [base.with_arn("other", id=base.account, details={"asff_type": "AwsAccount"})]


#: ASFF ``Resources[].Type`` → builder (``Details`` is ``Details[Type]``).
_BUILDERS: dict[str, _Builder] = {
    "AwsIamAccessKey": _access_key,
    "AwsIamRole": _iam("iam-role", "RoleName"),
    "AwsIamUser": _iam("iam-user", "UserName"),
    "AwsEc2Instance": _ec2_instance,
    "AwsS3Bucket": _named("s3-bucket", ("Name",)),
    "AwsLambdaFunction": _named("lambda-function", ("FunctionName",)),
    "AwsEksCluster": _named("eks-cluster", ("Name",), "Arn"),
    "AwsEcsCluster": _named("ecs-cluster", ("ClusterName",), "ClusterArn"),
    "AwsRdsDbInstance": _named("rds-instance", ("DBInstanceIdentifier",)),
    "AwsEc2SecurityGroup": _security_group,
    "AwsCloudTrailTrail": _named("cloudtrail-trail", ("Name",), "TrailArn"),
    "Container": _container,
    "AwsAccount": _account,
}


def _resource(raw: Mapping[str, Any], account: str, region: str, partition: str) -> list[Resource]:
    base = _Base(raw, account, region, partition)
    rtype = ident(raw, "Type") or "Other"
    details = mapping(raw, "Details", rtype) or {}
    builder = _BUILDERS.get(rtype)
    if builder is not None:
        return builder(raw, details, base)
    from_arn = resource_from_arn(base.id)
    if from_arn is not None:
        fields = {k: getattr(from_arn, k) for k in ("id", "arn", "name")}
        merged = {**from_arn.details, "asff_type": rtype}
        return [
            resource(
                from_arn.kind,
                account=base.account,
                region=base.region,
                tags=base.tags,
                details=merged,
                **fields,
            )
        ]
    if base.id is None:
        return []
    return [base.with_arn("other", id=base.id, details={"asff_type": rtype})]


# -- actor ---------------------------------------------------------------------------------------

#: ProductFields keys (GuardDuty, old and ``aws/guardduty/service/`` forms) holding the remote IP.
_REMOTE_IP_FIELDS = (
    "action/awsApiCallAction/remoteIpDetails/ipAddressV4",
    "action/networkConnectionAction/remoteIpDetails/ipAddressV4",
    "action/kubernetesApiCallAction/remoteIpDetails/ipAddressV4",
)


def _remote_ip(f: Mapping[str, Any], fields: Mapping[str, Any]) -> str | None:
    if ident(f, "Network", "Direction") != "OUT":
        network_ip = first(ip_address(f, "Network", "SourceIpV4"), ip_address(f, "Network", "SourceIpV6"))
        if network_ip:
            return network_ip
    ip = first(
        ip_address(f, "Action", "AwsApiCallAction", "RemoteIpDetails", "IpAddressV4"),
        ip_address(f, "Action", "PortProbeAction", "PortProbeDetails", 0, "RemoteIpDetails", "IpAddressV4"),
    )
    if ip is None and ident(f, "Action", "NetworkConnectionAction", "ConnectionDirection") != "OUTBOUND":
        ip = ip_address(f, "Action", "NetworkConnectionAction", "RemoteIpDetails", "IpAddressV4")
    for key in _REMOTE_IP_FIELDS:
        if ip is not None:
            break
        direction = first(
            ident(fields, "aws/guardduty/service/action/networkConnectionAction/connectionDirection"),
            ident(fields, "action/networkConnectionAction/connectionDirection"),
        )
        if "networkConnectionAction" in key and direction == "OUTBOUND":
            continue
        ip = first(ip_address(fields, "aws/guardduty/service/" + key), ip_address(fields, key))
    return ip


def _actor(
    f: Mapping[str, Any], fields: Mapping[str, Any], raw_resources: list[Mapping[str, Any]], account: str
) -> Actor:
    key = next((r for r in raw_resources if ident(r, "Type") == "AwsIamAccessKey"), None)
    d = mapping(key, "Details", "AwsIamAccessKey") or {}
    key_id = _after(ident(key, "Id"), "AWS::IAM::AccessKey:") if key else None
    return Actor(
        user_name=first(ident(d, "PrincipalName"), ident(d, "UserName")),
        user_type=ident(d, "PrincipalType"),
        principal_id=ident(d, "PrincipalId"),
        access_key_id=first(ident(d, "AccessKeyId"), key_id if key_id != "null" else None),
        account=(ident(d, "AccountId") or account) if key else None,
        source_ip=_remote_ip(f, fields),
    )


def _sequence_actors(f: Mapping[str, Any]) -> tuple[Actor, ...]:
    sequence = mapping(f, "Detection", "Sequence")
    if sequence is None:
        return ()
    actors = [sequence_actor(a) for a in items(lower_keys({"actors": get(sequence, "Actors")}), "actors")]
    return tuple(a for a in actors if a)
