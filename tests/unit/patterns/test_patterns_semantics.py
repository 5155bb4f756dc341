"""Matching semantics on real corpus events: types, numbers, IPs, arrays, exists, dotted field names."""

from __future__ import annotations

import pytest

from chalicelib.patterns import PatternSet, compile_pattern, pattern_fields

from .corpus import corpus_events, event

CREATE_BUCKET = "cloudtrail/ct_eb_c7n_CreateBucket_Root_event-cloud-trail-create-bucket.json"  # 204.63.44.148
PORT_PROBE = "guardduty/gd_sumologic-docs_Recon-EC2-PortProbeUnprotectedPort.json"
MULTI_SELECT = "securityhub/sh_asr_Custom-Action_CIS_1-6-multi-select.json"


def matches(pattern: object, relative: str) -> bool:
    return compile_pattern(pattern).matches(event(relative))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cidr", "expected"),
    [
        ("204.63.44.0/24", True),
        ("204.63.44.200/24", True),  # host bits set: AWS accepts and masks them
        ("204.63.45.0/24", False),
        ("2001:db8::/32", False),  # an IPv6 range never holds an IPv4 address
    ],
)
def test_cidr_on_cloudtrail_source_ip(cidr: str, expected: bool) -> None:
    assert matches({"detail": {"sourceIPAddress": [{"cidr": cidr}]}}, CREATE_BUCKET) is expected


def test_ip_literal_matches_other_spellings_of_the_same_address() -> None:
    assert matches({"detail": {"sourceIPAddress": ["::ffff:cc3f:2c94"]}}, CREATE_BUCKET)
    assert not matches({"detail": {"sourceIPAddress": ["204.63.44.149"]}}, CREATE_BUCKET)


def test_numbers_compare_numerically_but_never_equal_strings() -> None:
    severity = event(PORT_PROBE)["detail"]["severity"]
    assert matches({"detail": {"severity": [float(severity)]}}, PORT_PROBE)
    assert matches({"detail": {"severity": [{"numeric": ["=", float(severity)]}]}}, PORT_PROBE)
    assert not matches({"detail": {"severity": [str(severity)]}}, PORT_PROBE)
    account = event(PORT_PROBE)["account"]
    assert isinstance(account, str)
    assert not matches({"account": [int(account)]}, PORT_PROBE)
    assert not matches({"account": [{"numeric": [">", 0]}]}, PORT_PROBE)


def test_exists_on_an_empty_resources_array() -> None:
    probe = event(PORT_PROBE)
    assert probe["resources"] == []
    assert not matches({"resources": [{"exists": True}]}, PORT_PROBE)
    assert matches({"resources": [{"exists": False}]}, PORT_PROBE)
    assert not matches({"resources": [None]}, PORT_PROBE)


def test_exists_concerns_leaf_values_only() -> None:
    assert not matches({"detail": {"service": [{"exists": True}]}}, PORT_PROBE)  # an object
    assert matches({"detail": {"service": [{"exists": False}]}}, PORT_PROBE)


def test_exists_false_is_judged_per_array_element_after_the_fields_before_it() -> None:
    """event-ruler checks absence against the array elements chosen by the fields *before* it (sorted names).

    Finding 0 is MEDIUM/WARNING/NEW, finding 1 INFORMATIONAL/PASSED/RESOLVED; we drop finding 1's
    Workflow and Compliance. ``Workflow`` sorts after ``Severity``, so its absence is judged in the
    INFORMATIONAL finding; ``Compliance`` sorts before, so its absence is judged over all findings.
    """
    findings = event(MULTI_SELECT)
    assert [f["Workflow"]["Status"] for f in findings["detail"]["findings"]] == ["NEW", "RESOLVED"]
    del findings["detail"]["findings"][1]["Workflow"]
    del findings["detail"]["findings"][1]["Compliance"]

    def absent(label: str, field: str) -> bool:
        pattern = {"detail": {"findings": {"Severity": {"Label": [label]}, field: {"Status": [{"exists": False}]}}}}
        return compile_pattern(pattern).matches(findings)

    assert absent("INFORMATIONAL", "Workflow")
    assert not absent("MEDIUM", "Workflow")
    assert not absent("INFORMATIONAL", "Compliance")  # finding 0 still has Compliance.Status
    index = PatternSet(
        {
            field: {
                "detail": {
                    "findings": {
                        "Severity": {"Label": ["INFORMATIONAL"]},
                        field: {"Status": [{"exists": False}]},
                    }
                }
            }
            for field in ("Workflow", "Compliance")
        }
    )  # the index walks absence last, then re-checks when event-ruler's order differs
    assert index.match(findings) == ["Workflow"]


def test_dotted_event_key_counts_as_the_nested_field_like_eventbridge() -> None:
    """EventBridge joins keys with dots, so an event key "userIdentity.type" is the field userIdentity.type
    too: its value is offered next to the nested one (a pattern accepts the event if either matches)."""
    forged = event(CREATE_BUCKET)
    assert forged["detail"]["userIdentity"]["type"] == "Root"
    forged["detail"]["userIdentity.type"] = "AssumedRole"
    for pattern in (
        {"detail": {"userIdentity": {"type": ["AssumedRole"]}}},
        {"detail": {"userIdentity.type": ["AssumedRole"]}},
        {"detail.userIdentity.type": ["Root"]},
    ):
        assert compile_pattern(pattern).matches(forged)
    assert not compile_pattern({"detail": {"userIdentity": {"type": [{"exists": False}]}}}).matches(forged)
    assert not compile_pattern({"detail": {"userIdentity": {"type": ["IAMUser"]}}}).matches(forged)


def test_anything_but_needs_the_field_but_accepts_null() -> None:
    probe = event(PORT_PROBE)
    not_mine = {"account": [{"anything-but": ["111111111111", "222222222222"]}]}
    assert compile_pattern(not_mine).matches(probe)
    del probe["account"]
    assert not compile_pattern(not_mine).matches(probe)
    probe["account"] = None
    assert compile_pattern(not_mine).matches(probe)


def test_wildcard_and_ignore_case_treat_event_text_as_data() -> None:
    trail = event(CREATE_BUCKET)
    trail["detail"]["eventName"] = ".*(a+)+$"
    assert not compile_pattern({"detail": {"eventName": [{"wildcard": "Create*"}]}}).matches(trail)
    assert compile_pattern({"detail": {"eventName": [{"wildcard": ".\\*(a+)+$"}]}}).matches(trail)
    assert compile_pattern({"detail": {"eventName": [{"equals-ignore-case": ".*(A+)+$"}]}}).matches(trail)


def test_mapping_and_json_text_compile_to_the_same_pattern() -> None:
    text = '{"source": ["aws.guardduty"], "detail": {"type": [{"prefix": "Recon:"}]}}'
    assert compile_pattern(text).pattern == {
        "source": ["aws.guardduty"],
        "detail": {"type": [{"prefix": "Recon:"}]},
    }
    assert compile_pattern(text).matches(event(PORT_PROBE))


def test_duplicate_objects_in_text_are_merged_like_event_ruler() -> None:
    text = '{"detail": {"type": [{"prefix": "Recon:"}]}, "detail": {"severity": [{"numeric": [">", 9]}]}}'
    compiled = compile_pattern(text)
    assert compiled.pattern == {"detail": {"type": [{"prefix": "Recon:"}], "severity": [{"numeric": [">", 9]}]}}
    assert not compiled.matches(event(PORT_PROBE))


def test_pattern_fields_are_dotted_names_split_at_dots() -> None:
    pattern = {"source": ["aws.cloudtrail"], "detail": {"$or": [{"eventName": ["A"]}, {"a.b": ["B"]}]}}
    assert pattern_fields(pattern) == {("source",), ("detail", "eventName"), ("detail", "a", "b")}
    assert pattern_fields({"detail.a": {"b": ["B"]}, "detail": {"a.b": ["C"]}}) == {("detail", "a", "b")}
    assert compile_pattern({"detail-type": ["x"], "a": {"": [1]}}).fields == {("detail-type",), ("a", "")}


def test_pattern_set_returns_names_in_insertion_order_over_all_real_events() -> None:
    library = {
        "z-guardduty": {"source": ["aws.guardduty"]},
        "a-recon": {"detail": {"type": [{"prefix": "Recon:"}]}},
        "m-s3-calls": {"detail": {"eventSource": ["s3.amazonaws.com"]}},
        "b-high": {"detail": {"severity": [{"numeric": [">=", 7]}]}},
        "c-securityhub-medium": {"detail": {"findings": {"Severity": {"Label": ["MEDIUM"]}}}},
    }
    index = PatternSet(library)
    assert index.names == tuple(library)
    assert len(index) == 5
    hit_counts = dict.fromkeys(library, 0)
    for real in corpus_events().values():
        matched = index.match(real)
        assert matched == [n for n in library if compile_pattern(library[n]).matches(real)]
        for name in matched:
            hit_counts[name] += 1
    assert all(hit_counts.values()), hit_counts  # every pattern matches some real event
