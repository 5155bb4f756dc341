"""The responder's settings, read once from the Lambda environment (set per stage in .chalice/config.json).

Lists are comma-separated; structured settings are JSON. Secrets are never here: only the names of
the Secrets Manager secrets / SSM parameters that hold them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PREFIX = "CLAMPDOWN_"


class SettingsError(ValueError):
    """A setting with a value that cannot be used; names the variable."""


def _list(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    value = value.strip()
    if value.startswith("["):
        loaded = json.loads(value)
        return tuple(str(v) for v in loaded)
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _json(name: str, value: str | None, default: Any) -> Any:
    if not value:
        return default
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{PREFIX}{name} is not valid JSON: {exc.msg}") from None


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    stage: str = "dev"
    region: str | None = None
    #: DynamoDB tables: incidents/audit trail/approvals/blast-radius counters, and Powertools idempotency.
    incidents_table: str | None = None
    idempotency_table: str | None = None
    #: The SQS queue the responder reads (approved steps are sent back through it).
    queue_url: str | None = None
    evidence_bucket: str | None = None
    #: SSM parameter: when its value is "on"/"true"/"1", nothing is applied, everything is reported.
    kill_switch_parameter: str | None = None
    member_role_name: str = "ClampdownMemberResponder"
    external_id: str | None = None
    #: Accounts whose events are accepted (the home account is always accepted). "*" accepts any.
    accounts: tuple[str, ...] = ()
    #: Sources accepted besides the AWS ones (aws.*): custom buses' sources, e.g. "com.example.edr".
    custom_sources: tuple[str, ...] = ()
    #: Max containment actions per resource kind per window; beyond it, steps wait for approval.
    blast_radius: Mapping[str, int] = field(default_factory=lambda: {"default": 25})
    blast_radius_window_s: int = 3600
    #: Guardrails (see chalicelib.guardrails.Guardrails.from_settings).
    guardrails: Mapping[str, Any] = field(default_factory=dict)
    act_on_archived: bool = False
    approval_ttl_s: int = 24 * 3600
    #: Per-environment playbook overrides: {"disable": [...], "modes": {name: mode}, "exclude": {...}}.
    overrides: Mapping[str, Any] = field(default_factory=dict)
    slack_token_secret: str | None = None
    slack_signing_secret: str | None = None
    slack_webhook_secret: str | None = None
    slack_channel: str | None = None
    slack_approvers: tuple[str, ...] = ()
    sns_topic_arn: str | None = None
    webhook_url_secret: str | None = None
    tracing: bool = False
    #: The account the responder runs in (also read by wiring); on-demand requests name bare ids in it.
    home_account: str | None = None
    #: Slack Web API base URL and the prefix every ``response_url`` must start with (tests point both
    #: at a fake Slack server).
    slack_api_url: str = "https://slack.com/api/"
    slack_response_url_prefix: str = "https://hooks.slack.com/"
    #: Slack user id → AWS identity (IAM user name, role session name or principal ARN), for the
    #: separation-of-duties check: with it on, nobody decides on an incident they are the actor of.
    slack_identities: Mapping[str, str] = field(default_factory=dict)
    separation_of_duties: bool = False
    #: Notification delivery bounds: per-request timeout, retries of 429/5xx/connection errors, and the
    #: longest Retry-After honoured (a longer one fails fast instead of holding the Lambda).
    notify_timeout_s: float = 3.0
    notify_retries: int = 2
    notify_max_wait_s: float = 5.0
    #: How long secrets and Slack user-group memberships are cached per Lambda instance.
    secrets_cache_s: int = 300
    usergroup_cache_s: int = 300

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return env.get(PREFIX + name) or None

        blast = _json("BLAST_RADIUS", get("BLAST_RADIUS"), {"default": 25})
        if not isinstance(blast, dict) or not all(isinstance(v, int) and v >= 0 for v in blast.values()):
            raise SettingsError(f"{PREFIX}BLAST_RADIUS must map resource kinds to non-negative integers")
        guardrails = _json("GUARDRAILS", get("GUARDRAILS"), {})
        overrides = _json("OVERRIDES", get("OVERRIDES"), {})
        for name, value in (("GUARDRAILS", guardrails), ("OVERRIDES", overrides)):
            if not isinstance(value, dict):
                raise SettingsError(f"{PREFIX}{name} must be a JSON object")
        try:
            window = int(get("BLAST_RADIUS_WINDOW_S") or 3600)
            ttl = int(get("APPROVAL_TTL_S") or 24 * 3600)
            secrets_cache = int(get("SECRETS_CACHE_S") or 300)
            usergroup_cache = int(get("USERGROUP_CACHE_S") or 300)
            notify_retries = int(get("NOTIFY_RETRIES") or 2)
            notify_timeout = float(get("NOTIFY_TIMEOUT_S") or 3.0)
            notify_max_wait = float(get("NOTIFY_MAX_WAIT_S") or 5.0)
        except ValueError as exc:
            raise SettingsError(f"a {PREFIX}*_S setting is not a whole number of seconds: {exc}") from None
        identities = _json("SLACK_IDENTITIES", get("SLACK_IDENTITIES"), {})
        if not isinstance(identities, dict) or not all(isinstance(v, str) for v in identities.values()):
            raise SettingsError(f"{PREFIX}SLACK_IDENTITIES must map Slack user ids to AWS identities (strings)")
        return cls(
            stage=get("STAGE") or "dev",
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            incidents_table=get("INCIDENTS_TABLE"),
            idempotency_table=get("IDEMPOTENCY_TABLE"),
            queue_url=get("QUEUE_URL"),
            evidence_bucket=get("EVIDENCE_BUCKET"),
            kill_switch_parameter=get("KILL_SWITCH_PARAMETER"),
            member_role_name=get("MEMBER_ROLE_NAME") or "ClampdownMemberResponder",
            external_id=get("EXTERNAL_ID"),
            accounts=_list(get("ACCOUNTS")),
            custom_sources=_list(get("CUSTOM_SOURCES")),
            blast_radius=blast,
            blast_radius_window_s=window,
            guardrails=guardrails,
            act_on_archived=_bool(get("ACT_ON_ARCHIVED"), False),
            approval_ttl_s=ttl,
            overrides=overrides,
            slack_token_secret=get("SLACK_TOKEN_SECRET"),
            slack_signing_secret=get("SLACK_SIGNING_SECRET"),
            slack_webhook_secret=get("SLACK_WEBHOOK_SECRET"),
            slack_channel=get("SLACK_CHANNEL"),
            slack_approvers=_list(get("SLACK_APPROVERS")),
            sns_topic_arn=get("SNS_TOPIC_ARN"),
            webhook_url_secret=get("WEBHOOK_URL_SECRET"),
            tracing=_bool(get("TRACING"), False),
            home_account=get("HOME_ACCOUNT"),
            slack_api_url=get("SLACK_API_URL") or "https://slack.com/api/",
            slack_response_url_prefix=get("SLACK_RESPONSE_URL_PREFIX") or "https://hooks.slack.com/",
            slack_identities=identities,
            separation_of_duties=_bool(get("SEPARATION_OF_DUTIES"), False),
            notify_timeout_s=notify_timeout,
            notify_retries=notify_retries,
            notify_max_wait_s=notify_max_wait,
            secrets_cache_s=secrets_cache,
            usergroup_cache_s=usergroup_cache,
        )

    def blast_limit(self, kind: str) -> int:
        return int(self.blast_radius.get(kind, self.blast_radius.get("default", 25)))
