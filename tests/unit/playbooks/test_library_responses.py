"""The shipped library answers what a security engineer expects of it, and its repeated parts stay in step.

Real corpus events are used throughout; where a branch has no sample, a real record is taken and only the
fields that branch reads are changed (and the test says so).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.findings import canonical_event
from chalicelib.planner import Evaluation, evaluate
from chalicelib.playbooks.library import Library
from clampdown.playbooks.loader import load_library
from tests.conftest import ROOT

CORPUS = ROOT / "tests" / "data" / "corpus"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def library() -> Library:
    return load_library([ROOT / "playbooks"])


def event(relative: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CORPUS / relative).read_text())
    loaded.pop("debug", None)
    return loaded


def plans(library: Library, ev: dict[str, Any]) -> dict[str, list[tuple[str, str | None, str, bool]]]:
    """playbook → [(action, target id or name, mode, skipped)] for every playbook that acts."""
    evaluation: Evaluation = evaluate(ev, library, now=NOW)
    out: dict[str, list[tuple[str, str | None, str, bool]]] = {}
    for plan in evaluation.plans:
        out.setdefault(plan.playbook.name, []).extend(
            (s.action, (s.target.id or s.target.name) if s.target else None, s.mode, bool(s.skipped))
            for s in plan.steps
        )
    return out


# -- instances that are the compromised party whatever their resource role -------------------------------
@pytest.mark.parametrize(
    ("name", "playbook"),
    [
        ("UnauthorizedAccess-EC2-TorClient", "gd-ec2-instance-attacking-others"),
        ("UnauthorizedAccess-EC2-TorRelay", "gd-ec2-instance-attacking-others"),
        ("UnauthorizedAccess-EC2-MetadataDNSRebind", "gd-ec2-metadata-credentials-exposed"),
    ],
)
def test_high_instance_findings_reported_as_target_get_evidence_and_isolation(
    library: Library, name: str, playbook: str
) -> None:
    ev = event(f"guardduty/gd_blu371ck_PascalCase-detail_{name}.json")
    detail = ev["detail"]
    assert detail["Service"]["ResourceRole"] == "TARGET" and detail["Severity"] == 8  # as GuardDuty published it
    acting = plans(library, ev)
    assert set(acting) == {playbook, "gd-default-notify"}
    steps = {action: (target, mode) for action, target, mode, skipped in acting[playbook] if not skipped}
    assert steps["ec2.snapshot-volumes"] == ("i-99999999", "auto")
    assert steps["ec2.capture-forensics"] == ("i-99999999", "auto")
    assert steps["ec2.isolate-instance"] == ("i-99999999", "approval")


def test_evidence_comes_before_any_change_to_an_instance(library: Library) -> None:
    """The evidence block repeated in every playbook that isolates (the format has no include): same order."""
    for playbook in library.playbooks:
        actions = [s.action for s in playbook.steps]
        if "ec2.isolate-instance" not in actions:
            continue
        evidence = [i for i, a in enumerate(actions) if a in ("ec2.snapshot-volumes", "ec2.capture-forensics")]
        changes = [i for i, a in enumerate(actions) if a in ("ec2.isolate-instance", "ec2.detach-instance-profile")]
        assert "ec2.snapshot-volumes" in actions and max(evidence) < min(changes), playbook.name
        for step in playbook.steps:
            if step.action in ("ec2.snapshot-volumes", "ec2.capture-forensics"):
                assert step.on_error == "continue", (playbook.name, step.action, "evidence never blocks isolation")


def test_the_admin_port_list_is_the_same_for_every_request_shape(library: Library) -> None:
    """The list is written once per request shape (a pattern cannot AND two $or at one level); never apart."""
    parameters = library.by_name["ct-security-group-open-admin-port"].match["detail"]["requestParameters"]["$or"]
    legacy, permissions = parameters
    lists = [legacy["$or"]] + [branch["$or"] for branch in permissions["ipPermissions"]["items"]["$or"]]
    assert len(lists) == 3 and lists[0] == lists[1] == lists[2]
    ports = [b["fromPort"][0]["numeric"][1] for b in lists[0] if "fromPort" in b]
    assert ports == [22, 445, 1433, 1521, 3306, 3389, 5432, 5900, 6379, 9200, 27017]
    assert all(b["toPort"][0]["numeric"] == [">=", b["fromPort"][0]["numeric"][1]] for b in lists[0] if "fromPort" in b)


# -- the default announcement ---------------------------------------------------------------------------
def test_every_medium_or_higher_guardduty_finding_is_announced(library: Library) -> None:
    seen = 0
    for path in sorted((CORPUS / "guardduty").glob("*.json")):
        if "PARTIAL" in path.name:
            continue
        evaluation = evaluate(json.loads(path.read_text()), library, now=NOW)
        for finding in evaluation.findings:
            if finding.severity >= 4 and not finding.archived:
                seen += 1
                assert "gd-default-notify" in {p.playbook.name for p in evaluation.plans}, path.name
    assert seen >= 10


def test_a_medium_recon_finding_no_playbook_contains_is_announced(library: Library) -> None:
    """The audit's example: Recon:IAMUser/UserPermissions at 5 got nothing when only HIGH+ was announced."""
    acting = plans(library, event("guardduty/gd_awscli_RAW-API-PascalCase_Recon-IAMUser-UserPermissions.json"))
    assert acting == {"gd-default-notify": [("notify.log", None, "auto", False)]}


# -- S3: the caller's credentials, after approval -------------------------------------------------------
def test_an_s3_finding_offers_to_cut_the_callers_key_after_approval(library: Library) -> None:
    # The real PenTest:S3/ParrotLinux finding, archived as published; only service.archived is flipped.
    ev = canonical_event(event("guardduty/gd_awssamples-autoresp_PenTest-S3-ParrotLinux.json"))
    assert plans(library, ev) == {}, "archived: left alone"
    ev = copy.deepcopy(ev)
    ev["detail"]["service"]["archived"] = False
    steps = plans(library, ev)["gd-s3-exposure"]
    assert ("s3.block-public-access", "bucketName", "auto", False) in steps
    assert ("iam.deactivate-access-key", "GeneratedFindingAccessKeyId", "approval", False) in steps
    assert ("iam.revoke-role-sessions", None, "approval", True) in steps  # an IAM user's key: no role


# -- the Security Hub custom action: each resource its own kind's containment -----------------------------
def test_the_custom_action_targets_each_step_at_one_kind(library: Library) -> None:
    playbook = library.by_name["sh-custom-action-contain"]
    assert playbook.mode == "approval"
    for step in playbook.steps:
        if step.action in ("notify.log", "securityhub.update-finding"):
            assert step.mode == "auto"
            continue
        assert isinstance(step.target, str | tuple | list) and step.target, step.action
        evidence = step.action in ("ec2.snapshot-volumes", "ec2.capture-forensics", "lambda.snapshot-code")
        assert (step.mode == "auto") is evidence, step.action


# -- CloudTrail events a security engineer expects something for ------------------------------------------
@pytest.mark.parametrize(
    ("relative", "playbook"),
    [
        (
            "cloudtrail/ct_raw_stratus_aws.exfiltration.ec2-share-ebs-snapshot_ModifySnapshotAttribute.json",
            "ct-snapshot-or-image-shared",
        ),
        (
            "cloudtrail/ct_raw_stratus_aws.exfiltration.ec2-share-ami_ModifyImageAttribute.json",
            "ct-snapshot-or-image-shared",
        ),
        (
            "cloudtrail/ct_raw_stratus_aws.exfiltration.rds-share-snapshot_ModifyDBSnapshotAttribute.json",
            "ct-snapshot-or-image-shared",
        ),
        (
            "cloudtrail/ct_raw_awsdocs_PasswordUpdated_Root_event-reference-aws-console-sign-in-events_b9.json",
            "ct-root-activity",
        ),
        (
            "cloudtrail/ct_raw_awsdocs_EnableMFADevice_Root_event-reference-aws-console-sign-in-events_b8.json",
            "ct-root-activity",
        ),
        ("cloudtrail/ct_eb_c7n_CreateBucket_Root_event-cloud-trail-create-bucket.json", "ct-root-activity"),
        (
            "cloudtrail/ct_raw_stratus_aws.persistence.iam-backdoor-user_CreateAccessKey.json",
            "ct-iam-access-key-created",
        ),
        (
            "cloudtrail/ct_raw_stratus_aws.persistence.iam-create-admin-user_CreateAccessKey.json",
            "ct-iam-access-key-created",
        ),
        ("cloudtrail/ct_raw_panther_CreateAccessKey_user1-create-keys-for-user2.json", "ct-iam-access-key-created"),
        (
            "cloudtrail/ct_raw_stratus_aws.persistence.rolesanywhere-create-trust-anchor_CreateTrustAnchor.json",
            "ct-persistent-credential-paths",
        ),
        (
            "cloudtrail/ct_raw_stratus_aws.persistence.sts-federation-token_GetFederationToken.json",
            "ct-persistent-credential-paths",
        ),
        (
            "cloudtrail/ct_raw_stratus_aws.persistence.lambda-layer-extension_UpdateFunctionConfiguration20150331v2.json",
            "ct-lambda-layer-added",
        ),
        (
            "cloudtrail/ct_raw_stratus_aws.initial-access.console-login-without-mfa_ConsoleLogin.json",
            "ct-console-login-without-mfa",
        ),
    ],
    ids=lambda v: v.rsplit("/", 1)[-1][:60],
)
def test_corpus_events_with_an_expected_response_get_it(library: Library, relative: str, playbook: str) -> None:
    acting = plans(library, event(relative))
    assert playbook in acting
    assert acting[playbook][0][0] in ("notify.log", "lambda.snapshot-code")


def _record(relative: str) -> dict[str, Any]:
    return copy.deepcopy(event(relative))


def test_sharing_is_adding_a_permission_publicly_or_with_an_account(library: Library) -> None:
    # The real Stratus Red Team records, with only the permission list changed.
    snapshot = _record("cloudtrail/ct_raw_stratus_aws.exfiltration.ec2-share-ebs-snapshot_ModifySnapshotAttribute.json")
    permission = snapshot["requestParameters"]["createVolumePermission"]
    public = copy.deepcopy(snapshot)
    public["requestParameters"]["createVolumePermission"] = {"add": {"items": [{"group": "all"}]}}
    assert "ct-snapshot-or-image-shared" in plans(library, public)
    removed = copy.deepcopy(snapshot)
    removed["requestParameters"]["createVolumePermission"] = {"remove": permission["add"]}
    assert plans(library, removed) == {}
    denied = copy.deepcopy(snapshot)
    denied["errorCode"] = "Client.UnauthorizedOperation"
    assert plans(library, denied) == {}
    rds = _record("cloudtrail/ct_raw_stratus_aws.exfiltration.rds-share-snapshot_ModifyDBSnapshotAttribute.json")
    rds["requestParameters"] = {**rds["requestParameters"], "valuesToRemove": ["503161813013"]}
    del rds["requestParameters"]["valuesToAdd"]
    assert plans(library, rds) == {}


def test_a_configuration_change_without_layers_is_not_a_layer(library: Library) -> None:
    record = _record(
        "cloudtrail/ct_raw_stratus_aws.persistence.lambda-layer-extension_UpdateFunctionConfiguration20150331v2.json"
    )
    del record["requestParameters"]["layers"]
    assert plans(library, record) == {}


def test_any_root_api_call_is_announced_even_a_refused_one(library: Library) -> None:
    record = _record(
        "cloudtrail/ct_raw_awsdocs_EnableMFADevice_Root_event-reference-aws-console-sign-in-events_b8.json"
    )
    record["errorCode"] = "AccessDenied"  # an SCP refused it: root credentials were still used
    assert "ct-root-activity" in plans(library, record)
    record["userIdentity"] = {**record["userIdentity"], "type": "IAMUser"}
    assert "ct-root-activity" not in plans(library, record)
