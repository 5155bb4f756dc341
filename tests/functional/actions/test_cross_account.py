"""A target in another account, in an opt-in region: reached by assuming the member role through the STS
endpoint of the finding's region (opt-in regions reject tokens from the global endpoint), with a session
name that names the incident. moto serves STS in eu-south-2; the endpoint each request went to is recorded
from botocore's ``before-send`` event."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlparse

from chalicelib.actions import REGISTRY, ActionContext, Status
from chalicelib.findings import Resource, normalize
from chalicelib.guardrails import Guardrails
from tests.conftest import corpus_event, member_client

MEMBER = "111122223333"
REGION = "eu-south-2"  # Spain: an opt-in region


def test_member_account_in_an_opt_in_region(boto_session: Any, aws_clients: Any, recorder: Any) -> None:
    sent: list[tuple[str, str]] = []
    boto_session.events.register(
        "before-send", lambda request, **_: sent.append((urlparse(request.url).hostname or "", request.url))
    )
    member_iam = member_client(boto_session, MEMBER, region_name=REGION)
    member_iam.create_user(UserName="remote")
    sent.clear()
    recorder.clear()

    finding = normalize(corpus_event("guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"))[0]
    finding = dataclasses.replace(finding, account=MEMBER, region=REGION)
    target = Resource("iam-user", name="remote", account=MEMBER)
    ctx = ActionContext(
        finding=finding, incident_id="inc-7f3a", aws=aws_clients.for_incident("inc-7f3a"), guard=Guardrails()
    )
    result = REGISTRY["iam.quarantine-user"]({}).apply(ctx, target)

    assert result.status == Status.CONTAINED, result.to_dict()
    assert member_iam.list_user_policies(UserName="remote")["PolicyNames"] == ["clampdown-quarantine"]
    assert boto_session.client("iam").list_users()["Users"] == [], "nothing happened in the home account"
    (assume,) = [params for _, op, params in recorder.calls if op == "AssumeRole"]
    assert assume["RoleArn"] == f"arn:aws:iam::{MEMBER}:role/ClampdownMemberResponder"
    assert assume["RoleSessionName"] == "clampdown-inc-7f3a"
    hosts = [host for host, _ in sent]
    assert hosts[0] == f"sts.{REGION}.amazonaws.com", "the regional STS endpoint, not sts.amazonaws.com"
    assert set(hosts[1:]) == {"iam.amazonaws.com"}  # IAM is global; the member role's credentials sign it
