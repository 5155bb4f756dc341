"""GuardDuty findings (EventBridge ``GuardDuty Finding``, camelCase ``detail``) → :class:`Finding`.

Account and region are the finding's own (``detail.accountId``/``detail.region``): with a
delegated administrator the envelope's ``account`` is the administrator's, while the resource
lives in the member account the finding names. The envelope values are only a fallback.

Resources come from every detail block present under ``detail.resource``, the block named by
``resourceType`` first (``AccessKey`` → ``access-key`` + its principal, ``Instance`` →
``ec2-instance``, ``S3Bucket`` → one ``s3-bucket`` per bucket, ``Lambda``, ``EKSCluster`` (+ a
``container`` per Kubernetes workload), ``ECSCluster`` (+ its task's containers), ``Container``,
``RDSDBInstance``/``RDSLimitlessDB`` → ``rds-instance``). Attack sequences
(``AttackSequence:*``, GuardDuty Extended Threat Detection) carry their victims and actors in
``service.detection.sequence`` (GuardDuty API ``Sequence``: ``actors``, ``resources``
(``ResourceV2``), ``endpoints``, ``signals``, ``sequenceIndicators``); every one is normalized.
``service.action.awsApiCallAction.affectedResources`` is kept in ``details`` only: those are
resources an API call touched, not necessarily ones to act on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .arn import parse_arn, resource_from_arn
from .fields import (
    MAX_ITEMS,
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
from .model import Actor, Finding, Resource, severity_label
from .resources import (
    access_key_resources,
    actor_ips,
    ec2_instance_arn,
    finalize,
    resource,
    sequence_actor,
    tags_from,
)

WHAT = "GuardDuty finding"
#: Security Hub (ASFF) keeps at most this many actors/endpoints of an attack sequence.
ASFF_SEQUENCE_LIMIT = 10


@dataclass(frozen=True, slots=True)
class _Where:
    account: str
    region: str
    partition: str


def normalize_guardduty(event: Mapping[str, Any]) -> list[Finding]:
    detail = required(mapping(event, "detail"), f"{WHAT}: detail")
    finding_id = required(ident(detail, "id"), f"{WHAT}: detail.id")
    finding_type = required(ident(detail, "type"), f"{WHAT}: detail.type")
    severity = min(max(required(number(detail, "severity"), f"{WHAT}: detail.severity"), 0.0), 10.0)
    account = required(first(ident(detail, "accountId"), ident(event, "account")), f"{WHAT}: detail.accountId")
    region = required(first(ident(detail, "region"), ident(event, "region")), f"{WHAT}: detail.region")
    time = required(
        first(
            iso_time(get(detail, "updatedAt")),
            iso_time(get(detail, "createdAt")),
            iso_time(get(event, "time")),
        ),
        f"{WHAT}: detail.updatedAt",
    )
    finding_arn = parse_arn(get(detail, "arn"))
    where = _Where(account, region, ident(detail, "partition") or (finding_arn.partition if finding_arn else "aws"))
    service = mapping(detail, "service") or {}
    res = mapping(detail, "resource") or {}
    sequence = mapping(service, "detection", "sequence")

    actors = _sequence_actors(sequence) if sequence else ()
    actor = actors[0] if actors else _actor(res, service, where)
    resources = [*_resources(res, where), *(_sequence_resources(sequence, where) if sequence else ())]
    count = number(service, "count")
    return [
        Finding(
            source="guardduty",
            id=finding_id,
            type=finding_type,
            title=text(detail, "title", limit=1024) or finding_type,
            severity=severity,
            severity_label=severity_label(severity),
            account=account,
            region=region,
            time=time,
            resources=finalize(resources),
            actor=actor,
            actors=actors or ((actor,) if actor else ()),
            event=event,
            description=text(detail, "description") or "",
            product="GuardDuty",
            origin_id=finding_id,
            archived=flag(service, "archived") is True,
            sample=flag(service, "additionalInfo", "sample") is True,
            count=int(count) if count is not None and 1 <= count <= 2**53 else 1,
            first_seen=iso_time(get(service, "eventFirstSeen")),
            last_seen=iso_time(get(service, "eventLastSeen")),
            details=_details(detail, res, service, sequence),
        )
    ]


# -- resources -----------------------------------------------------------------------------------


def _access_key(block: Mapping[str, Any], where: _Where) -> list[Resource]:
    return access_key_resources(
        ident(block, "accessKeyId"),
        user_name=ident(block, "userName"),
        user_type=ident(block, "userType"),
        principal_id=ident(block, "principalId"),
        account=where.account,
    )


def _instance(block: Mapping[str, Any], where: _Where) -> list[Resource]:
    instance_id = ident(block, "instanceId")
    if instance_id is None:
        return []
    enis = items(block, "networkInterfaces")
    groups = [g for eni in enis for g in present(ident(sg, "groupId") for sg in items(eni, "securityGroups"))]
    details = {
        "vpc_id": first(*(ident(eni, "vpcId") for eni in enis)),
        "subnet_id": first(*(ident(eni, "subnetId") for eni in enis)),
        "security_groups": list(dict.fromkeys(groups)),
        "network_interface_ids": present(ident(eni, "networkInterfaceId") for eni in enis),
        "public_ips": present(ip_address(eni, "publicIp") for eni in enis),
        "private_ips": present(ip_address(eni, "privateIpAddress") for eni in enis),
        "iam_instance_profile_arn": ident(block, "iamInstanceProfile", "arn"),
        "image_id": ident(block, "imageId"),
        "instance_state": ident(block, "instanceState"),
        "instance_type": ident(block, "instanceType"),
        "availability_zone": ident(block, "availabilityZone"),
        "outpost_arn": ident(block, "outpostArn"),
    }
    return [
        resource(
            "ec2-instance",
            id=instance_id,
            arn=ec2_instance_arn(where.partition, where.region, where.account, instance_id),
            account=where.account,
            region=where.region,
            tags=tags_from(get(block, "tags")),
            details=details,
        )
    ]


def _s3_buckets(blocks: Any, where: _Where) -> list[Resource]:
    out = []
    for bucket in items(blocks):
        name = ident(bucket, "name")
        arn = ident(bucket, "arn")
        if name is None and arn is None:
            continue
        bucket_level = mapping(bucket, "publicAccess", "permissionConfiguration", "bucketLevelPermissions") or {}
        account_level = mapping(bucket, "publicAccess", "permissionConfiguration", "accountLevelPermissions") or {}
        public = compact(
            {
                "effective_permission": ident(bucket, "publicAccess", "effectivePermission"),
                "acl_allows_public_read": flag(bucket_level, "accessControlList", "allowsPublicReadAccess"),
                "acl_allows_public_write": flag(bucket_level, "accessControlList", "allowsPublicWriteAccess"),
                "policy_allows_public_read": flag(bucket_level, "bucketPolicy", "allowsPublicReadAccess"),
                "policy_allows_public_write": flag(bucket_level, "bucketPolicy", "allowsPublicWriteAccess"),
                "bucket_block_public_access": _block_public_access(mapping(bucket_level, "blockPublicAccess")),
                "account_block_public_access": _block_public_access(mapping(account_level, "blockPublicAccess")),
            }
        )
        details = {
            "bucket_type": ident(bucket, "type"),
            "owner_id": ident(bucket, "owner", "id"),
            "encryption_type": ident(bucket, "defaultServerSideEncryption", "encryptionType"),
            "public_access": public,
        }
        out.append(
            resource(
                "s3-bucket",
                name=name or (arn.rsplit(":", 1)[-1] if arn else None),
                arn=arn,
                account=where.account,
                tags=tags_from(get(bucket, "tags")),
                details=details,
            )
        )
    return out


def _block_public_access(block: Mapping[str, Any] | None) -> dict[str, bool]:
    names = ("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy", "restrictPublicBuckets")
    return {k: v for k in names if (v := flag(block, k)) is not None}


def _lambda(block: Mapping[str, Any], where: _Where) -> list[Resource]:
    arn_res = resource_from_arn(get(block, "functionArn"))
    name = first(ident(block, "functionName"), arn_res.name if arn_res else None)
    if name is None:
        return []
    vpc = mapping(block, "vpcConfig") or {}
    details = {
        "role_arn": ident(block, "role"),
        "version": ident(block, "functionVersion"),
        "revision_id": ident(block, "revisionId"),
        "vpc_id": ident(vpc, "vpcId"),
        "subnet_ids": idents(vpc, "subnetIds"),
        "security_groups": present(ident(sg, "groupId") for sg in items(vpc, "securityGroups")),
    }
    return [
        resource(
            "lambda-function",
            name=name,
            arn=arn_res.arn if arn_res and arn_res.kind == "lambda-function" else None,
            account=where.account,
            region=where.region,
            tags=tags_from(get(block, "tags")),
            details=details,
        )
    ]


def _eks(block: Mapping[str, Any], where: _Where) -> list[Resource]:
    name, arn = ident(block, "name"), ident(block, "arn")
    if name is None and arn is None:
        return []
    return [
        resource(
            "eks-cluster",
            name=name,
            arn=arn,
            account=where.account,
            region=where.region,
            tags=tags_from(get(block, "tags")),
            details={"vpc_id": ident(block, "vpcId"), "status": ident(block, "status")},
        )
    ]


def _containers(containers: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        compact(
            {
                "name": ident(c, "name"),
                "id": ident(c, "id"),
                "image": ident(c, "image"),
                "privileged": flag(c, "securityContext", "privileged"),
            }
        )
        for c in containers
    ]


def _kubernetes(block: Mapping[str, Any], where: _Where) -> list[Resource]:
    workload = mapping(block, "kubernetesWorkloadDetails")
    if workload is None or not (ident(workload, "name") or ident(workload, "uid")):
        return []
    containers = _containers(items(workload, "containers"))
    details = {
        "entity": "kubernetes-workload",
        "namespace": ident(workload, "namespace"),
        "workload_type": ident(workload, "type"),
        "service_account": ident(workload, "serviceAccountName"),
        "host_network": flag(workload, "hostNetwork"),
        "containers": containers,
        "privileged": any(c.get("privileged") for c in containers) or None,
    }
    return [
        resource(
            "container",
            id=ident(workload, "uid"),
            name=ident(workload, "name"),
            account=where.account,
            region=where.region,
            details=details,
        )
    ]


def _ecs(block: Mapping[str, Any], where: _Where) -> list[Resource]:
    task = mapping(block, "taskDetails") or {}
    task_arn = ident(task, "arn")
    cluster = resource(
        "ecs-cluster",
        name=ident(block, "name"),
        arn=ident(block, "arn"),
        account=where.account,
        region=where.region,
        tags=tags_from(get(block, "tags")),
        details={
            "status": ident(block, "status"),
            "task_arn": task_arn,
            "task_definition_arn": ident(task, "definitionArn"),
            "launch_type": ident(task, "launchType"),
        },
    )
    out = [cluster] if cluster.name or cluster.arn else []
    for container in items(task, "containers"):
        out.extend(_container(container, where, task_arn=task_arn))
    return out


def _container(block: Mapping[str, Any], where: _Where, task_arn: str | None = None) -> list[Resource]:
    container_id, name = ident(block, "id"), ident(block, "name")
    if container_id is None and name is None:
        return []
    details = {
        "image": ident(block, "image"),
        "runtime": ident(block, "containerRuntime"),
        "privileged": flag(block, "securityContext", "privileged"),
        "task_arn": task_arn,
    }
    return [
        resource(
            "container",
            id=container_id,
            name=name,
            account=where.account,
            region=where.region,
            details=details,
        )
    ]


def _rds(block: Mapping[str, Any], where: _Where) -> list[Resource]:
    name, arn = ident(block, "dbInstanceIdentifier"), ident(block, "dbInstanceArn")
    if name is None and arn is None:
        return []
    parsed = parse_arn(arn)
    details = {
        "cluster_id": ident(block, "dbClusterIdentifier"),
        "engine": ident(block, "engine"),
        "engine_version": ident(block, "engineVersion"),
    }
    return [
        resource(
            "rds-instance",
            id=ident(block, "dbiResourceId"),
            name=name,
            arn=arn,
            account=(parsed.account if parsed and parsed.account else where.account),
            region=(parsed.region if parsed and parsed.region else where.region),
            tags=tags_from(get(block, "tags")),
            details=details,
        )
    ]


def _rds_limitless(block: Mapping[str, Any], where: _Where) -> list[Resource]:
    name, arn = ident(block, "dbShardGroupIdentifier"), ident(block, "dbShardGroupArn")
    if name is None and arn is None:
        return []
    details = {
        "entity": "db-shard-group",
        "cluster_id": ident(block, "dbClusterIdentifier"),
        "engine": ident(block, "engine"),
        "engine_version": ident(block, "engineVersion"),
    }
    return [
        resource(
            "rds-instance",
            id=ident(block, "dbShardGroupResourceId"),
            name=name,
            arn=arn,
            account=where.account,
            region=where.region,
            tags=tags_from(get(block, "tags")),
            details=details,
        )
    ]


_Builder = Callable[[Any, _Where], list[Resource]]
#: ``resource`` detail block → builder; the block named by ``resourceType`` is read first.
_BLOCKS: dict[str, _Builder] = {
    "accessKeyDetails": _access_key,
    "instanceDetails": _instance,
    "s3BucketDetails": _s3_buckets,
    "lambdaDetails": _lambda,
    "eksClusterDetails": _eks,
    "kubernetesDetails": _kubernetes,
    "ecsClusterDetails": _ecs,
    "containerDetails": _container,
    "rdsDbInstanceDetails": _rds,
    "rdsLimitlessDbDetails": _rds_limitless,
}
_PRIMARY_BLOCK = {
    "AccessKey": "accessKeyDetails",
    "Instance": "instanceDetails",
    "S3Bucket": "s3BucketDetails",
    "Lambda": "lambdaDetails",
    "EKSCluster": "eksClusterDetails",
    "ECSCluster": "ecsClusterDetails",
    "Container": "containerDetails",
    "RDSDBInstance": "rdsDbInstanceDetails",
    "RDSLimitlessDB": "rdsLimitlessDbDetails",
}


def _resources(res: Mapping[str, Any], where: _Where) -> list[Resource]:
    primary = _PRIMARY_BLOCK.get(ident(res, "resourceType") or "")
    order = [primary] if primary else []
    order += [name for name in _BLOCKS if name != primary]
    out: list[Resource] = []
    for name in order:
        block = res.get(name)
        if name == "s3BucketDetails" or isinstance(block, Mapping):
            out.extend(_BLOCKS[name](block, where))
    return out


# -- attack sequences ----------------------------------------------------------------------------

#: ``ResourceV2.resourceType`` → kind (GuardDuty API ``FindingResourceType``).
_SEQUENCE_KINDS = {
    "EC2_INSTANCE": "ec2-instance",
    "ACCESS_KEY": "access-key",
    "S3_BUCKET": "s3-bucket",
    "EKS_CLUSTER": "eks-cluster",
    "KUBERNETES_WORKLOAD": "container",
    "CONTAINER": "container",
    "ECS_CLUSTER": "ecs-cluster",
    "ECS_TASK": "container",
}


def _sequence_actors(sequence: Mapping[str, Any]) -> tuple[Actor, ...]:
    ips = actor_ips(items(sequence, "signals"), items(sequence, "endpoints"))
    actors = [sequence_actor(a, ips.get(ident(a, "id") or "")) for a in items(sequence, "actors")]
    return tuple(a for a in actors if a)


def _sequence_resources(sequence: Mapping[str, Any], where: _Where) -> list[Resource]:
    out: list[Resource] = []
    for item in items(sequence, "resources", limit=MAX_ITEMS):
        out.extend(sequence_resource(item, where.account, where.region, where.partition))
    return out


def sequence_resource(
    item: Mapping[str, Any], account: str | None, region: str | None, partition: str = "aws"
) -> list[Resource]:
    """Resources for one GuardDuty ``ResourceV2`` (``uid`` may be an ARN or a bare id/name)."""
    rtype = ident(item, "resourceType") or ""
    kind = _SEQUENCE_KINDS.get(rtype, "other")
    uid, name = ident(item, "uid"), ident(item, "name")
    data = mapping(item, "data") or {}
    account = ident(item, "accountId") or account
    region = ident(item, "region") or region
    tags = tags_from(get(item, "tags"))
    from_arn = resource_from_arn(uid)
    if from_arn is not None and (from_arn.kind == kind or kind == "other"):
        details = {**from_arn.details, "resource_type": rtype}
        return [
            resource(
                from_arn.kind,
                id=from_arn.id,
                arn=from_arn.arn,
                name=from_arn.name or name,
                account=from_arn.account or account,
                region=from_arn.region or region,
                tags=tags,
                details=details,
            )
        ]
    if kind == "access-key":
        key = mapping(data, "accessKey") or {}
        return access_key_resources(
            uid,
            user_name=ident(key, "userName") or name,
            user_type=ident(key, "userType"),
            principal_id=ident(key, "principalId"),
            account=account,
        )
    if uid is None and name is None:
        return []
    instance = mapping(data, "ec2Instance") or {}
    details = {
        "resource_type": rtype,
        "instance_state": ident(instance, "instanceState"),
        "instance_type": ident(instance, "instanceType"),
        "iam_instance_profile_arn": ident(instance, "IamInstanceProfile", "arn"),
        "effective_permission": ident(data, "s3Bucket", "effectivePermission"),
        "namespace": ident(data, "kubernetesWorkload", "namespace"),
        "image": ident(data, "container", "image"),
    }
    if kind in ("s3-bucket", "eks-cluster", "ecs-cluster"):
        return [resource(kind, name=name or uid, account=account, region=region, tags=tags, details=details)]
    arn = ec2_instance_arn(partition, region, account, uid) if kind == "ec2-instance" and uid else None
    return [resource(kind, id=uid, name=name, arn=arn, account=account, region=region, tags=tags, details=details)]


# -- actor and details ---------------------------------------------------------------------------

_ACTIONS_WITH_REMOTE_IP = (
    "awsApiCallAction",
    "networkConnectionAction",
    "kubernetesApiCallAction",
    "rdsLoginAttemptAction",
)


def _remote_ip(action: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(remote IP, connection direction) of the action."""
    for name in _ACTIONS_WITH_REMOTE_IP:
        block = mapping(action, name)
        if block is None:
            continue
        ip = first(
            ip_address(block, "remoteIpDetails", "ipAddressV4"),
            ip_address(block, "remoteIpDetails", "ipAddressV6"),
            ip_address(block, "sourceIPs", 0),
        )
        return ip, ident(block, "connectionDirection")
    for probe in items(action, "portProbeAction", "portProbeDetails"):
        ip = first(
            ip_address(probe, "remoteIpDetails", "ipAddressV4"),
            ip_address(probe, "remoteIpDetails", "ipAddressV6"),
        )
        if ip:
            return ip, "INBOUND"
    return None, None


def _actor(res: Mapping[str, Any], service: Mapping[str, Any], where: _Where) -> Actor:
    action = mapping(service, "action") or {}
    ip, direction = _remote_ip(action)
    key = mapping(res, "accessKeyDetails") or {}
    k8s_user = mapping(res, "kubernetesDetails", "kubernetesUserDetails") or {}
    user_agent = first(
        text(action, "awsApiCallAction", "userAgent", limit=1024),
        text(action, "kubernetesApiCallAction", "userAgent", limit=1024),
    )
    if key:
        user_name, user_type, principal_id = (
            ident(key, "userName"),
            ident(key, "userType"),
            ident(key, "principalId"),
        )
    elif k8s_user:
        user_name, user_type, principal_id = (
            ident(k8s_user, "username"),
            "KubernetesUser",
            ident(k8s_user, "uid"),
        )
    else:
        user_name = user_type = principal_id = None
    return Actor(
        user_name=user_name,
        user_type=user_type,
        principal_id=principal_id,
        access_key_id=ident(key, "accessKeyId"),
        account=where.account if key else None,
        source_ip=ip if direction in (None, "INBOUND") else None,
        user_agent=user_agent,
    )


def _details(
    detail: Mapping[str, Any],
    res: Mapping[str, Any],
    service: Mapping[str, Any],
    sequence: Mapping[str, Any] | None,
) -> dict[str, Any]:
    action = mapping(service, "action") or {}
    api_call = mapping(action, "awsApiCallAction") or {}
    remote_ip, direction = _remote_ip(action)
    affected = mapping(api_call, "affectedResources") or {}
    out: dict[str, Any] = {
        "arn": ident(detail, "arn"),
        "resource_type": ident(res, "resourceType"),
        "action_type": ident(action, "actionType"),
        "api": ident(api_call, "api"),
        "service_name": ident(api_call, "serviceName"),
        "caller_type": ident(api_call, "callerType"),
        "error_code": ident(api_call, "errorCode"),
        "remote_ip": remote_ip,
        "connection_direction": direction,
        "domain": ident(action, "dnsRequestAction", "domain"),
        "affected_resources": {k: v for k, v in list(affected.items())[:50] if ident(k) and ident(v)},
        "detector_id": ident(service, "detectorId"),
        "feature_name": ident(service, "featureName"),
        "resource_role": ident(service, "resourceRole"),
        "process": _process(mapping(service, "runtimeDetails", "process")),
    }
    if sequence is not None:
        actors, endpoints = items(sequence, "actors"), items(sequence, "endpoints")
        signals = items(sequence, "signals")
        out["sequence"] = compact(
            {
                "uid": ident(sequence, "uid"),
                "signal_count": len(signals),
                "signals": [s for s in (ident(sig, "name") for sig in signals[:50]) if s],
                "indicators": [k for k in (ident(i, "key") for i in items(sequence, "sequenceIndicators")) if k],
                "actor_count": len(actors),
                "endpoint_count": len(endpoints),
                "resource_count": len(items(sequence, "resources")),
            }
        )
        # Security Hub keeps at most 10 actors/endpoints: its ASFF copy of this finding is incomplete.
        out["asff_copy_truncated"] = len(actors) > ASFF_SEQUENCE_LIMIT or len(endpoints) > ASFF_SEQUENCE_LIMIT
    return compact(out)


def _process(process: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if process is None:
        return None
    return compact(
        {
            "name": ident(process, "name"),
            "executable_path": ident(process, "executablePath"),
            "executable_sha256": ident(process, "executableSha256"),
            "pid": number(process, "pid"),
        }
    )
