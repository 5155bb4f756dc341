"""The merge template's choices that must agree with what the code writes (TTL attributes) or refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chalicelib.executor import IdempotencyGuard
from chalicelib.incidents import TABLE_DEFINITION, DynamoIncidentStore
from clampdown.deploy.rules import generate_rules
from clampdown.deploy.templates import (
    IDEMPOTENCY_TTL_ATTRIBUTE,
    INCIDENTS_TTL_ATTRIBUTE,
    member_role_template,
    merge_template,
)
from tests.deploy.helpers import library, playbook, shipped_library, stage


def test_the_incident_table_expires_items_on_the_attribute_the_store_writes(boto_session: Any) -> None:
    dynamodb = boto_session.client("dynamodb")
    dynamodb.create_table(TableName="incidents", **TABLE_DEFINITION)
    store = DynamoIncidentStore(dynamodb, "incidents")
    assert store.consume_budget("iam-user", 1_700_000_000, 5, 1_700_003_600)
    [item] = dynamodb.scan(TableName="incidents")["Items"]
    assert item[INCIDENTS_TTL_ATTRIBUTE] == {"N": "1700003600"}


@pytest.mark.filterwarnings("ignore:Couldn.t determine the remaining time")
def test_the_idempotency_table_expires_records_on_the_attribute_powertools_writes(boto_session: Any) -> None:
    dynamodb = boto_session.client("dynamodb")
    dynamodb.create_table(
        TableName="idempotency",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    guard = IdempotencyGuard("idempotency", boto3_session=boto_session)
    assert guard.run("step-1", lambda: {"status": "contained"}) == {"status": "contained"}
    [item] = dynamodb.scan(TableName="idempotency")["Items"]
    assert "N" in item[IDEMPOTENCY_TTL_ATTRIBUTE]


def test_a_function_without_a_policy_is_refused() -> None:
    lib = shipped_library()
    with pytest.raises(ValueError, match="backdoor with no policy"):
        merge_template(stage(), lib, generate_rules(lib), ["respond", "backdoor"])


def test_without_containment_there_is_no_member_role(tmp_path: Path) -> None:
    lib = library(tmp_path, playbook("log-only", {"source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"]}))
    with pytest.raises(ValueError, match="nothing to do"):
        member_role_template(stage(), lib)


@pytest.mark.parametrize(("setting", "tracing"), [(None, "PassThrough"), ("false", "PassThrough"), ("true", "Active")])
def test_functions_are_traced_only_when_the_stage_turns_tracing_on(setting: str | None, tracing: str) -> None:
    lib = shipped_library()
    st = stage() if setting is None else stage(CLAMPDOWN_TRACING=setting)
    resources = merge_template(st, lib, generate_rules(lib), ["respond", "api_handler", "expire_approvals"])[
        "Resources"
    ]
    for function, role in (
        ("Respond", "RespondRole"),
        ("APIHandler", "ApiHandlerRole"),
        ("ExpireApprovals", "ExpireApprovalsRole"),
    ):
        assert resources[function]["Properties"]["Tracing"] == tracing
        [policy] = resources[role]["Properties"]["Policies"]
        sids = {s["Sid"] for s in policy["PolicyDocument"]["Statement"]}
        assert ("Tracing" in sids) == (tracing == "Active")
