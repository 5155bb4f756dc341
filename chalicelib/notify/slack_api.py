"""Slack over HTTP with bounded retries: the Web API (bot token), incoming webhooks and ``response_url``.

slack_sdk does the HTTP (imported on first use, never at module import). Retries: 429 honouring
``Retry-After`` up to ``max_wait_s`` (a longer wait fails fast: a Lambda must not sleep through a
rate-limit storm), 5xx and connection errors with short backoff, each at most ``retries`` times.
Errors are :class:`SlackError` whose message names the API method and Slack's error code, never a
token or a webhook URL (slack_sdk's own DEBUG logging, which prints webhook URLs, is kept off).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from chalicelib.notify.retry import retry_after

#: slack_sdk logs requests (webhook URLs included) at DEBUG: it gets a logger that never does.
_HTTP_LOG = logging.getLogger("clampdown.slack.http")
_HTTP_LOG.setLevel(logging.INFO)


#: A user-group lookup made while Slack waits for our answer to a click or a command (3 s in all):
#: one attempt of at most this long (Slack usually answers in a few hundred milliseconds), no retry,
#: no waiting out a 429.
INTERACTIVE_TIMEOUT_S = 0.75


def _seconds(timeout_s: float) -> int:
    """A timeout for slack_sdk, which hints ``int`` but hands it to urllib, where fractions work."""
    return cast(int, max(float(timeout_s), 0.05))


#: Slack's error codes (``ratelimited``, ``channel_not_found``...).
_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]{1,60}")


class SlackError(RuntimeError):
    """A Slack request that failed after its retries; ``code`` is Slack's error (``ratelimited``...)."""

    def __init__(self, message: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def retry_handlers(retries: int, max_wait_s: float) -> list[Any]:
    """slack_sdk retry handlers, all bounded."""
    from urllib.error import URLError

    from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
    from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
    from slack_sdk.http_retry.handler import RetryHandler

    backoff = BackoffRetryIntervalCalculator(backoff_factor=0.2)

    class RateLimited(RetryHandler):
        """429: wait what Slack asks, when that is short enough."""

        def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
            return response is not None and response.status_code == 429 and retry_after(response.headers) <= max_wait_s

        def prepare_for_next_attempt(
            self, *, state: Any, request: Any, response: Any = None, error: Any = None
        ) -> None:
            state.next_attempt_requested = True
            time.sleep(retry_after(response.headers))
            state.increment_current_attempt()

    class ServerError(RetryHandler):
        def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
            return response is not None and response.status_code >= 500

    return [
        RateLimited(max_retry_count=retries),
        ServerError(max_retry_count=retries, interval_calculator=backoff),
        ConnectionErrorRetryHandler(
            max_retry_count=retries,
            interval_calculator=backoff,
            error_types=[URLError, ConnectionError, TimeoutError],
        ),
    ]


def _describe(exc: BaseException) -> tuple[str, str | None, int | None]:
    """(short description, Slack error code, HTTP status) of a slack_sdk failure; no URL, no token."""
    response = getattr(exc, "response", None)
    if response is not None and hasattr(response, "status_code"):
        data = getattr(response, "data", None)
        error = str(data.get("error")) if isinstance(data, Mapping) and data.get("error") else ""
        code = error if _ERROR_CODE.fullmatch(error) else None  # not slack_sdk's prose for a non-JSON body
        status = int(response.status_code)
        return (f"{code} (HTTP {status})" if code else f"HTTP {status}"), code, status
    reason = getattr(exc, "reason", None)
    detail = f": {str(reason)[:120]}" if reason is not None and not str(reason).startswith("http") else ""
    return f"{type(exc).__name__}{detail}", None, None


@dataclass
class SlackApi:
    """Web API calls with a bot token read through ``token`` (a cached secret)."""

    token: Callable[[], str]
    api_url: str = "https://slack.com/api/"
    timeout_s: float = 3.0
    retries: int = 2
    max_wait_s: float = 5.0
    usergroup_cache_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _client: Any = field(default=None, repr=False)
    _client_token: str | None = field(default=None, repr=False)
    _groups: dict[str, tuple[frozenset[str], float]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _web(self) -> Any:
        token = str(self.token())
        with self._lock:
            if self._client is None or self._client_token != token:  # a rotated token gets a new client
                from slack_sdk import WebClient

                self._client = WebClient(
                    token=token,
                    base_url=self.api_url,
                    timeout=_seconds(self.timeout_s),
                    logger=_HTTP_LOG,
                    retry_handlers=retry_handlers(self.retries, self.max_wait_s),
                )
                self._client_token = token
            return self._client

    def call(self, method: str, *, http_get: bool = False, **params: Any) -> dict[str, Any]:
        """One Web API method; the response's data, or :class:`SlackError`."""
        client = self._web()  # a secret that cannot be read raises SecretUnavailable (it names the secret)
        try:
            if http_get:
                response = client.api_call(method, http_verb="GET", params=params)
            else:
                response = client.api_call(method, json=params)
            data: dict[str, Any] = dict(response.data) if isinstance(response.data, Mapping) else {}
        except SlackError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes one SlackError, without secrets
            text, code, status = _describe(exc)
            raise SlackError(f"{method}: {text}", code, status) from None
        return data

    def post_message(self, channel: str, message: Mapping[str, Any], thread_ts: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"channel": channel, **message, "unfurl_links": False, "unfurl_media": False}
        if thread_ts:
            params["thread_ts"] = thread_ts
        return self.call("chat.postMessage", **params)

    def update_message(self, channel: str, ts: str, message: Mapping[str, Any]) -> dict[str, Any]:
        return self.call("chat.update", channel=channel, ts=ts, **message)

    def post_ephemeral(self, channel: str, user: str, text: str) -> dict[str, Any]:
        return self.call("chat.postEphemeral", channel=channel, user=user, text=text)

    def cached_usergroup(self, group: str) -> frozenset[str] | None:
        """A user group's members as last read, if that was less than ``usergroup_cache_s`` ago."""
        with self._lock:
            cached = self._groups.get(group)
        if cached is not None and self.clock() - cached[1] < self.usergroup_cache_s:
            return cached[0]
        return None

    def usergroup_members(self, group: str) -> frozenset[str]:
        """Members of a user group (``usergroups.users.list``), cached for ``usergroup_cache_s``."""
        cached = self.cached_usergroup(group)
        if cached is not None:
            return cached
        now = self.clock()
        data = self.call("usergroups.users.list", http_get=True, usergroup=group)
        members = frozenset(str(u) for u in data.get("users") or ())
        with self._lock:
            self._groups[group] = (members, now)
        return members


def post_webhook(
    url: str, payload: Mapping[str, Any], *, timeout_s: float = 3.0, retries: int = 2, max_wait_s: float = 5.0
) -> None:
    """POST a message to an incoming webhook or a ``response_url``; :class:`SlackError` (URL-free) if it fails."""
    from slack_sdk.webhook import WebhookClient

    client = WebhookClient(
        url,
        timeout=_seconds(timeout_s),
        logger=_HTTP_LOG,
        retry_handlers=retry_handlers(retries, max_wait_s),
    )
    try:
        response = client.send_dict(dict(payload))
    except Exception as exc:  # noqa: BLE001
        text, code, status = _describe(exc)
        raise SlackError(f"webhook: {text}", code, status) from None
    if response.status_code != 200:
        body = (response.body or "").strip()[:80] if isinstance(response.body, str) else ""
        code = body if body.replace("_", "").isalnum() else None
        raise SlackError(f"webhook: {code or 'error'} (HTTP {response.status_code})", code, response.status_code)
