"""A trusted intake: decide, before anything else, whether an event may drive containment at all.

- Only EventBridge envelopes are accepted from the queue (raw records are for replay, offline).
- ``aws.*`` sources cannot be forged with ``PutEvents`` (AWS rejects them), but other sources can:
  custom sources are accepted only when configured.
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

    def check_envelope(self, event: Mapping[str, Any]) -> Refusal | None:
        """Checks on the raw event, before it is normalized."""
        source, detail_type, account = event.get("source"), event.get("detail-type"), event.get("account")
        if not isinstance(source, str) or not isinstance(detail_type, str) or "detail" not in event:
            return Refusal("not an EventBridge event (no source, detail-type or detail)", "EventsRefusedNotEventBridge")
        if not source.startswith("aws.") and source not in self.custom_sources:
            return Refusal(
                f"source {source!r} is not an AWS source nor a configured custom source", "EventsRefusedSource"
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
