"""An embedded AWS account (moto, in-process) laid out like a Clampdown deployment, for the demo,
drills and end-to-end tests: the responder's queue and dead-letter queue (redriven after as many
receives as the deployed template's), its tables, evidence bucket and kill switch, routing to the
queue as EventBridge would, optionally Slack (a bot token in Secrets Manager, as deployed, for the
local Slack stand-in), and a small vulnerable environment.

Nothing here leaves 127.0.0.1: every boto3 call goes to moto, Slack is the stand-in on loopback,
and Lambda code packages (which AWS hands out as presigned S3 URLs) are served on loopback too.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clampdown.deploy.templates import MAX_RECEIVE_COUNT

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
STAGE = "sandbox"
QUEUE = "clampdown-events"
DLQ = "clampdown-events-dlq"
INCIDENTS_TABLE = "clampdown-incidents"
IDEMPOTENCY_TABLE = "clampdown-idempotency"
EVIDENCE_BUCKET = "clampdown-evidence-123456789012"
KILL_SWITCH = "/clampdown/sandbox/kill-switch"
#: Slack, as a deployed stage configures it: one JSON secret with the bot token and signing secret.
SLACK_SECRET = "clampdown/sandbox/slack"  # noqa: S105 - the secret's name
SLACK_SIGNING_SECRET = "sandbox-signing-secret-not-a-real-one"  # noqa: S105 - the stand-in's, not a secret
SLACK_CHANNEL = "#security-alerts"
#: The on-call engineer who may approve in Slack (CLAMPDOWN_SLACK_APPROVERS).
ON_CALL = "U0ONCALL"
#: Sources the sandbox bus routes to the responder queue.
ROUTED_SOURCES = (
    "aws.guardduty",
    "aws.securityhub",
    "aws.cloudtrail",
    "aws.iam",
    "aws.s3",
    "aws.lambda",
    "aws.ec2",
    "aws.signin",
)


@dataclass
class Environment:
    """The vulnerable resources the sandbox creates (what findings will name)."""

    role_name: str = "web-app-role"
    role_arn: str = ""
    user_name: str = "ci-deployer"
    access_key_id: str = ""
    function_name: str = "image-resizer"
    function_arn: str = ""
    function_role_arn: str = ""
    instance_id: str = ""
    vpc_id: str = ""
    security_group_id: str = ""
    bucket: str = "customer-exports-123456789012"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sandbox:
    session: Any
    queue_url: str
    dlq_url: str
    bundle: Path
    env: Environment
    #: The local Slack stand-in the stage posts to (clampdown.local_slack.server.FakeSlack), if any.
    slack: Any = None

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=REGION)


def settings_environ(queue_url: str, bundle: Path) -> dict[str, str]:
    """The environment variables a deployed stage would give the function."""
    return {
        "CLAMPDOWN_STAGE": STAGE,
        "CLAMPDOWN_INCIDENTS_TABLE": INCIDENTS_TABLE,
        "CLAMPDOWN_IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
        "CLAMPDOWN_QUEUE_URL": queue_url,
        "CLAMPDOWN_EVIDENCE_BUCKET": EVIDENCE_BUCKET,
        "CLAMPDOWN_KILL_SWITCH_PARAMETER": KILL_SWITCH,
        "CLAMPDOWN_HOME_ACCOUNT": ACCOUNT,
        "CLAMPDOWN_BUNDLE": str(bundle),
        "AWS_LAMBDA_FUNCTION_NAME": "clampdown-sandbox-respond",
        # Keep the handler's JSON logs and EMF metrics for failures only; the demo prints its own report.
        "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "ERROR"),
        "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
    }


def slack_environ(slack: Any) -> dict[str, str]:
    """A stage's Slack settings, pointed at the local stand-in (secret names only, as deployed)."""
    return {
        "CLAMPDOWN_SLACK_TOKEN_SECRET": f"{SLACK_SECRET}#bot_token",
        "CLAMPDOWN_SLACK_SIGNING_SECRET": f"{SLACK_SECRET}#signing_secret",
        "CLAMPDOWN_SLACK_CHANNEL": SLACK_CHANNEL,
        "CLAMPDOWN_SLACK_APPROVERS": ON_CALL,
        "CLAMPDOWN_SLACK_API_URL": slack.api_url,
        "CLAMPDOWN_SLACK_RESPONSE_URL_PREFIX": f"{slack.url}/",
        # The stand-in answers at once; only a machine starved of CPU makes it slow, and a rehearsal
        # should then wait rather than lose its messages.
        "CLAMPDOWN_NOTIFY_TIMEOUT_S": "15",
    }


def _create_slack_secret(session: Any, slack: Any) -> None:
    session.client("secretsmanager", region_name=REGION).create_secret(
        Name=SLACK_SECRET,
        SecretString=json.dumps({"bot_token": slack.token, "signing_secret": SLACK_SIGNING_SECRET}),
    )


def _forget_process_state() -> None:
    """The responder, Slack handler and secrets are built once per process (per Lambda instance):
    forget them whenever the environment they were built from changes."""
    from chalicelib import secrets, slack_interactions, wiring

    wiring.reset()
    slack_interactions.reset()
    secrets.forget_all()


def _fake_credentials() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
        "AWS_SESSION_TOKEN": "sandbox",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


@contextmanager
def _patched_environ(values: dict[str, str], remove: tuple[str, ...] = ()) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in (*values, *remove)}
    os.environ.update(values)
    for key in remove:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _create_platform(session: Any, bundle: Path, stage_env: dict[str, str] | None = None) -> tuple[str, str]:
    """The stage's resources. ``stage_env`` (a Chalice stage's environment) names the tables and the
    kill switch as a deployed stage does; by default the sandbox's own names."""
    from chalicelib.incidents import TABLE_DEFINITION

    names = {
        "CLAMPDOWN_INCIDENTS_TABLE": INCIDENTS_TABLE,
        "CLAMPDOWN_IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
        "CLAMPDOWN_KILL_SWITCH_PARAMETER": KILL_SWITCH,
        **(stage_env or {}),
    }
    dynamodb = session.client("dynamodb", region_name=REGION)
    dynamodb.create_table(TableName=names["CLAMPDOWN_INCIDENTS_TABLE"], **TABLE_DEFINITION)
    dynamodb.create_table(
        TableName=names["CLAMPDOWN_IDEMPOTENCY_TABLE"],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sqs = session.client("sqs", region_name=REGION)
    dlq_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=QUEUE,
        Attributes={
            "VisibilityTimeout": "0",  # the sandbox redelivers failures at once instead of after minutes
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}),
        },
    )["QueueUrl"]
    s3 = session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=EVIDENCE_BUCKET)
    s3.put_bucket_versioning(Bucket=EVIDENCE_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    session.client("ssm", region_name=REGION).put_parameter(
        Name=names["CLAMPDOWN_KILL_SWITCH_PARAMETER"], Value="off", Type="String"
    )
    return queue_url, dlq_url


TRUST_EC2 = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)


def _create_environment(session: Any) -> Environment:
    env = Environment()
    iam = session.client("iam", region_name=REGION)
    env.role_arn = iam.create_role(RoleName=env.role_name, AssumeRolePolicyDocument=TRUST_EC2)["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=env.role_name,
        PolicyName="app-data",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )
    # An active session of the role: the kind of credentials GuardDuty sees exfiltrated.
    session.client("sts", region_name=REGION).assume_role(RoleArn=env.role_arn, RoleSessionName="i-app-server")
    iam.create_user(UserName=env.user_name)
    env.access_key_id = iam.create_access_key(UserName=env.user_name)["AccessKey"]["AccessKeyId"]
    # A throwaway password inside moto: the user has console access for the demo to take away.
    iam.create_login_profile(UserName=env.user_name, Password="Sandbox-Passw0rd!", PasswordResetRequired=False)  # noqa: S106

    env.function_role_arn = iam.create_role(
        RoleName="image-resizer-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    awslambda = session.client("lambda", region_name=REGION)
    package = _tiny_zip()
    env.function_arn = awslambda.create_function(
        FunctionName=env.function_name,
        Runtime="python3.12",
        Role=env.function_role_arn,
        Handler="index.handler",
        Code={"ZipFile": package},
    )["FunctionArn"]
    env.extra.setdefault("packages", {})[env.function_name] = package
    awslambda.add_permission(
        FunctionName=env.function_name,
        StatementId="public-invoke",
        Action="lambda:InvokeFunction",
        Principal="*",
    )
    awslambda.create_function_url_config(FunctionName=env.function_name, AuthType="NONE")

    ec2 = session.client("ec2", region_name=REGION)
    env.vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=env.vpc_id, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    env.security_group_id = ec2.create_security_group(GroupName="web", Description="web", VpcId=env.vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=env.security_group_id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    env.instance_id = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        # Groups on the interface (moto would merge launch-level groups into every interface).
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet, "Groups": [env.security_group_id]}],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web-1"}]}],
    )["Instances"][0]["InstanceId"]

    s3 = session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=env.bucket)
    s3.put_bucket_policy(
        Bucket=env.bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "PublicRead",
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{env.bucket}/*",
                    }
                ],
            }
        ),
    )
    s3.put_object(Bucket=env.bucket, Key="exports/customers.csv", Body=b"id,email\n1,a@example.com\n")
    return env


def _tiny_zip() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return {'statusCode': 200}\n")
    return buffer.getvalue()


def write_bundle(playbooks: Path, directory: Path) -> Path:
    """Validate the playbooks and write the bundle the function reads (as ``clampdown bundle`` does)."""
    from clampdown.playbooks.loader import load_library

    library = load_library([playbooks])
    path = directory / "playbooks.json"
    path.write_text(json.dumps(library.to_bundle(), sort_keys=True))
    return path


@contextmanager
def _code_packages(packages: dict[str, bytes]) -> Iterator[None]:
    """Lambda's GetFunction answers with a presigned S3 URL to the code package, and moto's URL points
    at AWS. For the sandbox's lifetime, its functions' packages are served on 127.0.0.1 and every
    GetFunction answer points there (a function without a package gets a URL that answers 404), so
    forensics (``lambda.snapshot-code``) copy the code without leaving the machine.

    The rewrite is a botocore handler registered for every session created meanwhile (moto's own
    mechanism), so it also reaches the clients the responder builds.
    """
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    import botocore.handlers

    class Packages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = packages.get(self.path.split("?", 1)[0].rsplit("/", 1)[-1])
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Packages)
    server.daemon_threads = True
    Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/packages"

    def point_at_loopback(parsed: dict[str, Any], **_: Any) -> None:
        code = parsed.get("Code")
        if isinstance(code, dict) and code.get("Location"):
            name = str((parsed.get("Configuration") or {}).get("FunctionName") or "-")
            code["Location"] = f"{base}/{name}?X-Amz-Signature=sandbox"

    handler = ("after-call.lambda.GetFunction", point_at_loopback)
    botocore.handlers.BUILTIN_HANDLERS.append(handler)
    try:
        yield
    finally:
        botocore.handlers.BUILTIN_HANDLERS.remove(handler)
        server.shutdown()
        server.server_close()


@contextmanager
def sandbox(playbooks: Path, *, environment: bool = True, slack: Any = None) -> Iterator[Sandbox]:
    """moto running in-process with the platform (and the vulnerable environment) created.

    With ``slack`` (a started :class:`clampdown.local_slack.server.FakeSlack`), the stage posts its
    alerts and approval requests to it and takes its signed interactions, as a deployed stage does
    with Slack.
    """
    from moto import mock_aws

    packages: dict[str, bytes] = {}
    with (
        logger_level("botocore", logging.WARNING),
        tempfile.TemporaryDirectory(prefix="clampdown-sandbox-") as tmp,
        _patched_environ(_fake_credentials(), remove=("AWS_PROFILE", "AWS_ENDPOINT_URL")),
    ):
        bundle = write_bundle(playbooks, Path(tmp))
        with mock_aws(config={"lambda": {"use_docker": False}}), _code_packages(packages):
            import boto3

            session = boto3.session.Session(region_name=REGION)
            queue_url, dlq_url = _create_platform(session, bundle)
            env = _create_environment(session) if environment else Environment()
            packages.update(env.extra.get("packages", {}))
            stage = settings_environ(queue_url, bundle)
            if slack is not None:
                _create_slack_secret(session, slack)
                stage.update(slack_environ(slack))
            with _patched_environ(stage):
                _forget_process_state()
                try:
                    yield Sandbox(session, queue_url, dlq_url, bundle, env, slack)
                finally:
                    _forget_process_state()


@contextmanager
def logger_level(name: str, level: int) -> Iterator[None]:
    """``name``'s level for the block only: the process's logging is not the sandbox's to keep."""
    log = logging.getLogger(name)
    before = log.level
    log.setLevel(level)
    try:
        yield
    finally:
        log.setLevel(before)


@dataclass
class LambdaContext:
    """What the Lambda runtime passes to a handler, as far as Clampdown and Powertools use it."""

    function_name: str = "clampdown-sandbox-respond"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "sandbox"
    budget_ms: int = 60_000

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.budget_ms


@dataclass
class PumpStats:
    batches: int = 0
    delivered: int = 0
    acknowledged: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping builds from received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def pump(box: Sandbox, handler: Any = None, *, max_batches: int = 1000) -> PumpStats:
    """Act as Lambda's event source mapping: receive batches, invoke the handler, delete what succeeded.

    Failed records stay on the queue (redelivered at once here) until the redrive policy moves them
    to the dead-letter queue, exactly as a deployed stage behaves.
    """
    if handler is None:
        from chalicelib.handlers import handle_sqs as handler
    sqs = box.client("sqs")
    queue_arn = sqs.get_queue_attributes(QueueUrl=box.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stats = PumpStats()
    while stats.batches < max_batches:
        messages = sqs.receive_message(QueueUrl=box.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
            "Messages", []
        )
        if not messages:
            break
        stats.batches += 1
        stats.delivered += len(messages)
        try:
            response = handler(sqs_event(messages, queue_arn), LambdaContext())
            failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        except Exception as exc:  # noqa: BLE001 - a failed invocation returns the whole batch to the queue
            stats.errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
            failed = {m["MessageId"] for m in messages}
        stats.failed += len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        stats.acknowledged += len(done)
        if done:
            sqs.delete_message_batch(
                QueueUrl=box.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
    return stats


def publish(box: Sandbox, event: dict[str, Any]) -> bool:
    """Deliver an AWS event as EventBridge would: if a rule of the sandbox matches it, its JSON goes
    to the responder's queue. Returns whether a rule routed it.

    moto's EventBridge drops the envelope's ``account`` field when it forwards to SQS (real
    EventBridge keeps it, and the responder refuses events without it), so the sandbox does the
    routing itself, with the same pattern engine that generates the deployed rules.
    """
    from chalicelib.patterns import compile_pattern

    rule = compile_pattern({"source": list(ROUTED_SOURCES)})
    envelope = {
        "version": "0",
        "id": event.get("id") or str(uuid.uuid4()),
        "account": event.get("account", ACCOUNT),
        "time": event.get("time") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": event.get("region", REGION),
        "resources": event.get("resources", []),
        **{k: v for k, v in event.items() if k in ("source", "detail-type", "detail")},
    }
    if not rule.matches(envelope):
        return False
    box.client("sqs").send_message(QueueUrl=box.queue_url, MessageBody=json.dumps(envelope))
    return True
