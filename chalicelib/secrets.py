"""Secrets by name, from Secrets Manager or SSM Parameter Store, cached per Lambda instance.

A name is read from SSM (``GetParameter`` with decryption, so SecureString works) when it starts
with ``ssm:`` (``ssm:/clampdown/slack-token``), with ``/`` or is an SSM parameter ARN; anything else
is a Secrets Manager secret name or ARN. ``NAME#key`` reads one key of a JSON secret (one secret can
hold the bot token and the signing secret).

Values never reach logs or exceptions: errors name the secret, never its value, and botocore's
DEBUG logging of response bodies is switched off for the parser logger the first time a secret is read.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

#: (service, region) → a boto3 client; region None means the default region.
ClientFactory = Callable[[str, str | None], Any]


class SecretUnavailable(RuntimeError):
    """A secret could not be read; the message names the secret and the AWS error code only."""


def _quiet_botocore() -> None:
    # botocore logs every response body at DEBUG, which would include a secret's value.
    parsers = logging.getLogger("botocore.parsers")
    if parsers.level == logging.NOTSET or parsers.level < logging.INFO:
        parsers.setLevel(logging.INFO)


def _split(name: str) -> tuple[str, str | None]:
    base, _, key = name.partition("#")
    return base, key or None


def _ssm_name(name: str) -> str | None:
    if name.startswith("ssm:"):
        return name[4:]
    if name.startswith("/"):
        return name
    parts = name.split(":")
    if len(parts) > 5 and parts[0] == "arn" and parts[2] == "ssm":
        return name  # GetParameter accepts a parameter ARN
    return None


def _region_of(name: str) -> str | None:
    parts = name.split(":")
    if len(parts) > 5 and parts[0] == "arn" and parts[3]:
        return parts[3]
    return None


class _Cache:
    """Values by secret name, shared by every reader of the process (one Lambda instance)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, tuple[str, float]] = {}


_SHARED = _Cache()


def forget_all() -> None:
    """Drop every cached value (tests; or after a known rotation)."""
    with _SHARED.lock:
        _SHARED.values.clear()


def _error_code(exc: BaseException) -> str:
    error = getattr(exc, "response", None)
    if isinstance(error, dict):
        return str((error.get("Error") or {}).get("Code") or type(exc).__name__)
    return type(exc).__name__


class SecretReader:
    """Reads and caches secrets; thread-safe. ``ttl_s`` bounds how stale a rotated secret can be."""

    def __init__(
        self,
        clients: ClientFactory,
        ttl_s: float = 300,
        clock: Callable[[], float] = time.monotonic,
        cache: _Cache | None = None,
    ) -> None:
        self._clients = clients
        self.ttl_s = ttl_s
        self._clock = clock
        self._cache = cache or _SHARED

    def get(self, name: str) -> str:
        now = self._clock()
        with self._cache.lock:
            cached = self._cache.values.get(name)
        if cached is not None and now - cached[1] < self.ttl_s:
            return cached[0]
        value = self._fetch(name)
        with self._cache.lock:
            self._cache.values[name] = (value, now)
        return value

    def _fetch(self, name: str) -> str:
        _quiet_botocore()
        base, key = _split(name)
        ssm_name = _ssm_name(base)
        try:
            if ssm_name is not None:
                client = self._clients("ssm", _region_of(ssm_name))
                raw = client.get_parameter(Name=ssm_name, WithDecryption=True)["Parameter"]["Value"]
            else:
                client = self._clients("secretsmanager", _region_of(base))
                response = client.get_secret_value(SecretId=base)
                raw = response.get("SecretString")
                if raw is None:
                    raise SecretUnavailable(f"secret {base!r} is binary; store the value as a string")
        except SecretUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - the AWS error code is enough, and carries no value
            code = _error_code(exc)
            raise SecretUnavailable(f"secret {base!r} could not be read: {code}") from None
        if key is None:
            return str(raw).strip()
        try:
            document = json.loads(raw)
            value = document[key]
        except (ValueError, KeyError, TypeError):
            raise SecretUnavailable(f"secret {base!r} is not a JSON object with the key {key!r}") from None
        if not isinstance(value, str):
            raise SecretUnavailable(f"key {key!r} of secret {base!r} is not a string")
        return value.strip()


def reader_for(aws: Any, region: str | None, ttl_s: float = 300) -> SecretReader:
    """A reader over an ``AwsClients``/``AwsProvider`` (clients of the responder's own account)."""

    def clients(service: str, secret_region: str | None) -> Any:
        return aws.client(service, account=None, region=secret_region or region)

    return SecretReader(clients, ttl_s=ttl_s)
