"""Mutated real events: normalize returns findings or raises InvalidEvent, never anything else.

Runs 200 examples per test, 2,000 with HYPOTHESIS_PROFILE=fuzz (``make fuzz``).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from findings_testdata import CONSTRUCTED, corpus_files, load
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.findings import Finding, InvalidEvent, canonical_event, normalize
from tests.conftest import hypothesis_profile

PROFILE = hypothesis_profile(200)  # ~200 mutated events per test; 2,000 with HYPOTHESIS_PROFILE=fuzz
NAMES = [f"{p.parent.name}/{p.name}" for p in corpus_files()] + [
    f"constructed/{p.name}" for p in sorted(CONSTRUCTED.glob("*.json"))
]
_MAX_PATHS = 3000


def deep(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = {"Nested": value} if i % 2 else [value]
    return value


REPLACEMENTS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        ["", " ", "\x00", "null", "true", "arn:aws:iam::1:role/x", "AKIA" + "A" * 16, "ünïcödé ☃ \U0001d518"]
    ),
    st.just("A" * 200_000),
    # fresh containers each draw: a later mutation may write inside one (a shared one makes the test flaky)
    st.sampled_from([[], {}, [None], {"": None}, [1, "two", {}]]).map(copy.deepcopy),
    st.integers(min_value=50, max_value=3000).map(deep),
)


def paths(value: Any) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value`` (breadth first, capped)."""
    out: list[tuple[Any, ...]] = []
    queue: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while queue and len(out) < _MAX_PATHS:
        path, node = queue.pop(0)
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in children:
            out.append((*path, key))
            queue.append(((*path, key), child))
    return out


def mutate(event: Any, path: tuple[Any, ...], action: str, replacement: Any) -> Any:
    if not path:
        return replacement
    parent = event
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "delete":
        del parent[last]
    else:
        parent[last] = replacement
    return event


def check(event: Any) -> None:
    try:
        findings = normalize(event)
    except InvalidEvent as error:
        assert str(error)
        return
    assert isinstance(findings, list)
    for finding in findings:
        assert isinstance(finding, Finding)
        json.dumps(finding.to_dict(), allow_nan=False)


@PROFILE
@given(st.data())
def test_mutated_corpus_events(data: st.DataObject) -> None:
    event = load(data.draw(st.sampled_from(NAMES), label="file"))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4), label="mutations")):
        candidates = paths(event)
        if not candidates:
            break
        path = data.draw(st.sampled_from(candidates), label="path")
        action = data.draw(st.sampled_from(["delete", "replace", "replace"]), label="action")
        event = mutate(event, path, action, data.draw(REPLACEMENTS, label="value"))
    check(event)


@PROFILE
@given(st.sampled_from(NAMES), REPLACEMENTS)
def test_whole_detail_replaced(name: str, replacement: Any) -> None:
    event = load(name)
    canonical = copy.deepcopy(dict(canonical_event(event))) if "PARTIAL" not in name else event
    canonical["detail"] = replacement
    check(canonical)


@PROFILE
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4),
        max_leaves=30,
    )
)
def test_arbitrary_json(value: Any) -> None:
    check(value)
    check({"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": value})
    check({"detail-type": "Findings Imported V2", "source": "aws.securityhub", "detail": {"findings": [value]}})


def test_deep_nesting_in_an_api_shape_finding_is_rejected_cleanly() -> None:
    event = load("guardduty/gd_blu371ck_PascalCase-detail_Recon-EC2-Portscan.json")
    event["detail"]["Service"]["Evidence"] = deep(5000)
    try:
        normalize(event)
    except InvalidEvent as error:
        assert "nested deeper than" in str(error)
    else:
        raise AssertionError("expected InvalidEvent")


#: One event per shape; every path (first 120, breadth first) deleted or replaced in turn.
SWEEP_FILES = [
    "guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json",
    "guardduty/gd_blu371ck_PascalCase-detail_Discovery-RDS-TorIPCaller.json",
    "guardduty/gd_eksblueprints_RAW-API-PascalCase_PrivilegeEscalation-Kubernetes-PrivilegedContainer.json",
    "constructed/gd_constructed_AttackSequence-IAM-CompromisedCredentials_sequence.json",
    "securityhub/sh_asr_Custom-Action_CIS_1-6-multi-select.json",
    "securityhub/sh_awsdocs-guardduty_UnauthorizedAccess-EC2-SSHBruteForce.json",
    "securityhub-ocsf/sh2_sumologic-docs_2004_GuardDuty-Stealth-IAMUser-CloudTrailLoggingDisabled.json",
    "securityhub-ocsf/sh2_cruxstack_2004_GuardDuty-PrivilegeEscalation-Runtime-ContainerMountsHostDirectory.json",
    "constructed/sh2_constructed_2006_Macie-SensitiveData-S3Object-Personal.json",
    "cloudtrail/ct_raw_stratus_aws.persistence.iam-create-admin-user_CreateAccessKey.json",
    "cloudtrail/ct_eb_c7n_CreateBucket_AssumedRole_event-cloud-trail-s3.json",
    "cloudtrail/ct_raw_c7n_RunInstances_event-cloud-trail-run-instances.json",
]
SWEEP_VALUES = [None, 7, "", [], {"Key": None}, "A" * 100_000, deep(2000)]


@pytest.mark.slow
@pytest.mark.parametrize("name", SWEEP_FILES)
def test_every_single_mutation(name: str) -> None:
    base = load(name)
    for path in paths(base)[:120]:
        check(mutate(copy.deepcopy(base), path, "delete", None))
        for value in SWEEP_VALUES:
            check(mutate(copy.deepcopy(base), path, "replace", value))
