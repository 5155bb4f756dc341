"""Clients per account and region: member-account sessions name their incident and stay bounded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chalicelib.wiring import build_responder
from tests.conftest import CallRecorder, member_client
from tests.functional import responder_env as env
from tests.functional.test_responder import PLAYBOOK


def test_many_incidents_in_one_member_account_keep_the_client_cache_bounded(
    boto_session: Any, tmp_path: Path, recorder: CallRecorder
) -> None:
    env.create_tables(boto_session.client("dynamodb"))
    member = "111111111111"
    member_iam = member_client(boto_session, member)
    responder = build_responder(env.settings(), library=env.library(tmp_path, PLAYBOOK), session=boto_session)
    clients = responder.runner.aws
    clients.max_sessions = 3
    for index in range(8):
        member_iam.create_user(UserName=f"user{index}")
        key = member_iam.create_access_key(UserName=f"user{index}")["AccessKey"]["AccessKeyId"]
        event = env.tor_user_finding(account=member, user=f"user{index}", key=key)
        event["detail"]["id"] = f"{index:032x}"
        assert [s.status for s in responder.handle(event).steps] == ["contained", "contained", "done"]
        assert clients.cached_sessions() <= 3
    sessions = [p["RoleSessionName"] for _, op, p in recorder.calls if op == "AssumeRole"][1:]
    assert len(sessions) == 8, "one session per incident, each naming it"
    assert len(set(sessions)) == 8 and all(name.startswith("clampdown-inc-") for name in sessions)
