"""The one mechanism every containment action runs through.

An action is a small class that says *what* to read and *which* API calls move a resource to its
contained state; this module does the rest the same way for all of them: guardrails, planning
without side effects, idempotent apply with before-state capture, verification, failure reports
with undo steps, and rollback.

Calls are data (:class:`ApiCall`) yielded by a generator, so the same code describes a plan
(offline, responses are placeholders), performs it, and counts it. A generator may use the response
of an earlier call (e.g. the id of a security group it created) through ``response = yield call``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from chalicelib.evidence import INLINE_LIMIT, EvidenceStore, evidence_key, is_ref, json_body, load, offload
from chalicelib.findings.model import Finding, Resource

#: boto3 client name → IAM service prefix, where they differ.
IAM_PREFIX = {"elbv2": "elasticloadbalancing", "s3control": "s3"}
#: API operations whose IAM action has another name.
IAM_ACTION_OF_OPERATION = {
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "PutPublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3", "DeletePublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "DeleteBucketOwnershipControls"): "s3:PutBucketOwnershipControls",
    ("s3", "DeleteBucketTagging"): "s3:PutBucketTagging",
    ("securityhub", "GetFindingsV2"): "securityhub:GetFindings",
    ("securityhub", "BatchUpdateFindingsV2"): "securityhub:BatchUpdateFindings",
}


def iam_action(service: str, operation: str) -> str:
    """The IAM action that authorizes an API operation of a boto3 client (``iam``, ``PutRolePolicy``)."""
    return IAM_ACTION_OF_OPERATION.get((service, operation)) or f"{IAM_PREFIX.get(service, service)}:{operation}"


#: AWS error codes of failures that may pass (throttling, timeouts, server errors: IAM says ServiceFailure,
#: Lambda ServiceException, EC2 Unavailable, DynamoDB InternalServerError).
TRANSIENT_ERROR_CODES = frozenset(
    {
        "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
        "RequestThrottled", "SlowDown", "ServiceUnavailable", "InternalError", "InternalFailure",
        "RequestTimeout", "RequestTimeoutException", "EndpointConnectionError", "ConnectTimeoutError",
        "ReadTimeoutError", "ConnectionClosedError", "ProvisionedThroughputExceededException",
        "ServiceFailure", "ServiceException", "InternalServerError", "ServiceUnavailableException", "Unavailable",
        "EC2ThrottledException", "PriorRequestNotComplete", "BandwidthLimitExceeded",
    }
)  # fmt: skip

#: States larger than this go to the evidence bucket instead of the incident record (see ``evidence``).
INLINE_STATE_LIMIT = INLINE_LIMIT
#: The parameter schema of an action that takes none.
NO_PARAMS: Mapping[str, Any] = {"type": "object", "additionalProperties": False, "properties": {}}

CallPlan = Generator["ApiCall", Any, None]


def _snake(operation: str) -> str:
    out = ""
    for i, char in enumerate(operation):
        if (
            char.isupper()
            and i
            and (not operation[i - 1].isupper() or (i + 1 < len(operation) and operation[i + 1].islower()))
        ):
            out += "_"
        out += char.lower()
    return out


class Secret(str):
    """A parameter value that must never be shown (plans, audit records, logs)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


def _shown(value: Any) -> Any:
    return "***" if isinstance(value, Secret) else value


@dataclass(frozen=True)
class ApiCall:
    """One AWS API call, as planned and as made."""

    service: str  # boto3 client name, e.g. "iam"
    operation: str  # API operation, e.g. "PutRolePolicy"
    params: Mapping[str, Any] = field(default_factory=dict)
    purpose: str = ""

    @property
    def method(self) -> str:
        """The boto3 method name (``PutRolePolicy`` → ``put_role_policy``)."""
        return _snake(self.operation)

    @property
    def permission(self) -> str:
        return iam_action(self.service, self.operation)

    @property
    def api(self) -> str:
        """``service:Operation`` as the API names it (the IAM action may differ: see ``permission``)."""
        return f"{IAM_PREFIX.get(self.service, self.service)}:{self.operation}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"call": self.api, "params": {k: _shown(v) for k, v in self.params.items()}}
        if self.permission != self.api:
            out["permission"] = self.permission
        if self.purpose:
            out["purpose"] = self.purpose
        return out

    def __str__(self) -> str:
        args = ", ".join(f"{k}={_short(_shown(v))}" for k, v in self.params.items())
        return f"{self.api}({args})"

    def full_text(self) -> str:
        """Like ``str()`` but never shortened: undo steps must be copyable as they are."""
        args = ", ".join(f"{k}={json.dumps(_shown(v), default=str)}" for k, v in self.params.items())
        return f"{self.api}({args})"

    def abridged(self, limit: int, where: str) -> ApiCall:
        """This call for a record: each long parameter cut to ``limit`` characters and pointing ``where``
        it is in full (``str()`` of the two stays the same: both start with the same text)."""

        def cut(value: Any) -> Any:
            text = value if isinstance(value, str) else json.dumps(_shown(value), default=str, sort_keys=True)
            if isinstance(value, Secret) or len(text) <= limit:
                return value
            return f"{text[:limit]}… ({len(text)} characters, in full in {where})"

        return ApiCall(self.service, self.operation, {k: cut(v) for k, v in self.params.items()}, self.purpose)


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class PlannedResponse(dict[str, Any]):
    """Stands in for a response while planning offline: ``r["GroupId"]`` names where it comes from."""

    def __init__(self, call: ApiCall) -> None:
        super().__init__()
        self.call = call

    def __missing__(self, key: str) -> str:
        return f"<{self.call.operation}.{key}>"

    def get(self, key: str, default: Any = None) -> Any:
        return self[key]


class Status(StrEnum):
    PLANNED = "planned"
    CONTAINED = "contained"
    DONE = "done"  # an action that changes nothing in AWS (a notification) completed
    ALREADY_CONTAINED = "already-contained"
    SKIPPED = "skipped"
    FAILED = "failed"
    PENDING_APPROVAL = "pending-approval"
    ROLLED_BACK = "rolled-back"
    NOTHING_TO_ROLL_BACK = "nothing-to-roll-back"


class AwsProvider(Protocol):
    """Gives boto3 clients for an account and region (assuming the member role when needed)."""

    def client(self, service: str, *, account: str | None, region: str | None) -> Any: ...


class Guard(Protocol):
    """Answers whether an action may touch a target; a reason means no."""

    def refuse(self, action: Action, target: Resource | None, ctx: ActionContext) -> str | None: ...


class ActionError(Exception):
    """A failure an action reports itself (e.g. the target vanished); ``code`` is AWS-style."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass
class ActionContext:
    """What an action may use. ``aws is None`` means offline: plan only, touch nothing."""

    finding: Finding
    playbook: str = ""
    incident_id: str = "dry-run"
    aws: AwsProvider | None = None
    evidence: EvidenceStore | None = None
    guard: Guard | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: Called with each ApiCall made (metrics, audit, cost counting).
    on_call: Callable[[ApiCall], None] | None = None
    #: Called with the before-state once it is read and before the first change; an exception from it
    #: stops the apply with nothing changed (the executor records the state here so that a run killed
    #: after the change still knows what the resource was).
    on_before: Callable[[Mapping[str, Any]], None] | None = None
    #: Containments of this incident that a rollback released (``guardrails.suppression_key``): the
    #: guardrails never let them happen again for this finding.
    suppressions: Collection[str] = ()

    @property
    def offline(self) -> bool:
        return self.aws is None

    def client(self, service: str, target: Resource | None = None) -> Any:
        if self.aws is None:
            raise RuntimeError("offline context has no AWS clients")
        account = (target.account if target else None) or self.finding.account
        region = (target.region if target else None) or self.finding.region
        return self.aws.client(service, account=account or None, region=region or None)

    def call(self, api_call: ApiCall, target: Resource | None = None) -> Any:
        client = self.client(api_call.service, target)
        if self.on_call:
            self.on_call(api_call)
        return getattr(client, api_call.method)(**api_call.params)


@dataclass
class ActionPlan:
    """What an action would do to one target, computed without changing anything."""

    action: str
    target: Resource | None
    calls: list[ApiCall]
    before: Mapping[str, Any] | None = None  # None: unknown (planned offline)
    after: Mapping[str, Any] | None = None
    already_contained: bool = False
    refused: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action,
            "target": self.target.to_dict() if self.target else None,
            "calls": [c.to_dict() for c in self.calls],
        }
        if self.before is not None:
            out["before"] = dict(self.before)
        if self.after is not None:
            out["after"] = dict(self.after)
        if self.already_contained:
            out["already_contained"] = True
        if self.refused:
            out["refused"] = self.refused
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass
class ActionResult:
    """The precise outcome of applying (or rolling back) an action on one target."""

    action: str
    status: Status
    target: Resource | None = None
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    calls_made: list[ApiCall] = field(default_factory=list)
    reason: str | None = None
    error_code: str | None = None
    #: Manual steps that undo what was changed before a failure.
    undo: list[str] = field(default_factory=list)
    evidence_keys: list[str] = field(default_factory=list)
    output: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status not in (Status.FAILED,)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "status": str(self.status)}
        if self.target is not None:
            out["target"] = self.target.to_dict()
        for name in ("before", "after", "output"):
            value = getattr(self, name)
            if value:
                out[name] = dict(value)
        if self.calls_made:
            out["calls_made"] = [c.to_dict() for c in self.calls_made]
        for name in ("reason", "error_code"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        if self.undo:
            out["undo"] = list(self.undo)
        if self.evidence_keys:
            out["evidence_keys"] = list(self.evidence_keys)
        return out


def error_code(exc: BaseException) -> str:
    return aws_error(exc)[0]


def aws_error(exc: BaseException) -> tuple[str, str]:
    """(code, message) of a botocore ClientError or anything else, without importing botocore."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error") or {}
        return str(error.get("Code") or type(exc).__name__), str(error.get("Message") or exc)
    if isinstance(exc, ActionError):
        return exc.code, str(exc)
    return type(exc).__name__, str(exc)


class Action:
    """Base class of every action. Subclasses set the class attributes and the hooks they need."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    #: Resource kinds the action applies to; empty means it acts on the finding itself.
    resource_kinds: ClassVar[tuple[str, ...]] = ()
    #: Exact IAM actions needed to plan, apply and roll back (never wildcards). ``register`` adds the
    #: reads the guardrails make of a target's live tags (``_live.READERS``).
    permissions: ClassVar[tuple[str, ...]] = ()
    #: JSON Schema of ``params`` (an object schema).
    schema: ClassVar[Mapping[str, Any]] = NO_PARAMS
    reversible: ClassVar[bool] = True
    #: Actions that change nothing in AWS (notifications, logs) are not containment.
    changes_aws: ClassVar[bool] = True
    #: What a playbook's later steps do when this one fails and the step names no ``on_error``.
    default_on_error: ClassVar[str] = "stop"
    #: Fields of the recorded state that are read to undo or verify the step, not set by it: what-changed
    #: views (the demo's per-field changes) leave them out.
    context_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.params: dict[str, Any] = dict(params or {})
        self._live: Resource | None = None

    # -- hooks ---------------------------------------------------------------------------
    @classmethod
    def targets(cls, finding: Finding, kinds: tuple[str, ...]) -> tuple[Resource, ...]:
        """What a step of this action acts on in ``finding``: the resources of ``kinds`` it names."""
        return finding.resources_of(*kinds)

    def skip_reason(self, ctx: ActionContext, target: Resource | None) -> str | None:
        """Why this action does not apply to this target (e.g. a temporary key cannot be deactivated)."""
        return None

    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        """The part of the resource's current state that this action changes."""
        return {}

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        return False

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        """Yield the calls that contain the target; ``before`` is None when planning offline."""
        yield from ()

    def expected_state(
        self, before: Mapping[str, Any] | None, ctx: ActionContext, target: Resource | None
    ) -> dict[str, Any] | None:
        """The state after containment, for the plan's before/after comparison (``<…>`` where it cannot
        be known before the calls are made, such as the id of something they create)."""
        return None

    def restore(
        self,
        ctx: ActionContext,
        target: Resource | None,
        before: Mapping[str, Any],
        current: Mapping[str, Any] | None,
    ) -> CallPlan:
        """Yield the calls that bring the target from ``current`` (None: unknown) back to ``before``."""
        yield from ()

    def manual_steps(
        self, ctx: ActionContext, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> list[str]:
        """What restoring ``before`` cannot put back through the API (a resource-policy statement
        ``AddPermission`` cannot express, a Security Hub note that cannot be deleted), for a person to
        restore: named in the rollback plan's notes and in the ``undo`` of rollbacks and failures."""
        return []

    def written_part(self, state: Mapping[str, Any]) -> Any:
        """The part of a state this action sets: a rollback restores only while it is as the step left it."""
        return state

    def live_target(self, ctx: ActionContext, target: Resource) -> Resource | None:
        """``target`` with its ARN and tags as AWS has them now (None: nothing to read for this kind)."""
        from chalicelib.actions._live import live_target

        return live_target(ctx, target)

    def output(self, ctx: ActionContext, target: Resource | None) -> Mapping[str, Any]:
        """Extra facts to record on success (e.g. snapshot ids); override when useful."""
        return {}

    def applied_later(self, ctx: ActionContext) -> str | None:
        """Why calls the service accepted may not show in the verifying read yet (None: they must)."""
        return None

    # -- the shared mechanism ------------------------------------------------------------
    def _refusal(self, ctx: ActionContext, target: Resource | None) -> str | None:
        """Guardrails on what the finding says, the action's own reasons, then guardrails on the live
        resource: a protection tag set on it, or its real ARN (with its path) matching a protected one."""
        guard, self._live = ctx.guard, None
        reason = (guard.refuse(self, target, ctx) if guard else None) or self.skip_reason(ctx, target)
        if reason or guard is None or ctx.offline or target is None or not self.changes_aws:
            return reason
        live = self.live_target(ctx, target)
        self._live = live
        found = guard.refuse(self, live, ctx) if live is not None else None
        return f"{found} (read from AWS just now)" if found else None

    def take_live(self, target: Resource | None) -> Resource | None:
        """The live target the guardrails just read for this target, once (saves the same read again)."""
        live, self._live = self._live, None
        return live if live is not None and target is not None and live.key == target.key else None

    def plan(self, ctx: ActionContext, target: Resource | None) -> ActionPlan:
        refused = self._refusal(ctx, target)
        if refused:
            return ActionPlan(self.name, target, [], refused=refused)
        before = None if ctx.offline else self.read_state(ctx, target)
        if before is not None and self.is_contained(before, ctx, target):
            return ActionPlan(self.name, target, [], before=before, after=before, already_contained=True)
        calls = list(_dry_run(self.contain(ctx, target, before)))
        return ActionPlan(self.name, target, calls, before=before, after=self.expected_state(before, ctx, target))

    def apply(self, ctx: ActionContext, target: Resource | None) -> ActionResult:
        made: list[ApiCall] = []
        before: dict[str, Any] | None = None
        try:
            refused = self._refusal(ctx, target)
        except Exception as exc:  # noqa: BLE001 - e.g. the live tags cannot be read: nothing is changed
            return self._failed(ctx, target, before, made, exc)
        if refused:
            return ActionResult(self.name, Status.SKIPPED, target, reason=refused)
        if ctx.offline:
            raise RuntimeError(f"{self.name}: apply needs AWS; use plan() offline")
        try:
            before = self.read_state(ctx, target)
            contained = self.is_contained(before, ctx, target)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a precise result, never a crash
            return self._failed(ctx, target, before, made, exc)
        if contained:
            result = ActionResult(self.name, Status.ALREADY_CONTAINED, target, before=before, after=before)
            return self._keep_small(ctx, result, "apply")
        if ctx.on_before is not None:
            ctx.on_before(before)  # not caught: a before-state that cannot be recorded means no change
        try:
            self._contain(ctx, target, before, made)
            after, reason = self.read_state(ctx, target), None
            if self.changes_aws and not self.is_contained(after, ctx, target):
                reason = self.applied_later(ctx)
                if reason is None:
                    raise ActionError(
                        "VerificationFailed", f"{self.name}: the calls succeeded but the state is not contained"
                    )
                after = self.expected_state(before, ctx, target) or after  # what the accepted calls set
            result = ActionResult(
                self.name,
                Status.CONTAINED if self.changes_aws else Status.DONE,
                target,
                before=before,
                after=after,
                calls_made=made,
                reason=reason,
                output=self.output(ctx, target),
            )
        except Exception as exc:  # noqa: BLE001 - every failure becomes a precise result, never a crash
            return self._failed(ctx, target, before, made, exc)
        return self._keep_small(ctx, result, "apply")

    def _contain(
        self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any], made: list[ApiCall]
    ) -> None:
        """Make the containment calls. A call that botocore retried may fail *because* its first attempt
        succeeded and only the response was lost (a timeout): the login profile is already gone, the group
        already exists. Then the calls are planned once more, from the state as it is now."""
        try:
            _drive(self.contain(ctx, target, before), lambda call: ctx.call(call, target), made)
        except Exception as exc:
            if not _retried(exc) or error_code(exc) in TRANSIENT_ERROR_CODES:
                raise
            current = self.read_state(ctx, target)
            if not self.is_contained(current, ctx, target):
                _drive(self.contain(ctx, target, current), lambda call: ctx.call(call, target), made)

    def _failed(
        self,
        ctx: ActionContext,
        target: Resource | None,
        before: Mapping[str, Any] | None,
        made: list[ApiCall],
        exc: Exception,
    ) -> ActionResult:
        code, message = aws_error(exc)
        result = ActionResult(
            self.name,
            Status.FAILED,
            target,
            before=before,
            calls_made=made,
            error_code=code,
            reason=message,
            undo=self._undo_steps(ctx, target, before, made),
        )
        return self._keep_small(ctx, result, "apply")

    def plan_rollback(
        self,
        ctx: ActionContext,
        target: Resource | None,
        before: Mapping[str, Any],
        *,
        wrote: Mapping[str, Any] | None = None,
    ) -> ActionPlan:
        """The calls a rollback would make. ``wrote`` is the state the step left (its recorded ``after``)."""
        self._live = None  # only reads made now count
        before = self._load_state(ctx, before)
        current = None if ctx.offline else self.read_state(ctx, target)
        changed = self._changed_since(ctx, wrote, current)
        if changed:
            return ActionPlan(self.name, target, [], before=current, after=current, refused=changed)
        calls = list(_dry_run(self.restore(ctx, target, before, current)))
        notes = self.manual_steps(ctx, before, current)
        return ActionPlan(self.name, target, calls, before=current, after=before, notes=notes)

    def rollback(
        self,
        ctx: ActionContext,
        target: Resource | None,
        before: Mapping[str, Any],
        *,
        wrote: Mapping[str, Any] | None = None,
    ) -> ActionResult:
        """Restore ``before``, unless the resource no longer is as this step left it (``wrote``): then
        someone or something changed it since (a later incident relies on it, a person released it), and
        the rollback leaves it as it is and says so."""
        if not self.reversible:
            return ActionResult(self.name, Status.SKIPPED, target, reason=f"{self.name} cannot be rolled back")
        made: list[ApiCall] = []
        current: dict[str, Any] | None = None
        self._live = None  # only reads made now count
        try:
            before = self._load_state(ctx, before)
            current = self.read_state(ctx, target)
            changed = self._changed_since(ctx, wrote, current)
            if changed:
                return self._keep_small(
                    ctx, ActionResult(self.name, Status.SKIPPED, target, before=current, reason=changed), "rollback"
                )
            _drive(self.restore(ctx, target, before, current), lambda call: ctx.call(call, target), made)
            after = self.read_state(ctx, target)
        except Exception as exc:  # noqa: BLE001
            code, message = aws_error(exc)
            undo = [f"review and revert manually: {call.full_text()}" for call in made]
            failed = ActionResult(
                self.name, Status.FAILED, target, before=current, calls_made=made, error_code=code, reason=message
            )
            failed.undo = undo + (self.manual_steps(ctx, before, current) if current is not None else [])
            return self._keep_small(ctx, failed, "rollback")
        status = Status.ROLLED_BACK if made else Status.NOTHING_TO_ROLL_BACK
        result = ActionResult(self.name, status, target, before=current, after=after, calls_made=made)
        manual = self.manual_steps(ctx, before, current)
        if manual:
            result.undo.extend(manual)
            result.reason = f"{len(manual)} change(s) need restoring by hand (see undo)"
        return self._keep_small(ctx, result, "rollback")

    # -- helpers -------------------------------------------------------------------------
    def _changed_since(
        self, ctx: ActionContext, wrote: Mapping[str, Any] | None, current: Mapping[str, Any] | None
    ) -> str | None:
        """Why a rollback must leave the resource alone: it is no longer what the step wrote."""
        if not wrote or current is None:
            return None
        if self.written_part(self._load_state(ctx, wrote)) == self.written_part(current):
            return None
        return (
            "left as it is: the resource changed after this step contained it (a later incident or a person "
            "changed it); restoring the earlier state would undo that change"
        )

    def _undo_steps(
        self,
        ctx: ActionContext,
        target: Resource | None,
        before: Mapping[str, Any] | None,
        made: list[ApiCall],
    ) -> list[str]:
        """After a failure part-way: the calls that undo what the calls made actually changed, planned from
        the state as it is now (so a call that was refused, or changed nothing, needs no undo)."""
        if not made:
            return []
        manual = [f"review and revert manually: {call.full_text()}" for call in made]
        if before is None or not self.reversible:
            return manual
        try:
            current = self.read_state(ctx, target)
            calls = _dry_run(self.restore(ctx, target, before, current))
            return [call.full_text() for call in calls] + self.manual_steps(ctx, before, current)
        except Exception:  # noqa: BLE001 - undo advice must never hide the original failure
            return manual

    def _keep_small(self, ctx: ActionContext, result: ActionResult, phase: str) -> ActionResult:
        """The record of a result stays small: states, calls and undo steps larger than ``INLINE_LIMIT``
        go to the evidence store (when there is one), and the record keeps a reference."""
        if ctx.evidence is None:
            return result
        store = ctx.evidence
        subject = result.target.key if result.target else "finding"

        def stem(what: str) -> str:
            return evidence_key(ctx.incident_id, self.name, subject, f"{phase}-{what}")

        def large(value: Any) -> bool:
            return len(json_body(value)) > INLINE_LIMIT

        for name in ("before", "after"):
            value = getattr(result, name)
            if value is not None and not is_ref(value) and large(value):
                ref = offload(store, stem(name), value)
                setattr(result, name, ref)
                result.evidence_keys.append(ref["evidence_key"])
        calls = [c.to_dict() for c in result.calls_made]
        if large(calls):
            ref = offload(store, stem("calls"), calls)["evidence_key"]
            result.calls_made = [c.abridged(_ABRIDGED, ref) for c in result.calls_made]
            result.evidence_keys.append(ref)
        if large(result.undo):
            ref = offload(store, stem("undo"), result.undo)["evidence_key"]
            result.undo = [
                step if len(step) <= _ABRIDGED else f"{step[:_ABRIDGED]}… (in full: item {i} of {ref})"
                for i, step in enumerate(result.undo)
            ]
            result.evidence_keys.append(ref)
        return result

    @staticmethod
    def _load_state(ctx: ActionContext, state: Mapping[str, Any]) -> Mapping[str, Any]:
        """A recorded state, read back from the evidence store if it was kept there."""
        try:
            loaded: Mapping[str, Any] = load(ctx.evidence, state)
        except LookupError as exc:
            raise ActionError("EvidenceUnavailable", str(exc)) from None
        return loaded


#: How much of a long parameter or undo step a record keeps when the whole is in the evidence store.
_ABRIDGED = 300


def _retried(exc: BaseException) -> bool:
    """Did botocore send this failed call more than once (so an earlier attempt may have succeeded)?"""
    response = getattr(exc, "response", None)
    metadata = response.get("ResponseMetadata") if isinstance(response, Mapping) else None
    return isinstance(metadata, Mapping) and int(metadata.get("RetryAttempts") or 0) > 0


def _drive(plan: CallPlan, execute: Callable[[ApiCall], Any], made: list[ApiCall]) -> None:
    """Run a call generator, feeding each response back into it."""
    response: Any = None
    try:
        call = plan.send(None)
        while True:
            response = execute(call)
            made.append(call)
            call = plan.send(response)
    except StopIteration:
        return


def _dry_run(plan: CallPlan) -> Iterable[ApiCall]:
    calls: list[ApiCall] = []
    _drive(plan, PlannedResponse, calls)
    return calls
