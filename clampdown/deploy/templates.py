"""CloudFormation: the merge template for ``chalice package --merge-template``, and the member role.

The merge template is deep-merged into Chalice's SAM template (dicts merged, lists and scalars
replaced). It adds what Chalice does not create (queue and dead-letter queue, rules, tables,
evidence bucket, kill switch, log groups, alarms) and overrides, per function: its name, role name
and role policy (the generated least-privilege policy with exact ARNs via ``Fn::Sub``), its
environment (``Ref``/``GetAtt`` of those resources), and for the responder the queue its SQS event
source reads (``Fn::Sub``: a ``Fn::GetAtt`` override would leave both keys) with partial batch
failures reported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib.incidents import TABLE_DEFINITION
from chalicelib.playbooks.library import Library
from clampdown.deploy.policy import (
    HOME_ACCOUNT_VARIABLE,
    interactions_policy,
    member_policy,
    render_cfn,
    responder_policy,
)
from clampdown.deploy.rules import RuleSet
from clampdown.deploy.stage import FUNCTION_POLICIES, RESPONDER, Stage

QUEUE, DLQ, QUEUE_POLICY = "EventsQueue", "EventsDeadLetterQueue", "EventsQueuePolicy"
INCIDENTS, IDEMPOTENCY = "IncidentsTable", "IdempotencyTable"
BUCKET, BUCKET_POLICY, KILL_SWITCH = "EvidenceBucket", "EvidenceBucketPolicy", "KillSwitchParameter"
#: TTL attributes: the incident store's expiring items (budgets, approvals) and Powertools idempotency records.
INCIDENTS_TTL_ATTRIBUTE = "expires_at"
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"
MAX_RECEIVE_COUNT = 5
BATCHING_WINDOW_S = 1  # app.py: maximum_batching_window_in_seconds
LOG_RETENTION_DAYS = 365
DLQ_RETENTION_S = 14 * 24 * 3600
#: EventBridge retries delivery to the queue for a day before sending the event to the dead-letter queue.
TARGET_RETRY = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}


def _camel(name: str) -> str:
    """Chalice's CloudFormation name for a function (``expire_approvals`` → ``ExpireApprovals``)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", name) if part)


def function_logical_id(function: str) -> str:
    return "APIHandler" if function == "api_handler" else _camel(function)


def role_logical_id(function: str) -> str:
    return _camel(function) + "Role"


def rule_logical_id(name: str) -> str:
    return "Rule" + _camel(re.sub(r"[^A-Za-z0-9]+", "-", name))


def _get_att(resource: str, attribute: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [resource, attribute]}


def _tags(stage: Stage) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted({**stage.tags, "clampdown:stage": stage.name}.items())]


def environment() -> dict[str, Any]:
    """The variables that point the functions at this stack's resources (the rest is in config.json)."""
    return {
        "CLAMPDOWN_INCIDENTS_TABLE": {"Ref": INCIDENTS},
        "CLAMPDOWN_IDEMPOTENCY_TABLE": {"Ref": IDEMPOTENCY},
        "CLAMPDOWN_QUEUE_URL": {"Ref": QUEUE},
        "CLAMPDOWN_EVIDENCE_BUCKET": {"Ref": BUCKET},
        "CLAMPDOWN_KILL_SWITCH_PARAMETER": {"Ref": KILL_SWITCH},
        "CLAMPDOWN_HOME_ACCOUNT": {"Ref": "AWS::AccountId"},
    }


def _queues(stage: Stage, rules: RuleSet) -> dict[str, Any]:
    visibility = 6 * stage.lambda_timeout(RESPONDER) + BATCHING_WINDOW_S
    resources: dict[str, Any] = {
        DLQ: {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": stage.dead_letter_queue_name,
                "MessageRetentionPeriod": DLQ_RETENTION_S,
                "SqsManagedSseEnabled": True,
                "Tags": _tags(stage),
            },
        },
        QUEUE: {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": stage.queue_name,
                "VisibilityTimeout": visibility,
                "RedrivePolicy": {"deadLetterTargetArn": _get_att(DLQ, "Arn"), "maxReceiveCount": MAX_RECEIVE_COUNT},
                "SqsManagedSseEnabled": True,
                "Tags": _tags(stage),
            },
        },
    }
    if rules.rules:
        resources[QUEUE_POLICY] = {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": QUEUE}, {"Ref": DLQ}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "OnlyClampdownRulesSendEvents",
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": [_get_att(QUEUE, "Arn"), _get_att(DLQ, "Arn")],
                            "Condition": {
                                "ArnEquals": {
                                    "aws:SourceArn": [_get_att(rule_logical_id(r.name), "Arn") for r in rules.rules]
                                }
                            },
                        }
                    ],
                },
            },
        }
    return resources


def _rules(stage: Stage, rules: RuleSet) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    for rule in rules.rules:
        description = f"Clampdown {stage.name}: events for playbooks {', '.join(rule.playbooks)}"
        resources[rule_logical_id(rule.name)] = {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Name": f"{stage.prefix}-{rule.name}"[:64],
                "Description": description if len(description) <= 512 else description[:509] + "...",
                "EventPattern": rule.pattern,
                "State": "ENABLED",
                "Targets": [
                    {
                        "Id": "clampdown-queue",
                        "Arn": _get_att(QUEUE, "Arn"),
                        "DeadLetterConfig": {"Arn": _get_att(DLQ, "Arn")},
                        "RetryPolicy": dict(TARGET_RETRY),
                    }
                ],
            },
        }
    return resources


def _table(stage: Stage, name: str, definition: Mapping[str, Any], ttl_attribute: str) -> dict[str, Any]:
    return {
        "Type": "AWS::DynamoDB::Table",
        # The audit trail outlives the stack: deleting the stack leaves the table.
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "TableName": name,
            **{
                k: definition[k]
                for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")
                if k in definition
            },
            "TimeToLiveSpecification": {"AttributeName": ttl_attribute, "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "Tags": _tags(stage),
        },
    }


IDEMPOTENCY_DEFINITION: Mapping[str, Any] = {
    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    "BillingMode": "PAY_PER_REQUEST",
}


def _storage(stage: Stage) -> dict[str, Any]:
    bucket_arn = {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::${{{BUCKET}}}"}
    objects_arn = {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::${{{BUCKET}}}/*"}
    return {
        INCIDENTS: _table(stage, stage.incidents_table, TABLE_DEFINITION, INCIDENTS_TTL_ATTRIBUTE),
        IDEMPOTENCY: _table(stage, stage.idempotency_table, IDEMPOTENCY_DEFINITION, IDEMPOTENCY_TTL_ATTRIBUTE),
        BUCKET: {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "BucketName": render_cfn(stage.evidence_bucket),
                "VersioningConfiguration": {"Status": "Enabled"},
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "abort-incomplete-uploads",
                            "Status": "Enabled",
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                        }
                    ]
                },
                "Tags": _tags(stage),
            },
        },
        BUCKET_POLICY: {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": BUCKET},
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            # A Deny: it takes access away, so it may name every S3 action.
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [bucket_arn, objects_arn],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                },
            },
        },
        KILL_SWITCH: {
            "Type": "AWS::SSM::Parameter",
            "Properties": {
                "Name": stage.kill_switch_parameter,
                "Type": "String",
                "Value": "off",
                "Description": "Clampdown kill switch: 'on' stops every change to AWS; findings are still reported.",
                "Tags": {**stage.tags, "clampdown:stage": stage.name},
            },
        },
    }


def _alarm(
    description: str, namespace: str, metric: str, dimension: tuple[str, Any], statistic: str, topic: str | None
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "AlarmDescription": description,
        "Namespace": namespace,
        "MetricName": metric,
        "Dimensions": [{"Name": dimension[0], "Value": dimension[1]}],
        "Statistic": statistic,
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    }
    if topic:
        properties.update(AlarmActions=[topic], OKActions=[topic])
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


def _policy(stage: Stage, library: Library, function: str) -> dict[str, Any]:
    """The function's policy, writing to its own log group only."""
    if FUNCTION_POLICIES[function] == "responder":
        return responder_policy(stage, library, [function])
    return interactions_policy(stage, [function])


def _functions(stage: Stage, library: Library, functions: Sequence[str]) -> dict[str, Any]:
    unknown = sorted(set(functions) - set(FUNCTION_POLICIES))
    if unknown:
        raise ValueError(
            f"app.py defines Lambda function(s) {', '.join(unknown)} with no policy: add them to "
            "clampdown.deploy.stage.FUNCTION_POLICIES"
        )
    topic = stage.settings.sns_topic_arn
    resources: dict[str, Any] = {}
    for function in functions:
        logical, role = function_logical_id(function), role_logical_id(function)
        log_group = f"{logical}LogGroup"
        resources[log_group] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": f"/aws/lambda/{stage.function_name(function)}",
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
        }
        properties: dict[str, Any] = {
            "FunctionName": stage.function_name(function),
            "Environment": {"Variables": environment()},
            # CLAMPDOWN_TRACING decides, whatever Chalice's own "xray" setting says: the role's X-Ray
            # permissions (policy.TRACING) and the SDK's use (chalicelib.handlers) follow the same flag.
            "Tracing": "Active" if stage.settings.tracing else "PassThrough",
        }
        if function == RESPONDER:
            event_source: dict[str, Any] = {
                "Queue": {"Fn::Sub": f"${{{QUEUE}.Arn}}"},
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
            }
            concurrency = stage.reserved_concurrency(function)
            if concurrency is not None and concurrency >= 2:
                # Lambda stops polling at this many concurrent batches instead of throttling them
                # (throttled batches would count as receives and reach the dead-letter queue).
                event_source["ScalingConfig"] = {"MaximumConcurrency": min(concurrency, 1000)}
            properties["Events"] = {f"{logical}SqsEventSource": {"Properties": event_source}}
        resources[logical] = {"DependsOn": [log_group], "Properties": properties}
        resources[role] = {
            "Properties": {
                "RoleName": stage.role_name(function),
                "Policies": [
                    {"PolicyName": f"{role}Policy", "PolicyDocument": render_cfn(_policy(stage, library, function))}
                ],
            }
        }
        resources[f"{logical}ErrorsAlarm"] = _alarm(
            f"Clampdown {stage.name}: {function} failed (its log group: /aws/lambda/{stage.function_name(function)})",
            "AWS/Lambda",
            "Errors",
            ("FunctionName", {"Ref": logical}),
            "Sum",
            topic,
        )
    return resources


def merge_template(stage: Stage, library: Library, rules: RuleSet, functions: Sequence[str]) -> dict[str, Any]:
    """The ``--merge-template`` document for ``chalice package`` (JSON)."""
    resources: dict[str, Any] = {}
    resources.update(_queues(stage, rules))
    resources.update(_rules(stage, rules))
    resources.update(_storage(stage))
    resources["DeadLetterQueueAlarm"] = _alarm(
        f"Clampdown {stage.name}: events failed {MAX_RECEIVE_COUNT} times or were not delivered (dead-letter queue)",
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        ("QueueName", _get_att(DLQ, "QueueName")),
        "Maximum",
        stage.settings.sns_topic_arn,
    )
    resources.update(_functions(stage, library, functions))
    outputs: dict[str, Any] = {
        "EventsQueueUrl": {"Value": {"Ref": QUEUE}},
        "DeadLetterQueueUrl": {"Value": {"Ref": DLQ}},
        "IncidentsTableName": {"Value": {"Ref": INCIDENTS}},
        "EvidenceBucketName": {"Value": {"Ref": BUCKET}},
        "KillSwitchParameterName": {"Value": {"Ref": KILL_SWITCH}},
    }
    if RESPONDER in functions:
        outputs["ResponderRoleArn"] = {
            "Description": "The principal member accounts trust (member-role template parameter ResponderRoleArn)",
            "Value": _get_att(role_logical_id(RESPONDER), "Arn"),
        }
    return {"Resources": resources, "Outputs": outputs}


def member_role_template(stage: Stage, library: Library) -> dict[str, Any]:
    """The role the responder assumes in member accounts: containment permissions only."""
    settings = stage.settings
    policy = member_policy(stage, library)
    # The responder's account, from the responder's role ARN (arn:PARTITION:iam::ACCOUNT:role/NAME).
    home_account = {"Fn::Select": [4, {"Fn::Split": [":", {"Ref": "ResponderRoleArn"}]}]}
    if not policy["Statement"]:
        raise ValueError("the enabled playbooks use no action that changes AWS: a member role would have nothing to do")
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Clampdown {stage.name}: the role the responder assumes in this account to contain threats.",
        "Parameters": {
            "ResponderRoleArn": {
                "Type": "String",
                "Description": "The responder's role (output ResponderRoleArn of the Clampdown stack).",
                "AllowedPattern": r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$",
            },
            "ExternalId": {
                "Type": "String",
                "Description": "The stage's CLAMPDOWN_EXTERNAL_ID.",
                "MinLength": 2,
                "MaxLength": 1224,
                "AllowedPattern": r"^[\w+=,.@:/-]+$",
            },
        },
        "Resources": {
            "MemberRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": settings.member_role_name,
                    "Description": f"Clampdown {stage.name} containment (assumed by the responder only)",
                    "MaxSessionDuration": 3600,
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": {"Ref": "ResponderRoleArn"}},
                                "Action": "sts:AssumeRole",
                                "Condition": {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}},
                            }
                        ],
                    },
                    "Policies": [
                        {
                            "PolicyName": "clampdown-containment",
                            "PolicyDocument": render_cfn(policy, {HOME_ACCOUNT_VARIABLE: home_account}),
                        }
                    ],
                    "Tags": _tags(stage),
                },
            }
        },
        "Outputs": {"MemberRoleArn": {"Value": _get_att("MemberRole", "Arn")}},
    }
