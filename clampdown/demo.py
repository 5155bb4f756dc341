"""`clampdown demo`: the responder end to end on an embedded AWS, with real sample findings.

The sandbox creates a small vulnerable environment (a role with an active session, a user with an
access key and console password, a public Lambda function, an instance open to the internet, a
public bucket). Real published findings (``tests/data/corpus``) are pointed at those resources —
only the fields that name the resource and account change — and published on EventBridge; a rule
routes them to the responder's queue, and the queue is drained through the same SQS handler code
that runs in Lambda. One step needs an approval, which the demo gives as an on-call engineer would.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clampdown import sandbox as sb

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "corpus"


def _corpus(relative: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((CORPUS / relative).read_text())
    event.pop("debug", None)
    return event


def _guardduty(
    relative: str, env: sb.Environment, point: Callable[[dict[str, Any], sb.Environment], None]
) -> dict[str, Any]:
    event = copy.deepcopy(_corpus(relative))
    event["account"] = event["detail"]["accountId"] = sb.ACCOUNT
    event["region"] = event["detail"]["region"] = sb.REGION
    event["detail"]["service"]["additionalInfo"] = {"sample": False}
    event["detail"]["service"]["archived"] = False
    point(event["detail"], env)
    return event


def _user_key(detail: dict[str, Any], env: sb.Environment) -> None:
    detail["resource"]["accessKeyDetails"].update(
        userName=env.user_name, userType="IAMUser", accessKeyId=env.access_key_id
    )


def _role_session(detail: dict[str, Any], env: sb.Environment) -> None:
    detail["resource"]["accessKeyDetails"].update(
        userName=env.role_name,
        userType="AssumedRole",
        accessKeyId="ASIAEXAMPLESESSION01",
        principalId="AROAEXAMPLE:i-app-server",
    )
    detail["id"] = "7f3c9a1e0b2d4c6e8f0a1b3c5d7e9f21"
    detail["type"] = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"
    detail["title"] = f"Credentials for instance role {env.role_name} used from an external IP address."
    detail["severity"] = 8


def _instance(detail: dict[str, Any], env: sb.Environment) -> None:
    detail["resource"]["instanceDetails"]["instanceId"] = env.instance_id
    detail["title"] = f"Command and Control server domain name queried by EC2 instance {env.instance_id}."
    detail["severity"] = 8


def _bucket(detail: dict[str, Any], env: sb.Environment) -> None:
    for bucket in detail["resource"]["s3BucketDetails"]:
        bucket.update(name=env.bucket, arn=f"arn:aws:s3:::{env.bucket}")
    detail["resource"].pop("instanceDetails", None)
    detail["id"] = "5eb2a6b1d5c6a2e1f3c4d5e6f7a8b9c0"


def _lambda_backdoor(env: sb.Environment) -> dict[str, Any]:
    from chalicelib.findings import canonical_event

    record = copy.deepcopy(
        _corpus("cloudtrail/ct_raw_stratus_aws.persistence.lambda-backdoor-function_AddPermission20150331v2.json")
    )
    record["recipientAccountId"] = record["userIdentity"]["accountId"] = sb.ACCOUNT
    record["awsRegion"] = sb.REGION
    record["requestParameters"]["functionName"] = env.function_arn
    return canonical_event(record)


@dataclass(frozen=True)
class Scenario:
    title: str
    build: Callable[[sb.Environment], dict[str, Any]]
    source: str


SCENARIOS = (
    Scenario(
        "An access key of user ci-deployer is used from a Tor exit node",
        lambda env: _guardduty("guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json", env, _user_key),
        "Cloud Custodian test data: GuardDuty UnauthorizedAccess:IAMUser/TorIPCaller",
    ),
    Scenario(
        "Instance role credentials are used outside AWS",
        lambda env: _guardduty("guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json", env, _role_session),
        "the same finding with an assumed-role (ASIA) key, as GuardDuty reports instance credential exfiltration",
    ),
    Scenario(
        "Instance web-1 queries a command-and-control domain",
        lambda env: _guardduty("guardduty/gd_c7n_Backdoor-EC2-C-CActivity-B-DNS.json", env, _instance),
        "Cloud Custodian test data: GuardDuty Backdoor:EC2/C&CActivity.B!DNS",
    ),
    Scenario(
        "A public bucket is read from a pen-testing distribution",
        lambda env: _guardduty("guardduty/gd_awssamples-autoresp_PenTest-S3-ParrotLinux.json", env, _bucket),
        "aws-samples GuardDuty automated response sample: PenTest:S3/ParrotLinux",
    ),
    Scenario(
        "Someone opens function image-resizer to the whole internet",
        _lambda_backdoor,
        "Stratus Red Team detonation log: lambda AddPermission with Principal *",
    ),
)


@dataclass
class DemoResult:
    incidents: list[Any] = field(default_factory=list)
    by_scenario: dict[str, list[str]] = field(default_factory=dict)
    steps: dict[str, list[Any]] = field(default_factory=dict)
    seconds_to_containment: dict[str, float] = field(default_factory=dict)
    approvals: list[Any] = field(default_factory=list)
    pump: list[sb.PumpStats] = field(default_factory=list)
    dead_letters: int = 0
    state: dict[str, Any] = field(default_factory=dict)


def _state(box: sb.Sandbox) -> dict[str, Any]:
    """What an engineer would look at to see that containment happened."""
    env = box.env
    iam, ec2, s3, awslambda = box.client("iam"), box.client("ec2"), box.client("s3"), box.client("lambda")
    keys = iam.list_access_keys(UserName=env.user_name)["AccessKeyMetadata"]
    instance = ec2.describe_instances(InstanceIds=[env.instance_id])["Reservations"][0]["Instances"][0]
    try:
        block = s3.get_public_access_block(Bucket=env.bucket)["PublicAccessBlockConfiguration"]
    except Exception:  # noqa: BLE001 - absent configuration
        block = None
    try:
        policy = json.loads(awslambda.get_policy(FunctionName=env.function_name)["Policy"])["Statement"]
    except Exception:  # noqa: BLE001 - no resource policy left
        policy = []
    return {
        "access key": f"{env.access_key_id} {keys[0]['Status']}",
        "user inline policies": iam.list_user_policies(UserName=env.user_name)["PolicyNames"],
        "role inline policies": iam.list_role_policies(RoleName=env.role_name)["PolicyNames"],
        "instance security groups": sorted(
            {g["GroupName"] for eni in instance["NetworkInterfaces"] for g in eni["Groups"]}
        ),
        "bucket public access block": "all four blocked" if block and all(block.values()) else block,
        "function public statements": [s.get("Sid") for s in policy if s.get("Principal") in ("*", {"AWS": "*"})],
    }


def run(playbooks: Path, echo: Callable[[str], None] = print) -> DemoResult:
    import logging

    from chalicelib import wiring
    from chalicelib.incidents import DynamoIncidentStore
    from chalicelib.responder import approval_command

    # notify.log steps write warnings to the function's log; the demo reports them itself.
    logging.getLogger("clampdown").setLevel(logging.ERROR)
    result = DemoResult()
    with sb.sandbox(playbooks) as box:
        wiring.reset()
        echo(f"embedded AWS account {sb.ACCOUNT} ({sb.REGION}) on moto; playbooks from {playbooks}")
        before = _state(box)
        store = DynamoIncidentStore(box.client("dynamodb"), sb.INCIDENTS_TABLE)
        seen: set[str] = set()
        for scenario in SCENARIOS:
            event = scenario.build(box.env)
            started = time.perf_counter()
            sb.publish(box, event)
            result.pump.append(sb.pump(box))
            result.seconds_to_containment[scenario.title] = time.perf_counter() - started
            new = [i.id for i in store.list_incidents() if i.id not in seen]
            seen.update(new)
            result.by_scenario[scenario.title] = new
        pending = store.list_approvals("pending")
        for approval in pending:
            store.decide_approval(approval.id, "approved", "U0ONCALL (on-call engineer, demo)", _now())
            box.client("sqs").send_message(
                QueueUrl=box.queue_url, MessageBody=json.dumps(approval_command(approval.incident_id, approval.id))
            )
        result.approvals = [store.get_approval(a.id) for a in pending]
        result.pump.append(sb.pump(box))
        result.incidents = sorted(store.list_incidents(), key=lambda i: i.first_seen)
        result.steps = {i.id: store.list_steps(i.id) for i in result.incidents}
        result.dead_letters = len(
            box.client("sqs").receive_message(QueueUrl=box.dlq_url, MaxNumberOfMessages=10).get("Messages", [])
        )
        result.state = {"before": before, "after": _state(box)}
        wiring.reset()
    return result


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
