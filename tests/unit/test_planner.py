"""The offline path: match, conditions, targets, templates, modes — on real corpus events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.planner import evaluate, params_digest
from chalicelib.playbooks.library import Library
from chalicelib.playbooks.model import ARCHIVED_REASON
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


TWO_TAGS = """\
name: two-tags
description: Two tag steps of different intent on the same user.
match:
  source: [aws.guardduty]
steps:
  - action: tag
    target: iam-user
    params: {tags: {"clampdown:first": "a"}}
  - action: tag
    target: iam-user
    params: {tags: {"clampdown:second": "{{ finding.type }}"}}
"""


def test_steps_with_different_parameters_have_different_keys(library: Any) -> None:
    [plan] = evaluate(corpus_event(TOR_USER), library(TWO_TAGS)).plans
    first, second = plan.steps
    assert first.target == second.target
    assert first.key != second.key
    assert first.key.startswith("883606788610:36b01b60fc22bb4edb19d62d9899e953/tag/iam-user:883606788610::")
    assert first.key.rsplit("#", 1)[1] == params_digest({"tags": {"clampdown:first": "a"}})


def test_the_key_depends_on_the_parameters_as_written_not_as_rendered(library: Any) -> None:
    """A finding update that changes what a template renders to must not make a new step."""
    event = corpus_event(TOR_USER)
    [before] = evaluate(event, library(TWO_TAGS)).plans
    event["detail"]["type"] = "UnauthorizedAccess:IAMUser/MaliciousIPCaller"
    [after] = evaluate(event, library(TWO_TAGS)).plans
    assert before.steps[1].params != after.steps[1].params
    assert [s.key for s in before.steps] == [s.key for s in after.steps]


def test_two_playbooks_asking_for_the_same_containment_share_its_key(library: Any) -> None:
    native = IAM_PLAYBOOK
    other = IAM_PLAYBOOK.replace("name: iam-credentials", "name: other-credentials")
    plans = evaluate(corpus_event(TOR_USER), library(native, other)).plans
    assert [s.key for s in plans[0].steps[1:]] == [s.key for s in plans[1].steps[1:]]
    # a parameter that says what the default says is the same intent, hence the same key
    isolate = "  - action: ec2.isolate-instance\n    params: {isolation_group_name: clampdown-isolation}\n"
    event = corpus_event("guardduty/gd_c7n_Backdoor-EC2-C-CActivity-B-DNS.json")
    explicit = "name: explicit\ndescription: x\nmatch:\n  source: [aws.guardduty]\nsteps:\n" + isolate
    implicit = (
        "name: implicit\ndescription: x\nmatch:\n  source: [aws.guardduty]\nsteps:\n  - action: ec2.isolate-instance\n"
    )
    first, second = evaluate(event, library(explicit, implicit)).plans
    assert first.steps[0].key == second.steps[0].key and "#" not in first.steps[0].key


def test_on_error_defaults_to_the_actions_own(library: Any) -> None:
    text = """\
name: notify-first
description: A notification, then containment, then a notification that must stop the rest.
match:
  source: [aws.guardduty]
steps:
  - action: notify.slack
  - action: iam.deactivate-access-key
  - action: notify.webhook
    on_error: stop
  - action: iam.quarantine-user
    on_error: continue
"""
    [plan] = evaluate(corpus_event(TOR_USER), library(text)).plans
    assert {s.action: s.on_error for s in plan.steps} == {
        "notify.slack": "continue",  # an alert that cannot be delivered never blocks containment
        "iam.deactivate-access-key": "stop",
        "notify.webhook": "stop",  # the playbook's own value wins
        "iam.quarantine-user": "continue",
    }


def test_templated_parameters_are_checked_against_the_actions_schema(library: Any) -> None:
    text = """\
name: bad-level
description: A log level taken from the finding is no log level.
match:
  source: [aws.guardduty]
steps:
  - action: notify.log
    params: {level: "{{ finding.type }}"}
  - action: iam.deactivate-access-key
"""
    [plan] = evaluate(corpus_event(TOR_USER), library(text)).plans
    broken, contain = plan.steps
    assert broken.error == (
        "invalid parameter after templates were filled in: params.level: "
        "'UnauthorizedAccess:IAMUser/TorIPCaller' is not one of debug, error, info, warning"
    )
    assert broken.to_dict()["error"] == broken.error and broken.plan is None
    assert contain.error is None and contain.plan is not None


def test_a_step_can_target_one_resource_by_its_path(library: Any) -> None:
    text = """\
name: by-path
description: Steps naming the finding's resources by position.
match:
  source: [aws.guardduty]
steps:
  - action: iam.quarantine-user
    target: "resources[-1]"
  - action: iam.deactivate-access-key
    target: "resources[0]"
  - action: iam.deactivate-access-key
    target: "resources[1]"
  - action: iam.deactivate-access-key
    target: "resources[2]"
"""
    [plan] = evaluate(corpus_event(TOR_USER), library(text)).plans
    user, key, wrong_kind, missing = plan.steps
    assert user.target is not None and (user.target.kind, user.target.name) == ("iam-user", "GeneratedFindingUserName")
    assert key.target is not None and key.target.id == "GeneratedFindingAccessKeyId"
    assert wrong_kind.skipped == "resources[1] is of kind iam-user; iam.deactivate-access-key acts on access-key"
    assert missing.skipped == "the finding has no resources[2] (it names 2 resources)"
    assert [s.key for s in plan.steps[:2]] == [
        "883606788610:36b01b60fc22bb4edb19d62d9899e953/iam.quarantine-user/iam-user:883606788610::GeneratedFindingUserName",
        "883606788610:36b01b60fc22bb4edb19d62d9899e953/iam.deactivate-access-key/access-key:883606788610::GeneratedFindingAccessKeyId",
    ]


def test_archived_findings_are_acted_on_only_when_asked(library: Any) -> None:
    event = corpus_event(TOR_USER)
    event["detail"]["service"]["archived"] = True
    lib = library(IAM_PLAYBOOK)
    evaluation = evaluate(event, lib)
    assert evaluation.plans == [] and [r.reason for r in evaluation.rejected] == [ARCHIVED_REASON]
    assert len(evaluate(event, lib, act_on_archived=True).plans) == 1
    opted_in = IAM_PLAYBOOK.replace("mode: approval", "mode: approval\nconditions:\n  include_archived: true")
    assert len(evaluate(event, library(opted_in)).plans) == 1
