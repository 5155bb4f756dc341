"""Resource and actor builders shared by the GuardDuty, Security Hub (ASFF and OCSF) sources."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .arn import parse_arn
from .fields import MAX_ITEMS, compact, ident, idents, ip_address, items, mapping, text
from .model import RESOURCE_KINDS, Actor, Resource

#: Principal types whose access keys lead to a resource a playbook can act on.
_PRINCIPAL_KIND = {"IAMUser": "iam-user", "AssumedRole": "iam-role", "Role": "iam-role"}
_MAX_TAGS = 50
#: partition, region, account, resource id
_ARN_PARTS = (
    re.compile(r"aws(-[a-z]+)*"),
    re.compile(r"[a-z0-9-]{1,64}"),
    re.compile(r"\d{1,20}"),
    re.compile(r"[A-Za-z0-9-]{1,64}"),
)
_BUCKET = re.compile(r"[A-Za-z0-9._-]{1,255}")


def principal_resource(
    user_type: str | None, user_name: str | None, account: str | None, *, inferred: bool = False
) -> Resource | None:
    """The IAM user or role an access key belongs to.

    ``IAMUser`` → ``iam-user``; ``AssumedRole``/``Role`` → ``iam-role`` (GuardDuty puts the role
    name in ``userName`` for assumed-role sessions). ``Root``, ``FederatedUser`` and unknown types
    name no IAM resource: the root user is recorded on the actor only.
    """
    kind = _PRINCIPAL_KIND.get(user_type or "")
    if kind is None or user_name is None:
        return None
    details = {"from_access_key": True, "user_type_inferred": True} if inferred else {"from_access_key": True}
    return Resource(kind, name=user_name, account=account, details=details)


def access_key_resources(
    key_id: str | None,
    *,
    user_name: str | None,
    user_type: str | None,
    principal_id: str | None,
    account: str | None,
) -> list[Resource]:
    """An ``access-key`` resource plus the principal it belongs to.

    When the principal type is unknown (legacy ASFF ``UserName``, trimmed OCSF captures) a
    long-term ``AKIA…`` key can only belong to an IAM user or the root user, so a named non-root
    owner is taken to be an IAM user (``details.user_type_inferred``); so is a named non-root owner
    without a key (GuardDuty's console-login findings in ASFF: ``AWS::IAM::AccessKey:null``).
    ``ASIA…`` session keys are ambiguous (the name may be a role's) and name no principal.
    """
    inferred = False
    long_term = key_id is None or key_id.startswith("AKIA")
    if user_type is None and long_term and user_name and user_name.lower() != "root":
        user_type, inferred = "IAMUser", True
    out: list[Resource] = []
    if key_id is not None:
        details = compact(
            {
                "user_name": user_name,
                "user_type": user_type,
                "principal_id": principal_id,
                "user_type_inferred": inferred or None,
            }
        )
        out.append(Resource("access-key", id=key_id, account=account, details=details))
    principal = principal_resource(user_type, user_name, account, inferred=inferred)
    if principal is not None:
        out.append(principal)
    return out


def tags_from(value: Any) -> dict[str, str]:
    """Tags from a ``[{key|Key|name, value|Value}]`` list or a ``{key: value}`` map."""
    pairs: Iterable[tuple[Any, Any]]
    if isinstance(value, Mapping):
        pairs = list(value.items())[:_MAX_TAGS]
    else:
        pairs = [
            (tag.get("key", tag.get("Key", tag.get("name"))), tag.get("value", tag.get("Value")))
            for tag in items(value, limit=_MAX_TAGS)
        ]
    out: dict[str, str] = {}
    for key, val in pairs:
        key_text = ident(key)
        if key_text is not None and len(key_text) <= 256:
            out[key_text] = text(val, limit=512) or ""
    return out


def ec2_instance_arn(partition: str, region: str | None, account: str | None, instance_id: str) -> str | None:
    """The instance ARN, if every part looks like one (no ``:``/``/`` smuggled in from the event)."""
    parts = (partition, region or "", account or "", instance_id)
    if not all(pattern.fullmatch(part) for pattern, part in zip(_ARN_PARTS, parts, strict=True)):
        return None
    return f"arn:{partition}:ec2:{region}:{account}:instance/{instance_id}"


def s3_bucket_arn(partition: str, name: str) -> str | None:
    if not _ARN_PARTS[0].fullmatch(partition) or not _BUCKET.fullmatch(name):
        return None
    return f"arn:{partition}:s3:::{name}"


def resource(kind: str, **fields: Any) -> Resource:
    """A :class:`Resource`, dropping empty fields and details."""
    if kind not in RESOURCE_KINDS:
        kind = "other"
    details = compact(fields.pop("details", None) or {})
    tags = fields.pop("tags", None) or {}
    return Resource(kind, tags=tags, details=details, **{k: v for k, v in fields.items() if v is not None})


def finalize(resources: Iterable[Resource | None], limit: int = MAX_ITEMS) -> tuple[Resource, ...]:
    """Drop ``None``s and duplicates (same :attr:`Resource.key`, first wins), keep order, cap at ``limit``."""
    seen: set[str] = set()
    out: list[Resource] = []
    for res in resources:
        if res is None or res.key in seen:
            continue
        seen.add(res.key)
        out.append(res)
        if len(out) >= limit:
            break
    return tuple(out)


def sequence_actor(actor: Mapping[str, Any], ip: str | None = None) -> Actor:
    """An attack-sequence actor (GuardDuty ``Actor``: ``user``, ``session``; camelCase keys)."""
    user = mapping(actor, "user") or {}
    uid = ident(user, "uid")
    issuer = ident(actor, "session", "issuer")
    return Actor(
        principal_arn=uid if parse_arn(uid) else None,
        user_name=ident(user, "name"),
        user_type=ident(user, "type"),
        principal_id=uid if uid and not parse_arn(uid) else None,
        access_key_id=ident(user, "credentialUid"),
        account=ident(user, "account", "uid"),
        source_ip=ip,
        session_issuer_arn=issuer if parse_arn(issuer) else None,
    )


def actor_ips(signals: list[Mapping[str, Any]], endpoints: list[Mapping[str, Any]]) -> dict[str, str]:
    """Actor id → the first IP of an endpoint that appears in a signal with that actor."""
    ip_by_endpoint: dict[str, str] = {}
    for endpoint in endpoints:
        eid, ip = ident(endpoint, "id"), ip_address(endpoint, "ip")
        if eid and ip:
            ip_by_endpoint.setdefault(eid, ip)
    out: dict[str, str] = {}
    for signal in signals:
        ips = [ip_by_endpoint[e] for e in idents(signal, "endpointIds") if e in ip_by_endpoint]
        for actor_id in idents(signal, "actorIds"):
            if ips:
                out.setdefault(actor_id, ips[0])
    return out
