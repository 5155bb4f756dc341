"""A Slack stand-in on 127.0.0.1 (random free port) that answers like Slack and records every request.

- Web API under ``/api/``: ``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``,
  ``usergroups.users.list`` (form, JSON or query parameters; ``Authorization: Bearer`` checked:
  ``invalid_auth`` otherwise; blocks checked against Slack's limits: ``invalid_blocks``).
- Incoming webhooks under ``/services/...`` and ``response_url`` under ``/actions/...``: JSON
  messages, ``ok`` / ``invalid_blocks`` like Slack.
- :meth:`FakeSlack.fail` makes the next N requests to a path answer an error (429 with
  ``Retry-After``, 500...), so real retries are exercised; :meth:`FakeSlack.slow` makes them answer
  late, so timeouts are. Every request records when it arrived (``at``, monotonic seconds).

Also: :func:`sign` (the headers Slack sends) and builders for ``block_actions`` and slash-command
bodies, so tests post exactly what Slack would.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from clampdown.local_slack.limits import problems


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    query: dict[str, str]
    status: int = 0  # what the fake answered
    answer: Any = None  # and the body it answered (JSON decoded when it was JSON)
    at: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic())

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def params(self) -> dict[str, Any]:
        """The request's parameters whatever their encoding (JSON, form or query string)."""
        content = self.headers.get("content-type", "")
        if self.body and content.startswith("application/json"):
            loaded: dict[str, Any] = json.loads(self.body)
            return loaded
        if self.body:
            form = {k: v[0] for k, v in parse_qs(self.body.decode()).items()}
            for name in ("blocks",):
                if name in form:
                    form[name] = json.loads(form[name])
            return form
        return dict(self.query)


@dataclass
class _Fault:
    prefix: str
    status: int
    times: int
    retry_after: float | None = None
    body: str = ""


@dataclass
class _Delay:
    prefix: str
    seconds: float
    times: int


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timed out) before a slow answer: nothing to report."""


@dataclass
class FakeHttp:
    """A recording HTTP server; subclasses answer. ``with`` starts and stops it."""

    requests: list[Recorded] = field(default_factory=list)
    _faults: list[_Fault] = field(default_factory=list)
    _delays: list[_Delay] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def __enter__(self) -> FakeHttp:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                recorded = Recorded(
                    self.command,
                    parts.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                    {k: v[0] for k, v in parse_qs(parts.query).items()},
                )
                status, headers, body = fake._answer(recorded)
                recorded.status, recorded.answer = status, body
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _handle
            do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail(self, prefix: str, status: int, times: int, retry_after: float | None = None, body: str = "") -> None:
        """The next ``times`` requests whose path starts with ``prefix`` answer ``status``."""
        with self._lock:
            self._faults.append(_Fault(prefix, status, times, retry_after, body))

    def slow(self, prefix: str, seconds: float, times: int) -> None:
        """The next ``times`` requests whose path starts with ``prefix`` are answered ``seconds`` late."""
        with self._lock:
            self._delays.append(_Delay(prefix, seconds, times))

    def heal(self) -> None:
        """Forget every pending fault and delay."""
        with self._lock:
            self._faults.clear()
            self._delays.clear()

    def _delay(self, recorded: Recorded) -> float:
        with self._lock:
            for delay in self._delays:
                if recorded.path.startswith(delay.prefix) and delay.times > 0:
                    delay.times -= 1
                    return delay.seconds
        return 0.0

    def _fault(self, recorded: Recorded) -> tuple[int, dict[str, str], Any] | None:
        with self._lock:
            for fault in self._faults:
                if recorded.path.startswith(fault.prefix) and fault.times > 0:
                    fault.times -= 1
                    headers = {"Content-Type": "text/plain"}
                    if fault.retry_after is not None:
                        headers["Retry-After"] = f"{fault.retry_after:g}"
                    if fault.body:
                        return fault.status, headers, fault.body
                    if fault.status == 429 and recorded.path.startswith("/api/"):  # Slack's Web API: JSON
                        headers["Content-Type"] = "application/json"
                        return fault.status, headers, {"ok": False, "error": "ratelimited"}
                    return fault.status, headers, "ratelimited" if fault.status == 429 else "internal_error"
        return None

    def _answer(self, recorded: Recorded) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.requests.append(recorded)
        late = self._delay(recorded)
        if late:
            time.sleep(late)
        fault = self._fault(recorded)
        if fault is not None:
            return fault
        return self.respond(recorded)

    def respond(self, recorded: Recorded) -> tuple[int, dict[str, str], Any]:
        return 200, {"Content-Type": "application/json"}, {"ok": True}

    def to(self, prefix: str) -> list[Recorded]:
        """Requests whose path starts with ``prefix``, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.path.startswith(prefix)]


@dataclass
class FakeSlack(FakeHttp):
    token: str = "xoxb-fake-bot-token-0123456789"  # noqa: S105 - the stand-in's own token, not a secret
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    #: (channel id, ts) → the message as last posted or updated.
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _ts: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/services/T0FAKE/B0FAKE/webhook-secret-path-XYZ"

    def response_url(self, name: str = "1") -> str:
        return f"{self.url}/actions/T0FAKE/{name}/response-token"

    def calls(self, method: str) -> list[Recorded]:
        """Answered Web API calls of ``method`` (e.g. ``chat.postMessage``), in order."""
        return [r for r in self.to(f"/api/{method}") if r.status == 200]

    def _ok(self, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        return 200, {"Content-Type": "application/json"}, {"ok": True, **body}

    def _error(self, error: str, **extra: Any) -> tuple[int, dict[str, str], Any]:
        return 200, {"Content-Type": "application/json"}, {"ok": False, "error": error, **extra}

    @staticmethod
    def channel_id(channel: str) -> str:
        if channel[:1] in ("C", "G", "D") and channel.isupper():
            return channel
        return "C" + hashlib.sha256(channel.encode()).hexdigest()[:9].upper()

    def respond(self, recorded: Recorded) -> tuple[int, dict[str, str], Any]:
        if recorded.path.startswith("/services/") or recorded.path.startswith("/actions/"):
            found = problems(recorded.json)
            if found:
                return 400, {"Content-Type": "text/plain"}, "invalid_blocks"
            return 200, {"Content-Type": "text/plain"}, "ok"
        if not recorded.path.startswith("/api/"):
            return 404, {"Content-Type": "text/plain"}, "not found"
        if recorded.headers.get("authorization") != f"Bearer {self.token}":
            return self._error("invalid_auth")
        method = recorded.path[len("/api/") :]
        params = recorded.params
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            found = problems(params)
            if found:
                return self._error("invalid_blocks", errors=found)
            if not params.get("channel"):
                return self._error("channel_not_found")
        if method == "chat.postMessage":
            channel = self.channel_id(str(params["channel"]))
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            with self._lock:
                self.messages[(channel, ts)] = params
            return self._ok({"channel": channel, "ts": ts, "message": {"ts": ts}})
        if method == "chat.update":
            key = (str(params["channel"]), str(params.get("ts")))
            with self._lock:
                if key not in self.messages:
                    return self._error("message_not_found")
                self.messages[key] = params
            return self._ok({"channel": key[0], "ts": key[1]})
        if method == "chat.postEphemeral":
            return self._ok({"message_ts": f"{int(time.time())}.{next(self._ts):06d}"})
        if method == "usergroups.users.list":
            group = str(params.get("usergroup", ""))
            if group not in self.usergroups:
                return self._error("no_such_subteam")
            return self._ok({"users": list(self.usergroups[group])})
        return self._error("unknown_method")


@dataclass
class WebhookReceiver(FakeHttp):
    """A generic webhook endpoint (PagerDuty-, Teams- or in-house-like): records JSON POSTs, answers 202."""

    def respond(self, recorded: Recorded) -> tuple[int, dict[str, str], Any]:
        return 202, {"Content-Type": "application/json"}, {"status": "accepted"}


# -- what Slack sends -----------------------------------------------------------------------------
def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack adds to its requests (v0 signature)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
    }


def block_actions_body(
    *, action_id: str, value: str, user_id: str, user_name: str, response_url: str, channel: str = "C0ALERTS"
) -> bytes:
    """A ``block_actions`` interaction as Slack posts it: ``payload=<JSON>``, form-encoded."""
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": "T0FAKE"},
        "api_app_id": "A0FAKE",
        "token": "verification-token-not-used",
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": channel},
        "trigger_id": "1234.5678.abcdef",
        "team": {"id": "T0FAKE", "domain": "example"},
        "channel": {"id": channel, "name": "security-alerts"},
        "message": {"type": "message", "ts": "1700000000.000100", "text": "Approval needed"},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": "clampdown-approval",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": value,
                "type": "button",
                "action_ts": "1700000001.000200",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def command_body(text: str, *, user_id: str, user_name: str, response_url: str, channel: str = "C0ALERTS") -> bytes:
    """A slash command as Slack posts it."""
    form: Mapping[str, str] = {
        "token": "verification-token-not-used",
        "team_id": "T0FAKE",
        "team_domain": "example",
        "channel_id": channel,
        "channel_name": "security-alerts",
        "user_id": user_id,
        "user_name": user_name,
        "command": "/clampdown",
        "text": text,
        "api_app_id": "A0FAKE",
        "response_url": response_url,
        "trigger_id": "1234.5678.abcdef",
    }
    return urlencode(form).encode()


def approval_ids(slack: FakeSlack) -> list[str]:
    """The approval ids on the Approve buttons Slack received (Web API and webhooks)."""
    found: list[str] = []
    for recorded in slack.requests:
        if recorded.status != 200 or recorded.method != "POST":
            continue
        try:
            message = recorded.params if recorded.path.startswith("/api/") else recorded.json
        except ValueError:
            continue
        for block in message.get("blocks") or []:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element.get("action_id") == "clampdown.approve" and element["value"] not in found:
                    found.append(element["value"])
    return found
