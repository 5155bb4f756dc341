"""The shipped playbook library: valid, tested, and responding as documented to real events.

Real corpus events (``tests/data/corpus``) are used wherever one exists; the constructed ones
(``tests/data/constructed``, each with its README row) only where none was published. Where a
pattern branch has no sample at all, the test takes a real record and changes only the fields that
branch reads, and says so.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore
import pytest
from click.testing import CliRunner

from chalicelib.actions import REGISTRY
from chalicelib.findings import canonical_event
from chalicelib.patterns import compile_pattern
from chalicelib.planner import Evaluation, evaluate
from chalicelib.playbooks.library import Library
from clampdown.cli import cli
from clampdown.data.finding_types import guardduty_finding_types
from clampdown.playbook_tests import run_suite
from clampdown.playbooks.loader import load_library, validate_paths
from tests.conftest import ROOT

PLAYBOOKS = ROOT / "playbooks"
DATA = ROOT / "tests" / "data"
CORPUS = DATA / "corpus"
CONSTRUCTED = DATA / "constructed"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def library() -> Library:
    return load_library([PLAYBOOKS])


def event(relative: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / relative).read_text())
    loaded.pop("debug", None)
    return loaded


def run(library: Library, ev: dict[str, Any]) -> Evaluation:
    return evaluate(ev, library, now=NOW)


def acting(evaluation: Evaluation) -> set[str]:
    return {plan.playbook.name for plan in evaluation.plans}


def steps(evaluation: Evaluation, playbook: str) -> list[tuple[str, str | None, str, bool]]:
    """(action, target id/name, mode, skipped) of one playbook's plan."""
    return [
        (s.action, (s.target.id or s.target.name) if s.target else None, s.mode, bool(s.skipped))
        for plan in evaluation.plans
        if plan.playbook.name == playbook
        for s in plan.steps
    ]


# -- the library is valid and every playbook is tested -----------------------------------------------
def test_validate_passes_on_the_whole_library() -> None:
    docs, issues = validate_paths([PLAYBOOKS])
    assert [str(i) for i in issues if i.level == "error"] == []
    assert len(docs) == len(list(PLAYBOOKS.glob("*.yaml"))) >= 20
    result = CliRunner().invoke(cli, ["validate", str(PLAYBOOKS)])
    assert result.exit_code == 0, result.output


def test_every_playbook_has_a_positive_and_a_negative_case(library: Library) -> None:
    for playbook in library.playbooks:
        matches = [t.expect["match"] for t in playbook.tests]
        assert True in matches and False in matches, playbook.name
        positives = [t for t in playbook.tests if t.expect["match"]]
        assert any("steps" in t.expect for t in positives), f"{playbook.name}: no positive case names its steps"


def test_every_case_passes_strict(library: Library) -> None:
    result = run_suite(library, strict=True)
    failures = [(p.name, c.name, c.problems) for p in result.playbooks for c in p.cases if c.status != "pass"]
    assert failures == [] and result.passed
    cli_result = CliRunner().invoke(cli, ["test", "--strict", "--playbooks", str(PLAYBOOKS)])
    assert cli_result.exit_code == 0, cli_result.output


def test_every_playbook_documents_its_threat_and_choices(library: Library) -> None:
    generic = {"gd-default-notify", "sh-imported-high-severity"}  # any threat: no single technique
    for playbook in library.playbooks:
        assert len(playbook.description) > 200, playbook.name
        assert playbook.threat.get("summary"), playbook.name
        if playbook.name not in generic:
            assert playbook.threat.get("mitre"), playbook.name
        assert playbook.mode in ("auto", "approval"), playbook.name
        for step in playbook.steps:
            assert step.action in REGISTRY


def test_positive_cases_use_real_events_where_the_corpus_has_one(library: Library) -> None:
    """A playbook whose every positive case is constructed must have no real event that it acts on."""
    real = [
        p for d in ("guardduty", "cloudtrail", "securityhub", "securityhub-ocsf") for p in (CORPUS / d).glob("*.json")
    ]
    real_events = [(p, json.loads(p.read_text())) for p in real if "PARTIAL" not in p.name]
    for playbook in library.playbooks:
        positives = [t.event for t in playbook.tests if t.expect["match"]]
        if any("/corpus/" in str(e) for e in positives):
            continue
        single = Library([playbook])
        acted_on = [p.name for p, ev in real_events if run(single, ev).plans]
        assert acted_on == [], f"{playbook.name} has real positive events {acted_on} but tests only constructed ones"


# -- the standards ----------------------------------------------------------------------------------
def _alternatives(pattern: dict[str, Any]) -> list[dict[tuple[str, ...], list[Any]]]:
    return [{test.path: test.clause for test in alt} for alt in compile_pattern(pattern).alternatives]


def test_guardduty_families_are_matched_by_prefix_and_name_known_types(library: Library) -> None:
    known = guardduty_finding_types()
    names = [t.name for t in known.all]
    for playbook in library.playbooks:
        for alt in _alternatives(dict(playbook.match)):
            if alt.get(("source",)) != ["aws.guardduty"]:
                continue
            for clause in alt.get(("detail", "type"), []):
                assert isinstance(clause, dict) and set(clause) == {"prefix"}, (
                    f"{playbook.name}: {clause!r} - match GuardDuty types by prefix (renames keep matching)"
                )
                hits = [n for n in names if n.startswith(clause["prefix"])]
                assert hits, f"{playbook.name}: prefix {clause['prefix']!r} names no known GuardDuty type"


def test_cloudtrail_detections_pin_source_detail_type_and_event_source(library: Library) -> None:
    for playbook in library.playbooks:
        alternatives = _alternatives(dict(playbook.match))
        detail_types = {d for alt in alternatives for d in alt.get(("detail-type",), [])}
        if not any("via CloudTrail" in d for d in detail_types):
            continue
        for alt in alternatives:
            assert alt.get(("source",)) and all(s.startswith("aws.") for s in alt[("source",)]), playbook.name
            assert alt.get(("detail-type",)), playbook.name
            sources = alt.get(("detail", "eventSource"))
            assert sources and all(isinstance(s, str) and s.endswith(".amazonaws.com") for s in sources), playbook.name
            for source in sources:
                assert f"aws.{source.split('.')[0]}" in alt[("source",)], (playbook.name, source)
        text = " ".join(playbook.description.split()).lower()
        assert "successful" in text or "failed" in text, f"{playbook.name}: say which calls (failed?) it takes"


def test_no_playbook_acts_on_archived_findings_unless_it_says_so(library: Library) -> None:
    deliberate = {p.name for p in library.playbooks if p.conditions.include_archived}
    assert deliberate == {"sh-custom-action-contain"}
    archived = [
        "corpus/guardduty/gd_awssamples-autoresp_PenTest-S3-ParrotLinux.json",
        "corpus/guardduty/gd_awssamples-autoresp_Recon-IAMUser-MaliciousIPCaller-Custom.json",
        "corpus/guardduty/gd_blu371ck_PascalCase-detail_Recon-EC2-Portscan.json",
        "corpus/securityhub-ocsf/sh2_sumologic-docs_2004_GuardDuty-Stealth-IAMUser-CloudTrailLoggingDisabled.json",
    ]
    for relative in archived:
        evaluation = run(library, event(relative))
        assert evaluation.findings and all(f.archived for f in evaluation.findings), relative
        assert evaluation.plans == [], relative
        assert all("archived" in r.reason for r in evaluation.rejected), relative


# -- representative events → the documented response -------------------------------------------------
TABLE = [
    # (event, playbooks that act, a step that must be planned: (playbook, action, mode))
    (
        "corpus/guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json",
        {"gd-iam-compromised-credentials", "gd-default-notify"},
        ("gd-iam-compromised-credentials", "iam.deactivate-access-key", "auto"),
    ),
    (
        "corpus/guardduty/gd_c7n_Backdoor-EC2-C-CActivity-B-DNS.json",
        {"gd-ec2-compromised-instance", "gd-default-notify"},
        ("gd-ec2-compromised-instance", "ec2.isolate-instance", "auto"),
    ),
    (
        "corpus/cloudtrail/ct_raw_stratus_aws.defense-evasion.cloudtrail-stop_StopLogging.json",
        {"ct-logging-tampering"},
        ("ct-logging-tampering", "notify.log", "auto"),
    ),
    (
        "corpus/cloudtrail/ct_raw_panther_StopLogging_CloudTrail-Was-Stopped.json",
        {"ct-logging-tampering"},
        ("ct-logging-tampering", "notify.log", "auto"),
    ),
    (
        "corpus/cloudtrail/ct_raw_stratus_aws.defense-evasion.cloudtrail-delete_DeleteTrail.json",
        {"ct-logging-tampering"},
        ("ct-logging-tampering", "notify.log", "auto"),
    ),
    (
        "corpus/cloudtrail/ct_raw_stratus_aws.defense-evasion.cloudtrail-event-selectors_PutEventSelectors.json",
        {"ct-logging-tampering"},
        ("ct-logging-tampering", "notify.log", "auto"),
    ),
    (
        "corpus/cloudtrail/ct_raw_awsdocs_ConsoleLogin_Root_Success_event-reference-aws-console-sign-in-events_b6.json",
        {"ct-root-activity"},
        ("ct-root-activity", "notify.log", "auto"),
    ),
    (
        "corpus/cloudtrail/ct_raw_panther_CreateAccessKey_Root-Access-Key-Created.json",
        {"ct-root-activity"},
        ("ct-root-activity", "notify.log", "auto"),
    ),
    (
        "corpus/cloudtrail/ct_raw_stratus_aws.persistence.lambda-backdoor-function_AddPermission20150331v2.json",
        {"ct-lambda-public-exposure"},
        ("ct-lambda-public-exposure", "lambda.remove-public-access", "auto"),
    ),
    (
        "corpus/cloudtrail/ct_raw_stratus_aws.persistence.iam-create-admin-user_AttachUserPolicy.json",
        {"ct-iam-admin-granted"},
        ("ct-iam-admin-granted", "iam.detach-policies", "approval"),
    ),
    (
        "corpus/cloudtrail/ct_raw_panther_AttachRolePolicy_IAM-Role-Policy-Attached-with-Administrator-Access.json",
        {"ct-iam-admin-granted"},
        ("ct-iam-admin-granted", "iam.detach-policies", "approval"),
    ),
    (
        "corpus/cloudtrail/ct_raw_stratus_aws.persistence.iam-create-user-login-profile_CreateLoginProfile.json",
        {"ct-iam-console-password-set"},
        ("ct-iam-console-password-set", "iam.disable-console-login", "approval"),
    ),
    (
        "corpus/cloudtrail/ct_raw_stratus_aws.persistence.iam-backdoor-role_UpdateAssumeRolePolicy.json",
        {"ct-iam-role-trust-changed"},
        ("ct-iam-role-trust-changed", "iam.quarantine-role", "approval"),
    ),
    (
        "corpus/cloudtrail/ct_raw_panther_PutBucketPolicy_S3-Made-Publicly-Accessible.json",
        {"ct-s3-bucket-made-public"},
        ("ct-s3-bucket-made-public", "s3.block-public-access", "auto"),
    ),
    (
        "corpus/cloudtrail/ct_raw_stratus_aws.exfiltration.ec2-security-group-open-port-22-ingress_AuthorizeSecurityGroupIngress.json",
        {"ct-security-group-open-admin-port"},
        ("ct-security-group-open-admin-port", "notify.log", "auto"),
    ),
    (
        "corpus/guardduty/gd_eksblueprints_RAW-API-PascalCase_PrivilegeEscalation-Kubernetes-PrivilegedContainer.json",
        {"gd-container-workload-notify", "gd-default-notify"},
        ("gd-container-workload-notify", "notify.log", "auto"),
    ),
    (
        "corpus/guardduty/gd_blu371ck_PascalCase-detail_Discovery-RDS-TorIPCaller.json",
        {"gd-rds-threat-notify", "gd-default-notify"},
        ("gd-rds-threat-notify", "notify.log", "auto"),
    ),
    (
        "corpus/guardduty/gd_panther_critical_Critical-Sev-Finding_AttackSequence-IAM-CompromisedCredentials.json",
        {"gd-attack-sequence", "gd-default-notify"},
        ("gd-attack-sequence", "notify.log", "auto"),
    ),
    (
        "corpus/securityhub/sh_c7n-placebo_inspector_CVE_0.json",
        {"sh-imported-high-severity"},
        ("sh-imported-high-severity", "notify.log", "auto"),
    ),
    (
        "corpus/securityhub-ocsf/sh2_cruxstack_2003_SecurityHub-Config.1-CIS-2.5.json",
        {"sh-imported-high-severity"},
        ("sh-imported-high-severity", "notify.log", "auto"),
    ),
    # constructed (no real sample): see tests/data/constructed/README.md
    (
        "constructed/gd_constructed_Backdoor-Lambda-CCActivity-B.json",
        {"gd-lambda-compromised-function", "gd-default-notify"},
        ("gd-lambda-compromised-function", "lambda.zero-concurrency", "auto"),
    ),
    (
        "constructed/gd_constructed_Execution-Runtime-ReverseShell.json",
        {"gd-runtime-compromised-instance", "gd-default-notify"},
        ("gd-runtime-compromised-instance", "ec2.isolate-instance", "auto"),
    ),
    (
        "constructed/gd_constructed_UnauthorizedAccess-EC2-SSHBruteForce_ACTOR.json",
        {"gd-ec2-instance-attacking-others", "gd-default-notify"},
        ("gd-ec2-instance-attacking-others", "ec2.isolate-instance", "approval"),
    ),
    (
        "constructed/gd_constructed_AttackSequence-IAM-CompromisedCredentials_sequence.json",
        {"gd-attack-sequence", "gd-default-notify"},
        ("gd-attack-sequence", "iam.revoke-role-sessions", "approval"),
    ),
    (
        "constructed/sh_constructed_Custom-Action_ClampdownContain_GuardDuty-SSHBruteForce.json",
        {"sh-custom-action-contain"},
        ("sh-custom-action-contain", "ec2.isolate-instance", "approval"),
    ),
    (
        "constructed/ct_constructed_CreateFunctionUrlConfig20211031_AuthType-NONE.json",
        {"ct-lambda-public-url"},
        ("ct-lambda-public-url", "lambda.remove-public-access", "auto"),
    ),
]


@pytest.mark.parametrize(("relative", "playbooks", "step"), TABLE, ids=[Path(r).stem[:60] for r, _, _ in TABLE])
def test_representative_events_get_the_documented_response(
    library: Library, relative: str, playbooks: set[str], step: tuple[str, str, str]
) -> None:
    evaluation = run(library, event(relative))
    assert acting(evaluation) == playbooks
    playbook, action, mode = step
    planned = [(a, m) for a, _, m, skipped in steps(evaluation, playbook) if not skipped]
    assert (action, mode) in planned, planned


def test_ssh_brute_force_on_a_target_instance_is_announced_and_never_isolated(library: Library) -> None:
    for relative in (
        "corpus/guardduty/gd_blu371ck_PascalCase-detail_UnauthorizedAccess-EC2-SSHBruteForce.json",
        "corpus/guardduty/gd_blu371ck_PascalCase-detail_UnauthorizedAccess-EC2-RDPBruteForce.json",
        "corpus/guardduty/gd_sumologic-docs_Recon-EC2-PortProbeUnprotectedPort.json",
    ):
        evaluation = run(library, event(relative))
        assert evaluation.findings[0].details["resource_role"] == "TARGET"
        assert acting(evaluation) == {"gd-ec2-instance-targeted-notify"}, relative
        assert [s[0] for plan in evaluation.plans for s in [(x.action,) for x in plan.steps]] == ["notify.log"]


def test_the_same_brute_force_with_the_instance_as_actor_is_isolated_after_approval(library: Library) -> None:
    # The real TARGET sample with only service.resourceRole flipped, as GuardDuty reports an outbound attack.
    ev = canonical_event(
        event("corpus/guardduty/gd_blu371ck_PascalCase-detail_UnauthorizedAccess-EC2-SSHBruteForce.json")
    )
    ev = copy.deepcopy(ev)
    ev["detail"]["service"]["resourceRole"] = "ACTOR"
    ev["detail"]["severity"] = 8
    evaluation = run(library, ev)
    assert acting(evaluation) == {"gd-ec2-instance-attacking-others", "gd-default-notify"}
    assert ("ec2.isolate-instance", "i-99999999", "approval", False) in steps(
        evaluation, "gd-ec2-instance-attacking-others"
    )


@pytest.mark.parametrize(
    "finding_type",
    [
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration",
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS",
        "UnauthorizedAccess:IAMUser/ResourceCredentialExfiltration.OutsideAWS",
    ],
)
def test_the_renamed_credential_exfiltration_family_keeps_its_response(library: Library, finding_type: str) -> None:
    # The real Tor finding with only its type changed: the old name and both new names are contained alike.
    ev = copy.deepcopy(event("corpus/guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"))
    ev["detail"]["type"] = finding_type
    evaluation = run(library, ev)
    assert "gd-iam-compromised-credentials" in acting(evaluation)
    assert ("iam.deactivate-access-key", "GeneratedFindingAccessKeyId", "auto", False) in steps(
        evaluation, "gd-iam-compromised-credentials"
    )


# -- pattern branches without a sample: real records with only the branch's fields changed -------------
def _ct(relative: str, **changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(event(relative))
    for dotted, value in changes.items():
        node = record
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return record


ADMIN_DOC = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
PUTUSERPOLICY = "corpus/cloudtrail/ct_raw_panther_PutUserPolicy_An-AWS-IAM-Access-Key-was-Compromised.json"
BPA = "corpus/cloudtrail/ct_raw_panther_DeleteBucketPublicAccessBlock_Public-Access-Block-Deleted-Successfully.json"
ACL = "corpus/cloudtrail/ct_raw_panther_PutBucketAcl_S3-Bucket-Policy-Modified.json"
SG = "corpus/cloudtrail/ct_raw_stratus_aws.exfiltration.ec2-security-group-open-port-22-ingress_AuthorizeSecurityGroupIngress.json"


@pytest.mark.parametrize(
    ("record", "acts"),
    [
        (_ct(PUTUSERPOLICY, requestParameters__policyDocument=ADMIN_DOC), True),
        (_ct(PUTUSERPOLICY, requestParameters__policyDocument=json.dumps(json.loads(ADMIN_DOC), indent=1)), True),
        (
            _ct(
                PUTUSERPOLICY,
                requestParameters__policyDocument=ADMIN_DOC.replace('"*", "Resource"', '"s3:*", "Resource"'),
            ),
            False,
        ),
        (_ct(PUTUSERPOLICY, requestParameters__policyDocument=ADMIN_DOC, errorCode="AccessDenied"), False),
    ],
    ids=["compact", "indented", "not-every-action", "denied"],
)
def test_an_inline_policy_allowing_every_action_is_an_admin_grant(
    library: Library, record: dict[str, Any], acts: bool
) -> None:
    evaluation = run(library, record)
    assert ("ct-iam-admin-granted" in acting(evaluation)) is acts
    if acts:
        assert ("iam.detach-policies", "compromised_user", "approval", False) in steps(
            evaluation, "ct-iam-admin-granted"
        )


@pytest.mark.parametrize(
    ("record", "acts"),
    [
        # The field names of a real PutBucketPublicAccessBlock record (Panther's EventBridge test event).
        (
            _ct(
                BPA,
                eventName="PutBucketPublicAccessBlock",
                requestParameters__PublicAccessBlockConfiguration={
                    "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/",
                    "RestrictPublicBuckets": True,
                    "BlockPublicPolicy": False,
                    "BlockPublicAcls": False,
                    "IgnorePublicAcls": True,
                },
            ),
            True,
        ),
        (
            _ct(
                BPA,
                eventName="PutBucketPublicAccessBlock",
                requestParameters__PublicAccessBlockConfiguration={
                    "RestrictPublicBuckets": True,
                    "BlockPublicPolicy": True,
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                },
            ),
            False,
        ),
        (_ct(ACL, **{"requestParameters__x-amz-acl": ["public-read"]}), True),
        (
            _ct(
                ACL,
                requestParameters__AccessControlPolicy={
                    "AccessControlList": {
                        "Grant": [
                            {
                                "Grantee": {
                                    "xsi:type": "Group",
                                    "URI": "http://acs.amazonaws.com/groups/global/AllUsers",
                                },
                                "Permission": "READ",
                            }
                        ]
                    }
                },
            ),
            True,
        ),
    ],
    ids=["bpa-off", "bpa-on", "canned-public-read", "grant-allusers"],
)
def test_other_ways_of_making_a_bucket_public(library: Library, record: dict[str, Any], acts: bool) -> None:
    evaluation = run(library, record)
    assert ("ct-s3-bucket-made-public" in acting(evaluation)) is acts
    if acts:
        assert [a for a, _, _, skipped in steps(evaluation, "ct-s3-bucket-made-public") if not skipped] == [
            "s3.deny-public-policy", "s3.block-public-access", "notify.log"
        ]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "acts"),
    [
        ({"requestParameters__cidrIp": "0.0.0.0/0"}, True),
        ({"requestParameters__cidrIp": "10.0.0.0/8"}, False),
        ({"requestParameters__cidrIp": "10.0.0.0/10"}, False),
        ({"requestParameters__fromPort": 443, "requestParameters__toPort": 443}, False),
        ({"requestParameters__fromPort": 0, "requestParameters__toPort": 65535}, True),
        ({"requestParameters__fromPort": 5400, "requestParameters__toPort": 5500}, True),
        (
            {
                "requestParameters__ipProtocol": "-1",
                "requestParameters__fromPort": None,
                "requestParameters__toPort": None,
            },
            True,
        ),
        ({"errorCode": "Client.InvalidPermission.Duplicate"}, False),
    ],
    ids=["anywhere", "private", "slash-10", "https", "all-ports", "range-with-postgres", "all-protocols", "failed"],
)
def test_admin_ports_opened_to_the_internet(library: Library, changes: dict[str, Any], acts: bool) -> None:
    evaluation = run(library, _ct(SG, **changes))
    assert ("ct-security-group-open-admin-port" in acting(evaluation)) is acts


def test_the_ip_permissions_shape_with_a_private_source_is_not_an_exposure(library: Library) -> None:
    record = event("constructed/ct_constructed_AuthorizeSecurityGroupIngress_ipPermissions-RDP-from-anywhere.json")
    assert "ct-security-group-open-admin-port" in acting(run(library, record))
    item = record["requestParameters"]["ipPermissions"]["items"][0]
    item["ipRanges"]["items"][0]["cidrIp"] = "10.20.0.0/16"
    item["ipv6Ranges"] = {}
    assert "ct-security-group-open-admin-port" not in acting(run(library, record))


# -- every corpus event through the shipped library ---------------------------------------------------
def all_events() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for folder in ("guardduty", "cloudtrail", "securityhub", "securityhub-ocsf"):
        for path in sorted((CORPUS / folder).glob("*.json")):
            if "PARTIAL" in path.name:
                continue
            out.append((f"corpus/{folder}/{path.name}", json.loads(path.read_text())))
    for path in sorted(CONSTRUCTED.glob("*.json")):
        out.append((f"constructed/{path.name}", json.loads(path.read_text())))
    return out


#: The only playbooks allowed to isolate an instance without a human.
AUTO_ISOLATION = {"gd-ec2-compromised-instance", "gd-runtime-compromised-instance"}
#: Types whose instance is the compromised party whatever service.resourceRole says (GuardDuty's real TorClient,
#: TorRelay and MetadataDNSRebind findings say TARGET): isolation, after approval, is allowed for them.
COMPROMISED_BY_NATURE = (
    "UnauthorizedAccess:EC2/TorClient", "UnauthorizedAccess:EC2/TorRelay", "UnauthorizedAccess:EC2/MetadataDNSRebind",
    "Recon:EC2/Portscan", "Behavior:EC2/", "DefenseEvasion:EC2/",
)  # fmt: skip


def test_every_corpus_event_plans_cleanly(library: Library) -> None:
    acted = 0
    for name, ev in all_events():
        evaluation = run(library, ev)
        for plan in evaluation.plans:
            acted += 1
            for step in plan.steps:
                # Templates use default(...) wherever a field may be missing: no step is lost to one.
                assert not (step.skipped or "").startswith("{{"), (name, plan.playbook.name, step.skipped)
                if step.action == "ec2.isolate-instance" and step.mode == "auto":
                    assert plan.playbook.name in AUTO_ISOLATION, (name, plan.playbook.name)
                if step.action == "ec2.isolate-instance" and not step.skipped and plan.finding.source == "guardduty":
                    role = plan.finding.details.get("resource_role")
                    compromise = plan.playbook.name in AUTO_ISOLATION or plan.playbook.name == "gd-attack-sequence"
                    compromise = compromise or plan.finding.type.startswith(COMPROMISED_BY_NATURE)
                    assert compromise or role == "ACTOR", (name, plan.playbook.name, role)
    assert acted >= 50


def test_every_playbook_acts_on_at_least_one_corpus_or_constructed_event(library: Library) -> None:
    acted = {name for _, ev in all_events() for name in acting(run(library, ev))}
    assert acted == {p.name for p in library.playbooks}


# -- the constructed events follow the documented formats ---------------------------------------------
MODEL = Path(botocore.__file__).parent / "data" / "guardduty" / "2017-11-28" / "service-2.json.gz"
SHAPES: dict[str, Any] = json.loads(gzip.decompress(MODEL.read_bytes()))["shapes"]


def unknown_keys(value: Any, shape_name: str, path: str = "detail") -> list[str]:
    """Keys of ``value`` that are not wire names (``locationName``) of the GuardDuty API shape."""
    shape = SHAPES[shape_name]
    found: list[str] = []
    if shape["type"] == "structure" and isinstance(value, dict) and shape_name != "ServiceAdditionalInfo":
        by_wire = {spec.get("locationName", m): spec["shape"] for m, spec in shape["members"].items()}
        for key, item in value.items():
            found += [f"{path}.{key}"] if key not in by_wire else unknown_keys(item, by_wire[key], f"{path}.{key}")
    elif shape["type"] == "list" and isinstance(value, list):
        for item in value:
            found += unknown_keys(item, shape["member"]["shape"], f"{path}[]")
    elif shape["type"] == "map" and isinstance(value, dict):
        for item in value.values():
            found += unknown_keys(item, shape["value"]["shape"], f"{path}{{}}")
    return found


@pytest.mark.parametrize("path", sorted(CONSTRUCTED.glob("gd_*.json")), ids=lambda p: p.stem)
def test_constructed_guardduty_findings_follow_the_api_model(path: Path) -> None:
    ev = json.loads(path.read_text())
    assert ev["source"] == "aws.guardduty" and ev["detail-type"] == "GuardDuty Finding"
    assert unknown_keys(ev["detail"], "Finding") == []
    assert re.fullmatch(r"[0-9a-f]{32}", ev["detail"]["id"])
    assert ev["detail"]["arn"].endswith("/finding/" + ev["detail"]["id"])


def test_every_constructed_event_has_its_readme_row() -> None:
    readme = (CONSTRUCTED / "README.md").read_text()
    rows = set(re.findall(r"^\| `([^`]+\.json)` \|", readme, re.MULTILINE))
    assert rows == {p.name for p in CONSTRUCTED.glob("*.json")}
    for row in readme.splitlines():
        if row.startswith("| `") and ".json" in row:
            assert "https://docs.aws.amazon.com/" in row or "schema.ocsf.io" in row, row[:80]


def test_constructed_cloudtrail_records_look_like_the_real_ones() -> None:
    real = json.loads((CORPUS / "cloudtrail" / Path(SG).name).read_text())
    for path in CONSTRUCTED.glob("ct_*.json"):
        record = json.loads(path.read_text())
        missing = {k for k in real if k not in record} - {"tlsDetails", "sessionCredentialFromConsole", "resources"}
        assert not missing, (path.name, missing)
        assert (
            record["eventType"] == "AwsApiCall" and record["recipientAccountId"] == record["userIdentity"]["accountId"]
        )
