"""Slack's requests to Clampdown: Approve/Deny clicks (``/slack/interactions``) and ``/clampdown`` commands.

Every request is checked first, before its body is parsed: Slack's v0 signature (HMAC-SHA256 of
``v0:{timestamp}:{raw body}`` with the signing secret, compared in constant time) and a timestamp
within 5 minutes either way; anything else is 401 with no side effect. A malformed but signed body is
400. Nothing here answers 500 for bad input.

A click is answered within Slack's 3 seconds: the decision is recorded once (conditional write), a
command is queued for the responder (which runs the step and updates the messages), and the
message is replaced through ``response_url`` with "approved by X, running…". Only the request's
approvers (Slack user ids, or members of user groups) may decide; with separation of duties on,
not the finding's actor either. Refusals are ephemeral and change nothing.

A request (AWS calls included) fits in :data:`BUDGET_S`. Its calls to Slack are one short attempt
each, never retried: a user-group lookup is made only while there is room for it and for the
``response_url`` message after it, which gets what is left (at most :data:`RESPONSE_TIMEOUT_S`).
Group memberships are cached per Lambda instance; when one cannot be read in time the user is asked
to try again and nothing is recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from chalicelib.notify.slack_api import INTERACTIVE_TIMEOUT_S
from chalicelib.notify.slack_ids import GROUP_ID, USER_ID
from chalicelib.settings import Settings

TOLERANCE_S = 300
#: Of Slack's 3 seconds, what one request may take (the rest is margin for API Gateway and Lambda).
BUDGET_S = 2.5
#: The longest wait for the ``response_url`` message (and the room a group lookup leaves for it).
RESPONSE_TIMEOUT_S = 0.75
#: Below this, the ``response_url`` message is not attempted (the responder updates the message later).
MIN_RESPONSE_S = 0.25
#: Said when an approver group could not be read in time: nothing is recorded.
COULD_NOT_CHECK = (
    "Could not check the approvers in time (Slack's user groups did not answer). Nothing was recorded: try again."
)
_APPROVAL_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def log() -> Any:
    """The app's structured logger (Powertools, as the SQS handler's): JSON lines, never a request body."""
    from chalicelib.handlers import logger

    return logger()


@dataclass(frozen=True)
class Budget:
    """What is left of one request's time (monotonic clock)."""

    ends: float
    clock: Callable[[], float]

    def left(self) -> float:
        return self.ends - self.clock()


@dataclass(frozen=True)
class Reply:
    """An HTTP answer (app.py turns it into a chalice Response)."""

    status: int
    body: Any = ""
    headers: Mapping[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})

    @classmethod
    def ack(cls) -> Reply:
        return cls(200, "", {"Content-Type": "text/plain"})


def verify_signature(secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float) -> bool:
    """Slack's v0 request signature, and a timestamp at most 5 minutes away (replays, clock skew)."""
    if not secret or not timestamp or not signature or not _TIMESTAMP.fullmatch(timestamp):
        return False
    if abs(now - int(timestamp)) > TOLERANCE_S:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def _form(body: bytes) -> dict[str, str]:
    """``application/x-www-form-urlencoded`` → one value per key (ValueError when it is not)."""
    text = body.decode("utf-8")  # UnicodeDecodeError is a ValueError
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True, strict_parsing=bool(text)).items()}


@dataclass
class SlackInteractions:
    settings: Settings
    store: Any  # IncidentStore
    decisions: Any  # chalicelib.notify.decisions.Decisions
    signing_secret: Callable[[], str]
    api: Any = None  # SlackApi (user groups) or None
    library: Callable[[], Any] | None = None  # the playbook library, for on-demand requests
    send: Callable[[Mapping[str, Any]], None] | None = None  # queue an event (on-demand requests)
    respond: Callable[[str, Mapping[str, Any], float], None] | None = None  # POST to a response_url (timeout)
    notifier: Any = None  # the stage's notifier (the sweep sends undelivered approval requests again)
    telemetry: Any = None  # metrics of the sweep's deliveries (chalicelib.telemetry.Telemetry)
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    #: How long a user-group lookup of ``api`` may take (its timeout; it is never retried).
    lookup_timeout_s: float = INTERACTIVE_TIMEOUT_S

    def _budget(self) -> Budget:
        return Budget(self.monotonic() + BUDGET_S, self.monotonic)

    # -- the two endpoints -------------------------------------------------------------------
    def interaction(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        budget = self._budget()
        refused = self._check(body, headers)
        if refused:
            return refused
        try:
            payload = json.loads(_form(body)["payload"])
            if not isinstance(payload, dict):
                raise ValueError("payload is not an object")
        except (ValueError, KeyError):
            return Reply(400, {"error": "malformed interaction payload"})
        if payload.get("type") != "block_actions":
            return Reply.ack()
        return self._guarded(lambda: self._block_action(payload, budget))

    def command(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        budget = self._budget()
        refused = self._check(body, headers)
        if refused:
            return refused
        try:
            form = _form(body)
        except ValueError:
            return Reply(400, {"error": "malformed command"})
        return self._guarded(lambda: self._on_demand(form, budget))

    @staticmethod
    def _guarded(run: Callable[[], Reply]) -> Reply:
        """An internal failure (e.g. DynamoDB unavailable) after the signature check: an honest message."""
        try:
            return run()
        except Exception as exc:  # noqa: BLE001 - Slack shows the text; the log has the type
            log().error("slack request failed: %s", type(exc).__name__)
            return _ephemeral_reply(
                "Clampdown hit an internal error. Check the request's state (clampdown approvals list) before retrying."
            )

    def _check(self, body: bytes, headers: Mapping[str, str]) -> Reply | None:
        lower = {str(k).lower(): str(v) for k, v in headers.items()}
        try:
            secret = str(self.signing_secret())
        except Exception as exc:  # noqa: BLE001 - no secret, no trust: refuse, say why in the log
            log().error("slack signing secret unavailable: %s", type(exc).__name__)
            return Reply(401, {"error": "invalid signature"})
        ok = verify_signature(
            secret, body, lower.get("x-slack-request-timestamp"), lower.get("x-slack-signature"), self.clock()
        )
        if not ok:
            log().warning("slack request refused: bad or stale signature")
            return Reply(401, {"error": "invalid signature"})
        return None

    # -- approvals ---------------------------------------------------------------------------
    def _block_action(self, payload: Mapping[str, Any], budget: Budget) -> Reply:
        from chalicelib.notify.slack_blocks import APPROVE_ACTION, DENY_ACTION

        actions = payload.get("actions")
        ours = [a for a in (actions if isinstance(actions, list) else []) if isinstance(a, dict)]
        action = next((a for a in ours if a.get("action_id") in (APPROVE_ACTION, DENY_ACTION)), None)
        if action is None:
            return Reply.ack()  # a link or another app's element: nothing to do
        found = payload.get("user")
        user: dict[str, Any] = found if isinstance(found, dict) else {}
        user_id, approval_id = str(user.get("id", "")), str(action.get("value", ""))
        if not USER_ID.fullmatch(user_id) or not _APPROVAL_ID.fullmatch(approval_id):
            return Reply(400, {"error": "malformed action"})
        user_name = str(user.get("username") or user.get("name") or "")[:80]
        response_url = self._response_url(payload.get("response_url"))
        status = "approved" if action.get("action_id") == APPROVE_ACTION else "denied"

        approval = self.store.get_approval(approval_id)
        incident = self.store.get_incident(approval.incident_id) if approval else None
        if approval is None or incident is None:
            self._ephemeral(response_url, "This approval request is unknown to Clampdown.", budget)
            return Reply.ack()
        approvers = list(approval.approvers) or list(self.settings.slack_approvers)
        allowed = self._is_approver(user_id, approvers, budget)
        if allowed is None:
            log().warning("slack decision not checked: approver groups unreadable", extra={"approval": approval_id})
            self._ephemeral(response_url, COULD_NOT_CHECK, budget)
            return Reply.ack()
        refusal = self._refusal(user_id, approvers, allowed, incident)
        if refusal:
            log().warning("slack decision refused", extra={"user": user_id, "approval": approval_id, "why": refusal})
            self._ephemeral(response_url, f"Not allowed: {refusal}. Nothing was changed.", budget)
            return Reply.ack()
        reason = "denied in Slack" if status == "denied" else None
        outcome = self.decisions.decide(approval_id, status, f"slack:{user_id} ({user_name})", reason)
        log().info("slack decision", extra={"user": user_id, "approval": approval_id, "result": outcome.result})
        self._after_decision(outcome, incident, response_url, budget)
        return Reply.ack()

    def _refusal(self, user_id: str, approvers: list[str], allowed: bool, incident: Any) -> str | None:
        if not approvers:
            return "no approvers are configured for this request (use the CLI: clampdown approve)"
        if not allowed:
            return "you are not one of the approvers of this request"
        if self.settings.separation_of_duties:
            from chalicelib.notify.decisions import is_actor

            identity = self.settings.slack_identities.get(user_id)
            if not identity:
                return "separation of duties is on and your Slack user has no mapped AWS identity"
            if is_actor(incident, identity):
                return "you are the actor of this finding (separation of duties)"
        return None

    def _is_approver(self, user_id: str, approvers: list[str], budget: Budget) -> bool | None:
        """True or False; None when a group that might hold the user could not be read in time."""
        if user_id in approvers:
            return True
        unknown = False
        for group in (a for a in approvers if GROUP_ID.fullmatch(a)):
            members = self._members(group, budget)
            if members is None:
                unknown = True
            elif user_id in members:
                return True
        return None if unknown else False

    def _members(self, group: str, budget: Budget) -> frozenset[str] | None:
        """A group's members: cached, else one short lookup if the budget allows it; None if unknown."""
        if self.api is None:
            log().warning("approver group %s cannot be resolved without a bot token", group)
            return frozenset()
        cached: frozenset[str] | None = self.api.cached_usergroup(group)
        if cached is not None:
            return cached
        if budget.left() < self.lookup_timeout_s + RESPONSE_TIMEOUT_S:
            log().warning("user group %s not read: out of time", group)
            return None
        try:
            members: frozenset[str] = self.api.usergroup_members(group)
        except Exception as exc:  # noqa: BLE001 - cannot tell: the user is asked to try again
            log().warning("user group %s could not be read: %s", group, type(exc).__name__)
            return None
        return members

    def _after_decision(self, outcome: Any, incident: Any, response_url: str | None, budget: Budget) -> None:
        from chalicelib.notify import slack_blocks as blocks

        approval = outcome.approval
        if outcome.result == "unknown" or approval is None:
            self._ephemeral(response_url, "This approval request is unknown to Clampdown.", budget)
            return
        if outcome.result == "already-decided":
            who = blocks.who(approval.decided_by)
            text = f"Already {blocks.escape(approval.status, 20)} by {who}: nothing more to do."
            self._ephemeral(response_url, text, budget)
            return
        step = self.store.get_step(approval.incident_id, approval.step_key)
        if outcome.result == "expired":
            progress = "closing the step"
        elif not outcome.queued:
            progress = "recorded, but could not be queued yet: it will be retried within minutes"
        else:
            progress = "running…" if approval.status == "approved" else "closing the step…"
        if step is not None and response_url:
            banner = blocks.decision_banner(approval.status, approval.decided_by, progress)
            message = blocks.approval_message(incident, step, approval, banner=banner, buttons=False)
            self._post(response_url, {"replace_original": True, **message}, budget)
        if outcome.result == "expired":
            self._ephemeral(response_url, "This request had expired: nothing was run.", budget)

    # -- on-demand (/clampdown contain ...) --------------------------------------------------
    def _on_demand(self, form: Mapping[str, str], budget: Budget) -> Reply:
        from chalicelib import slack_ondemand as ondemand
        from chalicelib.notify import slack_blocks as blocks

        user_id, user_name = form.get("user_id", ""), form.get("user_name", "")[:80]
        text = form.get("text", "").strip()
        if not USER_ID.fullmatch(user_id):
            return Reply(400, {"error": "malformed command"})
        if not text or text.lower() == "help":
            return _ephemeral_reply(ondemand.USAGE)
        allowed = self._is_approver(user_id, list(self.settings.slack_approvers), budget)
        if allowed is None:
            return _ephemeral_reply(COULD_NOT_CHECK)
        if not allowed:
            return _ephemeral_reply("Not allowed: only Clampdown approvers can ask for on-demand containment.")
        if ondemand.SOURCE not in self.settings.custom_sources or self.library is None or self.send is None:
            return _ephemeral_reply(
                f"On-demand response is off for this stage (add {ondemand.SOURCE} to CLAMPDOWN_CUSTOM_SOURCES)."
            )
        try:
            request = ondemand.parse(text, home_account=self.settings.home_account, region=self.settings.region)
        except ondemand.RequestError as exc:
            return _ephemeral_reply(str(exc))
        event = ondemand.event(request, user_id=user_id, user_name=user_name)
        library = self.library()
        if request.playbook and request.playbook not in library.by_name:
            return _ephemeral_reply(f"No playbook named {blocks.code(request.playbook, 80)}.")
        from chalicelib.planner import evaluate

        plans = evaluate(event, library).plans
        if not plans:
            return _ephemeral_reply(
                f"No playbook accepts an on-demand request for {blocks.code(request.resource_arn, 600)}."
            )
        self.send(event)
        log().info("on-demand request queued", extra={"user": user_id, "event": event["id"]})
        lines = [
            f"<@{user_id}> asked Clampdown to contain {blocks.code(request.resource_arn, 600)}; "
            f"request {blocks.code(event['id'], 60)} is queued. Planned:"
        ]
        for step in ondemand.planned_steps(plans)[:20]:
            label = (step["target"] or {}).get("name") or (step["target"] or {}).get("id") or "the finding"
            state = f"skipped: {blocks.code(step['skipped'], 200)}" if step["skipped"] else step["mode"]
            what = f"{blocks.code(step['playbook'], 80)} {blocks.code(step['action'], 80)}"
            lines.append(f"• {what} on {blocks.code(label, 300)} ({state})")
        return Reply(200, {"response_type": "in_channel", "text": "\n".join(lines)})

    # -- replies -----------------------------------------------------------------------------
    def _response_url(self, value: Any) -> str | None:
        url = str(value or "")
        prefix = self.settings.slack_response_url_prefix
        return url if url.startswith(prefix) and prefix.endswith("/") and len(url) < 2000 else None

    def _post(self, url: str, message: Mapping[str, Any], budget: Budget) -> None:
        """One message through ``response_url``, if the budget allows (the responder updates the
        approval message anyway once the step is closed)."""
        if self.respond is None:
            return
        left = budget.left()
        if left < MIN_RESPONSE_S:
            log().warning("slack response_url not called: out of time")
            return
        try:
            self.respond(url, message, min(left, RESPONSE_TIMEOUT_S))
        except Exception as exc:  # noqa: BLE001 - the decision stands; only the message lags
            log().warning("slack response_url failed: %s", type(exc).__name__)

    def _ephemeral(self, url: str | None, text: str, budget: Budget) -> None:
        if url:
            self._post(url, {"response_type": "ephemeral", "replace_original": False, "text": text}, budget)


def _ephemeral_reply(text: str) -> Reply:
    return Reply(200, {"response_type": "ephemeral", "text": text})


# -- the deployed instance (built on first use, once per Lambda instance) -----------------------
_lock = threading.Lock()
_service: SlackInteractions | None = None


def build(settings: Settings, session: Any = None) -> SlackInteractions:
    """The handler on real AWS (or whatever ``AWS_ENDPOINT_URL`` points at)."""
    from chalicelib.aws import AwsClients
    from chalicelib.handlers import PowertoolsTelemetry
    from chalicelib.incidents import DynamoIncidentStore
    from chalicelib.notify.decisions import Decisions, SqsCommands
    from chalicelib.notify.factory import notifier_from_settings, slack_api
    from chalicelib.notify.slack_api import post_webhook
    from chalicelib.secrets import reader_for

    if not settings.incidents_table:
        raise RuntimeError("CLAMPDOWN_INCIDENTS_TABLE is not set")
    clients = AwsClients(
        home_account=settings.home_account,
        default_region=settings.region,
        session_factory=(lambda: session) if session is not None else None,
    )
    store = DynamoIncidentStore(
        clients.client("dynamodb", account=None, region=settings.region), settings.incidents_table
    )
    queue = SqsCommands(lambda: clients.client("sqs", account=None, region=settings.region), settings.queue_url)
    secrets = reader_for(clients, settings.region, settings.secrets_cache_s)
    signing = settings.slack_signing_secret

    def signing_secret() -> str:
        if not signing:
            raise RuntimeError("CLAMPDOWN_SLACK_SIGNING_SECRET is not set")
        return secrets.get(signing)

    def respond(url: str, message: Mapping[str, Any], timeout_s: float) -> None:
        # Slack waits 3 s for the click's answer: one quick attempt, no retry.
        post_webhook(url, message, timeout_s=timeout_s, retries=0, max_wait_s=0)

    telemetry = PowertoolsTelemetry()
    library_cache: list[Any] = []

    def library() -> Any:
        if not library_cache:
            from chalicelib.wiring import load_bundled_library

            library_cache.append(load_bundled_library().with_overrides(settings.overrides))
        return library_cache[0]

    return SlackInteractions(
        settings=settings,
        store=store,
        decisions=Decisions(store, queue),
        signing_secret=signing_secret,
        api=slack_api(settings, clients, interactive=True),
        library=library,
        send=queue,
        respond=respond,
        notifier=notifier_from_settings(settings, clients, store, telemetry),
        telemetry=telemetry,
        lookup_timeout_s=INTERACTIVE_TIMEOUT_S,
    )


def service() -> SlackInteractions:
    global _service
    with _lock:
        if _service is None:
            _service = build(Settings.from_env())
        return _service


def reset() -> None:
    """Forget the process-wide instance (tests that change the environment)."""
    global _service
    with _lock:
        _service = None


def _configured() -> SlackInteractions | None:
    try:
        return service()
    except Exception as exc:  # noqa: BLE001 - a misconfigured stage answers 503, and says why in the log
        log().error("slack handler unavailable: %s: %s", type(exc).__name__, str(exc)[:200])
        return None


def handle_interaction(body: bytes | None, headers: Mapping[str, str]) -> Reply:
    handler = _configured()
    return handler.interaction(body or b"", headers) if handler else Reply(503, {"error": "unavailable"})


def handle_command(body: bytes | None, headers: Mapping[str, str]) -> Reply:
    handler = _configured()
    return handler.command(body or b"", headers) if handler else Reply(503, {"error": "unavailable"})


def expire_approvals() -> dict[str, int]:
    """The scheduled sweep: expire overdue requests (the responder closes their steps and updates
    Slack through the queued commands), queue again decisions whose command was lost, and send
    again approval requests that never went out (a failure is counted and noted on the incident)."""
    from chalicelib.handlers import metrics
    from chalicelib.notify.decisions import resend_undelivered

    handler = service()
    notifier = handler.notifier

    def resend(approval: Any) -> bool | None:
        if notifier is None:
            return None
        return resend_undelivered(handler.store, notifier, approval, handler.telemetry)

    try:
        counts: dict[str, int] = handler.decisions.sweep(on_pending=resend)
    finally:
        if getattr(handler.telemetry, "enabled", False):
            metrics().flush_metrics()
    log().info("approval sweep", extra=counts)
    return counts
