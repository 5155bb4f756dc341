"""AWS API calls per containment action, beside the steps AWS's own containment runbooks take.

For every registered action that touches AWS, the real resource is built on moto (``mock_aws``, a fresh
account per action: the demo's vulnerable environment, ``clampdown.sandbox``, plus what an action needs
on top), and the calls the action's own clients make are counted with a botocore ``before-call`` hook
(reads included: the before-state and the verification of the result are part of the cost), for:
``plan`` (what dry-run and approvals show), ``apply``, ``apply`` again (idempotent: reads only), and
``rollback``. moto does not implement GuardDuty ``GetFindings``/``ArchiveFindings`` nor Security Hub
``BatchUpdateFindings``: those two actions are counted through botocore's ``Stubber`` (each call is
checked against the real API model), with the responses their functional tests use.

Beside them, the AWS Systems Manager runbooks that do the same containment, with the steps of their
``Contain`` path (non-dry-run, no AMI backup, no Auto Scaling group). Each step is an SSM Automation
step, often several API calls (a script step backs up and changes many things), so steps and calls are
not the same unit: the comparison says how much work each does, not which is cheaper to run. Sources
(AWS Systems Manager Automation Runbook Reference, "The document performs the following steps"):

- AWSSupport-ContainIAMPrincipal:
  https://docs.aws.amazon.com/systems-manager-automation-runbooks/latest/userguide/awssupport-contain-iam-principal.html
- AWSSupport-ContainEC2Instance (its page describes the Contain path in prose, "How does it work?";
  the phases it names are counted):
  https://docs.aws.amazon.com/systems-manager-automation-runbooks/latest/userguide/automation-awssupport-containec2instance.html
- AWSSupport-ContainS3Resource:
  https://docs.aws.amazon.com/systems-manager-automation-runbooks/latest/userguide/automation-awssupport-contains3resource.html

"n/a" where AWS publishes no runbook for that containment.

Usage: .venv/bin/python benchmarks/bench_action_calls.py [--quick] [--only ACTION ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
TOR = "guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"
EC2_FINDING = "guardduty/gd_c7n_Backdoor-EC2-C-CActivity-B-DNS.json"
S3_FINDING = "guardduty/gd_awssamples-autoresp_PenTest-S3-ParrotLinux.json"
PHASES = ("plan", "apply", "apply again", "rollback")


@dataclass(frozen=True)
class Runbook:
    name: str
    steps: tuple[str, ...]  # the Contain path's steps, as the runbook reference names them


#: The Contain path of each runbook (DryRun false), step by step, from the runbook reference (see above).
IAM_ROLE = Runbook(
    "AWSSupport-ContainIAMPrincipal (role)",
    (
        "ValidateRequiredInputs", "CheckBackupS3BucketName", "BranchOnAction", "BranchOnPrincipalTypeAndDryRun",
        "BranchOnPrincipalTypeForContain", "GetIAMRole", "GetIAMRoleDetails", "UpdateS3KeyForRole",
        "BranchOnIdentityContain", "AttachInlineDenyPolicyToRole",
    ),
)  # fmt: skip
IAM_USER = Runbook(
    "AWSSupport-ContainIAMPrincipal (user)",
    (
        "ValidateRequiredInputs", "CheckBackupS3BucketName", "BranchOnAction", "BranchOnPrincipalTypeAndDryRun",
        "BranchOnPrincipalTypeForContain", "GetIAMUser", "GetIAMUserDetails", "UpdateS3KeyForUser",
        "BranchOnIdentityContain", "BranchOnDisableAccessKeys", "DisableAccessKeys",
        "BranchOnDisableConsoleAccess", "DisableConsoleAccess", "AttachInlineDenyPolicyToUser",
    ),
)  # fmt: skip
EC2 = Runbook(
    "AWSSupport-ContainEC2Instance",
    (
        "validate the input parameters", "check the instance is not terminated",
        "back up its security groups to S3", "create the all-access security group",
        "create the containment security group", "move every interface to the all-access group",
        "move every interface to the containment group",
    ),
)  # fmt: skip
S3 = Runbook(
    "AWSSupport-ContainS3Resource",
    (
        "validateRequiredInputs", "BranchOnActionAndMode", "assertBucketExists", "backupBucketPreChecks",
        "backupTargetBucketMetadata", "containBucket", "containFinalOutput", "FinalOutput",
    ),
)  # fmt: skip
RUNBOOK_OF = {"iam.revoke-role-sessions": IAM_ROLE, "ec2.isolate-instance": EC2, "s3.lockdown-bucket": S3}
#: AWS's user containment does in one runbook what three actions do here: their calls are added up.
USER_CONTAINMENT = ("iam.deactivate-access-key", "iam.disable-console-login", "iam.quarantine-user")


@dataclass
class Counted:
    action: str
    calls: dict[str, list[str]] = field(default_factory=dict)  # phase -> operations
    statuses: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def count(self, phase: str) -> int:
        return len(self.calls.get(phase, []))


@dataclass
class Setup:
    """What one action runs on: its target, parameters, finding, and the session the actions use."""

    session: Any
    env: Any
    params: dict[str, Any]
    target: Any
    finding_event: str = TOR


def resource(kind: str, **fields: Any) -> Any:
    from chalicelib.findings import Resource
    from clampdown import sandbox as sb

    return Resource(kind, account=sb.ACCOUNT, region=sb.REGION, **fields)


# -- what each action acts on: the sandbox's vulnerable account, plus what the action needs -----------
def _role(s: Setup) -> None:
    s.target = resource("iam-role", name=s.env.role_name, arn=s.env.role_arn)


def _user(s: Setup) -> None:
    from clampdown import sandbox as sb

    s.target = resource("iam-user", name=s.env.user_name, arn=f"arn:aws:iam::{sb.ACCOUNT}:user/{s.env.user_name}")


def _key(s: Setup) -> None:
    s.target = resource("access-key", id=s.env.access_key_id, details={"user_name": s.env.user_name})


def _admin_role(s: Setup) -> None:
    admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam = s.session.client("iam")
    iam.put_role_policy(RoleName=s.env.role_name, PolicyName="god-mode", PolicyDocument=json.dumps(admin))
    s.params = {"policies": ["god-mode"]}
    _role(s)


def _function(s: Setup) -> None:
    s.target = resource("lambda-function", name=s.env.function_name, arn=s.env.function_arn)


def _instance(s: Setup) -> None:
    from tests.functional.actions.test_ec2_actions import instance_target

    s.finding_event = EC2_FINDING
    s.target = instance_target(s.env.instance_id, vpc=s.env.vpc_id)


def _instance_with_profile(s: Setup) -> None:
    from clampdown import sandbox as sb

    iam = s.session.client("iam")
    iam.create_role(RoleName="web-role", AssumeRolePolicyDocument=sb.TRUST_EC2)
    profile = iam.create_instance_profile(InstanceProfileName="web-profile")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="web-profile", RoleName="web-role")
    s.session.client("ec2").associate_iam_instance_profile(
        IamInstanceProfile={"Arn": profile}, InstanceId=s.env.instance_id
    )
    _instance(s)


def _bucket(s: Setup) -> None:
    s.finding_event = S3_FINDING
    s.target = resource("s3-bucket", name=s.env.bucket, arn=f"arn:aws:s3:::{s.env.bucket}")


def _public_bucket_acl(s: Setup) -> None:
    s.session.client("s3").put_bucket_acl(Bucket=s.env.bucket, ACL="public-read")
    _bucket(s)


SETUPS: dict[str, Callable[[Setup], None]] = {
    "iam.quarantine-role": _role,
    "iam.revoke-role-sessions": _role,
    "iam.quarantine-user": _user,
    "iam.deactivate-access-key": _key,
    "iam.detach-policies": _admin_role,
    "iam.disable-console-login": _user,
    "lambda.zero-concurrency": _function,
    "lambda.remove-public-access": _function,
    "lambda.snapshot-code": _function,
    "ec2.isolate-instance": _instance,
    "ec2.snapshot-volumes": _instance,
    "ec2.capture-forensics": _instance,
    "ec2.stop-instance": _instance,
    "ec2.detach-instance-profile": _instance_with_profile,
    "s3.block-public-access": _bucket,
    "s3.deny-public-policy": _bucket,
    "s3.lockdown-bucket": _public_bucket_acl,
    "tag": _instance,
}
PARAMS: dict[str, dict[str, Any]] = {"iam.revoke-role-sessions": {"issued_before": "now"}}


def run_phases(action: Any, ctx: Any, target: Any, calls: list[str], counted: Counted) -> None:
    """plan, apply, apply again, rollback; the operations each made, and their statuses."""
    mark = 0

    def phase(name: str, run: Callable[[], Any]) -> Any:
        nonlocal mark
        outcome = run()
        counted.calls[name] = calls[mark:]
        mark = len(calls)
        status = getattr(outcome, "status", None)  # a plan has none
        counted.statuses[name] = str(status) if status is not None else "planned"
        return outcome

    phase("plan", lambda: action.plan(ctx, target))
    result = phase("apply", lambda: action.apply(ctx, target))
    phase("apply again", lambda: action.apply(ctx, target))
    phase("rollback", lambda: action.rollback(ctx, target, result.before or {}, wrote=result.after))
    if counted.statuses["apply"] not in ("contained", "done"):
        counted.note = f"apply: {counted.statuses['apply']} {(result.reason or result.error_code or '')[:60]}"


@contextmanager
def embedded_account() -> Iterator[Any]:
    from clampdown import sandbox as sb

    with sb.sandbox(ROOT / "playbooks", environment=True) as box:
        yield box


def count_on_moto(name: str) -> Counted:
    from chalicelib.actions import REGISTRY, ActionContext
    from chalicelib.aws import AwsClients
    from chalicelib.evidence import MemoryEvidenceStore
    from chalicelib.findings import normalize
    from chalicelib.guardrails import Guardrails
    from clampdown import sandbox as sb
    from clampdown.scenarios import corpus_event

    counted = Counted(name)
    with embedded_account() as box:
        setup = Setup(box.session, box.env, dict(PARAMS.get(name, {})), None)
        SETUPS[name](setup)
        calls: list[str] = []
        # Only clients created from now on (the action's) carry the hook: the set-up's are not counted.
        box.session.events.register("before-call", lambda model, **_: calls.append(model.name))
        clients = AwsClients(home_account=sb.ACCOUNT, default_region=sb.REGION, session_factory=lambda: box.session)
        ctx = ActionContext(
            finding=normalize(corpus_event(setup.finding_event))[0],
            playbook="bench",
            incident_id="inc-bench",
            aws=clients,
            evidence=MemoryEvidenceStore(),
            guard=Guardrails(),
            now=NOW,
        )
        run_phases(REGISTRY[name](setup.params), ctx, setup.target, calls, counted)
    return counted


def count_stubbed_guardduty() -> Counted:
    """GuardDuty archive through Stubber, with the responses of its functional test."""
    import boto3
    from moto import mock_aws

    from chalicelib.actions import REGISTRY
    from tests.functional.actions.test_finding_actions import RAW_API_GD, finding_of, gd_api_finding, stubbed

    counted = Counted("guardduty.archive-finding", note="Stubber (moto lacks GuardDuty findings)")
    detector, finding_id = "d4b040365221be2b54a6264dcexample", "1ab92989eaf0e742df4a014d5example"
    finding = finding_of(RAW_API_GD)
    action = REGISTRY["guardduty.archive-finding"]({})
    with mock_aws(), stubbed(boto3.session.Session(region_name="us-east-1"), finding, "guardduty") as stubs:
        ctx, stub, operations = stubs

        def read(archived: bool) -> None:
            stub.add_response("get_findings", {"Findings": [gd_api_finding(detector, finding_id, archived)]})

        read(False)
        read(False)
        stub.add_response("archive_findings", {})
        read(True)
        read(True)
        read(True)
        stub.add_response("unarchive_findings", {})
        read(False)
        run_phases(action, ctx, None, operations, counted)
    return counted


def count_stubbed_securityhub() -> Counted:
    """Security Hub (ASFF) update through Stubber, with the responses of its functional test."""
    import boto3
    from moto import mock_aws

    from chalicelib.actions import REGISTRY
    from chalicelib.findings import normalize
    from tests.conftest import corpus_event
    from tests.functional.actions.test_finding_actions import ASFF_CIS, asff_update, stubbed

    counted = Counted("securityhub.update-finding", note="Stubber (moto lacks BatchUpdateFindings)")
    event = corpus_event(ASFF_CIS)
    raw = event["detail"]["findings"][0]
    ident = {"Id": raw["Id"], "ProductArn": raw["ProductArn"]}
    action = REGISTRY["securityhub.update-finding"]({"workflow_status": "NOTIFIED"})
    updated = asff_update(raw, Workflow={"Status": "NOTIFIED"})
    processed = {"ProcessedFindings": [ident], "UnprocessedFindings": []}
    with mock_aws(), stubbed(boto3.session.Session(region_name="us-east-1"), normalize(event)[0], "securityhub") as s:
        ctx, stub, operations = s
        for response in (
            ("get_findings", {"Findings": [raw]}),  # plan
            ("get_findings", {"Findings": [raw]}),  # apply: read, update, verify
            ("batch_update_findings", processed),
            ("get_findings", {"Findings": [updated]}),
            ("get_findings", {"Findings": [updated]}),  # apply again
            ("get_findings", {"Findings": [updated]}),  # rollback: read, update, verify
            ("batch_update_findings", processed),
            ("get_findings", {"Findings": [raw]}),
        ):
            stub.add_response(*response)
        run_phases(action, ctx, None, operations, counted)
    return counted


STUBBED = {
    "guardduty.archive-finding": count_stubbed_guardduty,
    "securityhub.update-finding": count_stubbed_securityhub,
}


def report(rows: list[Counted]) -> None:
    by_name = {r.action: r for r in rows}
    header = (
        f"{'action':<30}" + "".join(f"{p:>13}" for p in PHASES) + f"   {'AWS runbook (Contain path)':<40}{'steps':>6}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        runbook = RUNBOOK_OF.get(row.action)
        label, steps = (runbook.name, str(len(runbook.steps))) if runbook else ("n/a", "")
        counts = "".join(f"{row.count(p):>13}" for p in PHASES)
        print(f"{row.action:<30}{counts}   {label:<40}{steps:>6}" + (f"   ({row.note})" if row.note else ""))
    parts = [by_name[n] for n in USER_CONTAINMENT if n in by_name]
    if len(parts) == len(USER_CONTAINMENT):
        counts = "".join(f"{sum(p.count(phase) for p in parts):>13}" for phase in PHASES)
        print(f"{'user: key + console + deny':<30}{counts}   {IAM_USER.name:<40}{len(IAM_USER.steps):>6}")
    print(
        "\nCalls include the reads that record the before-state and verify the result. A runbook step is an SSM "
        "Automation step (often several API calls), not an API call. Operations per phase:"
    )
    for row in rows:
        print(f"  {row.action}: " + "; ".join(f"{p}: {', '.join(row.calls.get(p, [])) or '-'}" for p in PHASES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="only these actions")
    parser.add_argument("--quick", action="store_true", help="one action per service (a smoke run)")
    args = parser.parse_args()
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")
    logging.getLogger("clampdown").setLevel(logging.CRITICAL)
    from chalicelib.actions import REGISTRY

    names = [n for n, cls in REGISTRY.items() if n in SETUPS or n in STUBBED]
    missing = sorted(n for n, cls in REGISTRY.items() if getattr(cls, "changes_aws", True) and n not in names)
    if missing:
        raise SystemExit(f"actions with no set-up here (add them to SETUPS): {', '.join(missing)}")
    if args.quick:
        names = ["iam.deactivate-access-key", "ec2.isolate-instance", "s3.lockdown-bucket", "guardduty.archive-finding"]
    if args.only:
        names = [n for n in names if n in args.only]
    rows = [STUBBED[n]() if n in STUBBED else count_on_moto(n) for n in names]
    report(rows)


if __name__ == "__main__":
    main()
