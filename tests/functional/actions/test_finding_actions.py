"""Actions on the finding itself: GuardDuty archive and Security Hub updates.

moto does not implement GuardDuty ``GetFindings``/``ArchiveFindings``/``UnarchiveFindings`` nor
Security Hub ``GetFindings``/``BatchUpdateFindings``/``BatchUpdateFindingsV2`` for these uses
(see shared NOTES), so these tests use botocore's ``Stubber``: every request is checked against
the real API model and against the exact parameters expected, and every response against the
model's output shape. The findings are real corpus events, normalized by ``chalicelib.findings``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.stub import Stubber

from chalicelib.actions import REGISTRY, ActionContext, Status
from chalicelib.actions.base import iam_action
from chalicelib.aws import AwsClients
from chalicelib.findings import normalize
from tests.conftest import corpus_event
from tests.functional.actions.permission_table import needed

RAW_API_GD = "guardduty/gd_awscli_RAW-API-PascalCase_Recon-IAMUser-UserPermissions.json"
ASFF_GD = "securityhub/sh_c7n-placebo_guardduty_Recon-IAMUser-UserPermissions_2.json"
OCSF_GD = "securityhub-ocsf/sh2_cruxstack_2004_GuardDuty-Execution-Runtime-NewBinaryExecuted.json"
ASFF_CIS = "securityhub/sh_asr_Custom-Action_CIS_1-6-multi-select.json"


def finding_of(event: str) -> Any:
    return normalize(corpus_event(event))[0]


@contextmanager
def stubbed(boto_session: Any, finding: Any, service: str) -> Iterator[tuple[ActionContext, Stubber, list[str]]]:
    """A context whose ``service`` client is stubbed; yields it, the stubber and the operations made."""
    clients = AwsClients(
        home_account=finding.account, default_region=finding.region, session_factory=lambda: boto_session
    )
    client = clients.client(service, account=finding.account, region=finding.region)
    operations: list[str] = []
    client.meta.events.register("before-parameter-build", lambda model, **_: operations.append(model.name))
    ctx = ActionContext(finding=finding, playbook="test", incident_id="inc-3", aws=clients)
    with Stubber(client) as stub:
        yield ctx, stub, operations
        stub.assert_no_pending_responses()


# -- GuardDuty -------------------------------------------------------------------------------------


def gd_api_finding(detector: str, finding_id: str, archived: bool) -> dict[str, Any]:
    """A real GetFindings item (AWS CLI documentation sample), renamed to the finding at hand."""
    item = copy.deepcopy(corpus_event(RAW_API_GD))
    item["Id"] = finding_id
    item["Arn"] = f"arn:aws:guardduty:us-east-1:111122223333:detector/{detector}/finding/{finding_id}"
    item["Service"]["Archived"] = archived
    return item


@pytest.mark.parametrize(
    ("event", "detector", "finding_id"),
    [
        (RAW_API_GD, "d4b040365221be2b54a6264dcexample", "1ab92989eaf0e742df4a014d5example"),
        (ASFF_GD, "06b01209ca77b0865dd973df0355fc1e", "14b53c819ce4bebac32c31842a5d85f9"),
        (OCSF_GD, "00000000000000000000000000000000", "ffffffffffffffffffffffffffffffff"),
    ],
    ids=["native", "security-hub-asff", "security-hub-ocsf"],
)
def test_archive_guardduty_finding(event: str, detector: str, finding_id: str, boto_session: Any) -> None:
    finding = finding_of(event)
    action = REGISTRY["guardduty.archive-finding"]({})
    key = {"DetectorId": detector, "FindingIds": [finding_id]}
    with stubbed(boto_session, finding, "guardduty") as (ctx, stub, operations):

        def read(archived: bool) -> None:
            stub.add_response("get_findings", {"Findings": [gd_api_finding(detector, finding_id, archived)]}, key)

        read(False)  # plan
        plan = action.plan(ctx, None)
        read(False)  # apply: read, archive, verify
        stub.add_response("archive_findings", {}, key)
        read(True)
        result = action.apply(ctx, None)
        read(True)  # apply again
        again = action.apply(ctx, None)
        read(True)  # rollback plan: read only
        rollback_plan = action.plan_rollback(ctx, None, result.before or {}, wrote=result.after)
        read(True)  # rollback: read, unarchive, read back
        stub.add_response("unarchive_findings", {}, key)
        read(False)
        rolled = action.rollback(ctx, None, result.before or {}, wrote=result.after)

    assert [c.operation for c in plan.calls] == ["ArchiveFindings"]
    assert plan.before == {"detector_id": detector, "finding_id": finding_id, "archived": False}
    assert result.status == Status.CONTAINED and [str(c) for c in result.calls_made] == [str(c) for c in plan.calls]
    assert again.status == Status.ALREADY_CONTAINED and again.calls_made == []
    assert [str(c) for c in rollback_plan.calls] == [
        f'guardduty:UnarchiveFindings(DetectorId={detector}, FindingIds=["{finding_id}"])'
    ]
    assert rollback_plan.before == {"detector_id": detector, "finding_id": finding_id, "archived": True}
    assert rolled.status == Status.ROLLED_BACK and [str(c) for c in rolled.calls_made] == [
        str(c) for c in rollback_plan.calls
    ]
    assert needed(("guardduty", op) for op in operations) <= set(action.permissions)


def test_archive_skips_findings_that_are_not_guardduty(boto_session: Any) -> None:
    with stubbed(boto_session, finding_of(ASFF_CIS), "guardduty") as (ctx, _, operations):
        result = REGISTRY["guardduty.archive-finding"]({}).apply(ctx, None)
    assert result.status == Status.SKIPPED and "not a GuardDuty finding" in (result.reason or "")
    assert operations == []


def test_archive_missing_finding_and_access_denied_fail_precisely(boto_session: Any) -> None:
    finding = finding_of(RAW_API_GD)
    detector, finding_id = "d4b040365221be2b54a6264dcexample", "1ab92989eaf0e742df4a014d5example"
    key = {"DetectorId": detector, "FindingIds": [finding_id]}
    with stubbed(boto_session, finding, "guardduty") as (ctx, stub, _):
        stub.add_response("get_findings", {"Findings": []}, key)
        missing = REGISTRY["guardduty.archive-finding"]({}).apply(ctx, None)
        stub.add_response("get_findings", {"Findings": [gd_api_finding(detector, finding_id, False)]})
        stub.add_client_error("archive_findings", "AccessDeniedException", "not authorized", 403, expected_params=key)
        denied = REGISTRY["guardduty.archive-finding"]({}).apply(ctx, None)
    assert missing.status == Status.FAILED and missing.error_code == "FindingNotFound"
    assert denied.status == Status.FAILED and denied.error_code == "AccessDeniedException" and denied.undo == []


def test_archive_offline_plan_names_the_finding(boto_session: Any) -> None:
    plan = REGISTRY["guardduty.archive-finding"]({}).plan(ActionContext(finding=finding_of(ASFF_GD)), None)
    assert [str(c) for c in plan.calls] == [
        'guardduty:ArchiveFindings(DetectorId=06b01209ca77b0865dd973df0355fc1e, FindingIds=["14b53c819ce4bebac32c31842a5d85f9"])'
    ]


# -- Security Hub ----------------------------------------------------------------------------------

NOTE = "Contained by Clampdown\x07 (incident inc-3): " + "details " * 100


def asff_update(raw: dict[str, Any], **changes: Any) -> dict[str, Any]:
    updated = copy.deepcopy(raw)
    updated.update(changes)
    return updated


def test_update_asff_finding(boto_session: Any) -> None:
    event = corpus_event(ASFF_CIS)
    raw = {**event["detail"]["findings"][0], "UserDefinedFields": {"ticket": "T-1"}}
    finding = normalize(event)[0]
    params = {
        "workflow_status": "NOTIFIED",
        "note": NOTE,
        "severity_label": "HIGH",
        "user_defined_fields": {"clampdown:incident": "inc-3"},
    }
    action = REGISTRY["securityhub.update-finding"](params)
    ident = {"Id": raw["Id"], "ProductArn": raw["ProductArn"]}
    get_key = {
        "Filters": {k: [{"Value": v, "Comparison": "EQUALS"}] for k, v in ident.items()},
        "MaxResults": 1,
    }
    note = NOTE.replace("\x07", "")[:512].strip()
    updated = asff_update(
        raw,
        Workflow={"Status": "NOTIFIED"},
        Note={"Text": note, "UpdatedBy": "clampdown", "UpdatedAt": "2026-11-23T12:00:00Z"},
        Severity={**raw["Severity"], "Label": "HIGH"},
        UserDefinedFields={"ticket": "T-1", "clampdown:incident": "inc-3"},
    )
    processed = {"ProcessedFindings": [ident], "UnprocessedFindings": []}
    with stubbed(boto_session, finding, "securityhub") as (ctx, stub, operations):
        stub.add_response("get_findings", {"Findings": [raw]}, get_key)
        plan = action.plan(ctx, None)
        stub.add_response("get_findings", {"Findings": [raw]}, get_key)
        stub.add_response(
            "batch_update_findings",
            processed,
            {
                "FindingIdentifiers": [ident],
                "Workflow": {"Status": "NOTIFIED"},
                "Note": {"Text": note, "UpdatedBy": "clampdown"},
                "Severity": {"Label": "HIGH"},
                # Sent whole: the finding's other field stays whether AWS merges or replaces the map.
                "UserDefinedFields": {"ticket": "T-1", "clampdown:incident": "inc-3"},
            },
        )
        stub.add_response("get_findings", {"Findings": [updated]}, get_key)
        result = action.apply(ctx, None)
        stub.add_response("get_findings", {"Findings": [updated]}, get_key)
        again = action.apply(ctx, None)
        stub.add_response("get_findings", {"Findings": [updated]}, get_key)
        rollback_plan = action.plan_rollback(ctx, None, result.before or {}, wrote=result.after)
        stub.add_response("get_findings", {"Findings": [updated]}, get_key)
        stub.add_response(
            "batch_update_findings",
            processed,
            {
                "FindingIdentifiers": [ident],
                "Workflow": {"Status": "NEW"},
                "Note": {"Text": raw["Note"]["Text"], "UpdatedBy": "update_text"},
                "Severity": {"Label": "MEDIUM"},
                "UserDefinedFields": {"ticket": "T-1"},
            },
        )
        stub.add_response("get_findings", {"Findings": [asff_update(updated, Workflow={"Status": "NEW"})]}, get_key)
        rolled = action.rollback(ctx, None, result.before or {}, wrote=result.after)

    assert [c.operation for c in plan.calls] == ["BatchUpdateFindings"]
    assert plan.before == {
        "Workflow": "NEW",
        "Note": raw["Note"]["Text"],
        "NoteUpdatedBy": "update_text",
        "Severity": "MEDIUM",
        "UserDefinedFields": {"clampdown:incident": None},
        "OtherUserDefinedFields": {"ticket": "T-1"},
    }
    assert plan.after == {
        **plan.before,
        "Workflow": "NOTIFIED",
        "Note": note,
        "Severity": "HIGH",
        "UserDefinedFields": {"clampdown:incident": "inc-3"},
    }
    assert result.status == Status.CONTAINED, result.to_dict()
    assert [str(c) for c in result.calls_made] == [str(c) for c in plan.calls]
    assert len(note) == 512 and "\x07" not in note
    assert again.status == Status.ALREADY_CONTAINED and again.calls_made == []
    assert [c.params.get("Workflow") for c in rollback_plan.calls] == [{"Status": "NEW"}]
    assert any("user-defined fields" in n for n in rollback_plan.notes), rollback_plan.notes
    assert rolled.status == Status.ROLLED_BACK
    assert [str(c) for c in rolled.calls_made] == [str(c) for c in rollback_plan.calls]
    # A user-defined field Clampdown added may survive (the API cannot delete one): it is named.
    assert rolled.undo == [
        "user-defined fields ['clampdown:incident'] were added and may remain (the API cannot delete them): review"
    ]
    assert needed(("securityhub", op) for op in operations) <= set(action.permissions)


def ocsf_ident(finding: Any) -> dict[str, str]:
    return {
        "CloudAccountUid": "123456789012",
        "FindingInfoUid": finding.id,
        "MetadataProductUid": "arn:aws:securityhub:us-east-1::productv2/aws/guardduty",
    }


def test_update_ocsf_finding(boto_session: Any) -> None:
    event = corpus_event(OCSF_GD)
    raw = event["detail"]["findings"][0]
    finding = normalize(event)[0]
    action = REGISTRY["securityhub.update-finding"]({"workflow_status": "RESOLVED", "note": "False positive: drill"})
    ident = ocsf_ident(finding)
    fields = {
        "finding_info.uid": ident["FindingInfoUid"],
        "metadata.product.uid": ident["MetadataProductUid"],
        "cloud.account.uid": ident["CloudAccountUid"],
    }
    get_key = {
        "Filters": {
            "CompositeFilters": [
                {
                    "StringFilters": [
                        {"FieldName": k, "Filter": {"Value": v, "Comparison": "EQUALS"}} for k, v in fields.items()
                    ],
                    "Operator": "AND",
                }
            ]
        },
        "MaxResults": 1,
    }
    resolved = {**raw, "status_id": 4, "status": "Resolved", "comment": "False positive: drill"}
    processed = {"ProcessedFindings": [{"FindingIdentifier": ident}], "UnprocessedFindings": []}
    with stubbed(boto_session, finding, "securityhub") as (ctx, stub, operations):
        stub.add_response("get_findings_v2", {"Findings": [raw]}, get_key)
        plan = action.plan(ctx, None)
        stub.add_response("get_findings_v2", {"Findings": [raw]}, get_key)
        stub.add_response(
            "batch_update_findings_v2",
            processed,
            {"FindingIdentifiers": [ident], "StatusId": 4, "Comment": "False positive: drill"},
        )
        stub.add_response("get_findings_v2", {"Findings": [resolved]}, get_key)
        result = action.apply(ctx, None)
        stub.add_response("get_findings_v2", {"Findings": [resolved]}, get_key)
        again = action.apply(ctx, None)
        stub.add_response("get_findings_v2", {"Findings": [resolved]}, get_key)
        rollback_plan = action.plan_rollback(ctx, None, result.before or {}, wrote=result.after)
        stub.add_response("get_findings_v2", {"Findings": [resolved]}, get_key)
        stub.add_response("batch_update_findings_v2", processed, {"FindingIdentifiers": [ident], "StatusId": 1})
        stub.add_response("get_findings_v2", {"Findings": [{**resolved, "status_id": 1}]}, get_key)
        rolled = action.rollback(ctx, None, result.before or {}, wrote=result.after)

    assert plan.before == {"StatusId": 1, "Comment": None}
    assert plan.after == {"StatusId": 4, "Comment": "False positive: drill"}
    assert result.status == Status.CONTAINED, result.to_dict()
    assert again.status == Status.ALREADY_CONTAINED and again.calls_made == [], again.to_dict()
    assert [dict(c.params) for c in rollback_plan.calls] == [{"FindingIdentifiers": [ident], "StatusId": 1}]
    assert rollback_plan.notes == ["Comment was not set before and cannot be removed through the API: review it"]
    assert rolled.status == Status.ROLLED_BACK
    assert rolled.undo == ["Comment was not set before and cannot be removed through the API: review it"]
    assert operations.count("BatchUpdateFindingsV2") == 2
    assert needed(("securityhub", op) for op in operations) == {
        "securityhub:GetFindings",
        "securityhub:BatchUpdateFindings",
    }
    assert {iam_action("securityhub", op) for op in operations} == needed(("securityhub", op) for op in operations)


def test_update_unprocessed_finding_fails_with_its_error(boto_session: Any) -> None:
    event = corpus_event(OCSF_GD)
    finding = normalize(event)[0]
    ident = ocsf_ident(finding)
    unprocessed = {
        "ProcessedFindings": [],
        "UnprocessedFindings": [
            {"FindingIdentifier": ident, "ErrorCode": "ResourceNotFoundException", "ErrorMessage": "no such finding"}
        ],
    }
    with stubbed(boto_session, finding, "securityhub") as (ctx, stub, _):
        stub.add_response("get_findings_v2", {"Findings": [event["detail"]["findings"][0]]})
        stub.add_response("batch_update_findings_v2", unprocessed)
        result = REGISTRY["securityhub.update-finding"]({"workflow_status": "SUPPRESSED"}).apply(ctx, None)
    assert result.status == Status.FAILED and result.error_code == "ResourceNotFoundException"
    assert result.reason == "no such finding"


def test_update_accepted_but_not_yet_visible_counts_as_done(boto_session: Any) -> None:
    """Security Hub applies updates asynchronously: an accepted update is not a verification failure."""
    event = corpus_event(ASFF_CIS)
    raw = event["detail"]["findings"][0]
    finding = normalize(event)[0]
    ident = {"Id": raw["Id"], "ProductArn": raw["ProductArn"]}
    with stubbed(boto_session, finding, "securityhub") as (ctx, stub, _):
        stub.add_response("get_findings", {"Findings": [raw]})
        stub.add_response("batch_update_findings", {"ProcessedFindings": [ident], "UnprocessedFindings": []})
        stub.add_response("get_findings", {"Findings": [raw]})  # not updated yet
        result = REGISTRY["securityhub.update-finding"]({"workflow_status": "NOTIFIED"}).apply(ctx, None)
    assert result.status == Status.CONTAINED and "can take minutes" in (result.reason or "")
    assert result.after == {"Workflow": "NOTIFIED"}, "what the step wrote, for a later rollback to compare"


@pytest.mark.parametrize(
    ("event", "params", "reason"),
    [
        (RAW_API_GD, {"workflow_status": "NOTIFIED"}, "not a Security Hub finding"),
        (OCSF_GD, {"user_defined_fields": {"a": "b"}}, "nothing to update"),
        (ASFF_CIS, {"note": "\x00\x01\x02"}, "note is empty"),
    ],
)
def test_update_skips_what_it_cannot_do(event: str, params: dict[str, Any], reason: str, boto_session: Any) -> None:
    with stubbed(boto_session, finding_of(event), "securityhub") as (ctx, _, operations):
        result = REGISTRY["securityhub.update-finding"](params).apply(ctx, None)
    assert result.status == Status.SKIPPED and reason in (result.reason or ""), result.to_dict()
    assert operations == []


def test_update_offline_plans(boto_session: Any) -> None:
    action = REGISTRY["securityhub.update-finding"]({"workflow_status": "SUPPRESSED", "severity_label": "LOW"})
    asff = action.plan(ActionContext(finding=finding_of(ASFF_CIS)), None)
    ocsf = action.plan(ActionContext(finding=finding_of(OCSF_GD)), None)
    assert [c.operation for c in asff.calls] == ["BatchUpdateFindings"]
    assert asff.calls[0].params["Workflow"] == {"Status": "SUPPRESSED"}
    assert asff.calls[0].params["Severity"] == {"Label": "LOW"}
    assert [c.permission for c in ocsf.calls] == ["securityhub:BatchUpdateFindings"]
    assert {k: ocsf.calls[0].params[k] for k in ("StatusId", "SeverityId")} == {"StatusId": 3, "SeverityId": 2}
