"""IAM containment: deny policies, session revocation, access keys, admin policies, console login.

Every change here is reversible and remembered: nothing is deleted that cannot be put back
(keys are made Inactive, never deleted; detached policies and login profiles are recorded).
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from chalicelib.actions.base import (
    Action,
    ActionContext,
    ActionError,
    ApiCall,
    CallPlan,
    Secret,
    error_code,
)
from chalicelib.actions.registry import register
from chalicelib.findings.model import Resource

#: Managed policies treated as administrator-like by ``iam.detach-policies`` by default.
ADMIN_LIKE_POLICIES = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")
DENY_ALL_SID = "ClampdownDenyAll"


def principal_of(target: Resource | None) -> tuple[str, str]:
    """("Role" | "User", name) of an IAM principal resource; an access key names its user."""
    if target is None:
        raise ActionError("InvalidTarget", "an IAM action needs a principal")
    if target.kind == "access-key":
        name = target.details.get("user_name")
        if not name:
            raise ActionError("InvalidTarget", f"access key {target.id} does not name its user")
        return "User", str(name)
    kind = {"iam-role": "Role", "iam-user": "User"}.get(target.kind)
    name = target.name or (target.arn.rsplit("/", 1)[-1] if target.arn else None)
    if kind is None or not name:
        raise ActionError("InvalidTarget", f"{target.kind} {target.id or target.arn} is not an IAM role or user")
    return kind, name


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

    def _put(self, target: Resource | None, document: Mapping[str, Any], purpose: str) -> ApiCall:
        kind, name = principal_of(target)
        params = {f"{kind}Name": name, "PolicyName": self.policy_name, "PolicyDocument": json.dumps(document)}
        return ApiCall("iam", f"Put{kind}Policy", params, purpose)

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        yield self._put(target, self.document(ctx), self.summary)

    def restore(
        self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> CallPlan:
        kind, name = principal_of(target)
        previous = before.get("policy")
        if current is not None and current.get("policy") == previous:
            return
        if previous is None:
            yield ApiCall(
                "iam",
                f"Delete{kind}Policy",
                {f"{kind}Name": name, "PolicyName": self.policy_name},
                f"remove the {self.policy_name} policy Clampdown added",
            )
        else:
            yield self._put(target, previous, f"put back the earlier {self.policy_name} policy")


@register
class QuarantineRole(InlinePolicyAction):
    name = "iam.quarantine-role"
    summary = "Attach an explicit deny-all inline policy to the role (applies to its existing sessions too)."
    resource_kinds = ("iam-role",)
    permissions = ("iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy")
    policy_name = "clampdown-quarantine"
    schema: ClassVar[Mapping[str, Any]] = {"type": "object", "additionalProperties": False, "properties": {}}

    def document(self, ctx: ActionContext) -> dict[str, Any]:
        return _deny_all()


@register
class QuarantineUser(InlinePolicyAction):
    name = "iam.quarantine-user"
    summary = "Attach an explicit deny-all inline policy to the user (its keys and console session stop working)."
    resource_kinds = ("iam-user", "access-key")
    permissions = ("iam:GetUserPolicy", "iam:PutUserPolicy", "iam:DeleteUserPolicy")
    policy_name = "clampdown-quarantine"
    schema: ClassVar[Mapping[str, Any]] = {"type": "object", "additionalProperties": False, "properties": {}}

    def document(self, ctx: ActionContext) -> dict[str, Any]:
        return _deny_all()


@register
class RevokeRoleSessions(InlinePolicyAction):
    """What the console's "Revoke active sessions" does, with a chosen cut-off.

    Deleting an access key does nothing for temporary credentials (``ASIA…``): the only way to cut
    an assumed-role session is to deny tokens issued before a time (``aws:TokenIssueTime``).
    """

    name = "iam.revoke-role-sessions"
    summary = "Deny every permission to the role's sessions issued before a cut-off time."
    resource_kinds = ("iam-role",)
    permissions = ("iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy")
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

    def cutoff(self, ctx: ActionContext) -> str:
        choice = str(self.params.get("issued_before", "now"))
        if choice == "now":
            moment = ctx.now
        elif choice == "last_seen":
            moment = _parse_time(ctx.finding.last_seen or ctx.finding.time) or ctx.now
        else:
            parsed = _parse_time(choice)
            if parsed is None:
                raise ActionError("InvalidParameter", f"issued_before {choice!r} is not 'now', 'last_seen' or a time")
            moment = parsed
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def document(self, ctx: ActionContext) -> dict[str, Any]:
        return _deny_all({"DateLessThan": {"aws:TokenIssueTime": self.cutoff(ctx)}})

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        """Contained when a cut-off at or after ours is in place (a later one revokes more)."""
        try:
            existing = state["policy"]["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
        except (KeyError, IndexError, TypeError):
            return False
        return isinstance(existing, str) and existing >= self.cutoff(ctx)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None


@register
class DeactivateAccessKey(Action):
    name = "iam.deactivate-access-key"
    summary = "Make an IAM user's access key Inactive (never deleted, so it can be re-activated)."
    resource_kinds = ("access-key",)
    permissions = ("iam:GetAccessKeyLastUsed", "iam:ListAccessKeys", "iam:UpdateAccessKey")
    schema: ClassVar[Mapping[str, Any]] = {"type": "object", "additionalProperties": False, "properties": {}}

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


def _is_admin_like_statement(statement: Mapping[str, Any]) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    actions = statement.get("Action", [])
    actions = [actions] if isinstance(actions, str) else actions
    resources = statement.get("Resource", [])
    resources = [resources] if isinstance(resources, str) else resources
    return any(a in ("*", "iam:*") for a in actions) and "*" in resources


def _is_admin_like_document(document: Any) -> bool:
    if isinstance(document, str):
        document = json.loads(document)
    statements = document.get("Statement", []) if isinstance(document, Mapping) else []
    statements = [statements] if isinstance(statements, Mapping) else statements
    return any(isinstance(s, Mapping) and _is_admin_like_statement(s) for s in statements)


@register
class DetachPolicies(Action):
    """Removes administrator-like permissions from a role or user, remembering each one."""

    name = "iam.detach-policies"
    summary = "Detach admin-like managed policies and delete admin-like inline policies, remembering them."
    resource_kinds = ("iam-role", "iam-user")
    permissions = (
        "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:GetRolePolicy",
        "iam:DetachRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:PutRolePolicy",
        "iam:ListAttachedUserPolicies", "iam:ListUserPolicies", "iam:GetUserPolicy",
        "iam:DetachUserPolicy", "iam:DeleteUserPolicy", "iam:AttachUserPolicy", "iam:PutUserPolicy",
    )  # fmt: skip
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "policies": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "description": "Managed policy names or ARNs to detach (default: AdministratorAccess, "
                "PowerUserAccess, IAMFullAccess).",
            },
            "inline": {"enum": ["admin-like", "all", "none"], "default": "admin-like"},
        },
    }

    def _selected(self, policy_name: str, policy_arn: str) -> bool:
        wanted = self.params.get("policies") or ADMIN_LIKE_POLICIES
        return policy_name in wanted or policy_arn in wanted

    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        kind, name = principal_of(target)
        client = ctx.client("iam", target)
        key = {f"{kind}Name": name}
        attached = [
            policy["PolicyArn"]
            for page in client.get_paginator(f"list_attached_{kind.lower()}_policies").paginate(**key)
            for policy in page["AttachedPolicies"]
            if self._selected(policy["PolicyName"], policy["PolicyArn"])
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
    permissions = ("iam:GetLoginProfile", "iam:DeleteLoginProfile", "iam:CreateLoginProfile")
    schema: ClassVar[Mapping[str, Any]] = {"type": "object", "additionalProperties": False, "properties": {}}

    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        _, name = principal_of(target)
        try:
            profile = ctx.client("iam", target).get_login_profile(UserName=name)["LoginProfile"]
        except Exception as exc:
            if _is_missing(exc):
                return {"user_name": name, "login_profile": False}
            raise
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
        return {**(before or {}), "login_profile": False}

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
