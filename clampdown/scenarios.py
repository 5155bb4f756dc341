"""Incident scenarios on the sandbox: published findings pointed at the sandbox's resources.

What a scenario changes in the published event, and nothing else:

- the account and region (envelope and finding; for a CloudTrail record ``recipientAccountId``,
  ``awsRegion`` and ``userIdentity.accountId``), so the finding is about the sandbox's account;
- the fields that name the affected resource (key, user, role session, instance, bucket, function),
  and the words of the title and description that name it; a resource the sample also names that is
  not the scenario's (GuardDuty's PenTest:S3 sample names an instance too) is removed, and a caller
  the sample names only by GuardDuty's placeholders (``GeneratedFindingUserName``) is the sandbox's user;
- where a scenario must be a finding of its own, the finding id (in ``id`` and at the end of ``arn``);
- ``service.additionalInfo.sample`` and ``service.archived`` set to false: GuardDuty marks its
  generated samples, one published sample is archived, and the responder leaves both alone;
- the severity, where the published sample carries GuardDuty's sample severity (5) instead of its
  type's documented default (High, 8, for ``Backdoor:EC2/C&CActivity.B!DNS``);
- the instance-credentials scenario reuses the Tor sample for a type nobody has published
  (``UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS``): its id, type, title,
  description and severity are that type's, as the GuardDuty documentation describes it.

Events with no published sample at all come from ``tests/data/constructed/`` (each with the AWS
document it follows). Used by ``clampdown demo`` and ``clampdown drill``.
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
CONSTRUCTED = ROOT / "tests" / "data" / "constructed"


def corpus_event(relative: str, base: Path = CORPUS) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((base / relative).read_text())
    event.pop("debug", None)
    return event


def _guardduty(
    relative: str,
    env: sb.Environment,
    point: Callable[[dict[str, Any], sb.Environment], None],
    base: Path = CORPUS,
) -> dict[str, Any]:
    event = copy.deepcopy(corpus_event(relative, base))
    detail = event["detail"]
    published_account = detail["accountId"]
    event["account"] = detail["accountId"] = sb.ACCOUNT
    event["region"] = detail["region"] = sb.REGION
    if isinstance(detail.get("arn"), str):
        detail["arn"] = detail["arn"].replace(f":{published_account}:", f":{sb.ACCOUNT}:")
    service = detail["service"]
    if isinstance(service.get("additionalInfo"), dict) and "sample" in service["additionalInfo"]:
        service["additionalInfo"]["sample"] = False
    service["archived"] = False
    point(detail, env)
    return event


def _new_finding_id(detail: dict[str, Any], finding_id: str) -> None:
    detail["id"] = finding_id
    if isinstance(detail.get("arn"), str):
        detail["arn"] = f"{detail['arn'].rsplit('/', 1)[0]}/{finding_id}"


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
    remote_ip = detail["service"]["action"]["awsApiCallAction"]["remoteIpDetails"]["ipAddressV4"]
    _new_finding_id(detail, "7f3c9a1e0b2d4c6e8f0a1b3c5d7e9f21")
    detail["type"] = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"
    detail["title"] = f"Credentials for instance role {env.role_name} used from an external IP address."
    detail["description"] = (
        f"Credentials that were created exclusively for an EC2 instance through instance role {env.role_name} "
        f"are being used from external IP address {remote_ip}."
    )
    detail["severity"] = 8  # the type's documented default (High)


def _instance(detail: dict[str, Any], env: sb.Environment) -> None:
    published = detail["resource"]["instanceDetails"]["instanceId"]
    detail["resource"]["instanceDetails"]["instanceId"] = env.instance_id
    detail["title"] = detail["title"].replace(published, env.instance_id)
    detail["description"] = detail["description"].replace(published, env.instance_id)
    detail["severity"] = 8  # the type's documented default (High); the published sample has 5


def _bucket(detail: dict[str, Any], env: sb.Environment) -> None:
    for bucket in detail["resource"]["s3BucketDetails"]:
        bucket.update(name=env.bucket, arn=f"arn:aws:s3:::{env.bucket}")
    # GuardDuty's generated sample names its bucket and its caller with placeholders.
    detail["description"] = detail["description"].replace("GeneratedFindingS3Bucket", env.bucket)
    _user_key(detail, env)
    detail["resource"].pop("instanceDetails", None)
    _new_finding_id(detail, "5eb2a6b1d5c6a2e1f3c4d5e6f7a8b9c0")


def _function(detail: dict[str, Any], env: sb.Environment) -> None:
    lambda_details = detail["resource"]["lambdaDetails"]
    published = lambda_details["functionName"]
    lambda_details.update(functionArn=env.function_arn, functionName=env.function_name, role=env.function_role_arn)
    detail["title"] = detail["title"].replace(published, env.function_name)
    detail["description"] = detail["description"].replace(published, env.function_name)


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
        "Cloud Custodian's TorIPCaller sample as UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"
        " (no published sample): an assumed-role (ASIA) key, the type's documented description",
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

#: GuardDuty Lambda Protection: no finding of this kind has been published; the constructed one
#: follows the documented format (tests/data/constructed/README.md).
LAMBDA_COMPROMISED = Scenario(
    "Function image-resizer talks to a command-and-control server",
    lambda env: _guardduty("gd_constructed_Backdoor-Lambda-CCActivity-B.json", env, _function, CONSTRUCTED),
    "constructed GuardDuty Lambda Protection finding Backdoor:Lambda/C&CActivity.B (documented format)",
)
