"""``tag``: mark a resource with the incident (bookkeeping), one table for every service's tag API.

Only the keys this step sets are remembered and put back; other tags are never touched. S3 has no
"add one tag" call for buckets: its whole tag set is rewritten, ``aws:`` system tags left out of
the request (AWS rejects them there; Cloud Custodian does the same).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from chalicelib.actions._ec2_common import instance_id, security_group_id, tag_value
from chalicelib.actions._live import live_tags
from chalicelib.actions._targets import bucket_name, function_arn, principal_of
from chalicelib.actions.base import Action, ActionContext, ActionError, ApiCall, CallPlan
from chalicelib.actions.registry import register
from chalicelib.findings.model import Resource

Tags = Mapping[str, str]
_KEY_LIMIT = 128


def _tag_list(tags: Tags) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


@dataclass(frozen=True)
class TagApi:
    """How one kind of resource is named and tagged (its tags are read by ``_live``, as the guardrails do).

    ``change(handle, set, remove, all_after)`` yields the calls that set and remove keys;
    ``all_after`` is the whole tag set afterwards, for APIs that can only replace it.
    """

    service: str
    handle: Callable[[ActionContext, Resource | None], str]
    change: Callable[[str, Tags, list[str], Tags], CallPlan]


def _ec2_change(resource_id: str, set_: Tags, remove: list[str], _: Tags) -> CallPlan:
    if set_:
        yield ApiCall("ec2", "CreateTags", {"Resources": [resource_id], "Tags": _tag_list(set_)}, "tag")
    if remove:
        tags = [{"Key": k} for k in remove]
        yield ApiCall("ec2", "DeleteTags", {"Resources": [resource_id], "Tags": tags}, "remove tags")


def _s3_change(bucket: str, set_: Tags, remove: list[str], all_after: Tags) -> CallPlan:
    kept = {k: v for k, v in all_after.items() if not k.startswith("aws:")}
    if not kept:
        yield ApiCall("s3", "DeleteBucketTagging", {"Bucket": bucket}, "no tags remain")
        return
    params = {"Bucket": bucket, "Tagging": {"TagSet": _tag_list(kept)}}
    yield ApiCall("s3", "PutBucketTagging", params, "rewrite the bucket's tag set")


def _lambda_change(arn: str, set_: Tags, remove: list[str], _: Tags) -> CallPlan:
    if set_:
        yield ApiCall("lambda", "TagResource", {"Resource": arn, "Tags": dict(set_)}, "tag")
    if remove:
        yield ApiCall("lambda", "UntagResource", {"Resource": arn, "TagKeys": list(remove)}, "remove tags")


def _iam_api(kind: str) -> TagApi:
    key = f"{kind}Name"

    def handle(ctx: ActionContext, target: Resource | None) -> str:
        return principal_of(target)[1]

    def change(name: str, set_: Tags, remove: list[str], _: Tags) -> CallPlan:
        if set_:
            yield ApiCall("iam", f"Tag{kind}", {key: name, "Tags": _tag_list(set_)}, "tag")
        if remove:
            yield ApiCall("iam", f"Untag{kind}", {key: name, "TagKeys": list(remove)}, "remove tags")

    return TagApi("iam", handle, change)


TAG_APIS: dict[str, TagApi] = {
    "ec2-instance": TagApi("ec2", lambda ctx, t: instance_id(t), _ec2_change),
    "security-group": TagApi("ec2", lambda ctx, t: security_group_id(t), _ec2_change),
    "s3-bucket": TagApi("s3", lambda ctx, t: bucket_name(t), _s3_change),
    "lambda-function": TagApi("lambda", function_arn, _lambda_change),
    "iam-role": _iam_api("Role"),
    "iam-user": _iam_api("User"),
}


@register
class Tag(Action):
    name = "tag"
    context_fields = ("all",)  # every tag, kept so that a rollback can tell what else changed
    summary = "Tag the resource with the incident id and playbook (or the given tags); rollback restores the keys."
    resource_kinds = tuple(TAG_APIS)
    #: The writes; the reads (``_live.READERS``) are added by ``register``.
    permissions = (
        "ec2:CreateTags", "ec2:DeleteTags", "s3:PutBucketTagging", "lambda:TagResource", "lambda:UntagResource",
        "iam:TagRole", "iam:UntagRole", "iam:TagUser", "iam:UntagUser",
    )  # fmt: skip
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "tags": {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 10,
                "propertyNames": {"pattern": r"^(?![Aa][Ww][Ss]:)[\w .:/=+\-@]{1,128}$"},
                "additionalProperties": {"type": "string", "maxLength": 1024},
                "description": "Key → templated value (default: clampdown:incident and clampdown:playbook).",
            }
        },
    }

    def wanted(self, ctx: ActionContext) -> dict[str, str]:
        tags = self.params.get("tags") or {"clampdown:incident": ctx.incident_id, "clampdown:playbook": ctx.playbook}
        return {str(k)[:_KEY_LIMIT]: tag_value(str(v)) for k, v in tags.items()}

    @staticmethod
    def _api(target: Resource | None) -> TagApi:
        api = TAG_APIS.get(target.kind if target else "")
        if api is None:
            raise ActionError("InvalidTarget", f"cannot tag a {target.kind if target else 'finding'}")
        return api

    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        api = self._api(target)
        api.handle(ctx, target)  # checks the name or id before any call
        assert target is not None
        live = self.take_live(target)  # the guardrails' read of the same tags, when there was one
        current = dict(live.tags) if live is not None else live_tags(ctx, target)
        return {"tags": {k: current.get(k) for k in self.wanted(ctx)}, "all": current}

    def written_part(self, state: Mapping[str, Any]) -> Any:
        """Only the keys this step sets: other tags may come and go."""
        return state.get("tags")

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        return state.get("tags") == self.wanted(ctx)

    def expected_state(
        self, before: Mapping[str, Any] | None, ctx: ActionContext, target: Resource | None
    ) -> dict[str, Any] | None:
        if before is None:
            return None
        return {"tags": self.wanted(ctx), "all": {**before["all"], **self.wanted(ctx)}}

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        api, wanted = self._api(target), self.wanted(ctx)
        existing = before["all"] if before is not None else {}
        changed = {k: v for k, v in wanted.items() if existing.get(k) != v}
        yield from api.change(api.handle(ctx, target), changed, [], {**existing, **wanted})

    def restore(
        self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> CallPlan:
        api = self._api(target)
        now = current["all"] if current is not None else {**before["all"], **self.wanted(ctx)}
        old: Mapping[str, str | None] = before["tags"]
        set_ = {k: v for k, v in old.items() if v is not None and now.get(k) != v}
        remove = [k for k, v in old.items() if v is None and k in now]
        if set_ or remove:
            after = {**{k: v for k, v in now.items() if k not in remove}, **set_}
            yield from api.change(api.handle(ctx, target), set_, remove, after)
