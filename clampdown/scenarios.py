"""Incident scenarios on the sandbox: real published findings pointed at the sandbox's resources.

Only the fields that name the resource, the account and the region change (and, where said, the
finding id so that two scenarios are two findings); everything else is the published event.
Used by ``clampdown demo`` and ``clampdown drill``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clampdown import sandbox as sb

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "corpus"


def corpus_event(relative: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((CORPUS / relative).read_text())
    event.pop("debug", None)
    return event


def _guardduty(
    relative: str, env: sb.Environment, point: Callable[[dict[str, Any], sb.Environment], None]
) -> dict[str, Any]:
    event = copy.deepcopy(corpus_event(relative))
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
        corpus_event("cloudtrail/ct_raw_stratus_aws.persistence.lambda-backdoor-function_AddPermission20150331v2.json")
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


DEMO = (
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
