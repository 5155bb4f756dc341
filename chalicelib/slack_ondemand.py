"""On-demand response: ``/clampdown contain <resource ARN or id> [playbook]`` as a synthetic event.

The request becomes an EventBridge-shaped event (source ``clampdown.ondemand``, detail-type
``Clampdown:OnDemand/Contain``) naming the resource in ``resources``; the generic normalizer turns
it into an ``eventbridge`` finding whose title records who asked, and it takes the same path as any
finding: the queue, playbook matching, guardrails, approvals and the audit trail. A playbook opts in
by matching it, e.g.::

    match:
      source: [clampdown.ondemand]
      detail-type: [Clampdown:OnDemand/Contain]
      detail: {playbook: [quarantine-user-on-demand]}

The source must be listed in the stage's ``CLAMPDOWN_CUSTOM_SOURCES`` (that is also the switch that
enables on-demand requests). Only approvers may ask; the playbook's mode then applies as usual
(``auto`` runs at once: the approver's request is the approval; ``approval`` asks again).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.findings.arn import parse_arn

SOURCE = "clampdown.ondemand"
DETAIL_TYPE = "Clampdown:OnDemand/Contain"
USAGE = "Usage: `/clampdown contain <resource ARN or instance/security-group id> [playbook]`"

_PLAYBOOK = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_BARE_IDS = {
    re.compile(r"i-[0-9a-f]{8,17}"): ("ec2", "instance"),
    re.compile(r"sg-[0-9a-f]{8,17}"): ("ec2", "security-group"),
}
_ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{0,12}:[A-Za-z0-9/._:+=@,$-]{1,1024}")


class RequestError(ValueError):
    """A request that cannot be carried out; the message is shown to the user."""


@dataclass(frozen=True)
class Request:
    resource_arn: str
    playbook: str | None
    account: str
    region: str


def parse(text: str, *, home_account: str | None, region: str | None) -> Request:
    """``contain <ARN or id> [playbook]`` → :class:`Request` (:class:`RequestError` with a usable message)."""
    words = text.split()
    if len(words) not in (2, 3) or words[0].lower() != "contain":
        raise RequestError(USAGE)
    target, playbook = words[1], (words[2] if len(words) == 3 else None)
    if playbook is not None and not _PLAYBOOK.fullmatch(playbook):
        raise RequestError("a playbook name is lower-case letters, digits and dashes")
    arn = _arn_of(target, home_account, region)
    parsed = parse_arn(arn)
    if parsed is None:
        raise RequestError(USAGE)
    account = parsed.account or home_account
    if not account:
        raise RequestError("this ARN names no account and the stage has no CLAMPDOWN_HOME_ACCOUNT")
    event_region = parsed.region or region
    if not event_region:
        raise RequestError("no region: use a regional ARN or set the stage's region")
    return Request(arn, playbook, account, event_region)


def _arn_of(target: str, home_account: str | None, region: str | None) -> str:
    if _ARN.fullmatch(target):
        return target
    for pattern, (service, kind) in _BARE_IDS.items():
        if pattern.fullmatch(target):
            if not home_account or not region:
                raise RequestError("a bare id needs the stage's CLAMPDOWN_HOME_ACCOUNT and region; give the ARN")
            return f"arn:aws:{service}:{region}:{home_account}:{kind}/{target}"
    raise RequestError(USAGE)


def event(request: Request, *, user_id: str, user_name: str, now: datetime | None = None) -> dict[str, Any]:
    """The synthetic EventBridge event for a request."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    detail: dict[str, Any] = {
        "title": f"On-demand containment of {request.resource_arn} requested in Slack by {user_id} ({user_name})",
        "resource": request.resource_arn,
        "requested_by": {"slack_user_id": user_id, "slack_user_name": user_name},
    }
    if request.playbook:
        detail["playbook"] = request.playbook
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "source": SOURCE,
        "detail-type": DETAIL_TYPE,
        "account": request.account,
        "region": request.region,
        "time": moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "resources": [request.resource_arn],
        "detail": detail,
    }


def planned_steps(plans: Sequence[Any]) -> list[dict[str, Any]]:
    """What the plans would do, for the reply: playbook, action, target label, mode."""
    out = []
    for plan in plans:
        for step in plan.steps:
            target = step.target.to_dict() if step.target else None
            out.append(
                {
                    "playbook": plan.playbook.name,
                    "action": step.action,
                    "target": target,
                    "mode": step.mode,
                    "skipped": step.skipped,
                }
            )
    return out
