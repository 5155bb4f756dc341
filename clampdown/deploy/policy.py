"""Least-privilege IAM policies, generated from the playbooks and the stage's settings.

Three documents, one generator:

* ``responder``: the containment permissions of the actions the enabled playbooks use (resource
  ``*``: they act on whatever resource a finding names), plus exactly what the runtime needs, each
  scoped to the stage's own resources: consuming its queue, its two tables, the kill-switch
  parameter, evidence objects, its log group, the member roles it assumes, the notification
  secrets and topics.
* ``interactions`` (the Slack routes and the approval sweep): the incident table, sending approval
  commands to the queue, the notification secrets and topic, its log groups. No containment.
* ``member``: the containment permissions only, for the role in member accounts.

Each denies containment of Clampdown itself, so IAM refuses it even if a guardrail were
misconfigured. In the home account that is every ``clampdown-*`` role and function (the guardrails
treat them as the responder's too). In a member account it is only the member role and the home
account's exact role and function names: an attacker who can create roles there must not be able to
shelter a backdoor by naming it ``clampdown-...``.

ARNs are written with CloudFormation pseudo-parameters (``${AWS::AccountId}``..., and ``${HomeAccountId}``
for the responder's account in the member policy). The templates use them as ``Fn::Sub`` (exact at
deploy time, :func:`render_cfn`); the policy file Chalice requires gets them resolved or as ``*``
(:func:`render_literal`), where the stage-specific names still scope every statement. No statement
ever allows a wildcard action.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

from chalicelib.actions import REGISTRY
from chalicelib.actions.base import Action
from chalicelib.evidence import EVIDENCE_PERMISSIONS
from chalicelib.playbooks.library import Library
from chalicelib.playbooks.template import has_template
from chalicelib.settings import Settings
from clampdown.deploy.stage import ACCOUNT, FUNCTION_POLICIES, PARTITION, REGION, Stage

#: The responder's (home) account in the member policy: the member template derives it from its
#: ResponderRoleArn parameter; rendered literally it is the given account or ``*``.
HOME_ACCOUNT_VARIABLE = "HomeAccountId"
HOME_ACCOUNT = "${" + HOME_ACCOUNT_VARIABLE + "}"

Document = dict[str, Any]
Statement = dict[str, Any]

VERSION = "2012-10-17"
KINDS = ("responder", "interactions", "member")
#: What Lambda's SQS event source mapping needs of the function's role. The responder itself sends
#: nothing: approval decisions are queued by the Slack handler and the sweep (``interactions``).
QUEUE_CONSUMER = ("sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage")
#: DynamoIncidentStore as the responder uses it (incidents, steps, timeline, approvals, budgets).
INCIDENT_STORE = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem")
#: The approval sweep also lists approvals (a scan). Listing incidents (the index) is the CLI's, not a function's.
INCIDENT_STORE_SWEEP = (*INCIDENT_STORE, "dynamodb:Scan")
#: Powertools' DynamoDBPersistenceLayer.
IDEMPOTENCY_STORE = ("dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
LOGS = ("logs:CreateLogStream", "logs:PutLogEvents")
TRACING = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")
#: Only a rollback of ec2.detach-instance-profile passes a role, and only to EC2.
PASS_ROLE_CONDITIONS: Mapping[str, Any] = {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
#: Clampdown's own roles and functions in its home account: never a target of its own containment (the
#: guardrails refuse them too; this makes IAM refuse them even if a guardrail were misconfigured).
OWN_ROLE_PATTERN = "clampdown-*"
#: Settings naming a secret that only the Slack request handler reads.
INTERACTIONS_ONLY_SECRETS = frozenset({"slack_signing_secret"})
_SUB = re.compile(r"\$\{[^}]*\}")


class PolicyError(ValueError):
    """The playbooks and the stage's settings do not allow a least-privilege policy."""


# -- what the playbooks use ---------------------------------------------------------------------
def used_actions(library: Library) -> dict[str, type[Action]]:
    """Action name → class for every step of every enabled playbook."""
    used: dict[str, type[Action]] = {}
    for playbook in library.enabled:
        for step in playbook.steps:
            if step.action not in REGISTRY:
                raise PolicyError(f"playbook {playbook.name}: unknown action {step.action!r}")
            used[step.action] = REGISTRY[step.action]
    return dict(sorted(used.items()))


def is_notification(cls: type[Action]) -> bool:
    """Notification actions read only the stage's own secrets/topics: scoped, never on ``*``."""
    return getattr(cls, "channel_kind", None) is not None


def containment_permissions(library: Library) -> list[str]:
    """The exact IAM actions of the enabled playbooks' actions on customer resources (containment,
    forensics, finding updates): everything but notifications."""
    return sorted({p for cls in used_actions(library).values() if not is_notification(cls) for p in cls.permissions})


def _notification_topics(library: Library, settings: Settings) -> list[str]:
    """The SNS topics the responder publishes to: the stage's, and those ``notify.sns`` steps name."""
    topics = [settings.sns_topic_arn] if settings.sns_topic_arn else []
    for playbook in library.enabled:
        for step in playbook.steps:
            cls = REGISTRY[step.action]
            if not is_notification(cls) or "sns:Publish" not in cls.permissions:
                continue
            topic = step.params.get("topic_arn")
            if topic is None and not settings.sns_topic_arn:
                raise PolicyError(
                    f"playbook {playbook.name}: step {step.index} ({step.action}) publishes to the stage's SNS "
                    f"topic, but the stage sets no CLAMPDOWN_SNS_TOPIC_ARN"
                )
            if topic is not None and has_template(topic):
                raise PolicyError(
                    f"playbook {playbook.name}: step {step.index} ({step.action}) has a templated topic_arn; "
                    "the policy can only allow topics named literally"
                )
            if topic is not None:
                topics.append(str(topic))
    return sorted(set(topics))


def _check_channels(library: Library, settings: Settings) -> None:
    """A notification step whose channel the stage does not configure would only ever fail."""
    configured = {
        "slack": settings.slack_token_secret or settings.slack_webhook_secret,
        "webhook": settings.webhook_url_secret,
        "sns": True,  # checked with its topics
    }
    for playbook in library.enabled:
        for step in playbook.steps:
            kind = getattr(REGISTRY[step.action], "channel_kind", None)
            if kind is not None and not configured.get(kind):
                raise PolicyError(
                    f"playbook {playbook.name}: step {step.index} ({step.action}) needs a {kind} channel, "
                    f"which stage {settings.stage} does not configure"
                )


# -- resources ------------------------------------------------------------------------------------
def secret_names(settings: Settings, *, interactions: bool) -> list[str]:
    """The secrets this function may read: every ``*_secret`` setting (the signing secret only for
    the Slack handler)."""
    names = []
    for item in fields(Settings):
        if not item.name.endswith("_secret") or (not interactions and item.name in INTERACTIONS_ONLY_SECRETS):
            continue
        value = getattr(settings, item.name)
        if value:
            names.append(str(value))
    return sorted(set(names))


def secret_resource(name: str) -> tuple[str, str]:
    """(IAM action, resource ARN) that reads the secret ``name`` as ``chalicelib.secrets`` does."""
    base = name.partition("#")[0]
    parts = base.split(":")
    if base.startswith("ssm:") or base.startswith("/"):
        parameter = base[4:] if base.startswith("ssm:") else base
        return "ssm:GetParameter", f"arn:{PARTITION}:ssm:{REGION}:{ACCOUNT}:parameter/{parameter.lstrip('/')}"
    if len(parts) > 5 and parts[0] == "arn" and parts[2] == "ssm":
        return "ssm:GetParameter", base
    if len(parts) > 6 and parts[0] == "arn" and parts[2] == "secretsmanager":
        # A full ARN ends with "-" and six random characters; a partial one needs them matched.
        full = re.search(r"-[A-Za-z0-9]{6}$", parts[6]) is not None
        return "secretsmanager:GetSecretValue", base if full else base + "-??????"
    return "secretsmanager:GetSecretValue", f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:{base}-??????"


def member_role_arns(settings: Settings) -> list[str]:
    """The member roles the responder may assume: in the configured accounts (``*``: any account)."""
    accounts = sorted(set(settings.accounts))
    if not accounts:
        return []
    if "*" in accounts:
        accounts = ["*"]
    return [f"arn:{PARTITION}:iam::{account}:role/{settings.member_role_name}" for account in accounts]


# -- statements -----------------------------------------------------------------------------------
def _allow(sid: str, actions: Iterable[str], resources: Iterable[str], condition: Any = None) -> Statement:
    statement: Statement = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(set(actions)),
        "Resource": sorted(set(resources)),
    }
    if condition:
        statement["Condition"] = copy.deepcopy(condition)
    return statement


def containment_statements(permissions: list[str], own_resources: list[str]) -> list[Statement]:
    """Containment on any resource (``*``) except ``own_resources``: Clampdown's own roles and functions."""
    statements: list[Statement] = []
    plain = [p for p in permissions if p != "iam:PassRole"]
    if plain:
        statements.append(_allow("Containment", plain, ["*"]))
    if "iam:PassRole" in permissions:
        statements.append(_allow("PassRoleToEc2ForRollback", ["iam:PassRole"], ["*"], PASS_ROLE_CONDITIONS))
    protected = [p for p in permissions if p.split(":")[0] in ("iam", "lambda") and p != "iam:PassRole"]
    if protected:
        statements.append(
            {
                "Sid": "NeverContainClampdown",
                "Effect": "Deny",
                "Action": sorted(protected),
                "Resource": sorted(set(own_resources)),
            }
        )
    return statements


def home_own_resources(member_role_name: str) -> list[str]:
    """In the home account: every ``clampdown-*`` role and function, and the member role."""
    return [
        f"arn:{PARTITION}:iam::*:role/{OWN_ROLE_PATTERN}",
        f"arn:{PARTITION}:iam::*:role/{member_role_name}",
        f"arn:{PARTITION}:lambda:*:*:function:{OWN_ROLE_PATTERN}",
    ]


def member_own_resources(stage: Stage) -> list[str]:
    """In a member account: the member role itself, and the responder's exact roles and functions in
    the home account. Never a name pattern: ``clampdown-persist`` in a member account is contained."""
    resources = [f"arn:{PARTITION}:iam::{ACCOUNT}:role/{stage.settings.member_role_name}"]
    for function in sorted(FUNCTION_POLICIES):
        resources.append(f"arn:{PARTITION}:iam::{HOME_ACCOUNT}:role/{stage.role_name(function)}")
        resources.append(f"arn:{PARTITION}:lambda:*:{HOME_ACCOUNT}:function:{stage.function_name(function)}")
    return resources


def _notification_statements(settings: Settings, topics: list[str], *, interactions: bool) -> list[Statement]:
    statements: list[Statement] = []
    by_action: dict[str, list[str]] = {}
    for name in secret_names(settings, interactions=interactions):
        action, resource = secret_resource(name)
        by_action.setdefault(action, []).append(resource)
    if "secretsmanager:GetSecretValue" in by_action:
        statements.append(
            _allow(
                "ReadNotificationSecrets", ["secretsmanager:GetSecretValue"], by_action["secretsmanager:GetSecretValue"]
            )
        )
    if "ssm:GetParameter" in by_action:
        statements.append(_allow("ReadNotificationParameters", ["ssm:GetParameter"], by_action["ssm:GetParameter"]))
    if topics:
        statements.append(_allow("PublishNotifications", ["sns:Publish"], topics))
    return statements


def _logs_and_tracing(stage: Stage, functions: Iterable[str]) -> list[Statement]:
    statements = [_allow("WriteOwnLogs", LOGS, [stage.log_group_arn(f) for f in functions])]
    if stage.settings.tracing:
        statements.append(_allow("Tracing", TRACING, ["*"]))  # X-Ray has no resource-level permissions
    return statements


def functions_with(kind: str) -> list[str]:
    return sorted(f for f, k in FUNCTION_POLICIES.items() if k == kind)


def responder_policy(stage: Stage, library: Library, functions: Iterable[str] | None = None) -> Document:
    """``functions``: whose log groups it may write (default: every function with this policy)."""
    settings = stage.settings
    _check_channels(library, settings)
    statements = containment_statements(containment_permissions(library), home_own_resources(settings.member_role_name))
    statements += [
        _allow("ConsumeEventQueue", QUEUE_CONSUMER, [stage.queue_arn()]),
        _allow("IncidentStore", INCIDENT_STORE, [stage.table_arn(stage.incidents_table)]),
        _allow("IdempotencyStore", IDEMPOTENCY_STORE, [stage.table_arn(stage.idempotency_table)]),
        _allow("ReadKillSwitch", ["ssm:GetParameter"], [stage.parameter_arn(stage.kill_switch_parameter)]),
        _allow("EvidenceObjects", EVIDENCE_PERMISSIONS, [stage.bucket_objects_arn()]),
    ]
    roles = member_role_arns(settings)
    if roles:
        statements.append(_allow("AssumeMemberRoles", ["sts:AssumeRole"], roles))
    statements += _notification_statements(settings, _notification_topics(library, settings), interactions=False)
    statements += _logs_and_tracing(stage, functions or functions_with("responder"))
    return {"Version": VERSION, "Statement": statements}


def interactions_policy(stage: Stage, functions: Iterable[str] | None = None) -> Document:
    statements = [
        _allow("SendCommandsToQueue", ["sqs:SendMessage"], [stage.queue_arn()]),
        _allow("IncidentStore", INCIDENT_STORE_SWEEP, [stage.table_arn(stage.incidents_table)]),
    ]
    topics = [stage.settings.sns_topic_arn] if stage.settings.sns_topic_arn else []
    statements += _notification_statements(stage.settings, topics, interactions=True)
    statements += _logs_and_tracing(stage, functions or functions_with("interactions"))
    return {"Version": VERSION, "Statement": statements}


def member_policy(stage: Stage, library: Library) -> Document:
    statements = containment_statements(containment_permissions(library), member_own_resources(stage))
    return {"Version": VERSION, "Statement": statements}


def policy_for(kind: str, stage: Stage, library: Library) -> Document:
    if kind == "responder":
        return responder_policy(stage, library)
    if kind == "interactions":
        return interactions_policy(stage)
    if kind == "member":
        return member_policy(stage, library)
    raise PolicyError(f"unknown policy {kind!r} (one of {', '.join(KINDS)})")


# -- rendering ------------------------------------------------------------------------------------
def render_cfn(document: Any, variables: Mapping[str, Any] | None = None) -> Any:
    """Every string with ``${...}`` becomes ``{"Fn::Sub": ...}`` (resolved by CloudFormation), with
    the ``variables`` it names (name → CloudFormation expression) as ``Fn::Sub``'s variable map."""
    if isinstance(document, Mapping):
        return {k: render_cfn(v, variables) for k, v in document.items()}
    if isinstance(document, list):
        return [render_cfn(v, variables) for v in document]
    if isinstance(document, str) and _SUB.search(document):
        used = {k: v for k, v in (variables or {}).items() if "${" + k + "}" in document}
        return {"Fn::Sub": [document, dict(sorted(used.items()))]} if used else {"Fn::Sub": document}
    return document


def render_literal(
    document: Any,
    *,
    partition: str = "aws",
    region: str | None = None,
    account: str | None = None,
    home_account: str | None = None,
) -> Any:
    """Pseudo-parameters resolved: the partition, and the region/account/home account when known, else ``*``."""
    values = {PARTITION: partition, REGION: region or "*", ACCOUNT: account or "*", HOME_ACCOUNT: home_account or "*"}

    def resolve(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, str):
            for placeholder, replacement in values.items():
                value = value.replace(placeholder, replacement)
            if _SUB.search(value):
                raise PolicyError(f"unresolved placeholder in {value!r}")
        return value

    return resolve(document)


def actions_of(document: Mapping[str, Any], effect: str = "Allow") -> set[str]:
    """Every IAM action a policy document's statements of ``effect`` name."""
    found: set[str] = set()
    for statement in document.get("Statement", ()):
        if statement.get("Effect") == effect:
            actions = statement.get("Action", ())
            found.update([actions] if isinstance(actions, str) else actions)
    return found
