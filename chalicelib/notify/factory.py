"""The notifier a deployed stage uses, chosen by its settings.

Slack (bot token, else incoming webhook), SNS and a generic webhook, each when configured, behind
one :class:`~chalicelib.notify.channel.CompositeNotifier`. Nothing is read or imported here beyond
the channel classes: secrets are fetched (and cached) on first delivery, slack_sdk and requests are
imported on first use.
"""

from __future__ import annotations

from typing import Any

from chalicelib.notify import NullNotifier
from chalicelib.notify.channel import Channel, CompositeNotifier
from chalicelib.secrets import reader_for
from chalicelib.settings import Settings

KINDS = ("slack", "sns", "webhook")


def slack_api(settings: Settings, aws: Any, *, interactive: bool = False) -> Any:
    """The Slack Web API client (bot token from its secret), or None without a token secret.

    ``interactive``: for calls made while Slack waits for our answer (user-group lookups on a
    click): one short attempt each, whatever the alert delivery bounds are.
    """
    from chalicelib.notify.slack_api import INTERACTIVE_TIMEOUT_S, SlackApi

    name = settings.slack_token_secret
    if not name:
        return None
    secrets = reader_for(aws, settings.region, settings.secrets_cache_s)
    if interactive:
        bounds: dict[str, Any] = {"timeout_s": INTERACTIVE_TIMEOUT_S, "retries": 0, "max_wait_s": 0.0}
    else:
        bounds = {
            "timeout_s": settings.notify_timeout_s,
            "retries": settings.notify_retries,
            "max_wait_s": settings.notify_max_wait_s,
        }
    return SlackApi(
        token=lambda: secrets.get(name),
        api_url=settings.slack_api_url,
        usergroup_cache_s=settings.usergroup_cache_s,
        **bounds,
    )


def channel_for(kind: str, settings: Settings, aws: Any, store: Any = None) -> Channel | None:
    """One channel (``slack``, ``sns`` or ``webhook``) when the settings configure it, else None."""
    secrets = reader_for(aws, settings.region, settings.secrets_cache_s)
    if kind == "slack":
        from chalicelib.notify.slack import SlackNotifier, SlackWebhookNotifier

        api = slack_api(settings, aws)
        if api is not None:
            return SlackNotifier(api=api, channel=settings.slack_channel, store=store)
        webhook = settings.slack_webhook_secret
        if webhook:
            return SlackWebhookNotifier(
                url=lambda: secrets.get(webhook),
                timeout_s=settings.notify_timeout_s,
                retries=settings.notify_retries,
                max_wait_s=settings.notify_max_wait_s,
            )
        return None
    if kind == "sns":
        from chalicelib.notify.sns import SnsNotifier

        topic = settings.sns_topic_arn
        if not topic:
            return None
        return SnsNotifier(
            topic, client=lambda region: aws.client("sns", account=None, region=region or settings.region)
        )
    if kind == "webhook":
        from chalicelib.notify.webhook import WebhookNotifier

        url_secret = settings.webhook_url_secret
        if not url_secret:
            return None
        return WebhookNotifier(
            secret=lambda: secrets.get(url_secret),
            timeout_s=settings.notify_timeout_s,
            retries=settings.notify_retries,
            max_wait_s=settings.notify_max_wait_s,
        )
    raise ValueError(f"unknown notification channel {kind!r} (one of {', '.join(KINDS)})")


#: The settings the process's notifier was built with: playbook steps (notify.*) use the same channels.
_active: list[Settings] = []


def configured_channel(kind: str, aws: Any) -> Channel | None:
    """The channel ``kind`` as this process's responder configured it (else as the environment does)."""
    settings = _active[-1] if _active else Settings.from_env()
    return channel_for(kind, settings, aws)


def notifier_from_settings(settings: Settings, clients: Any, store: Any, telemetry: Any) -> Any:
    """Every configured channel; none configured: incidents are still recorded and logged, nothing is posted."""
    _active[:] = [settings]
    channels = [c for c in (channel_for(kind, settings, clients, store) for kind in KINDS) if c is not None]
    if not channels:
        return NullNotifier()
    return CompositeNotifier(channels, telemetry)
