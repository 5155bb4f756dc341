"""explain(): which field and clause failed, on real GuardDuty, CloudTrail and Security Hub events."""

from __future__ import annotations

import pytest

from chalicelib.patterns import MISSING, Mismatch, PatternSet, UnknownPatternName, compile_pattern

from .corpus import event

PORT_PROBE = "guardduty/gd_sumologic-docs_Recon-EC2-PortProbeUnprotectedPort.json"
LOW_SEVERITY = "guardduty/gd_panther_low_Low-Sev-Finding_PrivilegeEscalation-IAMUser-AdministrativePermissions.json"
PASCAL_CASE = "guardduty/gd_blu371ck_PascalCase-detail_Recon-EC2-Portscan.json"
CREATE_BUCKET = "cloudtrail/ct_eb_c7n_CreateBucket_Root_event-cloud-trail-create-bucket.json"
DELETE_PAB_FAILED = "cloudtrail/ct_raw_panther_DeleteBucketPublicAccessBlock_Public-Access-Block-Deletion-Failed.json"
MULTI_SELECT = "securityhub/sh_asr_Custom-Action_CIS_1-6-multi-select.json"

UNAUTHORIZED_ACCESS = {"source": ["aws.guardduty"], "detail": {"type": [{"prefix": "UnauthorizedAccess:"}]}}


def test_prefix_failure_names_path_clause_and_value() -> None:
    expected = 'value "Recon:EC2/PortProbeUnprotectedPort" does not match [{"prefix": "UnauthorizedAccess:"}]'
    mismatch = compile_pattern(UNAUTHORIZED_ACCESS).explain(event(PORT_PROBE))
    assert mismatch == Mismatch(
        path=("detail", "type"),
        clause=[{"prefix": "UnauthorizedAccess:"}],
        actual="Recon:EC2/PortProbeUnprotectedPort",
        reason=expected,
    )
    assert str(mismatch) == f"detail.type: {expected}"


def test_numeric_failure_on_a_real_low_severity_finding() -> None:
    pattern = {"source": ["aws.guardduty"], "detail": {"severity": [{"numeric": [">=", 7]}]}}
    mismatch = compile_pattern(pattern).explain(event(LOW_SEVERITY))
    assert mismatch is not None
    assert (mismatch.path, mismatch.clause, mismatch.actual) == (
        ("detail", "severity"),
        [{"numeric": [">=", 7]}],
        event(LOW_SEVERITY)["detail"]["severity"],
    )


def test_missing_field_in_a_pascal_case_finding() -> None:
    mismatch = compile_pattern(UNAUTHORIZED_ACCESS).explain(event(PASCAL_CASE))
    assert mismatch is not None
    assert mismatch.path == ("detail", "type")
    assert mismatch.actual is MISSING
    assert str(mismatch).startswith("detail.type: field is missing")


def test_matching_event_has_no_mismatch() -> None:
    pattern = {"source": ["aws.guardduty"], "detail": {"type": [{"prefix": "Recon:EC2/"}]}}
    assert compile_pattern(pattern).explain(event(PORT_PROBE)) is None


def test_cloudtrail_error_code_must_be_absent() -> None:
    pattern = {"eventSource": ["s3.amazonaws.com"], "errorCode": [{"exists": False}]}
    compiled = compile_pattern(pattern)
    failed = event(DELETE_PAB_FAILED)
    mismatch = compiled.explain(failed)
    assert mismatch is not None
    assert (mismatch.path, mismatch.clause, mismatch.actual) == (
        ("errorCode",),
        [{"exists": False}],
        failed["errorCode"],
    )
    assert "requires it to be absent" in mismatch.reason
    assert compiled.explain(event(CREATE_BUCKET)["detail"]) is None


def test_or_reports_the_closest_alternative() -> None:
    pattern = {
        "source": ["aws.s3"],
        "$or": [
            {"detail": {"eventName": ["DeleteBucket"], "userIdentity": {"type": ["IAMUser"]}}},
            {"detail": {"eventName": ["CreateBucket"], "userIdentity": {"type": ["AssumedRole"]}}},
        ],
    }
    created_by_root = event(CREATE_BUCKET)
    assert created_by_root["detail"]["userIdentity"]["type"] == "Root"
    mismatch = compile_pattern(pattern).explain(created_by_root)
    assert mismatch is not None
    assert mismatch.path == ("detail", "userIdentity", "type")  # the CreateBucket branch got further
    assert mismatch.clause == ["AssumedRole"]
    assert mismatch.actual == "Root"
    assert mismatch.reason.endswith("(closest of 2 $or alternatives)")


def test_array_consistency_failure_is_explained() -> None:
    """Two Security Hub findings: MEDIUM/WARNING and INFORMATIONAL/PASSED. MEDIUM+PASSED is no finding."""
    pattern = {"detail": {"findings": {"Severity": {"Label": ["MEDIUM"]}, "Compliance": {"Status": ["PASSED"]}}}}
    compiled = compile_pattern(pattern)
    multi = event(MULTI_SELECT)
    assert not compiled.matches(multi)
    mismatch = compiled.explain(multi)
    assert mismatch is not None
    assert mismatch.path == ("detail", "findings", "Severity", "Label")
    assert "different array element" in mismatch.reason
    assert mismatch.actual == ["MEDIUM", "INFORMATIONAL"]
    same_finding = {"detail": {"findings": {"Severity": {"Label": ["MEDIUM"]}, "Compliance": {"Status": ["WARNING"]}}}}
    assert compile_pattern(same_finding).matches(multi)


def test_object_where_a_value_is_expected() -> None:
    mismatch = compile_pattern({"detail": {"resource": ["Instance"]}}).explain(event(PORT_PROBE))
    assert mismatch is not None
    assert isinstance(mismatch.actual, dict)
    assert "not a value" in mismatch.reason


def test_dotted_pattern_key_is_reported_as_the_dotted_field() -> None:
    """EventBridge joins keys with dots: the field is detail.resource.resourceType however it is spelled."""
    probe = event(PORT_PROBE)
    assert compile_pattern({"detail": {"resource.resourceType": ["Instance"]}}).explain(probe) is None
    mismatch = compile_pattern({"detail.resource": {"resourceType": ["S3Bucket"]}}).explain(probe)
    assert mismatch is not None
    assert mismatch.path == ("detail", "resource", "resourceType")
    assert (mismatch.clause, mismatch.actual) == (["S3Bucket"], "Instance")
    assert str(mismatch) == 'detail.resource.resourceType: value "Instance" does not match ["S3Bucket"]'


def test_values_of_both_spellings_are_shown() -> None:
    probe = event(PORT_PROBE)
    probe["detail"]["resource.resourceType"] = "AccessKey"
    mismatch = compile_pattern({"detail": {"resource": {"resourceType": ["S3Bucket"]}}}).explain(probe)
    assert mismatch is not None
    assert mismatch.actual == ["Instance", "AccessKey"]  # document order
    assert mismatch.reason == 'values ["Instance", "AccessKey"] do not match ["S3Bucket"]'


def test_field_reached_only_through_an_empty_key_is_explained() -> None:
    compiled = compile_pattern({"detail": {"a": {"": ["x"]}}})  # the field detail.a.
    assert compiled.matches({"detail": {"a.": "x"}})
    mismatch = compiled.explain({"detail": {"a": {"": "x"}}})
    assert mismatch is not None
    assert mismatch.path == ("detail", "a", "")
    assert mismatch.actual is MISSING
    assert str(mismatch).startswith('detail.a.: field is missing; ["x"] requires it (the event has it only through')


def test_event_that_is_not_an_object() -> None:
    mismatch = compile_pattern(UNAUTHORIZED_ACCESS).explain(["not", "an", "event"])  # type: ignore[arg-type]
    assert mismatch is not None
    assert mismatch.path == ()
    assert "not a JSON object" in str(mismatch)


def test_attacker_controlled_values_are_escaped_in_messages() -> None:
    hostile = event(CREATE_BUCKET)
    hostile["detail"]["eventName"] = 'x"\n\x1b[31mFAKE LOG LINE'
    mismatch = compile_pattern({"detail": {"eventName": ["CreateBucket"]}}).explain(hostile)
    assert mismatch is not None
    assert "\n" not in str(mismatch) and "\x1b" not in str(mismatch)
    assert mismatch.actual == hostile["detail"]["eventName"]


def test_pattern_set_explain_by_name() -> None:
    library = PatternSet({"unauthorized": UNAUTHORIZED_ACCESS, "any-guardduty": {"source": ["aws.guardduty"]}})
    probe = event(PORT_PROBE)
    assert library.match(probe) == ["any-guardduty"]
    assert library.explain("any-guardduty", probe) is None
    assert library.explain("unauthorized", probe) == compile_pattern(UNAUTHORIZED_ACCESS).explain(probe)
    with pytest.raises(UnknownPatternName, match="no pattern named 'nope'"):
        library.explain("nope", probe)
    with pytest.raises(KeyError):
        library.pattern("nope")
