"""IAM containment: deny policies, session revocation, access keys, admin policies, console login.

Every change here is reversible and remembered: nothing is deleted that cannot be put back
(keys are made Inactive, never deleted; detached policies and login profiles are recorded).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import string
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import unquote

from chalicelib.actions._targets import principal_of
from chalicelib.actions.base import (
    Action,
    ActionContext,
    ActionError,
    ActionPlan,
    ApiCall,
    CallPlan,
    Secret,
    error_code,
)
from chalicelib.actions.registry import register
from chalicelib.findings.arn import parse_arn, resource_from_arn
from chalicelib.findings.model import Actor, Finding, Resource

#: Managed policies treated as administrator-like by ``iam.detach-policies`` by default (customer
#: managed policies are judged by their document).
ADMIN_LIKE_POLICIES = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")
DENY_ALL_SID = "ClampdownDenyAll"
#: The path of service-linked roles: their permissions belong to the AWS service, and IAM refuses
#: to put or attach a policy on them (``UnmodifiableEntity``).
SERVICE_LINKED_PATH = "/aws-service-role/"

__all__ = ["ADMIN_LIKE_POLICIES", "principal_of"]


def _service_linked(target: Resource | None) -> bool:
    if target is None or target.kind != "iam-role":
        return False
    path = str(target.details.get("path") or "")
    return path.startswith(SERVICE_LINKED_PATH) or f":role{SERVICE_LINKED_PATH}" in (target.arn or "")


def _is_missing(exc: Exception) -> bool:
    return error_code(exc) == "NoSuchEntity"


def _deny_all(condition: Mapping[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": DENY_ALL_SID, "Effect": "Deny", "Action": "*", "Resource": "*"}
    if condition:
        statement["Condition"] = dict(condition)
    return {"Version": "2012-10-17", "Statement": [statement]}


class InlinePolicyAction(Action):
    """Puts one named inline policy on a role or user; rollback restores whatever was there before."""

    policy_name: ClassVar[str]

    def document(self, ctx: ActionContext) -> dict[str, Any]:
        raise NotImplementedError

    def skip_reason(self, ctx: ActionContext, target: Resource | None) -> str | None:
        if _service_linked(target):
            return (
                "a service-linked role: its permissions belong to the AWS service and IAM refuses policies on it "
                "(UnmodifiableEntity); contain what the service acts on instead"
            )
        return None

    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        kind, name = principal_of(target)
        client = ctx.client("iam", target)
        try:
            response = getattr(client, f"get_{kind.lower()}_policy")(
                **{f"{kind}Name": name}, PolicyName=self.policy_name
            )
            policy = response["PolicyDocument"]
            if isinstance(policy, str):
                policy = json.loads(policy)
        except Exception as exc:
            if not _is_missing(exc):
                raise
            # NoSuchEntity for the policy (or the principal: the put will then say so precisely).
            policy = None
        return {"policy_name": self.policy_name, "policy": policy}

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        return state.get("policy") == self.document(ctx)

    def expected_state(
        self, before: Mapping[str, Any] | None, ctx: ActionContext, target: Resource | None
    ) -> dict[str, Any]:
        return {"policy_name": self.policy_name, "policy": self.document(ctx)}

    def _put(self, target: Resource | None, name: str, document: Mapping[str, Any], purpose: str) -> ApiCall:
        kind, principal = principal_of(target)
        params = {f"{kind}Name": principal, "PolicyName": name, "PolicyDocument": json.dumps(document)}
        return ApiCall("iam", f"Put{kind}Policy", params, purpose)

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        yield self._put(target, self.policy_name, self.document(ctx), self.summary)

    def restore(
        self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> CallPlan:
        kind, principal = principal_of(target)
        name = str(before.get("policy_name") or self.policy_name)  # as recorded, should the name ever change
        previous = before.get("policy")
        if current is not None and current.get("policy") == previous:
            return
        if previous is None:
            yield ApiCall(
                "iam",
                f"Delete{kind}Policy",
                {f"{kind}Name": principal, "PolicyName": name},
                f"remove the {name} policy Clampdown added",
            )
        else:
            yield self._put(target, name, previous, f"put back the earlier {name} policy")


def _inline_policy_permissions(kind: str) -> tuple[str, ...]:
    return (f"iam:Get{kind}Policy", f"iam:Put{kind}Policy", f"iam:Delete{kind}Policy")


class Quarantine(InlinePolicyAction):
    """An explicit deny-all inline policy: it overrides every allow, existing sessions included."""

    policy_name = "clampdown-quarantine"

    def document(self, ctx: ActionContext) -> dict[str, Any]:
        return _deny_all()


@register
class QuarantineRole(Quarantine):
    name = "iam.quarantine-role"
    summary = "Attach an explicit deny-all inline policy to the role (applies to its existing sessions too)."
    resource_kinds = ("iam-role",)
    permissions = _inline_policy_permissions("Role")


@register
class QuarantineUser(Quarantine):
    name = "iam.quarantine-user"
    summary = "Attach an explicit deny-all inline policy to the user (its keys and console session stop working)."
    resource_kinds = ("iam-user", "access-key")
    permissions = _inline_policy_permissions("User")

    def skip_reason(self, ctx: ActionContext, target: Resource | None) -> str | None:
        user_type = target.details.get("user_type") if target is not None and target.kind == "access-key" else None
        if user_type not in (None, "IAMUser"):
            return f"the key belongs to a {user_type} session, not an IAM user: revoke the role's sessions instead"
        return super().skip_reason(ctx, target)


@register
class RevokeRoleSessions(InlinePolicyAction):
    """What the console's "Revoke active sessions" does, with a chosen cut-off.

    Deleting an access key does nothing for temporary credentials (``ASIA…``): the only way to cut
    an assumed-role session is to deny tokens issued before a time (``aws:TokenIssueTime``).

    Its targets are the roles the finding names (GuardDuty resolves an ``ASIA…`` key to its role from
    ``accessKeyDetails``) and the role behind the caller's session: CloudTrail's
    ``sessionContext.sessionIssuer`` (an IAM role ARN), else the role of an ``assumed-role`` session
    ARN. A service-linked role is named but skipped (IAM refuses policies on it); the responder's own
    roles are refused by the guardrails like any other target.

    Idempotent on the finding's activity: a deny already in place whose cut-off is at or after the
    finding's last activity (or the explicit ``issued_before``) covers it, so a redelivery a minute
    later is ``already-contained`` rather than a new cut-off.
    """

    name = "iam.revoke-role-sessions"
    summary = "Deny every permission to the role's sessions issued before a cut-off time."
    resource_kinds = ("iam-role",)
    permissions = _inline_policy_permissions("Role")
    policy_name = "clampdown-revoke-older-sessions"
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "issued_before": {
                "type": "string",
                "description": "'now' (default), 'last_seen' (the finding's last activity) or an ISO-8601 time.",
                "minLength": 3,
            }
        },
    }

    @classmethod
    def targets(cls, finding: Finding, kinds: tuple[str, ...]) -> tuple[Resource, ...]:
        named = list(super().targets(finding, kinds))
        if "iam-role" in kinds:
            named += [role for role in (caller_role(actor) for actor in (finding.actor, *finding.actors)) if role]
        unique: dict[str, Resource] = {}
        for resource in named:
            unique.setdefault(resource.key, resource)
        return tuple(unique.values())

    def _moment(self, ctx: ActionContext) -> datetime:
        choice = str(self.params.get("issued_before", "now"))
        if choice == "now":
            return ctx.now
        if choice == "last_seen":
            return _parse_time(ctx.finding.last_seen or ctx.finding.time) or ctx.now
        parsed = _parse_time(choice)
        if parsed is None:
            raise ActionError("InvalidParameter", f"issued_before {choice!r} is not 'now', 'last_seen' or a time")
        return parsed

    def cutoff(self, ctx: ActionContext) -> str:
        return _ceil(self._moment(ctx)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def covered_until(self, ctx: ActionContext) -> datetime:
        """The latest token issue time a deny must reach to cover this finding: its last activity (never
        after our own cut-off), or the explicit ``issued_before``."""
        moment = self._moment(ctx)
        if str(self.params.get("issued_before", "now")) in ("now", "last_seen"):
            activity = _parse_time(ctx.finding.last_seen or ctx.finding.time)
            moment = min(activity, moment) if activity else moment
        return _ceil(moment)

    def document(self, ctx: ActionContext) -> dict[str, Any]:
        return _deny_all({"DateLessThan": {"aws:TokenIssueTime": self.cutoff(ctx)}})

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        """Contained when the deny in place reaches the finding's activity (a later cut-off revokes more)."""
        try:
            existing = _parse_time(state["policy"]["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"])
        except (KeyError, IndexError, TypeError, AttributeError):
            return False
        return existing is not None and existing >= self.covered_until(ctx)

    def plan(self, ctx: ActionContext, target: Resource | None) -> ActionPlan:
        plan = super().plan(ctx, target)
        source = target.details.get("resolved_from") if target is not None else None
        if source:
            plan.notes.append(f"the role is {source}" + _of_session(target))
        return plan


def caller_role(actor: Actor) -> Resource | None:
    """The IAM role behind an actor's temporary credentials, or None (an IAM user, root, a federated user)."""
    issuer = resource_from_arn(actor.session_issuer_arn)
    session = parse_arn(actor.principal_arn)
    role: Resource | None
    if issuer is not None and issuer.kind == "iam-role" and issuer.arn:
        role, source = issuer, "the issuer of the caller's session (CloudTrail sessionContext.sessionIssuer)"
    elif session is not None and session.service == "sts" and session.resource_type == "assumed-role":
        role, source = resource_from_arn(actor.principal_arn), "the role of the caller's assumed-role session"
    else:
        return None
    if role is None or role.kind != "iam-role" or not role.name:
        return None
    details = {**role.details, "resolved_from": source}
    if actor.principal_arn:
        details["session_arn"] = actor.principal_arn
    return dataclasses.replace(role, details=details)


def _of_session(target: Resource | None) -> str:
    session = target.details.get("session_arn") if target is not None else None
    return f" ({session})" if session else ""


def _parse_time(text: str | None) -> datetime | None:
    """An ISO-8601 time, in UTC when it names no zone."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ceil(moment: datetime) -> datetime:
    """Up to a whole second: ``aws:TokenIssueTime`` cut-offs are written to the second."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


@register
class DeactivateAccessKey(Action):
    name = "iam.deactivate-access-key"
    summary = "Make an IAM user's access key Inactive (never deleted, so it can be re-activated)."
    resource_kinds = ("access-key",)
    permissions = ("iam:GetAccessKeyLastUsed", "iam:ListAccessKeys", "iam:UpdateAccessKey")

    def skip_reason(self, ctx: ActionContext, target: Resource | None) -> str | None:
        key = (target.id if target else None) or ""
        if key.startswith("ASIA"):
            return "temporary credentials (ASIA…) cannot be deactivated: revoke the role's sessions instead"
        if target is not None and target.details.get("user_type") == "Root":
            return "root access keys can only be deactivated by the root user"
        if not key:
            return "the finding does not name the access key id"
        return None

    def _user(self, ctx: ActionContext, target: Resource) -> str:
        user = target.details.get("user_name")
        if user:
            return str(user)
        last_used = ctx.client("iam", target).get_access_key_last_used(AccessKeyId=target.id)
        return str(last_used["UserName"])

    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        assert target is not None
        user = self._user(ctx, target)
        paginator = ctx.client("iam", target).get_paginator("list_access_keys")
        for page in paginator.paginate(UserName=user):
            for key in page["AccessKeyMetadata"]:
                if key["AccessKeyId"] == target.id:
                    return {"user_name": user, "access_key_id": target.id, "status": key["Status"]}
        raise ActionError("NoSuchEntity", f"access key {target.id} does not belong to user {user}")

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        return state.get("status") == "Inactive"

    def expected_state(
        self, before: Mapping[str, Any] | None, ctx: ActionContext, target: Resource | None
    ) -> dict[str, Any]:
        return {**(before or {}), "status": "Inactive"}

    def _update(self, target: Resource | None, user: str, status: str, purpose: str) -> ApiCall:
        assert target is not None
        return ApiCall(
            "iam", "UpdateAccessKey", {"UserName": user, "AccessKeyId": target.id, "Status": status}, purpose
        )

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        assert target is not None
        user = (before or {}).get("user_name") or target.details.get("user_name") or "<owner of the key>"
        yield self._update(target, str(user), "Inactive", "deactivate the key")

    def restore(
        self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> CallPlan:
        if before.get("status") == "Active" and (current or {}).get("status") != "Active":
            yield self._update(target, str(before["user_name"]), "Active", "re-activate the key")


def _listed(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value) if isinstance(value, list) else []


def _is_admin_like_statement(statement: Mapping[str, Any]) -> bool:
    """Allows every action, or all of IAM (which grants the rest), or all but a few (``NotAction``),
    on every resource."""
    if statement.get("Effect") != "Allow" or "*" not in _listed(statement.get("Resource")):
        return False
    if "NotAction" in statement:
        return True
    return any(str(a).lower() in ("*", "*:*", "iam:*") for a in _listed(statement.get("Action")))


def _is_admin_like_document(document: Any) -> bool:
    """``document`` may be a mapping, JSON text, or JSON text URL-encoded as IAM returns it."""
    if isinstance(document, str):
        text = document.strip()
        document = json.loads(text if text.startswith("{") else unquote(text))
    statements = document.get("Statement", []) if isinstance(document, Mapping) else []
    statements = [statements] if isinstance(statements, Mapping) else statements
    return any(isinstance(s, Mapping) and _is_admin_like_statement(s) for s in statements)


def _customer_managed(policy_arn: str) -> bool:
    """``arn:aws:iam::123456789012:policy/...`` (AWS managed policies have ``aws`` as their account)."""
    arn = parse_arn(policy_arn)
    return arn is not None and arn.service == "iam" and arn.account.isdigit()


@register
class DetachPolicies(Action):
    """Removes administrator-like permissions from a role or user, remembering each one.

    By default: the AWS managed policies named in ``ADMIN_LIKE_POLICIES``, every customer managed
    policy whose default version is admin-like (``Action`` ``*`` or ``iam:*``, or an ``Allow`` with
    ``NotAction``, on ``Resource`` ``*``), and admin-like inline policies. ``policies`` names exactly the
    managed policies to detach instead.
    """

    name = "iam.detach-policies"
    summary = "Detach admin-like managed policies and delete admin-like inline policies, remembering them."
    resource_kinds = ("iam-role", "iam-user")
    permissions = (
        "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:GetRolePolicy",
        "iam:DetachRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:PutRolePolicy",
        "iam:ListAttachedUserPolicies", "iam:ListUserPolicies", "iam:GetUserPolicy",
        "iam:DetachUserPolicy", "iam:DeleteUserPolicy", "iam:AttachUserPolicy", "iam:PutUserPolicy",
        "iam:GetPolicy", "iam:GetPolicyVersion",
    )  # fmt: skip
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "policies": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "description": "Managed policy names or ARNs to detach (default: AdministratorAccess, "
                "PowerUserAccess, IAMFullAccess, and customer managed policies whose document is admin-like).",
            },
            "inline": {"enum": ["admin-like", "all", "none"], "default": "admin-like"},
        },
    }

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self._admin_like: dict[str, bool] = {}  # policy ARN → its default version is admin-like (one step)

    def _selected(self, client: Any, policy_name: str, policy_arn: str) -> bool:
        wanted = self.params.get("policies")
        if wanted:
            return policy_name in wanted or policy_arn in wanted
        if policy_name in ADMIN_LIKE_POLICIES:
            return True
        if not _customer_managed(policy_arn):
            return False
        if policy_arn not in self._admin_like:
            version = client.get_policy(PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
            document = client.get_policy_version(PolicyArn=policy_arn, VersionId=version)["PolicyVersion"]["Document"]
            self._admin_like[policy_arn] = _is_admin_like_document(document)
        return self._admin_like[policy_arn]

    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        kind, name = principal_of(target)
        client = ctx.client("iam", target)
        key = {f"{kind}Name": name}
        attached = [
            policy["PolicyArn"]
            for page in client.get_paginator(f"list_attached_{kind.lower()}_policies").paginate(**key)
            for policy in page["AttachedPolicies"]
            if self._selected(client, policy["PolicyName"], policy["PolicyArn"])
        ]
        mode = self.params.get("inline", "admin-like")
        inline: dict[str, Any] = {}
        if mode != "none":
            for page in client.get_paginator(f"list_{kind.lower()}_policies").paginate(**key):
                for policy_name in page["PolicyNames"]:
                    if policy_name.startswith("clampdown-"):
                        continue  # Clampdown's own deny policies are containment, not permissions
                    response = getattr(client, f"get_{kind.lower()}_policy")(**key, PolicyName=policy_name)
                    document = response["PolicyDocument"]
                    if mode == "all" or _is_admin_like_document(document):
                        inline[policy_name] = document
        return {"attached": attached, "inline": inline}

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        return not state.get("attached") and not state.get("inline")

    def expected_state(
        self, before: Mapping[str, Any] | None, ctx: ActionContext, target: Resource | None
    ) -> dict[str, Any]:
        return {"attached": [], "inline": {}}

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        kind, name = principal_of(target)
        if before is None:  # offline: name what would be looked for
            wanted = self.params.get("policies") or ADMIN_LIKE_POLICIES
            for policy in wanted:
                arn = policy if policy.startswith("arn:") else f"arn:aws:iam::aws:policy/{policy}"
                yield ApiCall("iam", f"Detach{kind}Policy", {f"{kind}Name": name, "PolicyArn": arn}, "if attached")
            return
        for arn in before.get("attached", ()):
            yield ApiCall("iam", f"Detach{kind}Policy", {f"{kind}Name": name, "PolicyArn": arn}, "detach")
        for policy_name in before.get("inline", {}):
            yield ApiCall(
                "iam", f"Delete{kind}Policy", {f"{kind}Name": name, "PolicyName": policy_name}, "delete (saved)"
            )

    def restore(
        self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> CallPlan:
        kind, name = principal_of(target)
        current = current or {}
        for arn in before.get("attached", ()):
            if arn not in current.get("attached", ()):
                yield ApiCall("iam", f"Attach{kind}Policy", {f"{kind}Name": name, "PolicyArn": arn}, "re-attach")
        for policy_name, document in before.get("inline", {}).items():
            if policy_name not in current.get("inline", {}):
                text = document if isinstance(document, str) else json.dumps(document)
                params = {f"{kind}Name": name, "PolicyName": policy_name, "PolicyDocument": text}
                yield ApiCall("iam", f"Put{kind}Policy", params, "put back")


def _random_password(length: int = 24) -> Secret:
    alphabet = string.ascii_letters + string.digits + "!@#$%^&*()_+-="
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(length))
        if any(c.islower() for c in value) and any(c.isupper() for c in value) and any(c.isdigit() for c in value):
            return Secret(value)


@register
class DisableConsoleLogin(Action):
    """Deletes the user's login profile (console password), remembering that it existed.

    A password cannot be read back, so rollback creates a new random one with a reset required:
    an administrator must then set a password for the user (the result says so).
    """

    name = "iam.disable-console-login"
    summary = "Delete the user's console password (login profile); rollback re-enables it with a reset."
    resource_kinds = ("iam-user",)
    permissions = ("iam:GetLoginProfile", "iam:GetUser", "iam:DeleteLoginProfile", "iam:CreateLoginProfile")

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self._known_users: set[str] = set()  # confirmed to exist during this step

    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        _, name = principal_of(target)
        client = ctx.client("iam", target)
        try:
            profile = client.get_login_profile(UserName=name)["LoginProfile"]
        except Exception as exc:
            if not _is_missing(exc):
                raise
            # NoSuchEntity is the same code for "no login profile" and "no such user": a user that does not
            # exist is a failure (as for every other action), not a console already disabled. The guardrails'
            # live read of the user, when there was one, already says it exists.
            if self.take_live(target) is None and name not in self._known_users:
                client.get_user(UserName=name)
            self._known_users.add(name)
            return {"user_name": name, "login_profile": False}
        return {
            "user_name": name,
            "login_profile": True,
            "password_reset_required": bool(profile.get("PasswordResetRequired", False)),
        }

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        return not state.get("login_profile")

    def expected_state(
        self, before: Mapping[str, Any] | None, ctx: ActionContext, target: Resource | None
    ) -> dict[str, Any]:
        return {"user_name": principal_of(target)[1], "login_profile": False}

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        _, name = principal_of(target)
        yield ApiCall("iam", "DeleteLoginProfile", {"UserName": name}, "remove the console password")

    def restore(
        self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> CallPlan:
        if before.get("login_profile") and not (current or {}).get("login_profile"):
            params = {"UserName": before["user_name"], "Password": _random_password(), "PasswordResetRequired": True}
            yield ApiCall(
                "iam",
                "CreateLoginProfile",
                params,
                "console access restored, password reset required: the random password is unknown, "
                "so an administrator must set a new one",
            )
