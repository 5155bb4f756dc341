"""A trusted intake: decide, before anything else, whether an event may drive containment at all.

- Only EventBridge envelopes are accepted from the queue (raw records are for replay, offline).
- ``aws.*`` sources cannot be forged with ``PutEvents`` (AWS rejects them), but other sources can:
  custom sources are accepted only when configured.
- An AWS source's ``detail-type`` must be one that source publishes (``AWS_DETAIL_TYPES``, from the
  EventBridge events reference; every ``aws.*`` source also delivers CloudTrail's), or one an enabled
  playbook names for it: a ``GuardDuty Finding`` that claims to come from ``aws.securityhub`` is not
  something AWS sends.
- Events are accepted only from the home account and the configured member accounts.
- The responder's own API calls (CloudTrail events whose actor is its role or its member role) are
  recognised and never acted on: acting on them would loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.findings.model import Actor, Finding
from chalicelib.guardrails import Guardrails

#: What CloudTrail delivers to EventBridge for every AWS service's source (EventBridge User Guide, "AWS
#: service events delivered via AWS CloudTrail"; the guide spells the sign-in type "Signin", the events
#: themselves "Sign In": both are accepted).
CLOUDTRAIL_DETAIL_TYPES = frozenset(
    {
        "AWS API Call via CloudTrail",
        "AWS Console Sign In via CloudTrail",
        "AWS Console Signin via CloudTrail",
        "AWS Console Action via CloudTrail",
        "AWS Service Event via CloudTrail",
        "AWS Insight via CloudTrail",
    }
)
#: What the finding services send directly to EventBridge (EventBridge events reference: "Amazon GuardDuty
#: events", "AWS Security Hub events").
AWS_DETAIL_TYPES: dict[str, frozenset[str]] = {
    "aws.guardduty": frozenset(
        {
            "GuardDuty Finding",
            "GuardDuty Runtime Protection Healthy",
            "GuardDuty Runtime Protection Unhealthy",
            "GuardDuty Malware Protection Object Scan Result",
            "GuardDuty Malware Protection Resource Status Active",
            "GuardDuty Malware Protection Resource Status Warning",
            "GuardDuty Malware Protection Resource Status Error",
            "GuardDuty Malware Protection Post Scan Action Failed",
        }
    ),
    "aws.securityhub": frozenset(
        {
            "Security Hub Findings - Imported",
            "Security Hub Findings - Custom Action",
            "Security Hub Insight Results",
            "Security Hub Standard Results",
            "Security Hub Findings",
            "Findings Imported V2",
        }
    ),
}


def aws_detail_type_known(source: str, detail_type: str) -> bool:
    """Whether AWS publishes ``detail_type`` from ``source`` (an ``aws.*`` source)."""
    return detail_type in CLOUDTRAIL_DETAIL_TYPES or detail_type in AWS_DETAIL_TYPES.get(source, ())


@dataclass(frozen=True)
class Refusal:
    reason: str
    metric: str  # the metric counted for it


@dataclass(frozen=True)
class Intake:
    home_account: str | None
    accounts: tuple[str, ...] = ()
    custom_sources: tuple[str, ...] = ()
    guardrails: Guardrails = field(default_factory=Guardrails)
    #: (source, detail-type) pairs the enabled playbooks name literally (``Library.event_types``): an AWS
    #: service's own events beyond the table above (e.g. ``aws.ec2`` state changes) when a playbook asks.
    declared: frozenset[tuple[str, str]] = frozenset()

    def check_envelope(self, event: Mapping[str, Any]) -> Refusal | None:
        """Checks on the raw event, before it is normalized."""
        source, detail_type, account = event.get("source"), event.get("detail-type"), event.get("account")
        if not isinstance(source, str) or not isinstance(detail_type, str) or "detail" not in event:
            return Refusal("not an EventBridge event (no source, detail-type or detail)", "EventsRefusedNotEventBridge")
        if not source.startswith("aws.") and source not in self.custom_sources:
            return Refusal(
                f"source {source!r} is not an AWS source nor a configured custom source", "EventsRefusedSource"
            )
        if (
            source.startswith("aws.")
            and not aws_detail_type_known(source, detail_type)
            and (source, detail_type) not in self.declared
        ):
            return Refusal(
                f"detail-type {detail_type[:200]!r} is not an event {source[:100]!r} publishes",
                "EventsRefusedDetailType",
            )
        if not self._account_allowed(account):
            return Refusal(f"account {account!r} is not a configured account", "EventsRefusedAccount")
        return None

    def check_finding(self, finding: Finding) -> Refusal | None:
        """Checks on a normalized finding: its own account (Security Hub aggregates others) and actor."""
        if not self._account_allowed(finding.account):
            return Refusal(
                f"the finding's account {finding.account!r} is not a configured account", "EventsRefusedAccount"
            )
        if finding.source == "cloudtrail" and self._is_self(finding.actor):
            return Refusal("the responder's own API call (self-loop guard)", "EventsSelfCaused")
        return None

    def _is_self(self, actor: Actor) -> bool:
        return bool(actor) and self.guardrails.is_own_actor(actor)

    def _account_allowed(self, account: Any) -> bool:
        if "*" in self.accounts:
            return True
        return isinstance(account, str) and (account == self.home_account or account in self.accounts)
