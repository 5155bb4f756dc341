"""boto3 clients per (account, region), created lazily and once, with throttling-aware retries.

A target in another account is reached by assuming the member-account role there, through the STS
endpoint of the target's region (opt-in regions only accept their regional endpoint), with a session
name that identifies the incident (it shows up in that account's CloudTrail).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: botocore retries: "standard" retries throttles and transient errors with exponential backoff.
DEFAULT_RETRY = {"mode": "standard", "total_max_attempts": 6}
CREDENTIALS_MARGIN_S = 300
_SESSION_NAME_OK = re.compile(r"[^\w+=,.@-]")


def session_name(incident_id: str) -> str:
    """An STS RoleSessionName (2 to 64 chars of ``[\\w+=,.@-]``) naming the incident."""
    return _SESSION_NAME_OK.sub("-", f"clampdown-{incident_id}")[:64]


def _botocore_config(retry: dict[str, Any], user_agent: str) -> Any:
    from botocore.config import Config

    return Config(retries=retry, user_agent_extra=user_agent, connect_timeout=5, read_timeout=20)


@dataclass
class _Credentials:
    access_key: str
    secret_key: str
    token: str
    expires_at: float

    @property
    def fresh(self) -> bool:
        return time.time() < self.expires_at - CREDENTIALS_MARGIN_S


@dataclass
class _MemberSession:
    """One assumed-role session in a member account and region, and the clients made from it."""

    credentials: _Credentials
    clients: dict[str, Any] = field(default_factory=dict)


@dataclass
class AwsClients:
    """Implements ``actions.base.AwsProvider``. One per responder process; thread-safe.

    Home-account clients are made once per (service, region). A member account is reached through an
    assumed-role session per (account, region, label), the label being the incident id: each change in
    that account then shows in its CloudTrail under a session naming the incident, which is what a
    reviewer of that account needs. The price is one ``AssumeRole`` per incident and account-region (a
    step's calls all share it). Sessions live in an LRU of at most ``max_sessions`` (each holds its
    credentials and its clients), so a long-lived Lambda instance that handles thousands of incidents
    keeps a bounded cache; an incident whose session was evicted and that acts again assumes the role again.
    """

    #: The account the responder runs in; None means "learn it from STS when first needed".
    home_account: str | None = None
    #: Role name assumed in other accounts (deployed by the member-account template).
    member_role_name: str = "ClampdownMemberResponder"
    default_region: str | None = None
    partition: str = "aws"
    session_label: str = "clampdown"
    retry: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_RETRY))
    external_id: str | None = None
    session_factory: Callable[..., Any] | None = None
    #: The most member-account sessions kept (least recently used first out).
    max_sessions: int = 32
    _clients: dict[tuple[str, str | None], Any] = field(default_factory=dict, repr=False)
    _sessions: OrderedDict[tuple[str, str | None, str], _MemberSession] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _session: Any = field(default=None, repr=False)

    def _base_session(self) -> Any:
        if self._session is None:
            if self.session_factory is not None:
                self._session = self.session_factory()
            else:
                import boto3

                self._session = boto3.session.Session()
        return self._session

    def _config(self) -> Any:
        return _botocore_config(self.retry, "clampdown")

    def home(self) -> str:
        if self.home_account is None:
            sts = self.client("sts", account=None, region=self.default_region)
            self.home_account = str(sts.get_caller_identity()["Account"])
        return self.home_account

    def client(self, service: str, *, account: str | None, region: str | None, session_label: str | None = None) -> Any:
        region = region or self.default_region or self._base_session().region_name
        if account is None or account == self.home():
            key = (service, region)
            with self._lock:
                cached = self._clients.get(key)
            if cached is None:
                cached = self._base_session().client(service, region_name=region, config=self._config())
                with self._lock:
                    cached = self._clients.setdefault(key, cached)
            return cached
        session = self._member_session(account, region, session_label or self.session_label)
        with self._lock:
            found = session.clients.get(service)
        if found is None:
            creds = session.credentials
            found = self._base_session().client(
                service,
                region_name=region,
                aws_access_key_id=creds.access_key,
                aws_secret_access_key=creds.secret_key,
                aws_session_token=creds.token,
                config=self._config(),
            )
            with self._lock:
                found = session.clients.setdefault(service, found)
        return found

    def cached_sessions(self) -> int:
        """How many member-account sessions are held (bounded by ``max_sessions``)."""
        with self._lock:
            return len(self._sessions)

    def _member_session(self, account: str, region: str | None, label: str) -> _MemberSession:
        key = (account, region, label)
        with self._lock:
            found = self._sessions.get(key)
            if found is not None and found.credentials.fresh:
                self._sessions.move_to_end(key)
                return found
        session = _MemberSession(self._assume(account, region, label))
        with self._lock:
            self._sessions[key] = session
            self._sessions.move_to_end(key)
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        return session

    def role_arn(self, account: str) -> str:
        return f"arn:{self.partition}:iam::{account}:role/{self.member_role_name}"

    def _assume(self, account: str, region: str | None, label: str) -> _Credentials:
        # The STS client of the target region: opt-in regions reject the global endpoint's tokens.
        sts = self.client("sts", account=None, region=region)
        params: dict[str, Any] = {
            "RoleArn": self.role_arn(account),
            "RoleSessionName": session_name(label),
            "DurationSeconds": 3600,
        }
        if self.external_id:
            params["ExternalId"] = self.external_id
        response = sts.assume_role(**params)["Credentials"]
        expiration = response["Expiration"]
        expires_at = expiration.timestamp() if hasattr(expiration, "timestamp") else time.time() + 3600
        return _Credentials(response["AccessKeyId"], response["SecretAccessKey"], response["SessionToken"], expires_at)

    def for_incident(self, incident_id: str) -> IncidentAws:
        """A view whose assumed-role sessions are named after the incident; clients stay shared."""
        return IncidentAws(self, incident_id)


@dataclass(frozen=True)
class IncidentAws:
    """``AwsProvider`` for one incident: cross-account sessions carry its id."""

    clients: AwsClients
    incident_id: str

    def client(self, service: str, *, account: str | None, region: str | None) -> Any:
        return self.clients.client(service, account=account, region=region, session_label=self.incident_id)
