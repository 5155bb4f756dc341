"""The real `clampdown package` on a copy of the project: what goes into deployment.zip, what the
merged CloudFormation template creates, and cfn-lint on both templates."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from chalicelib.incidents import TABLE_DEFINITION
from clampdown.deploy.build import RUNTIME_PROVIDED
from clampdown.deploy.bundle import bundle_bytes
from clampdown.deploy.rules import generate_rules
from tests.deploy.helpers import as_list, project_copy, shipped_library

CLI = str(Path(sys.executable).with_name("clampdown"))
CFN_LINT = str(Path(sys.executable).with_name("cfn-lint"))
#: Only needed to develop, test or package: never in the function's package.
DEVELOPMENT_ONLY = {
    "tests",
    "clampdown",
    "playbooks",
    "benchmarks",
    "moto",
    "pytest",
    "_pytest",
    "hypothesis",
    "cfnlint",
    "jsonschema",
    "yaml",
    "_yaml",
    "click",
    "cfn_lint",
    "boto3",  # provided by the Lambda runtime
    "botocore",
}


@dataclass
class Packaged:
    project: Path
    out: Path
    stderr: str
    seconds: float

    @property
    def template(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.out / "sam.json").read_text())
        return loaded

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.template["Resources"])


def package_copy(project: Path) -> Packaged:
    """``clampdown package --stage dev`` on a copy of the project, without AWS_DEFAULT_REGION."""
    out = project / "out"
    environ = {k: v for k, v in os.environ.items() if k != "AWS_DEFAULT_REGION"}
    started = time.monotonic()
    result = subprocess.run(
        [CLI, "package", "--stage", "dev", str(out)],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    return Packaged(project, out, result.stderr, seconds)


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    return package_copy(project_copy(tmp_path_factory.mktemp("project")))


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    """The dev stage with tracing turned on in its config.json."""
    project = project_copy(tmp_path_factory.mktemp("traced"))
    config_path = project / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    config["stages"]["dev"]["environment_variables"]["CLAMPDOWN_TRACING"] = "true"
    config_path.write_text(json.dumps(config, indent=2))
    return package_copy(project)


FUNCTIONS = {"Respond": "RespondRole", "APIHandler": "ApiHandlerRole", "ExpireApprovals": "ExpireApprovalsRole"}
XRAY_WRITE = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]


def tracing_statements(packaged: Packaged, role: str) -> list[dict[str, Any]]:
    [policy] = packaged.resources[role]["Properties"]["Policies"]
    return [
        s for s in policy["PolicyDocument"]["Statement"] if any(a.startswith("xray:") for a in as_list(s["Action"]))
    ]


def test_tracing_is_off_by_default_and_on_when_the_stage_sets_it(packaged: Packaged, traced: Packaged) -> None:
    """Off: Lambda passes traces through and the roles cannot write to X-Ray. On: every function traced
    actively, with the permission it needs, and the X-Ray SDK (which Powertools' Tracer imports) packaged."""
    for function, role in FUNCTIONS.items():
        assert packaged.resources[function]["Properties"]["Tracing"] == "PassThrough"
        assert tracing_statements(packaged, role) == []
        assert traced.resources[function]["Properties"]["Tracing"] == "Active"
        [statement] = tracing_statements(traced, role)
        assert statement["Action"] == XRAY_WRITE and statement["Resource"] == ["*"]
    with zipfile.ZipFile(traced.out / "deployment.zip") as archive:
        top = {n.split("/")[0] for n in archive.namelist()}
    assert {"aws_xray_sdk", "wrapt"} <= top
    # Its botocore dependency is the runtime's: a vendored copy would shadow it (and boto3's pairing with it).
    assert not top & {"botocore", "boto3", "dateutil", "six.py", "s3transfer"}
    result = subprocess.run([CFN_LINT, str(traced.out / "sam.json")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def requirement_closure(requirements: Path) -> set[str]:
    """The distributions requirements.txt brings: its lines and their dependencies (no extras)."""
    todo = [
        Requirement(line) for line in requirements.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    seen: set[str] = set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        for text in distribution(requirement.name).requires or []:
            dependency = Requirement(text)
            if dependency.marker is None or dependency.marker.evaluate({"extra": ""}):
                todo.append(dependency)
    return seen


def test_the_package_holds_the_app_and_its_runtime_dependencies_only(packaged: Packaged, record_property: Any) -> None:
    path = packaged.out / "deployment.zip"
    size = path.stat().st_size
    record_property("deployment_zip_bytes", size)
    print(f"deployment.zip: {size} bytes; clampdown package took {packaged.seconds:.1f} s")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        bundle = archive.read("chalicelib/_bundle/playbooks.json")
        records = {n: archive.read(n).decode() for n in names if n.endswith(".dist-info/RECORD")}
    assert "app.py" in names
    sources = {
        p.relative_to(packaged.project).as_posix()
        for p in (packaged.project / "chalicelib").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert "chalicelib/playbooks/schema.json" in sources and sources <= names
    assert bundle == bundle_bytes(shipped_library())
    top = {n.split("/")[0] for n in names}
    assert not DEVELOPMENT_ONLY & top
    # Chalice's runtime module (the decorators app.py uses) ships; the CLI and deployer do not.
    assert {n for n in names if n.startswith("chalice/")} == {"chalice/__init__.py", "chalice/app.py"}
    vendored = {canonicalize_name(n.split("/")[0].removesuffix(".dist-info").rsplit("-", 1)[0]) for n in records}
    provided = {canonicalize_name(name) for name in RUNTIME_PROVIDED}
    assert vendored == requirement_closure(packaged.project / "requirements.txt") - provided
    owned = {line.split(",")[0].split("/")[0] for text in records.values() for line in text.splitlines() if line}
    assert top <= owned | {"app.py", "chalicelib", "chalice"}
    assert size < 5 * 1024 * 1024


def runtime_imports(project: Path) -> dict[str, str]:
    """Top-level modules that app.py and chalicelib import when they run, with one place each is imported.

    Function-level (lazy) imports count; imports under ``if TYPE_CHECKING:`` do not (they never run).
    """
    found: dict[str, str] = {}
    for path in [project / "app.py", *sorted((project / "chalicelib").rglob("*.py"))]:
        tree = ast.parse(path.read_text(), filename=str(path))
        skipped: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], f"{path.relative_to(project)}:{node.lineno}")
    return found


def test_every_module_the_function_imports_is_in_the_package_or_the_runtime(packaged: Packaged) -> None:
    """A module only installed in the development venv (slack_sdk, requests...) would fail in Lambda."""
    with zipfile.ZipFile(packaged.out / "deployment.zip") as archive:
        top = {n.split("/")[0].removesuffix(".py") for n in archive.namelist()}
    # The Lambda Python runtime: the standard library, boto3 and what boto3 itself needs.
    provided = set(sys.stdlib_module_names) | {"__future__", "boto3", "botocore", "s3transfer", "jmespath", "urllib3"}
    imports = runtime_imports(packaged.project)
    assert {"slack_sdk", "requests", "aws_lambda_powertools"} <= set(imports), "the scan finds lazy imports"
    missing = {name: where for name, where in imports.items() if name not in provided | top}
    assert not missing, f"imported by the function but not in deployment.zip: {missing}"


def test_packaging_without_a_region_says_which_it_used_and_writes_only_into_the_copy(packaged: Packaged) -> None:
    assert "AWS_DEFAULT_REGION is not set: using us-east-1" in packaged.stderr
    assert (packaged.project / ".chalice" / "deployments").is_dir()
    for name in ("policy-dev-responder.json", "policy-dev-interactions.json"):
        document = json.loads((packaged.project / ".chalice" / name).read_text())
        assert all("*" not in a for s in document["Statement"] for a in as_list(s["Action"]))
    assert sorted(p.name for p in packaged.out.iterdir()) == [
        "deployment.zip",
        "member-role.json",
        "merge-template.json",
        "sam.json",
    ]


def test_cfn_lint_passes_on_the_stack_and_the_member_role(packaged: Packaged, record_property: Any) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [CFN_LINT, str(packaged.out / "sam.json"), str(packaged.out / "member-role.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    record_property("cfn_lint_seconds", round(time.monotonic() - started, 2))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_queue_feeds_the_responder_with_partial_batch_failures(packaged: Packaged) -> None:
    resources = packaged.resources
    respond = resources["Respond"]["Properties"]
    assert respond["FunctionName"] == "clampdown-dev-respond"
    [source] = respond["Events"].values()
    assert source["Type"] == "SQS"
    assert source["Properties"]["Queue"] == {"Fn::Sub": "${EventsQueue.Arn}"}
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = resources["EventsQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * respond["Timeout"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    alarm = resources["DeadLetterQueueAlarm"]["Properties"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible" and alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["EventsDeadLetterQueue", "QueueName"]}}
    ]
    for function in ("Respond", "APIHandler", "ExpireApprovals"):
        errors = resources[f"{function}ErrorsAlarm"]["Properties"]
        assert errors["MetricName"] == "Errors" and errors["Dimensions"][0]["Value"] == {"Ref": function}


def test_rules_are_the_generated_ones_and_only_they_may_send_to_the_queue(packaged: Packaged) -> None:
    resources = packaged.resources
    rules = {name: r for name, r in resources.items() if r["Type"] == "AWS::Events::Rule"}
    expected = generate_rules(shipped_library())
    assert [r["Properties"]["EventPattern"] for r in rules.values()] == [r.pattern for r in expected.rules]
    for rule in rules.values():
        [target] = rule["Properties"]["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}}
    [statement] = resources["EventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == [{"Fn::GetAtt": [n, "Arn"]} for n in rules]


def test_tables_bucket_and_kill_switch(packaged: Packaged) -> None:
    resources = packaged.resources
    incidents = resources["IncidentsTable"]["Properties"]
    assert incidents["KeySchema"] == TABLE_DEFINITION["KeySchema"]
    assert incidents["GlobalSecondaryIndexes"] == TABLE_DEFINITION["GlobalSecondaryIndexes"]
    idempotency = resources["IdempotencyTable"]["Properties"]
    assert idempotency["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    for table, ttl in ((incidents, "expires_at"), (idempotency, "expiration")):
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert table["SSESpecification"] == {"SSEEnabled": True}
    bucket = resources["EvidenceBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    [tls] = resources["EvidenceBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    switch = resources["KillSwitchParameter"]["Properties"]
    assert switch["Value"] == "off" and switch["Name"] == "/clampdown/dev/kill-switch"


def test_every_function_points_at_this_stack_and_runs_with_its_own_policy(packaged: Packaged) -> None:
    resources = packaged.resources
    for function, role, sids in (
        ("Respond", "RespondRole", {"Containment", "ConsumeEventQueue", "IdempotencyStore", "ReadKillSwitch"}),
        ("APIHandler", "ApiHandlerRole", {"SendCommandsToQueue", "IncidentStore"}),
        ("ExpireApprovals", "ExpireApprovalsRole", {"SendCommandsToQueue", "IncidentStore"}),
    ):
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        for name in ("INCIDENTS_TABLE", "IDEMPOTENCY_TABLE", "QUEUE_URL", "EVIDENCE_BUCKET", "KILL_SWITCH_PARAMETER"):
            reference = variables[f"CLAMPDOWN_{name}"]["Ref"]
            assert reference in resources
        assert resources[function]["DependsOn"] == [f"{function}LogGroup"]
        [policy] = resources[role]["Properties"]["Policies"]
        statements = policy["PolicyDocument"]["Statement"]
        present = {s["Sid"] for s in statements}
        assert sids <= present
        if function != "Respond":
            assert "Containment" not in present and "AssumeMemberRoles" not in present
        assert resources[role]["Properties"]["RoleName"].startswith("clampdown-dev-")
        [logs] = [s for s in statements if s["Sid"] == "WriteOwnLogs"]
        name = resources[function]["Properties"]["FunctionName"]
        assert logs["Resource"] == [
            {
                "Fn::Sub": f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:/aws/lambda/{name}:*"
            }
        ]
    # No Allow anywhere in the stack names a wildcard action.
    for resource in resources.values():
        for document in _policy_documents(resource.get("Properties", {})):
            for statement in document["Statement"]:
                if statement["Effect"] == "Allow":
                    assert all("*" not in a for a in as_list(statement["Action"])), statement


def _policy_documents(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if "Statement" in value and "Version" in value:
            yield value
        for item in value.values():
            yield from _policy_documents(item)
    elif isinstance(value, list):
        for item in value:
            yield from _policy_documents(item)


def test_the_member_role_trusts_only_the_responder_with_the_external_id(packaged: Packaged) -> None:
    template = json.loads((packaged.out / "member-role.json").read_text())
    role = template["Resources"]["MemberRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Ref": "ResponderRoleArn"}}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}
    assert role["RoleName"] == "ClampdownMemberResponder"
    [policy] = role["Policies"]
    sids = {s["Sid"] for s in policy["PolicyDocument"]["Statement"]}
    sids_needed = {"Containment", "NeverContainClampdown"}
    # Containment (and PassRole to EC2 when a shipped action needs it) and the deny on Clampdown itself.
    assert sids_needed <= sids <= {*sids_needed, "PassRoleToEc2ForRollback"}
    assert packaged.template["Outputs"]["ResponderRoleArn"]["Value"] == {"Fn::GetAtt": ["RespondRole", "Arn"]}
