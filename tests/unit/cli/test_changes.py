"""A step's before/after state as readable per-field changes (what the demo prints)."""

from __future__ import annotations

from clampdown.changes import describe_changes, shorten

DENY_ALL = {"Version": "2012-10-17", "Statement": [{"Sid": "ClampdownDenyAll", "Effect": "Deny", "Action": "*", "Resource": "*"}]}  # fmt: skip
PUBLIC_READ = {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}  # fmt: skip


def test_scalars_show_old_and_new_and_unchanged_fields_are_left_out() -> None:
    before = {"user_name": "ci-deployer", "access_key_id": "AKIAEXAMPLE", "status": "Active"}
    after = {**before, "status": "Inactive"}
    assert describe_changes(before, after) == ["status: Active → Inactive"]
    assert describe_changes(before, before) == []


def test_a_policy_change_names_the_statements_added_and_removed() -> None:
    assert describe_changes({"policy": None}, {"policy": DENY_ALL}) == [
        "policy: + Deny ClampdownDenyAll (*) (new policy)"
    ]
    public = {"Version": "2012-10-17", "Statement": [PUBLIC_READ]}
    assert describe_changes({"policy": public}, {"policy": None}) == [
        "policy: - Allow PublicRead (s3:GetObject, for *) (policy deleted)"
    ]
    both = {"Version": "2012-10-17", "Statement": [PUBLIC_READ, DENY_ALL["Statement"][0]]}
    assert describe_changes({"policy": public}, {"policy": both}) == ["policy: + Deny ClampdownDenyAll (*)"]
    # A policy given as a JSON string (as some APIs return it) reads the same.
    import json

    assert describe_changes({"policy": json.dumps(public)}, {"policy": json.dumps(both)}) == [
        "policy: + Deny ClampdownDenyAll (*)"
    ]


def test_lists_show_the_items_added_and_removed_and_objects_are_matched_by_id() -> None:
    before = {"network_interfaces": [{"id": "eni-1", "groups": ["sg-web"]}], "public_statements": [PUBLIC_READ]}
    after = {"network_interfaces": [{"id": "eni-1", "groups": ["sg-isolation"]}], "public_statements": []}
    assert describe_changes(before, after) == [
        "network_interfaces[eni-1].groups: - sg-web, + sg-isolation",
        "public_statements: - Allow PublicRead (s3:GetObject, for *)",
    ]


def test_nested_objects_by_path_and_fields_not_read_again_are_not_reported() -> None:
    before = {"snapshots": {}, "groups": {"vpc-1": {"isolation": None}}, "login_profile": True, "password_reset_required": False}  # fmt: skip
    after = {"snapshots": {"vol-1": "snap-1"}, "groups": {"vpc-1": {"isolation": {"id": "sg-iso", "ingress": []}}}, "login_profile": False}  # fmt: skip
    assert describe_changes(before, after) == [
        "snapshots.vol-1: none → snap-1",
        "groups.vpc-1.isolation: none → sg-iso",
        "login_profile: true → false",
    ]
    block = {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    assert describe_changes({"public_access_block": None}, {"public_access_block": block}) == [
        "public_access_block: none → all 4 on"
    ]


def test_long_values_are_cut_in_the_middle_never_silently() -> None:
    url = (
        "s3://clampdown-evidence-123456789012/incidents/inc-0123456789abcdef/ec2.capture-forensics/i-0abc/capture.json"
    )
    [line] = describe_changes({"evidence_ref": None}, {"evidence_ref": url})
    value = line.split(" → ")[1]
    assert "…" in value and len(value) <= 72
    assert url.startswith(value.split("…")[0]) and url.endswith(value.split("…")[1])
    assert shorten("short") == "short"


def test_no_state_no_lines() -> None:
    assert describe_changes(None, None) == []
    assert describe_changes({"a": 1}, None) == []
