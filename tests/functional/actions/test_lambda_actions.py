"""Lambda actions on moto: real functions, concurrency, resource policies, function URLs, snapshots."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.actions import REGISTRY, ActionContext, ActionError, Status
from chalicelib.evidence import MemoryEvidenceStore
from chalicelib.findings import Resource, normalize
from tests.conftest import ACCOUNT, REGION, corpus_event
from tests.functional.actions.lifecycle import assert_lifecycle
from tests.functional.actions.permission_table import needed

SECRET = "s3cr3t-do-not-store"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


@pytest.fixture
def finding() -> Any:
    """A real GuardDuty finding: the context the actions run in."""
    return normalize(corpus_event("guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"))[0]


@pytest.fixture
def lam(boto_session: Any) -> Any:
    return boto_session.client("lambda")


def package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        # A fixed timestamp: the same bytes every time (the snapshot checks CodeSha256).
        source = zipfile.ZipInfo("index.py", date_time=(2026, 1, 1, 0, 0, 0))
        archive.writestr(source, "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def function(boto_session: Any, name: str = "payments") -> Resource:
    role = boto_session.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=TRUST)
    created = boto_session.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="index.handler",
        Code={"ZipFile": package()},
        Environment={"Variables": {"DB_PASSWORD": SECRET, "STAGE": "prod"}},
    )
    # The finding names the function by a qualified ARN: the actions act on the function itself.
    return Resource("lambda-function", arn=f"{created['FunctionArn']}:live", name=name, account=ACCOUNT, region=REGION)


def context(finding: Any, aws_clients: Any, **extra: Any) -> ActionContext:
    return ActionContext(finding=finding, playbook="test", incident_id="inc-7", aws=aws_clients, **extra)


def concurrency(lam: Any, name: str = "payments") -> Any:
    return lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")


@pytest.mark.parametrize("previous", [None, 7])
def test_zero_concurrency(
    previous: int | None, boto_session: Any, lam: Any, aws_clients: Any, recorder: Any, finding: Any
) -> None:
    target = function(boto_session)
    if previous is not None:
        lam.put_function_concurrency(FunctionName="payments", ReservedConcurrentExecutions=previous)
    action = REGISTRY["lambda.zero-concurrency"]({})
    result = assert_lifecycle(action, context(finding, aws_clients), target, lambda: concurrency(lam), recorder)
    assert result.before == {"function": "payments", "reserved_concurrency": previous}
    assert result.after == {"function": "payments", "reserved_concurrency": 0}
    assert concurrency(lam) == previous  # rolled back: the value, or no setting at all


def add_public_setup(lam: Any) -> None:
    lam.add_permission(FunctionName="payments", StatementId="anyone", Action="lambda:InvokeFunction", Principal="*")
    lam.add_permission(
        FunctionName="payments",
        StatementId="url",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )
    lam.add_permission(
        FunctionName="payments",
        StatementId="from-my-bucket",
        Action="lambda:InvokeFunction",
        Principal="*",
        SourceAccount=ACCOUNT,
        SourceArn="arn:aws:s3:::my-uploads",
    )
    lam.add_permission(
        FunctionName="payments",
        StatementId="my-org",
        Action="lambda:InvokeFunction",
        Principal="*",
        PrincipalOrgID="o-abc123def45",
    )
    lam.add_permission(
        FunctionName="payments", StatementId="partner", Action="lambda:GetFunction", Principal="111122223333"
    )
    lam.create_function_url_config(
        FunctionName="payments", AuthType="NONE", Cors={"AllowOrigins": ["https://example.com"]}
    )


def public_state(lam: Any) -> tuple[dict[str, Any], Any]:
    """The resource policy's statements by Sid, and the URL's auth settings (not its address)."""
    try:
        policy = json.loads(lam.get_policy(FunctionName="payments")["Policy"])
        statements = {s["Sid"]: s for s in policy["Statement"]}
    except lam.exceptions.ResourceNotFoundException:
        statements = {}
    try:
        url = lam.get_function_url_config(FunctionName="payments")
        url_state = (url["AuthType"], url.get("Cors"))
    except lam.exceptions.ResourceNotFoundException:
        url_state = None
    return statements, url_state


def test_remove_public_access(boto_session: Any, lam: Any, aws_clients: Any, recorder: Any, finding: Any) -> None:
    target = function(boto_session)
    add_public_setup(lam)
    original_url = lam.get_function_url_config(FunctionName="payments")["FunctionUrl"]
    action = REGISTRY["lambda.remove-public-access"]({})
    ctx = context(finding, aws_clients)

    result = assert_lifecycle(action, ctx, target, lambda: public_state(lam), recorder)
    assert [c.operation for c in result.calls_made] == [
        "RemovePermission",
        "RemovePermission",
        "DeleteFunctionUrlConfig",
    ]
    assert [s["Sid"] for s in (result.before or {})["public_statements"]] == ["anyone", "url"]

    # Apply again on the restored function: only public access goes; restricted statements stay.
    action.apply(ctx, target)
    statements, url = public_state(lam)
    assert sorted(statements) == ["from-my-bucket", "my-org", "partner"]
    assert statements["from-my-bucket"]["Condition"]["StringEquals"] == {"AWS:SourceAccount": ACCOUNT}
    assert url is None

    # The rollback plan says the recreated URL may move (moto does give it a new address).
    rollback = action.plan_rollback(ctx, target, result.before or {})
    url_call = next(c for c in rollback.calls if c.operation == "CreateFunctionUrlConfig")
    assert "new address" in url_call.purpose and original_url in url_call.purpose
    action.rollback(ctx, target, result.before or {})
    assert lam.get_function_url_config(FunctionName="payments")["FunctionUrl"] != original_url


def test_remove_public_access_reports_statements_it_cannot_recreate(
    boto_session: Any, lam: Any, aws_clients: Any, finding: Any
) -> None:
    """A remembered statement AddPermission cannot express is listed for manual re-creation."""
    target = function(boto_session)
    odd = {
        "Sid": "odd",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "lambda:InvokeFunction",
        "Resource": "arn:aws:lambda:us-east-1:123456789012:function:payments",
        "Condition": {"Bool": {"aws:SecureTransport": "true"}},
    }
    plain = {**odd, "Sid": "plain"}
    del plain["Condition"]
    before = {"function": "payments", "public_statements": [odd, plain], "function_url": None}
    action = REGISTRY["lambda.remove-public-access"]({})

    plan = action.plan_rollback(context(finding, aws_clients), target, before)
    assert [c.params["StatementId"] for c in plan.calls] == ["plain"]
    assert any('"Sid": "odd"' in note for note in plan.notes), plan.notes

    result = action.rollback(context(finding, aws_clients), target, before)
    assert result.status == Status.ROLLED_BACK
    assert any('"Sid": "odd"' in step for step in result.undo) and "by hand" in (result.reason or "")
    assert sorted(public_state(lam)[0]) == ["plain"]


def test_access_denied_part_way_lists_undo_steps(boto_session: Any, lam: Any, aws_clients: Any, finding: Any) -> None:
    from botocore.exceptions import ClientError

    target = function(boto_session)
    add_public_setup(lam)

    def deny(model: Any, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, model.name)

    boto_session.events.register("before-call.lambda.DeleteFunctionUrlConfig", deny)
    result = REGISTRY["lambda.remove-public-access"]({}).apply(context(finding, aws_clients), target)
    assert result.status == Status.FAILED and result.error_code == "AccessDeniedException"
    assert [c.operation for c in result.calls_made] == ["RemovePermission", "RemovePermission"]
    assert public_state(lam)[1] is not None, "the URL is still there"
    # Exactly what the two calls removed is put back; the URL that was never deleted is not recreated.
    assert [step.split("(")[0] for step in result.undo] == ["lambda:AddPermission", "lambda:AddPermission"]
    assert 'StatementId="anyone"' in result.undo[0] and 'StatementId="url"' in result.undo[1], result.undo


@pytest.mark.parametrize("action_name", ["lambda.zero-concurrency", "lambda.remove-public-access"])
def test_missing_function_fails_with_the_aws_error(action_name: str, aws_clients: Any, finding: Any) -> None:
    target = Resource("lambda-function", name="gone", account=ACCOUNT, region=REGION)
    result = REGISTRY[action_name]({}).apply(context(finding, aws_clients), target)
    assert result.status == Status.FAILED and result.error_code == "ResourceNotFoundException"
    assert result.calls_made == [] and result.undo == []


def test_offline_plans_show_calls_with_placeholders(finding: Any) -> None:
    target = Resource("lambda-function", arn="arn:aws:lambda:us-east-1:123456789012:function:payments:7")
    offline = ActionContext(finding=finding, aws=None)
    plans = {name: REGISTRY[name]({}).plan(offline, target) for name in REGISTRY if name.startswith("lambda.")}
    assert [str(c) for c in plans["lambda.zero-concurrency"].calls] == [
        "lambda:PutFunctionConcurrency(FunctionName=payments, ReservedConcurrentExecutions=0)"
    ]
    assert [str(c) for c in plans["lambda.remove-public-access"].calls] == [
        "lambda:RemovePermission(FunctionName=payments, StatementId=<each public statement>)",
        "lambda:DeleteFunctionUrlConfig(FunctionName=payments)",
    ]
    assert [str(c) for c in plans["lambda.snapshot-code"].calls] == ["lambda:GetFunction(FunctionName=payments)"]
    assert all(plan.before is None for plan in plans.values())


def test_attacker_controlled_names_never_reach_a_call(finding: Any) -> None:
    target = Resource("lambda-function", name="../../x?y=1")
    with pytest.raises(ActionError, match="not a Lambda function name"):
        REGISTRY["lambda.zero-concurrency"]({}).plan(ActionContext(finding=finding), target)


# -- snapshot ------------------------------------------------------------------------------------


@pytest.fixture
def package_server() -> Iterator[str]:
    """Serves the function's package over HTTP: moto's presigned code URL cannot be downloaded."""
    body = package()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/code.zip?X-Amz-Signature=secret"
    server.shutdown()
    server.server_close()


def test_snapshot_code_copies_the_package(
    boto_session: Any, aws_clients: Any, recorder: Any, finding: Any, package_server: str
) -> None:
    """moto answers GetFunction with a presigned URL it does not serve; a hook points it at a
    local server with the same package (as AWS's URL would be)."""
    target = function(boto_session)
    boto_session.client("lambda").tag_resource(
        Resource=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:payments", Tags={"team": "payments"}
    )

    def served_location(parsed: Any, **_: Any) -> None:
        parsed["Code"]["Location"] = package_server

    boto_session.events.register("after-call.lambda.GetFunction", served_location)
    evidence = MemoryEvidenceStore()
    action = REGISTRY["lambda.snapshot-code"]({})
    recorder.clear()
    result = action.apply(context(finding, aws_clients, evidence=evidence), target)

    assert result.status == Status.DONE, result.to_dict()
    assert recorder.operations == ["lambda:GetFunction"]
    assert needed([("lambda", "GetFunction")]) <= set(action.permissions)
    # GetFunction returns the function's tags only to a caller that may also lambda:ListTags.
    assert "lambda:ListTags" in action.permissions and result.output["snapshot"]["tags"] == {"team": "payments"}
    snapshot = result.output["snapshot"]
    assert snapshot["environment_variable_names"] == ["DB_PASSWORD", "STAGE"]
    assert snapshot["code_copy"] == "verified"
    assert snapshot["code"]["location"] == package_server.split("?")[0], "no presigned signature is kept"
    assert snapshot["role"].endswith(":role/payments-role")
    keys = sorted(evidence.objects)
    assert [k.rsplit("/", 1)[-1] for k in keys] == ["code.zip", "function.json"]
    assert all(k.startswith("memory://incidents/inc-7/lambda.snapshot-code/payments/") for k in keys)
    assert evidence.objects[keys[0]] == package()
    assert SECRET not in json.dumps(result.to_dict()) + str(evidence.objects)
    assert result.evidence_keys == result.output["evidence"]

    # Again in the same incident: the same objects, nothing new.
    again = action.apply(context(finding, aws_clients, evidence=evidence), target)
    assert again.evidence_keys == result.evidence_keys and sorted(evidence.objects) == keys
    assert action.rollback(context(finding, aws_clients), target, {}).status == Status.SKIPPED


def test_snapshot_code_without_a_downloadable_package(boto_session: Any, aws_clients: Any, finding: Any) -> None:
    """moto's code location does not resolve: the record is still evidence, and says why."""
    target = function(boto_session)
    evidence = MemoryEvidenceStore()
    result = REGISTRY["lambda.snapshot-code"]({}).apply(context(finding, aws_clients, evidence=evidence), target)
    assert result.status == Status.DONE
    assert result.output["snapshot"]["code_copy"].startswith("not downloaded")
    assert [k.rsplit("/", 1)[-1] for k in evidence.objects] == ["function.json"]
    stored = json.loads(next(iter(evidence.objects.values())))
    assert (
        stored["code_sha256"]
        == boto_session.client("lambda").get_function(FunctionName="payments")["Configuration"]["CodeSha256"]
    )

    # Without an evidence store the record is only in the result.
    bare = REGISTRY["lambda.snapshot-code"]({}).apply(context(finding, aws_clients), target)
    assert bare.status == Status.DONE and bare.evidence_keys == [] and "code_copy" not in bare.output["snapshot"]
