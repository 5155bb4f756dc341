"""EventBridge rules from playbook patterns: always pinned, merged without widening, checked with the
same pattern engine the responder matches with, on real corpus events and events near the boundaries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from chalicelib.patterns import PatternSet, compile_pattern
from clampdown.deploy.rules import (
    EVENT_SOURCE_EXCEPTIONS,
    MAX_PATTERN_CHARS,
    MAX_RULES,
    Rule,
    RuleError,
    RuleSet,
    generate_rules,
)
from tests.conftest import CORPUS
from tests.deploy.helpers import corpus_events, library, pinned_values, playbook, shipped_library
from tests.deploy.variants import variants

GD = {"source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"]}
SH = {"source": ["aws.securityhub"], "detail-type": ["Security Hub Findings - Imported"]}
TOR = json.loads((CORPUS / "guardduty" / "gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json").read_text())


def gd(detail: Mapping[str, Any]) -> dict[str, Any]:
    return {**GD, "detail": dict(detail)}


def assert_exact_union(
    ruleset: RuleSet, patterns: Mapping[str, Mapping[str, Any]], events: list[dict[str, Any]], *, disjoint: bool = False
) -> int:
    """Each rule matches an event iff one of its playbooks does; each playbook's events reach a rule;
    with ``disjoint``, no such event matches two rules (it would be queued twice).

    Returns how many (event, playbook) matches were checked, so callers can insist there were some.
    """
    checked = 0
    compiled = [r.compiled() for r in ruleset.rules]
    for rule, rule_pattern in zip(ruleset.rules, compiled, strict=True):
        playbooks = PatternSet({name: patterns[name] for name in rule.playbooks})
        for event in (v for e in events for v in variants(e, rule.pattern)):
            expected = bool(playbooks.match(event))
            assert rule_pattern.matches(event) == expected, (rule.name, json.dumps(event)[:300])
            checked += expected
            if disjoint and expected:
                assert sum(c.matches(event) for c in compiled) == 1, (rule.name, json.dumps(event)[:300])
    covered = {name for rule in ruleset.rules for name in rule.playbooks}
    assert covered | set(ruleset.skipped) == set(patterns)
    return checked


def pinned_everywhere(rule: Rule) -> bool:
    return all(pinned_values(rule.pattern, key) for key in ("source", "detail-type"))


# -- the shipped library on the real corpus -------------------------------------------------------
@pytest.fixture(scope="module")
def shipped() -> tuple[Any, RuleSet]:
    lib = shipped_library()
    return lib, generate_rules(lib)


def test_every_shipped_rule_pins_aws_sources_and_detail_types(shipped: tuple[Any, RuleSet]) -> None:
    _, ruleset = shipped
    assert ruleset.rules and not ruleset.skipped
    for rule in ruleset.rules:
        assert pinned_everywhere(rule), rule.name
        assert all(s.startswith("aws.") for s in pinned_values(rule.pattern, "source") or ())
        assert len(rule.text) <= MAX_PATTERN_CHARS


def test_corpus_events_a_playbook_matches_reach_its_rule(shipped: tuple[Any, RuleSet]) -> None:
    lib, ruleset = shipped
    rule_of = {name: rule for rule in ruleset.rules for name in rule.playbooks}
    matched: dict[str, int] = {}
    for name, event in corpus_events():
        for pb in lib.match(event):
            matched[pb.name] = matched.get(pb.name, 0) + 1
            assert rule_of[pb.name].compiled().matches(event), (pb.name, name)
    # The GuardDuty playbooks have real samples in the corpus; each was really checked.
    assert {"gd-ec2-compromised-instance", "gd-iam-compromised-credentials", "gd-default-notify"} <= set(matched)


def corpus_library() -> dict[str, dict[str, Any]]:
    """Many overlapping playbooks shaped after the corpus: GuardDuty type families, severities and
    resource kinds, Security Hub labels (inside the findings array), CloudTrail services. All pinned
    (inference narrows on purpose and is tested on its own)."""
    patterns: dict[str, dict[str, Any]] = {
        "gd-high": gd({"severity": [{"numeric": [">=", 7]}]}),
        "gd-instance": gd({"resource": {"resourceType": ["Instance"]}}),
        "sh-high": {**SH, "detail": {"findings": {"Severity": {"Label": ["HIGH", "CRITICAL"]}}}},
        "sh-failed-controls": {**SH, "detail": {"findings": {"Compliance": {"Status": ["FAILED"]}}}},
        "sh-v2": {"source": ["aws.securityhub"], "detail-type": ["Findings Imported V2"]},
        "console-root": {
            "source": ["aws.signin"],
            "detail-type": ["AWS Console Sign In via CloudTrail"],
            "detail": {"userIdentity": {"type": ["Root"]}},
        },
    }
    for _, event in corpus_events():
        if event.get("source") == "aws.guardduty" and event.get("detail-type") == "GuardDuty Finding":
            family = str(event["detail"].get("type", "")).split(":")[0]
            if not family:
                continue
            patterns[f"gd-{family.lower()}"] = gd({"type": [{"prefix": f"{family}:"}]})
        if event.get("detail-type") == "AWS API Call via CloudTrail":
            service = event["detail"]["eventSource"]
            patterns[f"ct-{service}"] = {
                "source": [event["source"]],
                "detail-type": [event["detail-type"]],
                "detail": {"eventSource": [service], "errorCode": [{"exists": False}]},
            }
    return patterns


def test_a_corpus_shaped_library_gets_few_rules_that_accept_exactly_its_events() -> None:
    patterns = corpus_library()
    ruleset = generate_rules(patterns)
    # All GuardDuty playbooks overlap: one rule, the type families united into one clause.
    [guardduty] = [r for r in ruleset.rules if r.pattern["detail-type"] == ["GuardDuty Finding"]]
    families = [n for n in patterns if n.startswith("gd-") and n not in ("gd-high", "gd-instance")]
    assert len(families) >= 5 and set(guardduty.playbooks) == {*families, "gd-high", "gd-instance"}
    assert len(guardduty.pattern["$or"]) == 3
    assert any(len(alt.get("detail", {}).get("type", [])) == len(families) for alt in guardduty.pattern["$or"])
    assert all(pinned_everywhere(rule) for rule in ruleset.rules)
    events = [e for _, e in corpus_events() if "detail-type" in e]
    matched = sum(1 for e in events for p in patterns.values() if compile_pattern(p).matches(e))
    assert matched >= 30
    assert assert_exact_union(ruleset, patterns, events) >= matched


def test_shipped_rules_accept_exactly_what_their_playbooks_accept_and_each_event_reaches_one(
    shipped: tuple[Any, RuleSet],
) -> None:
    lib, ruleset = shipped
    events = [e for _, e in corpus_events() if "detail-type" in e]
    checked = assert_exact_union(ruleset, {p.name: p.match for p in lib.enabled}, events, disjoint=True)
    assert checked > 100


def test_overlapping_shipped_playbooks_share_one_rule(shipped: tuple[Any, RuleSet]) -> None:
    lib, ruleset = shipped
    guardduty = [r for r in ruleset.rules if "GuardDuty Finding" in (pinned_values(r.pattern, "detail-type") or ())]
    findings = {p.name for p in lib.enabled if p.match.get("detail-type") == ["GuardDuty Finding"]}
    assert len(findings) >= 4 and len(guardduty) == 1 and set(guardduty[0].playbooks) == findings


# -- merging ----------------------------------------------------------------------------------------
def test_identical_patterns_become_one_rule() -> None:
    p = gd({"type": [{"prefix": "Backdoor:"}]})
    ruleset = generate_rules({"a": p, "b": json.loads(json.dumps(p))})
    [rule] = ruleset.rules
    assert rule.playbooks == ("a", "b") and rule.pattern == compile_pattern(p).pattern


def test_a_pattern_another_one_covers_adds_nothing() -> None:
    wide = gd({"type": [{"prefix": "UnauthorizedAccess:"}, {"prefix": "Recon:"}]})
    narrow = gd({"type": [{"prefix": "Recon:"}], "severity": [{"numeric": [">=", 7]}]})
    [rule] = generate_rules({"narrow": narrow, "wide": wide}).rules
    assert rule.pattern == compile_pattern(wide).pattern and set(rule.playbooks) == {"narrow", "wide"}


def test_patterns_differing_in_one_field_get_its_values_united() -> None:
    a = gd({"type": ["Recon:EC2/Portscan"], "resource": {"resourceType": ["Instance"]}})
    b = gd({"type": ["Trojan:EC2/DropPoint"], "resource": {"resourceType": ["Instance"]}})
    [rule] = generate_rules({"a": a, "b": b}).rules
    assert "$or" not in rule.pattern
    assert rule.pattern["detail"]["type"] == ["Recon:EC2/Portscan", "Trojan:EC2/DropPoint"]
    assert_exact_union(generate_rules({"a": a, "b": b}), {"a": a, "b": b}, [TOR])


def test_overlapping_patterns_on_different_fields_become_one_rule_with_or() -> None:
    patterns = {
        "by-type": gd(
            {"type": [{"prefix": "UnauthorizedAccess:IAMUser/"}], "resource": {"resourceType": ["AccessKey"]}}
        ),
        "by-severity": gd({"severity": [{"numeric": [">=", 7]}]}),
    }
    ruleset = generate_rules(patterns)
    [rule] = ruleset.rules
    assert rule.pattern["source"] == ["aws.guardduty"] and len(rule.pattern["$or"]) == 2
    assert assert_exact_union(ruleset, patterns, [TOR]) > 0


def test_different_sources_get_different_rules_and_overlapping_source_sets_share_one() -> None:
    patterns = {
        "gd": gd({"severity": [{"numeric": [">", 5]}]}),
        "sh": {**SH, "detail": {"findings": {"Severity": {"Label": ["HIGH"]}}}},
    }
    assert len(generate_rules(patterns).rules) == 2
    both = {
        "source": ["aws.guardduty", "aws.securityhub"],
        "detail-type": ["GuardDuty Finding", "Security Hub Findings - Imported"],
    }
    patterns["both"] = both
    ruleset = generate_rules(patterns)
    [rule] = ruleset.rules
    assert set(rule.playbooks) == {"gd", "sh", "both"} and rule.pattern == compile_pattern(both).pattern
    events = [e for _, e in corpus_events() if e.get("source") in ("aws.guardduty", "aws.securityhub")]
    assert assert_exact_union(ruleset, patterns, events) > 0


def test_a_pattern_too_large_for_one_rule_is_split_and_each_part_fits() -> None:
    patterns = {
        f"p{i:02}": gd({"type": [f"Custom:Type/{'X' * 60}{i}"], "resource": {"resourceType": [f"Kind{i}"]}})
        for i in range(60)
    }
    ruleset = generate_rules(patterns)
    assert len(ruleset.rules) > 1
    assert all(len(rule.text) <= MAX_PATTERN_CHARS and pinned_everywhere(rule) for rule in ruleset.rules)
    assert len({rule.name for rule in ruleset.rules}) == len(ruleset.rules)
    for name, pattern in patterns.items():
        event = {**TOR, "detail": {**TOR["detail"], **pattern["detail"]}}
        event["detail"]["type"] = pattern["detail"]["type"][0]
        event["detail"]["resource"] = {"resourceType": pattern["detail"]["resource"]["resourceType"][0]}
        assert [r for r in ruleset.rules if r.compiled().matches(event)], name
        assert name in next(r for r in ruleset.rules if r.compiled().matches(event)).playbooks
    assert_exact_union(ruleset, patterns, [TOR])


def test_more_rules_than_a_bus_allows_is_an_error() -> None:
    patterns = {f"p{i}": {"source": [f"aws.service{i}"], "detail-type": ["Some Event"]} for i in range(MAX_RULES + 1)}
    with pytest.raises(RuleError, match="300 rules per event bus"):
        generate_rules(patterns)


# -- pinning ----------------------------------------------------------------------------------------
def test_a_known_detail_type_fills_in_its_source() -> None:
    ruleset = generate_rules({"p": {"detail-type": ["GuardDuty Finding"], "detail": {"severity": [8]}}})
    [rule] = ruleset.rules
    assert rule.pattern["source"] == ["aws.guardduty"] and pinned_everywhere(rule)
    assert any("inferred" in note for note in rule.notes)
    forged = {**TOR, "source": "com.attacker", "detail": {**TOR["detail"], "severity": 8}}
    assert not rule.compiled().matches(forged)
    assert rule.compiled().matches({**forged, "source": "aws.guardduty"})


def test_a_cloudtrail_pattern_gets_the_source_of_its_event_source() -> None:
    match = {
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {"eventSource": ["iam.amazonaws.com", "monitoring.amazonaws.com"]},
    }
    [rule] = generate_rules({"p": match}).rules
    assert rule.pattern["source"] == ["aws.cloudwatch", "aws.iam"]


def test_the_event_source_to_source_derivation_agrees_with_real_events() -> None:
    # c7n's cloudsearch sample was edited by hand upstream (source aws.rds, eventSource cloudsearch);
    # AWS sends aws.cloudsearch for it. Every other EventBridge CloudTrail sample is checked.
    checked = 0
    for name, event in corpus_events():
        if event.get("detail-type") != "AWS API Call via CloudTrail" or "cloudsearch-CreateDomain" in name:
            continue
        match = {"detail-type": [event["detail-type"]], "detail": {"eventSource": [event["detail"]["eventSource"]]}}
        [rule] = generate_rules({"p": match}).rules
        assert rule.compiled().matches(event), name
        checked += 1
    assert checked >= 7
    assert EVENT_SOURCE_EXCEPTIONS  # the one mapping that is not aws.<host>


def test_a_source_alone_gets_its_finding_detail_types() -> None:
    [rule] = generate_rules({"p": {"source": ["aws.guardduty"], "detail": {"severity": [8]}}}).rules
    assert rule.pattern["detail-type"] == ["GuardDuty Finding"]
    [rule] = generate_rules({"p": {"source": ["aws.ec2"], "detail": {"eventName": ["RunInstances"]}}}).rules
    assert rule.pattern["detail-type"] == ["AWS API Call via CloudTrail"]


@pytest.mark.parametrize(
    ("match", "message"),
    [
        ({"detail": {"severity": [8]}}, "pins neither `source` nor `detail-type`"),
        ({"detail-type": ["Order Placed"]}, "does not pin `source`"),
        ({"source": [{"prefix": "aws."}], "detail-type": ["GuardDuty Finding"]}, "exact values"),
        ({"source": ["aws.sqs"], "detail": {"x": ["y"]}}, "does not pin `detail-type`"),
        (
            {"detail-type": ["GuardDuty Finding"], "$or": [{"source": ["aws.guardduty"]}, {"source": ["x.y"]}]},
            "top level",
        ),
        (
            {
                "source": ["aws.guardduty"],
                "detail-type": ["GuardDuty Finding"],
                "detail": {"severity": [{"numeric": [">"]}]},
            },
            "numeric",
        ),
    ],
)
def test_unpinnable_or_invalid_patterns_are_refused_naming_the_playbook(match: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError, match=message) as caught:
        generate_rules({"ok": dict(GD), "culprit": match})
    assert caught.value.playbook == "culprit" and "playbook culprit" in str(caught.value)


def test_custom_sources_get_a_rule_only_when_configured_and_clampdown_commands_never() -> None:
    custom = {"source": ["com.example.edr"], "detail-type": ["EDR Alert"]}
    ondemand = {"source": ["clampdown.ondemand"], "detail-type": ["Clampdown:OnDemand/Contain"]}
    ruleset = generate_rules({"edr": custom, "ondemand": ondemand})
    assert not ruleset.rules
    assert "CLAMPDOWN_CUSTOM_SOURCES" in ruleset.skipped["edr"] and "directly" in ruleset.skipped["ondemand"]
    ruleset = generate_rules({"edr": custom, "ondemand": ondemand}, ["com.example.edr", "clampdown.ondemand"])
    [rule] = ruleset.rules
    assert rule.playbooks == ("edr",) and rule.pattern["source"] == ["com.example.edr"]
    assert list(ruleset.skipped) == ["ondemand"]


def test_disabled_playbooks_get_no_rule(tmp_path: Path) -> None:
    lib = library(
        tmp_path,
        playbook("on", gd({"severity": [8]})),
        playbook("off", {**SH, "detail": {"findings": {"Severity": {"Label": ["HIGH"]}}}}),
    ).with_overrides({"disable": ["off"]})
    [rule] = generate_rules(lib).rules
    assert rule.playbooks == ("on",)
