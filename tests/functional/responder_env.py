"""A deployed-like environment on moto: tables, settings, a library, and real corpus findings
pointed at resources that exist in moto."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from chalicelib.incidents import TABLE_DEFINITION
from chalicelib.playbooks.library import Library
from chalicelib.settings import Settings
from clampdown.playbooks.loader import load_library
from tests.conftest import ACCOUNT, REGION, corpus_event

INCIDENTS_TABLE = "clampdown-incidents"
IDEMPOTENCY_TABLE = "clampdown-idempotency"
KILL_SWITCH = "/clampdown/test/kill-switch"
TOR_USER_EVENT = "guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"


def create_tables(dynamodb: Any) -> None:
    dynamodb.create_table(TableName=INCIDENTS_TABLE, **TABLE_DEFINITION)
    dynamodb.create_table(
        TableName=IDEMPOTENCY_TABLE,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "region": REGION,
        "incidents_table": INCIDENTS_TABLE,
        "idempotency_table": IDEMPOTENCY_TABLE,
        "kill_switch_parameter": KILL_SWITCH,
        "accounts": ("111111111111",),
    }
    base.update(overrides)
    return Settings(**base)


def library(tmp_path: Path, *documents: str) -> Library:
    folder = tmp_path / "playbooks"
    folder.mkdir(exist_ok=True)
    for index, text in enumerate(documents):
        (folder / f"p{index}.yaml").write_text(text)
    return load_library([folder])


def tor_user_finding(
    *,
    account: str = ACCOUNT,
    user: str,
    key: str,
    user_type: str = "IAMUser",
    count: int = 1,
    event_id: str | None = None,
) -> dict[str, Any]:
    """The real c7n GuardDuty TorIPCaller event, its resource pointed at a user (or role) in moto.

    Only documented fields of ``detail.resource.accessKeyDetails`` are changed (GuardDuty finding
    format: userName, userType, accessKeyId), plus the account and ``service.count`` (GuardDuty
    re-publishes a finding with a higher count as activity continues, keeping its id).
    """
    event = copy.deepcopy(corpus_event(TOR_USER_EVENT))
    event.pop("debug", None)
    event["account"] = account
    detail = event["detail"]
    detail["accountId"] = account
    details = detail["resource"]["accessKeyDetails"]
    details.update(userName=user, userType=user_type, accessKeyId=key)
    detail["service"]["count"] = count
    if event_id:
        event["id"] = event_id
    return event
