"""Rollback of an incident on moto: reverse order, state restored, never re-contained afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chalicelib.rollback import UnknownIncident, rollback_incident
from chalicelib.wiring import build_responder
from tests.conftest import CallRecorder
from tests.functional import responder_env as env
from tests.functional.test_responder import PLAYBOOK


@pytest.fixture
def contained(boto_session: Any, recorder: CallRecorder, tmp_path: Path) -> dict[str, Any]:
    env.create_tables(boto_session.client("dynamodb"))
    iam = boto_session.client("iam")
    iam.create_user(UserName="mallory")
    key = iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
    responder = build_responder(env.settings(), library=env.library(tmp_path, PLAYBOOK), session=boto_session)
    event = env.tor_user_finding(user="mallory", key=key)
    report = responder.handle(event)
    assert [s.status for s in report.steps] == ["contained", "contained", "done"]
    return {"iam": iam, "responder": responder, "event": event, "incident": report.incidents[0], "recorder": recorder}


def state(iam: Any) -> tuple[str, list[str]]:
    return (
        iam.list_access_keys(UserName="mallory")["AccessKeyMetadata"][0]["Status"],
        iam.list_user_policies(UserName="mallory")["PolicyNames"],
    )


def test_dry_run_plans_the_undo_and_changes_nothing(contained: dict[str, Any]) -> None:
    report = rollback_incident(contained["responder"].runner, contained["incident"], by="tester", dry_run=True)
    assert [s["action"] for s in report.steps] == ["iam.quarantine-user", "iam.deactivate-access-key"]
    calls = [c["call"] for s in report.steps for c in s["result"]["calls"]]
    assert calls == ["iam:DeleteUserPolicy", "iam:UpdateAccessKey"]
    assert [s["reason"] for s in report.skipped] == []  # notify.log was "done", not containment
    assert state(contained["iam"]) == ("Inactive", ["clampdown-quarantine"])


def test_rollback_restores_and_the_finding_never_recontains(contained: dict[str, Any]) -> None:
    responder, recorder = contained["responder"], contained["recorder"]
    report = rollback_incident(responder.runner, contained["incident"], by="tester")
    assert not report.failed
    assert [s["result"]["status"] for s in report.steps] == ["rolled-back", "rolled-back"]
    assert state(contained["iam"]) == ("Active", [])
    incident = responder.store.get_incident(contained["incident"])
    assert incident is not None and incident.status == "rolled-back"
    assert len(incident.suppressed) == 2
    assert any(e.message.startswith("rolled back by tester") for e in responder.store.timeline(incident.id))

    recorder.clear()
    responder.handle(contained["event"])  # a redelivery after the human released the user
    assert state(contained["iam"]) == ("Active", [])
    assert not [op for _, op, _ in recorder.calls if op in ("UpdateAccessKey", "PutUserPolicy")]


def test_unknown_incident(contained: dict[str, Any]) -> None:
    with pytest.raises(UnknownIncident):
        rollback_incident(contained["responder"].runner, "inc-nope", by="tester")
