"""The offline path: match, conditions, targets, templates, modes — on real corpus events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.planner import evaluate
from chalicelib.playbooks.library import Library
from clampdown.playbooks.loader import load_library
from tests.conftest import corpus_event

TOR_USER = "guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"


@pytest.fixture
def library(tmp_path: Path) -> Callable[[str], Library]:
    counter = iter(range(1000))

    def build(*documents: str) -> Library:
        folder = tmp_path / f"lib{next(counter)}"
        folder.mkdir()
        for index, text in enumerate(documents):
            (folder / f"p{index}.yaml").write_text(text)
        return load_library([folder])

    return build  # type: ignore[return-value]


IAM_PLAYBOOK = """\
name: iam-credentials
description: Contain a user whose key was used from Tor.
match:
  source: [aws.guardduty]
  detail:
    type: [{prefix: "UnauthorizedAccess:IAMUser/"}]
mode: approval
steps:
  - action: notify.log
    mode: auto
    params: {message: "key {{ finding.actor.access_key_id }} used from {{ finding.actor.source_ip }}"}
  - action: iam.deactivate-access-key
  - action: iam.quarantine-user
    target: iam-user
"""


def test_plan_resolves_targets_params_and_modes(library: Any) -> None:
    evaluation = evaluate(corpus_event(TOR_USER), library(IAM_PLAYBOOK))
    assert evaluation.matched == ["iam-credentials"]
    [plan] = evaluation.plans
    steps = [(s.action, s.target.kind if s.target else None, s.mode) for s in plan.steps]
    assert steps == [
        ("notify.log", None, "auto"),
        ("iam.deactivate-access-key", "access-key", "approval"),
        ("iam.quarantine-user", "iam-user", "approval"),
    ]
    assert plan.steps[0].params == {"message": "key GeneratedFindingAccessKeyId used from 198.51.100.0"}
    deactivate = plan.steps[1].plan
    assert deactivate is not None
    assert [str(c) for c in deactivate.calls] == [
        "iam:UpdateAccessKey(UserName=GeneratedFindingUserName, AccessKeyId=GeneratedFindingAccessKeyId, Status=Inactive)"
    ]
    quarantine = plan.steps[2].plan
    assert quarantine is not None and quarantine.calls[0].params["UserName"] == "GeneratedFindingUserName"
    assert (
        plan.steps[1].key
        == "883606788610:36b01b60fc22bb4edb19d62d9899e953/iam.deactivate-access-key/access-key:883606788610::GeneratedFindingAccessKeyId"
    )
    assert plan.steps[0].key == "883606788610:36b01b60fc22bb4edb19d62d9899e953/iam-credentials/0/finding"


def test_dry_run_playbook_keeps_every_step_dry(library: Any) -> None:
    text = IAM_PLAYBOOK.replace("mode: approval", "mode: dry-run")
    [plan] = evaluate(corpus_event(TOR_USER), library(text)).plans
    assert {s.mode for s in plan.steps} == {"dry-run"}


def test_conditions_reject_with_a_reason(library: Any) -> None:
    text = IAM_PLAYBOOK.replace("mode: approval", "mode: approval\nconditions:\n  min_severity: 7")
    evaluation = evaluate(corpus_event(TOR_USER), library(text))
    assert evaluation.plans == []
    assert [r.reason for r in evaluation.rejected] == ["severity 5 is below 7"]


def test_samples_can_be_excluded(library: Any) -> None:
    text = IAM_PLAYBOOK.replace("mode: approval", "mode: approval\nconditions:\n  include_samples: false")
    evaluation = evaluate(corpus_event(TOR_USER), library(text))
    assert [r.reason for r in evaluation.rejected] == ["the finding is sample data"]


def test_exclusions_skip_one_resource_or_the_whole_finding(library: Any) -> None:
    by_resource = IAM_PLAYBOOK.replace(
        "mode: approval", "mode: approval\nexclude:\n  resources: [GeneratedFindingUser*]"
    )
    [plan] = evaluate(corpus_event(TOR_USER), library(by_resource)).plans
    assert plan.steps[2].skipped and "matches excluded resource GeneratedFindingUser*" in plan.steps[2].skipped
    assert plan.steps[1].skipped is None

    by_principal = IAM_PLAYBOOK.replace(
        "mode: approval", "mode: approval\nexclude:\n  principals: [GeneratedFindingUserName]"
    )
    evaluation = evaluate(corpus_event(TOR_USER), library(by_principal))
    assert evaluation.plans == [] and "excluded principal" in evaluation.rejected[0].reason


def test_unresolved_template_skips_the_step_with_the_reason(library: Any) -> None:
    text = IAM_PLAYBOOK.replace("{{ finding.actor.source_ip }}", "{{ finding.actor.user_agent }}")
    [plan] = evaluate(corpus_event(TOR_USER), library(text)).plans
    assert plan.steps[0].skipped == "{{ finding.actor.user_agent }}: the finding has no finding.actor.user_agent"


def test_step_without_a_target_in_the_finding(library: Any) -> None:
    text = IAM_PLAYBOOK.replace(
        "  - action: iam.quarantine-user\n    target: iam-user\n", "  - action: iam.quarantine-role\n"
    )
    [plan] = evaluate(corpus_event(TOR_USER), library(text)).plans
    assert plan.steps[-1].skipped == "the finding names no iam-role"


def test_security_hub_findings_are_matched_one_by_one(library: Any) -> None:
    """A pattern on one finding's severity must not select the other findings of the same event."""
    text = """\
name: sh-medium
description: Medium Security Hub findings.
match:
  source: [aws.securityhub]
  detail:
    findings:
      Severity:
        Label: [MEDIUM]
steps:
  - action: notify.log
"""
    event = corpus_event("securityhub/sh_asr_Custom-Action_CIS_1-6-multi-select.json")
    evaluation = evaluate(event, library(text))
    assert len(evaluation.findings) == 2
    assert [p.finding.severity_label for p in evaluation.plans] == ["MEDIUM"]


def test_disabled_playbooks_never_match(library: Any) -> None:
    lib = library(IAM_PLAYBOOK.replace("mode: approval", "mode: approval\nenabled: false"))
    assert evaluate(corpus_event(TOR_USER), lib).plans == []


def test_raw_cloudtrail_record_matches_a_live_event_pattern(library: Any) -> None:
    text = """\
name: cloudtrail-stopped
description: Someone stopped a trail.
match:
  source: [aws.cloudtrail]
  detail-type: [AWS API Call via CloudTrail]
  detail:
    eventSource: [cloudtrail.amazonaws.com]
    eventName: [StopLogging]
steps:
  - action: notify.log
    params: {message: "trail stopped by {{ finding.actor.principal_arn }}"}
"""
    record = corpus_event("cloudtrail/ct_raw_stratus_aws.defense-evasion.cloudtrail-stop_StopLogging.json")
    [plan] = evaluate(record, library(text)).plans
    assert plan.steps[0].params["message"].startswith("trail stopped by arn:aws:")
