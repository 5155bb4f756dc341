"""Lambda containment: stop invocations, remove public access, and snapshot the code for forensics.

Only the unqualified function is handled: resource policies and function URLs on aliases or
versions are left as they are (the finding names the function, and each alias would cost a
``ListAliases`` plus two reads).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar

from chalicelib.actions import _policy
from chalicelib.actions._targets import function_name
from chalicelib.actions.base import (
    Action,
    ActionContext,
    ActionError,
    ActionPlan,
    ActionResult,
    ApiCall,
    CallPlan,
    PlannedResponse,
    error_code,
)
from chalicelib.actions.registry import register
from chalicelib.evidence import evidence_key, safe_part
from chalicelib.findings.model import Resource


def _absent(exc: Exception) -> bool:
    return error_code(exc) == "ResourceNotFoundException"


@register
class ZeroConcurrency(Action):
    """Reserved concurrency 0 throttles every invocation without changing code or configuration."""

    name = "lambda.zero-concurrency"
    summary = "Set the function's reserved concurrency to 0 (no invocations), remembering the earlier value."
    resource_kinds = ("lambda-function",)
    permissions = ("lambda:GetFunctionConcurrency", "lambda:PutFunctionConcurrency", "lambda:DeleteFunctionConcurrency")

    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        name = function_name(target)
        response = ctx.client("lambda", target).get_function_concurrency(FunctionName=name)
        return {"function": name, "reserved_concurrency": response.get("ReservedConcurrentExecutions")}

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        return state.get("reserved_concurrency") == 0

    def expected_state(
        self, before: Mapping[str, Any] | None, ctx: ActionContext, target: Resource | None
    ) -> dict[str, Any]:
        return {"function": function_name(target), "reserved_concurrency": 0}

    def _put(self, target: Resource | None, value: int, purpose: str) -> ApiCall:
        params = {"FunctionName": function_name(target), "ReservedConcurrentExecutions": value}
        return ApiCall("lambda", "PutFunctionConcurrency", params, purpose)

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        yield self._put(target, 0, "stop all invocations")

    def restore(
        self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> CallPlan:
        previous = before.get("reserved_concurrency")
        if current is not None and current.get("reserved_concurrency") == previous:
            return
        if previous is None:
            params = {"FunctionName": function_name(target)}
            yield ApiCall("lambda", "DeleteFunctionConcurrency", params, "the function had no reserved concurrency")
        else:
            yield self._put(target, int(previous), "put back the earlier reserved concurrency")


# -- remove public access ------------------------------------------------------------------------

#: (condition operator, key) → AddPermission parameter, for statements AddPermission can recreate.
_CONDITION_PARAMS = {
    ("stringequals", "aws:sourceaccount"): "SourceAccount",
    ("arnlike", "aws:sourcearn"): "SourceArn",
    ("arnequals", "aws:sourcearn"): "SourceArn",
    ("stringequals", "aws:principalorgid"): "PrincipalOrgID",
    ("stringequals", "lambda:functionurlauthtype"): "FunctionUrlAuthType",
    ("stringequals", "lambda:eventsourcetoken"): "EventSourceToken",
    ("bool", "lambda:invokedviafunctionurl"): "InvokedViaFunctionUrl",
}


def _add_permission_principal(principal: Any) -> str | None:
    if isinstance(principal, str):
        return principal
    if isinstance(principal, Mapping) and len(principal) == 1:
        value = next(iter(principal.values()))
        return value if isinstance(value, str) else None
    return None


def add_permission_params(function: str, statement: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``AddPermission`` parameters that recreate ``statement`` exactly, or None if none can."""
    sid, action = statement.get("Sid"), statement.get("Action")
    principal = _add_permission_principal(statement.get("Principal"))
    if isinstance(action, list) and len(action) == 1:
        action = action[0]
    if statement.get("Effect") != "Allow" or not isinstance(sid, str) or not isinstance(action, str) or not principal:
        return None
    params: dict[str, Any] = {"FunctionName": function, "StatementId": sid, "Action": action, "Principal": principal}
    if isinstance(statement.get("FunctionUrlAuthType"), str):  # how moto records it
        params["FunctionUrlAuthType"] = statement["FunctionUrlAuthType"]
    condition = statement.get("Condition") or {}
    if not isinstance(condition, Mapping):
        return None
    for operator, clauses in condition.items():
        if not isinstance(clauses, Mapping):
            return None
        for key, value in clauses.items():
            param = _CONDITION_PARAMS.get((str(operator).lower(), str(key).lower()))
            if param is None or not isinstance(value, str):
                return None
            params[param] = value.lower() == "true" if param == "InvokedViaFunctionUrl" else value
    return params


@register
class RemovePublicAccess(Action):
    """Removes resource-policy statements open to everyone and a function URL that needs no auth.

    Rollback re-adds each statement with ``AddPermission`` (Lambda has no "put policy"); a
    statement ``AddPermission`` cannot express exactly is listed for manual re-creation instead.
    A recreated function URL may get a new address (moto assigns a new one; AWS derives it from an
    id it may not reuse): clients of the old URL must be told.
    """

    name = "lambda.remove-public-access"
    summary = "Remove public resource-policy statements and an unauthenticated (AuthType NONE) function URL."
    resource_kinds = ("lambda-function",)
    permissions = (
        "lambda:GetPolicy", "lambda:GetFunctionUrlConfig",
        "lambda:RemovePermission", "lambda:DeleteFunctionUrlConfig",
        "lambda:AddPermission", "lambda:CreateFunctionUrlConfig",
    )  # fmt: skip

    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        name = function_name(target)
        client = ctx.client("lambda", target)
        try:
            policy = _policy.load(client.get_policy(FunctionName=name)["Policy"])
        except Exception as exc:
            # "Function not found" is the function missing, not its policy: report it.
            if not _absent(exc) or "function not found" in str(exc).lower():
                raise
            policy = None
        try:
            url = client.get_function_url_config(FunctionName=name)
            url_config = {k: url[k] for k in ("FunctionUrl", "AuthType", "Cors", "InvokeMode") if k in url}
        except Exception as exc:
            if not _absent(exc):
                raise
            url_config = None
        _, public = _policy.split_public(policy)
        return {"function": name, "public_statements": public, "function_url": url_config}

    @staticmethod
    def _open_url(state: Mapping[str, Any]) -> bool:
        return (state.get("function_url") or {}).get("AuthType") == "NONE"

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        return not state.get("public_statements") and not self._open_url(state)

    def expected_state(
        self, before: Mapping[str, Any] | None, ctx: ActionContext, target: Resource | None
    ) -> dict[str, Any] | None:
        if before is None:
            return None
        url = None if self._open_url(before) else before.get("function_url")
        return {"function": before["function"], "public_statements": [], "function_url": url}

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        name = function_name(target)
        if before is None:  # offline: what is public is unknown
            each = {"FunctionName": name, "StatementId": "<each public statement>"}
            yield ApiCall("lambda", "RemovePermission", each, "if any")
            yield ApiCall("lambda", "DeleteFunctionUrlConfig", {"FunctionName": name}, "if its AuthType is NONE")
            return
        for statement in before.get("public_statements", ()):
            sid = statement.get("Sid") if isinstance(statement, Mapping) else None
            if not isinstance(sid, str) or not sid:
                raise ActionError("UnremovableStatement", f"a public statement of {name} has no Sid")
            params = {"FunctionName": name, "StatementId": sid}
            yield ApiCall("lambda", "RemovePermission", params, "remove a public statement (saved)")
        if self._open_url(before):
            yield ApiCall(
                "lambda", "DeleteFunctionUrlConfig", {"FunctionName": name}, "delete the unauthenticated URL (saved)"
            )

    def restore(
        self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> CallPlan:
        name = function_name(target)
        url = before.get("function_url") or {}
        if url.get("AuthType") == "NONE" and (current is None or not current.get("function_url")):
            params = {"FunctionName": name, **{k: url[k] for k in ("AuthType", "Cors", "InvokeMode") if k in url}}
            yield ApiCall(
                "lambda",
                "CreateFunctionUrlConfig",
                params,
                f"recreate the function URL (it may get a new address; it was {url.get('FunctionUrl')})",
            )
        present = {s.get("Sid") for s in (current or {}).get("public_statements", ()) if isinstance(s, Mapping)}
        for statement in before.get("public_statements", ()):
            add = add_permission_params(name, statement)
            if add is not None and add["StatementId"] not in present:
                yield ApiCall("lambda", "AddPermission", add, "re-add the public statement")

    def manual_steps(
        self, ctx: ActionContext, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> list[str]:
        """Removed statements that ``AddPermission`` cannot recreate exactly (those still there are not)."""
        present = {s.get("Sid") for s in (current or {}).get("public_statements", ()) if isinstance(s, Mapping)}
        return [
            f"re-add manually (AddPermission cannot express it): {json.dumps(s, sort_keys=True)}"
            for s in before.get("public_statements", ())
            if not isinstance(s, Mapping)
            or (add_permission_params(str(before.get("function", "")), s) is None and s.get("Sid") not in present)
        ]

    def plan(self, ctx: ActionContext, target: Resource | None) -> ActionPlan:
        plan = super().plan(ctx, target)
        if plan.before is not None and plan.calls:
            plan.notes.extend(self.manual_steps(ctx, plan.before, None))
        return plan


# -- snapshot ------------------------------------------------------------------------------------

_DOWNLOAD_TIMEOUT_S = 30.0


def _sha256_hex(code_sha256: str) -> str:
    """Lambda's ``CodeSha256`` is base64; evidence keys use hex."""
    try:
        return base64.b64decode(code_sha256, validate=True).hex()
    except (binascii.Error, ValueError):
        return safe_part(code_sha256)


def snapshot_record(response: Mapping[str, Any]) -> dict[str, Any]:
    """What ``GetFunction`` says, minus secrets: environment variable *names* only, no presigned URL."""
    config = response.get("Configuration") or {}
    code = response.get("Code") or {}
    location = str(code.get("Location") or "")
    record = {
        "function_name": config.get("FunctionName"),
        "function_arn": config.get("FunctionArn"),
        "runtime": config.get("Runtime"),
        "handler": config.get("Handler"),
        "role": config.get("Role"),
        "package_type": config.get("PackageType"),
        "code_sha256": config.get("CodeSha256"),
        "code_size": config.get("CodeSize"),
        "version": config.get("Version"),
        "revision_id": config.get("RevisionId"),
        "last_modified": config.get("LastModified"),
        "architectures": config.get("Architectures"),
        "timeout": config.get("Timeout"),
        "memory_size": config.get("MemorySize"),
        "kms_key_arn": config.get("KMSKeyArn"),
        "vpc": {k: v for k, v in (config.get("VpcConfig") or {}).items() if k in ("SubnetIds", "SecurityGroupIds")},
        "layers": [{"arn": layer.get("Arn"), "code_size": layer.get("CodeSize")} for layer in config.get("Layers", [])],
        "environment_variable_names": sorted((config.get("Environment") or {}).get("Variables") or {}),
        "code": {
            "repository_type": code.get("RepositoryType"),
            # The query string is a presigned credential: keep only where the package was.
            "location": location.split("?", 1)[0] or None,
            "image_uri": code.get("ImageUri"),
            "resolved_image_uri": code.get("ResolvedImageUri"),
        },
        "tags": dict(response.get("Tags") or {}),
        "reserved_concurrency": (response.get("Concurrency") or {}).get("ReservedConcurrentExecutions"),
    }
    return {k: v for k, v in record.items() if v not in (None, [], {})}


def download(url: str, limit: int) -> bytes:
    """GET a presigned package URL (at most ``limit`` bytes); urllib3 ships with botocore."""
    if not url.startswith(("https://", "http://")):
        raise ActionError("CodeNotDownloadable", "the code location is not an HTTP(S) URL")
    import urllib3

    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5.0, read=_DOWNLOAD_TIMEOUT_S), retries=False)
    response = http.request("GET", url, preload_content=False)
    try:
        if response.status != 200:
            raise ActionError("CodeNotDownloadable", f"the code location answered HTTP {response.status}")
        body = bytearray()
        for chunk in response.stream(1 << 16):
            body += chunk
            if len(body) > limit:
                raise ActionError("CodeTooLarge", f"the code package is larger than {limit} bytes")
        return bytes(body)
    finally:
        response.release_conn()


@register
class SnapshotCode(Action):
    """Records what the function is and runs, before anyone changes it (forensics, not containment).

    The record (``function.json``) and, when the package is downloadable, a copy of it
    (``code.zip``, checked against ``CodeSha256``) go to the evidence store under keys fixed by
    the incident and the code's hash, so taking the snapshot again in the same incident writes the
    same objects. Without an evidence store the record is returned in the result only.
    """

    name = "lambda.snapshot-code"
    summary = "Record the function's code hash, configuration (env var names only), layers and role; copy the code."
    resource_kinds = ("lambda-function",)
    #: ``GetFunction`` returns the function's tags only to a caller also allowed ``lambda:ListTags``.
    permissions = ("lambda:GetFunction", "lambda:ListTags")
    changes_aws = False
    reversible = False
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "copy_code": {"type": "boolean", "default": True},
            "max_code_mb": {"type": "integer", "minimum": 1, "maximum": 250, "default": 100},
        },
    }

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self._captured: dict[str, Any] = {}

    def _key(self, ctx: ActionContext, record: Mapping[str, Any], leaf: str) -> str:
        sha = _sha256_hex(str(record.get("code_sha256") or "unknown"))
        return evidence_key(ctx.incident_id, self.name, str(record.get("function_name") or "function"), sha, leaf)

    def _copy_code(self, ctx: ActionContext, response: Mapping[str, Any], record: dict[str, Any]) -> list[str]:
        """Store the package; returns the evidence refs (and notes in ``record`` why not, if not)."""
        assert ctx.evidence is not None
        location = str((response.get("Code") or {}).get("Location") or "")
        if not self.params.get("copy_code", True) or not location:
            record["code_copy"] = "not requested" if location else "no downloadable package (container image?)"
            return []
        try:
            body = download(location, int(self.params.get("max_code_mb", 100)) << 20)
        except Exception as exc:  # noqa: BLE001 - the record is still evidence without the package
            record["code_copy"] = f"not downloaded: {error_code(exc)}: {exc}"[:500]
            return []
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        record["code_copy"] = "verified" if digest == record.get("code_sha256") else f"sha256 mismatch: {digest}"
        return [ctx.evidence.put(self._key(ctx, record, "code.zip"), body, content_type="application/zip")]

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        name = function_name(target)
        response = yield ApiCall("lambda", "GetFunction", {"FunctionName": name}, "record code and configuration")
        if isinstance(response, PlannedResponse):
            return  # planning: nothing to record yet
        record = snapshot_record(response)
        refs: list[str] = []
        if ctx.evidence is not None:
            refs = self._copy_code(ctx, response, record)
            body = json.dumps(record, sort_keys=True, default=str).encode()
            refs.insert(0, ctx.evidence.put(self._key(ctx, record, "function.json"), body))
        self._captured = {"snapshot": record, "evidence": refs}

    def output(self, ctx: ActionContext, target: Resource | None) -> Mapping[str, Any]:
        return self._captured

    def apply(self, ctx: ActionContext, target: Resource | None) -> ActionResult:
        self._captured = {}
        result = super().apply(ctx, target)
        result.evidence_keys.extend(self._captured.get("evidence", ()))
        return result
