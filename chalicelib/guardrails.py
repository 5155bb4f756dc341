"""Guardrails: what containment must never touch, checked before every change.

- protected resources (ARN/id/name globs, tags, whole accounts);
- principals that must keep working (incident-response and break-glass roles);
- the responder itself (its roles, its function, its member-account role): never a target;
- what a rollback released: the same containment of the same resource never happens again for the
  same finding (the incident's suppressions), or the next redelivery would undo the human's decision.

A resource named without an ARN (an IAM role from an access key, a bucket by name) is matched through
the ARN its kind, account, region and name give it. The actions check these rules twice: on what the
finding says, then on the live resource (its real ARN and tags, ``actions._live``).

The kill switch and the blast-radius limit decide *whether* steps run at all; they live in the
responder (they need the SSM parameter and the incident store). This module is pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from chalicelib.findings.model import Actor, Resource

if TYPE_CHECKING:
    from chalicelib.actions.base import Action, ActionContext

#: Tag that marks a resource as off-limits to automated containment.
PROTECT_TAG = "clampdown:protected"


def _names(resource: Resource, account: str | None = None, region: str | None = None) -> list[str]:
    """What globs are matched against: ARN, id, name, and the ARN derived for a resource named without one
    (an access key: its user's ARN, when known)."""
    from chalicelib.actions._targets import derived_arn

    derived = derived_arn(resource, account, region) if account or region else None
    user_arn = resource.details.get("user_arn") if resource.kind == "access-key" else None
    return list(dict.fromkeys(v for v in (resource.arn, resource.id, resource.name, derived, user_arn) if v))


def suppression_key(action: str, target: Resource | Mapping[str, Any] | None) -> str:
    """What a rollback suppresses: one action on one resource (``Resource.key``), for the incident's finding."""
    if isinstance(target, Mapping):
        target = Resource.from_dict(target)
    return f"{action}/{target.key if target is not None else 'finding'}"


def suppressed(suppressions: Iterable[str], action: str, target: Resource | None) -> bool:
    """Is this containment suppressed? (Records written before this rule named the step key, which ends
    with the same text, optionally followed by ``#<params digest>``.)"""
    key = suppression_key(action, target)
    return any(s == key or s.endswith(f"/{key}") or f"/{key}#" in s for s in suppressions)


def _role_name_of(arn: str) -> str | None:
    """``arn:aws:iam::1:role/path/Name`` and ``arn:aws:sts::1:assumed-role/Name/s`` → ``Name``."""
    _, _, rest = arn.partition(":role/")
    if rest:
        return rest.rsplit("/", 1)[-1]
    _, _, rest = arn.partition(":assumed-role/")
    return rest.split("/", 1)[0] if rest else None


def _names_own(pattern: str, account: str | None, resource: str) -> bool:
    """Does an ARN glob (``arn:aws:iam::123456789012:role/clampdown-*``) name ``resource`` (``role/NAME``)
    in ``account``? Findings often name a resource without its ARN; an unknown account matches (when in
    doubt, the responder is protected)."""
    parts = pattern.split(":", 5)
    if len(parts) != 6:
        return False
    account_glob, resource_glob = parts[4], parts[5]
    return (account is None or fnmatchcase(account, account_glob or "*")) and fnmatchcase(resource, resource_glob)


def _is_principal(resource: Resource, names: list[str], pattern: str) -> bool:
    """Does an allow-list entry (an ARN glob) name this principal, or the owner of this key?"""
    if resource.kind not in ("iam-role", "iam-user", "access-key"):
        return False
    if any(fnmatchcase(v, pattern) for v in names):
        return True
    # Findings often name a principal without its ARN: compare account and name separately.
    kind = "user" if resource.kind == "access-key" else resource.kind.removeprefix("iam-")
    name = resource.details.get("user_name") if resource.kind == "access-key" else resource.name
    prefix, marker, rest = pattern.partition(f":{kind}/")
    if not marker or not name:
        return False
    account_pattern = prefix.rsplit(":", 1)[-1] or "*"
    same_account = resource.account is None or fnmatchcase(resource.account, account_pattern)
    return same_account and fnmatchcase(str(name), rest.rsplit("/", 1)[-1])


@dataclass(frozen=True)
class Guardrails:
    """Implements ``actions.base.Guard``."""

    protected_resources: tuple[str, ...] = ()
    protected_accounts: tuple[str, ...] = ()
    protected_tags: Mapping[str, str] = field(default_factory=lambda: {PROTECT_TAG: "*"})
    #: Principals containment must leave working (ARN globs), e.g. break-glass and IR roles.
    allowed_principals: tuple[str, ...] = ()
    #: The responder's own identities: role ARNs (globs), function ARNs, member role name.
    own_role_arns: tuple[str, ...] = ()
    own_function_arns: tuple[str, ...] = ()
    own_role_names: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Guardrails:
        def strings(key: str) -> tuple[str, ...]:
            value = settings.get(key) or ()
            return tuple(str(v) for v in ([value] if isinstance(value, str) else value))

        tags = dict(settings.get("protected_tags") or {PROTECT_TAG: "*"})
        return cls(
            protected_resources=strings("protected_resources"),
            protected_accounts=strings("protected_accounts"),
            protected_tags=tags,
            allowed_principals=strings("allowed_principals"),
            own_role_arns=strings("own_role_arns"),
            own_function_arns=strings("own_function_arns"),
            own_role_names=strings("own_role_names"),
        )

    def _is_self(self, resource: Resource, names: list[str]) -> str | None:
        arn_parts = (resource.arn or "").split(":", 5)
        account = resource.account or (arn_parts[4] if len(arn_parts) == 6 and arn_parts[4] else None)
        if resource.kind in ("iam-role", "access-key"):
            role_names = {resource.name} if resource.kind == "iam-role" and resource.name else set()
            role_names |= {n for n in (_role_name_of(v) for v in names) if n}
            if role_names & set(self.own_role_names):
                return "it is the responder's own role"
            if any(fnmatchcase(v, p) for v in names for p in self.own_role_arns) or any(
                _names_own(p, account, f"role/{n}") for p in self.own_role_arns for n in role_names
            ):
                return "it is the responder's own role"
        own_function = any(fnmatchcase(v, p) for v in names for p in self.own_function_arns) or (
            resource.name and any(_names_own(p, account, f"function:{resource.name}") for p in self.own_function_arns)
        )
        if resource.kind == "lambda-function" and own_function:
            return "it is the responder's own function"
        return None

    def protection(self, resource: Resource, *, account: str | None = None, region: str | None = None) -> str | None:
        """Why ``resource`` must not be changed, or None. ``account`` and ``region`` (the finding's) stand in
        for the resource's own when it names none, to derive its ARN."""
        names = _names(resource, resource.account or account, resource.region or region)
        own = self._is_self(resource, names)
        if own:
            return own
        owner = resource.account or account
        if owner and any(fnmatchcase(owner, p) for p in self.protected_accounts):
            return f"account {owner} is protected"
        for pattern in self.protected_resources:
            if any(fnmatchcase(v, pattern) for v in names):
                return f"it matches protected resource {pattern}"
        for key, pattern in self.protected_tags.items():
            value = resource.tags.get(key)
            if value is not None and fnmatchcase(value, pattern):
                return f"it is tagged {key}={value}"
        for pattern in self.allowed_principals:
            if _is_principal(resource, names, pattern):
                return f"{pattern} is an allow-listed principal that containment must leave working"
        return None

    def refuse(self, action: Action, target: Resource | None, ctx: ActionContext) -> str | None:
        if not action.changes_aws:
            return None
        if suppressed(ctx.suppressions, action.name, target):
            return "released by a rollback of this incident: not contained again for this finding"
        if target is None:
            return None
        reason = self.protection(target, account=ctx.finding.account, region=ctx.finding.region)
        return f"protected: {reason}" if reason else None

    def is_own_actor(self, actor: Actor) -> bool:
        """Is this the responder itself acting (its role or its member-account role)?

        Its own API calls show up in CloudTrail (a quarantine is a PutRolePolicy) and would match
        detection playbooks; acting on them would loop.
        """
        arns = [a for a in (actor.session_issuer_arn, actor.principal_arn) if a]
        if any(fnmatchcase(arn, pattern) for arn in arns for pattern in self.own_role_arns):
            return True
        roles = {name for name in (_role_name_of(arn) for arn in arns) if name}
        return bool(roles & set(self.own_role_names))
