"""Actions on the finding itself: archive it in GuardDuty, update its workflow in Security Hub.

Calls go to the finding's account and region. GuardDuty lets only the administrator account
archive findings in an organization, and Security Hub lets the administrator or the owning member
update them: deploy the responder so that the finding's account is one of those.
Every identifier used here comes from the finding and is checked before it reaches a request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from chalicelib.actions.base import (
    Action,
    ActionContext,
    ActionError,
    ApiCall,
    CallPlan,
    PlannedResponse,
)
from chalicelib.actions.registry import register
from chalicelib.findings.model import Finding, Resource

_GUARDDUTY_ARN = re.compile(r":detector/([A-Za-z0-9]{1,300})/finding/([A-Za-z0-9-]{1,300})$")
_GUARDDUTY_ID = re.compile(r"[A-Za-z0-9-]{1,300}")
_DETECTOR_ID = re.compile(r"[A-Za-z0-9]{1,300}")


def guardduty_ids(finding: Finding, detector_param: str | None = None) -> tuple[str, str] | str:
    """(detector id, finding id) of a GuardDuty finding however it arrived, or why there are none.

    The finding id is ``origin_id`` (native id, or the last segment of the ARN Security Hub
    carries); the detector is the parameter, else the native ``service.detectorId``, else the one
    in the finding ARN.
    """
    if finding.source != "guardduty" and finding.product != "GuardDuty":
        return f"not a GuardDuty finding (source {finding.source}, product {finding.product})"
    finding_id = finding.origin_id or finding.id
    arn_match = next(
        (m for m in (_GUARDDUTY_ARN.search(str(v)) for v in (finding.details.get("arn"), finding.id) if v) if m),
        None,
    )
    detector = detector_param or finding.details.get("detector_id") or (arn_match.group(1) if arn_match else None)
    if not detector or not _DETECTOR_ID.fullmatch(str(detector)):
        return "the finding names no GuardDuty detector (set the detector_id parameter)"
    if not _GUARDDUTY_ID.fullmatch(finding_id):
        return f"{finding_id!r} is not a GuardDuty finding id"
    return str(detector), finding_id


@register
class ArchiveGuardDutyFinding(Action):
    name = "guardduty.archive-finding"
    summary = "Archive the GuardDuty finding (native or delivered through Security Hub); rollback unarchives it."
    resource_kinds = ()
    permissions = ("guardduty:GetFindings", "guardduty:ArchiveFindings", "guardduty:UnarchiveFindings")
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "detector_id": {
                "type": "string",
                "pattern": "^[A-Za-z0-9]{1,300}$",
                "description": "The detector to use (default: the finding's own).",
            }
        },
    }

    def _ids(self, ctx: ActionContext) -> tuple[str, str]:
        ids = guardduty_ids(ctx.finding, self.params.get("detector_id"))
        if isinstance(ids, str):
            raise ActionError("InvalidTarget", ids)
        return ids

    def skip_reason(self, ctx: ActionContext, target: Resource | None) -> str | None:
        ids = guardduty_ids(ctx.finding, self.params.get("detector_id"))
        return ids if isinstance(ids, str) else None

    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        detector, finding_id = self._ids(ctx)
        found = ctx.client("guardduty", target).get_findings(DetectorId=detector, FindingIds=[finding_id])["Findings"]
        if not found:
            raise ActionError("FindingNotFound", f"detector {detector} has no finding {finding_id}")
        archived = bool((found[0].get("Service") or {}).get("Archived"))
        return {"detector_id": detector, "finding_id": finding_id, "archived": archived}

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        return bool(state.get("archived"))

    def expected_state(
        self, before: Mapping[str, Any] | None, ctx: ActionContext, target: Resource | None
    ) -> dict[str, Any]:
        detector, finding_id = self._ids(ctx)
        return {"detector_id": detector, "finding_id": finding_id, "archived": True}

    def _call(self, ctx: ActionContext, operation: str, purpose: str) -> ApiCall:
        detector, finding_id = self._ids(ctx)
        return ApiCall("guardduty", operation, {"DetectorId": detector, "FindingIds": [finding_id]}, purpose)

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        yield self._call(ctx, "ArchiveFindings", "archive the finding")

    def restore(
        self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> CallPlan:
        if not before.get("archived") and (current is None or current.get("archived")):
            yield self._call(ctx, "UnarchiveFindings", "the finding was not archived before")


# -- Security Hub --------------------------------------------------------------------------------

WORKFLOW_STATUSES = ("NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED")
SEVERITY_LABELS = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
#: ``Note.Text`` (ASFF) is at most 512 characters; the OCSF ``Comment`` is held to the same.
NOTE_LIMIT = 512
UPDATED_BY = "clampdown"
#: OCSF ``status_id`` and ``severity_id`` for the ASFF workflow statuses and severity labels.
OCSF_STATUS = {"NEW": 1, "NOTIFIED": 2, "SUPPRESSED": 3, "RESOLVED": 4}
OCSF_SEVERITY = {label: index for index, label in enumerate(SEVERITY_LABELS, start=1)}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_note(text: str) -> str:
    """Control characters removed, cut to the API's limit; may be empty."""
    return _CONTROL.sub("", text)[:NOTE_LIMIT].strip()


def _shape(finding: Finding) -> str | None:
    """``asff`` (Security Hub CSPM), ``ocsf`` (Security Hub, Findings Imported V2) or None."""
    if finding.source != "securityhub":
        return None
    if finding.details.get("product_arn"):
        return "asff"
    if finding.details.get("product_uid"):
        return "ocsf"
    return None


@register
class UpdateSecurityHubFinding(Action):
    """Sets workflow status, note, severity and user-defined fields of a Security Hub finding.

    ASFF findings go through ``BatchUpdateFindings`` (identified by ``Id`` + ``ProductArn``), OCSF
    findings through ``BatchUpdateFindingsV2`` (account, ``finding_info.uid``,
    ``metadata.product.uid``; ``StatusId``/``Comment``/``SeverityId``; no user-defined fields).
    Security Hub applies updates asynchronously ("can take several minutes"), so an update it
    accepted counts as done even if the read-back does not show it yet. An update emits a new
    "Findings Imported" event: the responder's idempotency keys (by origin id) stop it re-running.
    """

    name = "securityhub.update-finding"
    summary = "Update the Security Hub finding's workflow status, note, severity or user-defined fields."
    resource_kinds = ()
    #: BatchUpdateFindingsV2 and GetFindingsV2 are authorized by the V1 actions.
    permissions = ("securityhub:GetFindings", "securityhub:BatchUpdateFindings")
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "workflow_status": {"enum": list(WORKFLOW_STATUSES)},
            "note": {"type": "string", "minLength": 1, "maxLength": 4000, "description": "Templated; cut to 512."},
            "severity_label": {"enum": list(SEVERITY_LABELS)},
            "user_defined_fields": {
                "type": "object",
                "maxProperties": 50,
                "additionalProperties": {"type": "string", "maxLength": 1024},
                "description": "ASFF findings only.",
            },
        },
    }

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self._accepted = False

    # -- what is wanted, per shape ---------------------------------------------------------------
    def desired(self, ctx: ActionContext) -> dict[str, Any]:
        """Target values in the shape's own field names (``Workflow`` or ``StatusId``…)."""
        ocsf = _shape(ctx.finding) == "ocsf"
        out: dict[str, Any] = {}
        if "workflow_status" in self.params:
            status = self.params["workflow_status"]
            out.update({"StatusId": OCSF_STATUS[status]} if ocsf else {"Workflow": status})
        if "note" in self.params:
            note = clean_note(str(self.params["note"]))
            out.update({"Comment": note} if ocsf else {"Note": note})
        if "severity_label" in self.params:
            label = self.params["severity_label"]
            out.update({"SeverityId": OCSF_SEVERITY[label]} if ocsf else {"Severity": label})
        if self.params.get("user_defined_fields") and not ocsf:
            out["UserDefinedFields"] = {str(k): str(v) for k, v in self.params["user_defined_fields"].items()}
        return out

    def skip_reason(self, ctx: ActionContext, target: Resource | None) -> str | None:
        shape = _shape(ctx.finding)
        if shape is None:
            if ctx.finding.source != "securityhub":
                return f"not a Security Hub finding (source {ctx.finding.source})"
            return "the finding carries no ProductArn or metadata.product.uid to identify it"
        if "note" in self.params and not clean_note(str(self.params["note"])):
            return "the note is empty once control characters are removed"
        if not self.desired(ctx):
            return "nothing to update for this finding (user-defined fields exist only in ASFF findings)"
        return None

    def _identifier(self, ctx: ActionContext) -> dict[str, str]:
        finding = ctx.finding
        if _shape(finding) == "ocsf":
            return {
                "CloudAccountUid": finding.account,
                "FindingInfoUid": finding.id,
                "MetadataProductUid": str(finding.details["product_uid"]),
            }
        return {"Id": finding.id, "ProductArn": str(finding.details["product_arn"])}

    # -- reading ---------------------------------------------------------------------------------
    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        client = ctx.client("securityhub", target)
        ident = self._identifier(ctx)
        if _shape(ctx.finding) == "ocsf":
            fields = {
                "finding_info.uid": ident["FindingInfoUid"],
                "metadata.product.uid": ident["MetadataProductUid"],
                "cloud.account.uid": ident["CloudAccountUid"],
            }
            matches = [{"FieldName": k, "Filter": {"Value": v, "Comparison": "EQUALS"}} for k, v in fields.items()]
            found = client.get_findings_v2(
                Filters={"CompositeFilters": [{"StringFilters": matches, "Operator": "AND"}]}, MaxResults=1
            )["Findings"]
            if not found:
                raise ActionError("FindingNotFound", f"Security Hub has no finding {ident['FindingInfoUid']}")
            doc = found[0]
            current = {
                "StatusId": doc.get("status_id"),
                "Comment": doc.get("comment"),
                "SeverityId": doc.get("severity_id"),
            }
        else:
            filters = {name: [{"Value": value, "Comparison": "EQUALS"}] for name, value in ident.items()}
            found = client.get_findings(Filters=filters, MaxResults=1)["Findings"]
            if not found:
                raise ActionError("FindingNotFound", f"Security Hub has no finding {ident['Id']}")
            doc = found[0]
            note = doc.get("Note") or {}
            current = {
                "Workflow": (doc.get("Workflow") or {}).get("Status"),
                "Note": note.get("Text"),
                "NoteUpdatedBy": note.get("UpdatedBy"),
                "Severity": (doc.get("Severity") or {}).get("Label"),
                "UserDefinedFields": dict(doc.get("UserDefinedFields") or {}),
            }
        wanted = self.desired(ctx)
        state = {k: v for k, v in current.items() if k in wanted or (k == "NoteUpdatedBy" and "Note" in wanted)}
        if "UserDefinedFields" in state:  # the keys this step sets, and the others (kept in every update)
            fields, ours = state["UserDefinedFields"], wanted["UserDefinedFields"]
            state["UserDefinedFields"] = {k: fields.get(k) for k in ours}
            state["OtherUserDefinedFields"] = {k: v for k, v in fields.items() if k not in ours}
        return state

    def _differs(self, state: Mapping[str, Any] | None, ctx: ActionContext) -> dict[str, Any]:
        wanted = self.desired(ctx)
        if state is None:
            return wanted
        return {k: v for k, v in wanted.items() if state.get(k) != v}

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        return not self._differs(state, ctx)

    def expected_state(
        self, before: Mapping[str, Any] | None, ctx: ActionContext, target: Resource | None
    ) -> dict[str, Any] | None:
        return None if before is None else {**before, **self.desired(ctx)}

    # -- writing ---------------------------------------------------------------------------------
    def _update(self, ctx: ActionContext, values: Mapping[str, Any], purpose: str) -> ApiCall:
        ident = self._identifier(ctx)
        if _shape(ctx.finding) == "ocsf":
            return ApiCall("securityhub", "BatchUpdateFindingsV2", {"FindingIdentifiers": [ident], **values}, purpose)
        params: dict[str, Any] = {"FindingIdentifiers": [ident]}
        if "Workflow" in values:
            params["Workflow"] = {"Status": values["Workflow"]}
        if "Note" in values:
            params["Note"] = {"Text": values["Note"], "UpdatedBy": values.get("NoteUpdatedBy") or UPDATED_BY}
        if "Severity" in values:
            params["Severity"] = {"Label": values["Severity"]}
        if "UserDefinedFields" in values:
            # Sent whole (the other fields too) so that it is right whether AWS merges or replaces the map.
            params["UserDefinedFields"] = {**values.get("OtherUserDefinedFields", {}), **values["UserDefinedFields"]}
        return ApiCall("securityhub", "BatchUpdateFindings", params, purpose)

    @staticmethod
    def _check(response: Any) -> None:
        if isinstance(response, PlannedResponse):
            return
        unprocessed = response.get("UnprocessedFindings") or []
        if unprocessed:
            first = unprocessed[0]
            raise ActionError(str(first.get("ErrorCode") or "Unprocessed"), str(first.get("ErrorMessage") or first))

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        self._accepted = False
        values = self._differs(before, ctx)
        if "UserDefinedFields" in values and before is not None:
            values["OtherUserDefinedFields"] = before.get("OtherUserDefinedFields", {})
        response = yield self._update(ctx, values, "record the response on the finding")
        self._check(response)
        self._accepted = not isinstance(response, PlannedResponse)

    @staticmethod
    def _restorable(before: Mapping[str, Any]) -> dict[str, Any]:
        """The before values the API can put back (a missing note or severity cannot be)."""
        udf = ("UserDefinedFields", "OtherUserDefinedFields", "NoteUpdatedBy")
        out = {k: v for k, v in before.items() if v is not None and k not in udf}
        if "Workflow" in before and before["Workflow"] is None:
            out["Workflow"] = "NEW"
        if "StatusId" in before and before["StatusId"] is None:
            out["StatusId"] = OCSF_STATUS["NEW"]
        return out

    def restore(
        self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> CallPlan:
        values = self._restorable(before)
        if "UserDefinedFields" in before:
            values["UserDefinedFields"] = {k: v for k, v in before["UserDefinedFields"].items() if v is not None}
        if current is not None:
            # User-defined fields compare on this step's keys (None: absent before).
            values = {
                k: v for k, v in values.items() if current.get(k) != (before[k] if k == "UserDefinedFields" else v)
            }
        if values:
            if "Note" in values and before.get("NoteUpdatedBy"):
                values["NoteUpdatedBy"] = before["NoteUpdatedBy"]
            if "UserDefinedFields" in values:
                values["OtherUserDefinedFields"] = before.get("OtherUserDefinedFields", {})
            response = yield self._update(ctx, values, "put back the earlier values")
            self._check(response)

    def manual_steps(
        self, ctx: ActionContext, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> list[str]:
        steps = []
        for field in ("Note", "Comment", "Severity", "SeverityId"):
            if field in before and before[field] is None:
                steps.append(f"{field} was not set before and cannot be removed through the API: review it")
        added = [k for k, v in (before.get("UserDefinedFields") or {}).items() if v is None]
        if added:
            steps.append(f"user-defined fields {added} were added and may remain (the API cannot delete them): review")
        return steps

    def applied_later(self, ctx: ActionContext) -> str | None:
        if self._accepted:
            return "Security Hub accepted the update; it can take minutes to show in GetFindings"
        return None
