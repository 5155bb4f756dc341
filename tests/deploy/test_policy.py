"""The generated IAM policies: exact actions only, from the playbooks in use, runtime scoped to the
stage's resources, and sufficient for what the deployed functions really call (on moto)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from chalicelib.actions import REGISTRY
from clampdown.deploy.policy import (
    PolicyError,
    actions_of,
    containment_permissions,
    interactions_policy,
    member_policy,
    render_cfn,
    render_literal,
    responder_policy,
)
from clampdown.deploy.stage import Stage
from clampdown.deploy.templates import member_role_template
from tests.deploy.helpers import allows, as_list, library, playbook, shipped_library, stage, statements

GD = {"source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"]}
#: IAM's limit on a role's inline policies (whitespace not counted).
ROLE_POLICY_LIMIT = 10_240


def all_actions(document: dict[str, Any]) -> list[str]:
    return [a for s in statements(document) for a in as_list(s["Action"])]


def test_no_wildcard_action_anywhere_and_every_shipped_permission_present() -> None:
    lib = shipped_library()
    st = stage("prod", CLAMPDOWN_ACCOUNTS="111111111111")
    for document in (
        responder_policy(st, lib),
        interactions_policy(st),
        member_policy(stage(), lib),
    ):
        rendered = render_literal(document)
        assert all("*" not in action and action.count(":") == 1 for action in all_actions(rendered))
        assert len(json.dumps(rendered, separators=(",", ":"))) < ROLE_POLICY_LIMIT
    used = {step.action for p in lib.enabled for step in p.steps}
    needed = {perm for name in used for perm in REGISTRY[name].permissions}
    assert needed and needed <= actions_of(responder_policy(st, lib))
    assert needed == actions_of(member_policy(stage(), lib))


def test_only_the_actions_of_the_playbooks_in_use(tmp_path: Path) -> None:
    lib = library(tmp_path, playbook("keys", GD, "iam.deactivate-access-key", "notify.log"))
    document = responder_policy(stage(), lib)
    key_action = set(REGISTRY["iam.deactivate-access-key"].permissions)
    [containment] = [s for s in statements(document) if s["Sid"] == "Containment"]
    assert set(containment["Action"]) == key_action and containment["Resource"] == ["*"]
    # Besides it, only the runtime's own statements, each scoped (see below).
    assert {s["Sid"] for s in statements(document)} == {
        "Containment",
        "NeverContainClampdown",
        "ConsumeEventQueue",
        "IncidentStore",
        "IdempotencyStore",
        "ReadKillSwitch",
        "EvidenceObjects",
        "WriteOwnLogs",
    }
    others = {p for name, cls in REGISTRY.items() if name != "iam.deactivate-access-key" for p in cls.permissions}
    assert not (others - key_action) & set(containment["Action"])
    assert not any(
        a.startswith(("ec2:", "autoscaling:", "lambda:", "elasticloadbalancing:")) for a in actions_of(document)
    )
    assert set(actions_of(member_policy(stage(), lib))) == key_action


def test_a_disabled_playbook_takes_its_permissions_with_it(tmp_path: Path) -> None:
    lib = library(
        tmp_path,
        playbook("keys", GD, "iam.deactivate-access-key"),
        playbook("isolate", {**GD, "detail": {"severity": [8]}}, "ec2.isolate-instance"),
    )
    assert "ec2:ModifyInstanceAttribute" in containment_permissions(lib)
    assert "ec2:ModifyInstanceAttribute" not in containment_permissions(lib.with_overrides({"disable": ["isolate"]}))


def test_runtime_statements_name_only_the_stage_resources() -> None:
    st = stage("prod")
    rendered = render_literal(responder_policy(st, shipped_library()), account="111122223333", region="eu-west-1")
    by_sid = {s["Sid"]: s for s in statements(rendered)}
    assert by_sid["ConsumeEventQueue"]["Resource"] == ["arn:aws:sqs:eu-west-1:111122223333:clampdown-prod-events"]
    assert by_sid["IncidentStore"]["Resource"] == [
        "arn:aws:dynamodb:eu-west-1:111122223333:table/clampdown-prod-incidents"
    ]
    assert by_sid["ReadKillSwitch"]["Resource"] == [
        "arn:aws:ssm:eu-west-1:111122223333:parameter/clampdown/prod/kill-switch"
    ]
    assert by_sid["EvidenceObjects"]["Resource"] == ["arn:aws:s3:::clampdown-prod-evidence-111122223333-eu-west-1/*"]
    assert by_sid["WriteOwnLogs"]["Resource"] == [
        "arn:aws:logs:eu-west-1:111122223333:log-group:/aws/lambda/clampdown-prod-respond:*"
    ]
    # Resource "*" only for containment (customer resources); nothing to assume without member accounts.
    assert {s["Sid"] for s in statements(rendered) if "*" in s["Resource"]} <= {
        "Containment",
        "PassRoleToEc2ForRollback",
    }
    assert "AssumeMemberRoles" not in by_sid and "sts:AssumeRole" not in actions_of(rendered)
    # The responder never writes to its own queue nor scans the table (the Slack side does).
    assert not {"sqs:SendMessage", "dynamodb:Scan", "dynamodb:DeleteItem"} & set(by_sid["IncidentStore"]["Action"])
    assert "sqs:SendMessage" not in actions_of(rendered)


def test_member_roles_in_the_configured_accounts_only() -> None:
    listed = render_literal(responder_policy(stage(CLAMPDOWN_ACCOUNTS="111111111111,222222222222"), shipped_library()))
    [assume] = [s for s in statements(listed) if s["Sid"] == "AssumeMemberRoles"]
    assert assume["Resource"] == [
        "arn:aws:iam::111111111111:role/ClampdownMemberResponder",
        "arn:aws:iam::222222222222:role/ClampdownMemberResponder",
    ]
    assert not allows(listed, "sts:AssumeRole", "arn:aws:iam::333333333333:role/ClampdownMemberResponder")
    assert not allows(listed, "sts:AssumeRole", "arn:aws:iam::111111111111:role/Admin")
    anywhere = render_literal(
        responder_policy(stage(CLAMPDOWN_ACCOUNTS="*", CLAMPDOWN_MEMBER_ROLE_NAME="IR"), shipped_library())
    )
    assert allows(anywhere, "sts:AssumeRole", "arn:aws:iam::333333333333:role/IR")
    assert not allows(anywhere, "sts:AssumeRole", "arn:aws:iam::333333333333:role/ClampdownMemberResponder")


def test_secrets_by_name_each_function_only_its_own() -> None:
    st = stage(
        CLAMPDOWN_SLACK_TOKEN_SECRET="clampdown/slack#bot_token",
        CLAMPDOWN_SLACK_SIGNING_SECRET="clampdown/slack#signing_secret",
        CLAMPDOWN_WEBHOOK_URL_SECRET="ssm:/clampdown/pager-url",
        CLAMPDOWN_SNS_TOPIC_ARN="arn:aws:sns:us-east-1:111122223333:security",
    )
    responder = render_literal(responder_policy(st, shipped_library()), account="111122223333", region="us-east-1")
    interactions = render_literal(interactions_policy(st), account="111122223333", region="us-east-1")
    secret = "arn:aws:secretsmanager:us-east-1:111122223333:secret:clampdown/slack-AbC123"
    for document in (responder, interactions):
        assert allows(document, "secretsmanager:GetSecretValue", secret)
        assert not allows(document, "secretsmanager:GetSecretValue", secret.replace("slack", "database"))
        assert allows(document, "ssm:GetParameter", "arn:aws:ssm:us-east-1:111122223333:parameter/clampdown/pager-url")
        assert allows(document, "sns:Publish", "arn:aws:sns:us-east-1:111122223333:security")
        assert not allows(document, "sns:Publish", "arn:aws:sns:us-east-1:111122223333:other")
    # The policy names secrets, never their values (there are none to leak): the names are all it has.
    assert "bot_token" not in json.dumps(responder) and "#" not in json.dumps(responder)


def test_a_notification_step_without_its_channel_is_refused(tmp_path: Path) -> None:
    lib = library(tmp_path, playbook("tell", GD, "notify.slack"))
    with pytest.raises(PolicyError, match=r"playbook tell: step 0 \(notify.slack\) needs a slack channel"):
        responder_policy(stage(), lib)
    document = responder_policy(stage(CLAMPDOWN_SLACK_WEBHOOK_SECRET="clampdown/hook"), lib)
    # Notification actions read secrets: never on "*", only the configured one.
    assert {s["Sid"] for s in statements(document) if "secretsmanager:GetSecretValue" in s["Action"]} == {
        "ReadNotificationSecrets"
    }
    assert "Containment" not in {s["Sid"] for s in statements(document)}


def test_pass_role_is_limited_to_ec2_and_clampdown_cannot_contain_itself(tmp_path: Path) -> None:
    lib = library(tmp_path, playbook("profile", GD, "ec2.detach-instance-profile", "iam.quarantine-role"))
    document = render_literal(member_policy(stage("prod"), lib))
    [pass_role] = [s for s in statements(document) if "iam:PassRole" in s["Action"]]
    assert pass_role["Action"] == ["iam:PassRole"]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    assert allows(document, "iam:PutRolePolicy", "arn:aws:iam::111111111111:role/web-app")
    assert not allows(document, "iam:PutRolePolicy", "arn:aws:iam::111111111111:role/ClampdownMemberResponder")
    assert not allows(document, "iam:PutRolePolicy", "arn:aws:iam::111111111111:role/clampdown-prod-respond")


HOME, MEMBER = "222222222222", "111111111111"
LAMBDA_AND_IAM = ("iam.quarantine-role", "iam.revoke-role-sessions", "lambda.zero-concurrency")


def _own_and_backdoors(document: dict[str, Any]) -> None:
    """What real IAM decides for the member role: Clampdown's exact identities refused, look-alikes contained."""
    refused = [
        ("iam:PutRolePolicy", f"arn:aws:iam::{MEMBER}:role/ClampdownMemberResponder"),
        ("iam:PutRolePolicy", f"arn:aws:iam::{HOME}:role/clampdown-prod-respond"),
        ("iam:PutRolePolicy", f"arn:aws:iam::{HOME}:role/clampdown-prod-api_handler"),
        ("lambda:PutFunctionConcurrency", f"arn:aws:lambda:eu-west-1:{HOME}:function:clampdown-prod-respond"),
        ("lambda:PutFunctionConcurrency", f"arn:aws:lambda:us-east-1:{HOME}:function:clampdown-prod-expire_approvals"),
    ]
    contained = [
        # An attacker's backdoors named like Clampdown in the member account: contained like any other.
        ("iam:PutRolePolicy", f"arn:aws:iam::{MEMBER}:role/clampdown-persist"),
        ("iam:PutRolePolicy", f"arn:aws:iam::{MEMBER}:role/clampdown-prod-respond"),
        ("lambda:PutFunctionConcurrency", f"arn:aws:lambda:eu-west-1:{MEMBER}:function:clampdown-persist"),
        ("lambda:PutFunctionConcurrency", f"arn:aws:lambda:eu-west-1:{MEMBER}:function:clampdown-prod-respond"),
        # Another stage's names in the home account are not this stage's own.
        ("iam:PutRolePolicy", f"arn:aws:iam::{HOME}:role/clampdown-persist"),
    ]
    assert [r for r in refused if allows(document, *r)] == []
    assert [c for c in contained if not allows(document, *c)] == []


def test_in_member_accounts_only_clampdowns_exact_identities_are_refused(tmp_path: Path) -> None:
    """The member role's deny names the member role and the home account's exact role and function names,
    never a ``clampdown-*`` pattern: under real IAM a pattern would shelter an attacker's ``clampdown-persist``."""
    lib = library(tmp_path, playbook("mixed", GD, *LAMBDA_AND_IAM))
    document = member_policy(stage("prod"), lib)
    [deny] = [s for s in statements(document) if s["Effect"] == "Deny"]
    assert not [r for r in deny["Resource"] if "*:role/" in r or "function:clampdown-*" in r or r.endswith("-*")]
    _own_and_backdoors(render_literal(document, account=MEMBER, home_account=HOME))
    # In the home account the responder's own policy keeps every clampdown-* role and function out of reach.
    home = render_literal(responder_policy(stage("prod"), lib), account=HOME, region="eu-west-1")
    assert not allows(home, "iam:PutRolePolicy", f"arn:aws:iam::{HOME}:role/clampdown-persist")
    assert not allows(home, "lambda:PutFunctionConcurrency", f"arn:aws:lambda:eu-west-1:{HOME}:function:clampdown-x")


def resolve_cfn(value: Any, parameters: dict[str, str], account: str, partition: str = "aws") -> Any:
    """CloudFormation's intrinsic functions the member template uses (Ref, Fn::Sub, Fn::Select, Fn::Split)."""
    if isinstance(value, list):
        return [resolve_cfn(v, parameters, account, partition) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return {"AWS::AccountId": account, "AWS::Partition": partition, **parameters}[value["Ref"]]
    if set(value) == {"Fn::Select"}:
        index, items = value["Fn::Select"]
        return resolve_cfn(items, parameters, account, partition)[index]
    if set(value) == {"Fn::Split"}:
        separator, text = value["Fn::Split"]
        return resolve_cfn(text, parameters, account, partition).split(separator)
    if set(value) == {"Fn::Sub"}:
        text, variables = value["Fn::Sub"] if isinstance(value["Fn::Sub"], list) else (value["Fn::Sub"], {})
        names = {"AWS::AccountId": account, "AWS::Partition": partition, **parameters}
        names.update({k: resolve_cfn(v, parameters, account, partition) for k, v in variables.items()})
        return re.sub(r"\$\{([^}]+)\}", lambda m: names[m.group(1)], text)
    return {k: resolve_cfn(v, parameters, account, partition) for k, v in value.items()}


def test_the_member_template_refuses_the_responder_of_the_account_it_trusts(tmp_path: Path) -> None:
    """The member role template, as CloudFormation resolves it in a member account: the home account in
    its deny is the one of the ResponderRoleArn it is given."""
    template = member_role_template(stage("prod"), library(tmp_path, playbook("mixed", GD, *LAMBDA_AND_IAM)))
    role = template["Resources"]["MemberRole"]["Properties"]
    parameters = {"ResponderRoleArn": f"arn:aws:iam::{HOME}:role/clampdown-prod-respond", "ExternalId": "x-1"}
    [policy] = resolve_cfn(role["Policies"], parameters, MEMBER)
    _own_and_backdoors(policy["PolicyDocument"])


def test_cloudformation_rendering_substitutes_pseudo_parameters() -> None:
    document = render_cfn(responder_policy(stage(), shipped_library()))
    [queue] = [s for s in statements(document) if s["Sid"] == "ConsumeEventQueue"]
    assert queue["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:clampdown-dev-events"}
    ]
    assert "${" not in json.dumps(render_literal(responder_policy(stage(), shipped_library())))


# -- sufficiency: every call the deployed code makes is allowed ------------------------------------
class Recorder:
    """Every AWS call made by Clampdown's clients (their user agent says "clampdown"), by phase."""

    def __init__(self) -> None:
        self.phase = "setup"
        self.calls: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}

    def parameters(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
        if context is not None:
            context["clampdown-test-params"] = dict(params)

    def call(self, model: Any, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
        if "clampdown" in str(params.get("headers", {}).get("User-Agent", "")):
            api = (context or {}).get("clampdown-test-params", {})
            self.calls.setdefault(self.phase, []).append((model.service_model.service_name, model.name, api))


@pytest.fixture
def recorder() -> Any:
    from botocore import handlers

    recorder = Recorder()
    hooks = [("before-parameter-build", recorder.parameters), ("before-call", recorder.call)]
    handlers.BUILTIN_HANDLERS.extend(hooks)  # every botocore session created from now on
    try:
        yield recorder
    finally:
        for hook in hooks:
            handlers.BUILTIN_HANDLERS.remove(hook)


def request(service: str, operation: str, params: dict[str, Any], region: str, account: str) -> tuple[str, str]:
    """(IAM action, resource ARN) of one call; "*" when the call names no resource we scope."""
    from chalicelib.actions.base import iam_action

    action = iam_action(service, operation)
    if service == "dynamodb" and "TableName" in params:
        index = f"/index/{params['IndexName']}" if "IndexName" in params else ""
        return action, f"arn:aws:dynamodb:{region}:{account}:table/{params['TableName']}{index}"
    if service == "ssm" and "Name" in params:
        return action, f"arn:aws:ssm:{region}:{account}:parameter/{params['Name'].lstrip('/')}"
    if service == "sqs" and "QueueUrl" in params:
        return action, f"arn:aws:sqs:{region}:{account}:{params['QueueUrl'].rsplit('/', 1)[-1]}"
    if service == "s3" and "Key" in params:
        return action, f"arn:aws:s3:::{params['Bucket']}/{params['Key']}"
    if service == "sts" and operation == "AssumeRole":
        return action, params["RoleArn"]
    return action, "*"


def test_the_policies_allow_every_call_the_functions_make(recorder: Recorder) -> None:
    from chalicelib import slack_interactions, wiring
    from clampdown import sandbox as sb
    from clampdown import scenarios
    from tests.deploy.helpers import SHIPPED

    with sb.sandbox(SHIPPED) as box:
        wiring.reset()
        slack_interactions.reset()
        environment = sb.settings_environ(f"https://sqs.{sb.REGION}.amazonaws.com/{sb.ACCOUNT}/{sb.QUEUE}", box.bundle)
        st: Stage = stage(
            "sandbox",
            **{k: v for k, v in environment.items() if k.startswith("CLAMPDOWN_") and k != "CLAMPDOWN_BUNDLE"},
        )
        recorder.phase = "responder"
        for scenario in scenarios.DEMO:
            assert sb.publish(box, scenario.build(box.env))
            assert sb.pump(box).failed == 0
        recorder.phase = "interactions"
        service = slack_interactions.service()
        pending = service.store.list_approvals("pending")
        assert pending
        for approval in pending:
            assert service.decisions.decide(approval.id, "approved", "slack:U0TEST (test)").approval is not None
        slack_interactions.expire_approvals()
        recorder.phase = "responder"
        assert sb.pump(box).failed == 0  # the approved steps run
        wiring.reset()
        slack_interactions.reset()

    library = shipped_library()
    policies = {
        "responder": render_literal(responder_policy(st, library), account=sb.ACCOUNT, region=sb.REGION),
        "interactions": render_literal(interactions_policy(st), account=sb.ACCOUNT, region=sb.REGION),
    }
    for phase, document in policies.items():
        calls = recorder.calls[phase]
        requests = [
            request(service_name, operation, params, sb.REGION, sb.ACCOUNT) for service_name, operation, params in calls
        ]
        denied = [(action, resource) for action, resource in requests if not allows(document, action, resource)]
        assert not denied, (phase, denied)
    made = {request(s, o, p, sb.REGION, sb.ACCOUNT)[0] for s, o, p in recorder.calls["responder"]}
    # The run really exercised the runtime statements, not only containment.
    assert {"dynamodb:UpdateItem", "dynamodb:Query", "ssm:GetParameter", "s3:PutObject", "iam:UpdateAccessKey"} <= made
    interactions = {request(s, o, p, sb.REGION, sb.ACCOUNT)[0] for s, o, p in recorder.calls["interactions"]}
    assert {"sqs:SendMessage", "dynamodb:Scan", "dynamodb:UpdateItem"} <= interactions
