"""Per-environment tuning of the shipped library (``CLAMPDOWN_OVERRIDES`` → ``Library.with_overrides``),
on real events, and the README's "Tuning the library" examples applied as written."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.planner import evaluate
from chalicelib.playbooks.library import Library
from chalicelib.settings import Settings
from clampdown.playbooks.loader import load_library
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TOR = "corpus/guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"
CNC = "corpus/guardduty/gd_c7n_Backdoor-EC2-C-CActivity-B-DNS.json"
STOP_LOGGING = "corpus/cloudtrail/ct_raw_stratus_aws.defense-evasion.cloudtrail-stop_StopLogging.json"
BUCKET = "constructed/gd_constructed_Policy-S3-BucketAnonymousAccessGranted.json"
LAMBDA = "constructed/gd_constructed_Backdoor-Lambda-CCActivity-B.json"


@pytest.fixture(scope="module")
def shipped() -> Library:
    return load_library([ROOT / "playbooks"])


def event(relative: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / relative).read_text())
    loaded.pop("debug", None)
    return loaded


def plan_of(library: Library, relative: str, playbook: str) -> list[tuple[str, str, str | None]]:
    """(action, mode, skip reason) of one playbook's plan for the event; [] when it does not act."""
    evaluation = evaluate(event(relative), library, now=NOW)
    return [(s.action, s.mode, s.skipped) for p in evaluation.plans if p.playbook.name == playbook for s in p.steps]


def test_no_overrides_change_nothing(shipped: Library) -> None:
    same = shipped.with_overrides({})
    assert [(p.name, p.enabled, p.mode, p.exclude) for p in same.playbooks] == [
        (p.name, p.enabled, p.mode, p.exclude) for p in shipped.playbooks
    ]


def test_disable_turns_a_playbook_off(shipped: Library) -> None:
    assert plan_of(shipped, LAMBDA, "gd-lambda-compromised-function")
    tuned = shipped.with_overrides({"disable": ["gd-lambda-compromised-function"]})
    assert plan_of(tuned, LAMBDA, "gd-lambda-compromised-function") == []
    assert not tuned.by_name["gd-lambda-compromised-function"].enabled
    # the rest of the library still answers the same finding
    assert plan_of(tuned, LAMBDA, "gd-default-notify") == [("notify.log", "auto", None)]


def test_modes_make_automatic_containment_wait_for_a_person(shipped: Library) -> None:
    before = plan_of(shipped, TOR, "gd-iam-compromised-credentials")
    assert ("iam.deactivate-access-key", "auto", None) in before
    approval = plan_of(shipped.with_overrides({"modes": {"gd-iam-compromised-credentials": "approval"}}), TOR,
                       "gd-iam-compromised-credentials")  # fmt: skip
    assert ("iam.deactivate-access-key", "approval", None) in approval
    assert {mode for _, mode, _ in approval} == {"approval"}
    dry = plan_of(shipped.with_overrides({"modes": {"gd-iam-compromised-credentials": "dry-run"}}), TOR,
                  "gd-iam-compromised-credentials")  # fmt: skip
    assert {mode for _, mode, _ in dry} == {"dry-run"}, "a dry-run playbook runs every step in dry-run"


def test_a_step_with_its_own_mode_keeps_it_under_a_playbook_mode_override(shipped: Library) -> None:
    tuned = shipped.with_overrides({"modes": {"gd-ec2-instance-attacking-others": "approval"}})
    playbook = tuned.by_name["gd-ec2-instance-attacking-others"]
    assert playbook.mode == "approval"
    explicit = {s.action: s.mode for s in playbook.steps if s.mode}
    assert explicit == {"ec2.isolate-instance": "approval"}


def test_excluded_break_glass_principal_drops_the_whole_finding(shipped: Library) -> None:
    tuned = shipped.with_overrides({"exclude": {"principals": ["arn:aws:iam::*:user/christophe"]}})
    evaluation = evaluate(event(STOP_LOGGING), tuned, now=NOW)
    assert evaluation.plans == []
    [rejection] = evaluation.rejected
    assert rejection.playbook == "ct-logging-tampering" and "excluded principal" in rejection.reason
    # a GuardDuty finding's principal is its access key's user
    tor = evaluate(event(TOR), shipped.with_overrides({"exclude": {"principals": ["GeneratedFinding*"]}}), now=NOW)
    assert tor.plans == [] and {r.playbook for r in tor.rejected} == {
        "gd-iam-compromised-credentials",
        "gd-default-notify",
    }


def test_excluded_accounts_and_regions(shipped: Library) -> None:
    by_account = evaluate(event(CNC), shipped.with_overrides({"exclude": {"accounts": ["883606788610"]}}), now=NOW)
    assert by_account.plans == [] and "account 883606788610 is excluded" in by_account.rejected[0].reason
    by_region = evaluate(event(CNC), shipped.with_overrides({"exclude": {"regions": ["us-*"]}}), now=NOW)
    assert by_region.plans == []


def test_an_excluded_resource_is_skipped_and_the_plan_says_why(shipped: Library) -> None:
    tuned = shipped.with_overrides({"exclude": {"resources": ["i-99999999"]}})
    steps = plan_of(tuned, CNC, "gd-ec2-compromised-instance")
    isolate = [s for s in steps if s[0] == "ec2.isolate-instance"]
    assert isolate and all(reason and "matches excluded resource i-99999999" in reason for _, _, reason in isolate)
    assert ("notify.log", "auto", None) in steps, "the finding is still announced"


def test_a_tagged_resource_is_left_alone(shipped: Library) -> None:
    # the constructed bucket carries data-class=confidential in the GuardDuty finding
    tuned = shipped.with_overrides({"exclude": {"tags": {"data-class": "conf*"}}})
    steps = plan_of(tuned, BUCKET, "gd-s3-exposure")
    s3 = [s for s in steps if s[0].startswith("s3.")]
    assert len(s3) == 3 and all(reason and "is tagged data-class=confidential" in reason for _, _, reason in s3)


def test_overrides_are_merged_with_the_playbooks_own_exclusions(shipped: Library) -> None:
    tuned = shipped.with_overrides({"exclude": {"accounts": ["111111111111"], "tags": {"clampdown:exempt": "*"}}})
    for name, playbook in tuned.by_name.items():
        own = shipped.by_name[name].exclude
        assert playbook.exclude.accounts == (*own.accounts, "111111111111")
        assert playbook.exclude.tags == {**own.tags, "clampdown:exempt": "*"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"disable": ["gd-no-such-playbook"]}, "unknown playbook 'gd-no-such-playbook'"),
        ({"modes": {"gd-s3-exposure": "sometimes"}}, "override mode 'sometimes'"),
        ({"enable": ["gd-s3-exposure"]}, "unknown override keys: enable"),
    ],
)
def test_a_typo_is_an_error_not_a_playbook_silently_left_on(
    shipped: Library, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        shipped.with_overrides(overrides)


def test_the_stage_setting_reaches_the_library(shipped: Library) -> None:
    value = json.dumps({"disable": ["gd-ec2-instance-targeted-notify"], "modes": {"gd-s3-exposure": "approval"}})
    settings = Settings.from_env({"CLAMPDOWN_OVERRIDES": value})
    tuned = shipped.with_overrides(settings.overrides)
    assert not tuned.by_name["gd-ec2-instance-targeted-notify"].enabled
    assert "gd-ec2-instance-targeted-notify" not in {p.name for p in tuned.enabled}
    assert plan_of(tuned, BUCKET, "gd-s3-exposure")[0][1] == "approval"


def readme_examples() -> list[dict[str, Any]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Tuning the library", 1)[1].split("\n## ", 1)[0]
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, re.DOTALL)]


def test_the_readme_examples_apply_to_the_shipped_library(shipped: Library) -> None:
    examples = readme_examples()
    assert len(examples) >= 3
    for overrides in examples:
        tuned = shipped.with_overrides(overrides)
        for name, mode in overrides.get("modes", {}).items():
            assert tuned.by_name[name].mode == mode
        for name in overrides.get("disable", ()):
            assert not tuned.by_name[name].enabled
    careful = shipped.with_overrides(examples[0])
    # with the first example, nothing the shipped library contains at once is contained without a person
    for relative in (
        TOR,
        CNC,
        BUCKET,
        LAMBDA,
        "corpus/cloudtrail/ct_raw_panther_PutBucketPolicy_S3-Made-Publicly-Accessible.json",
    ):
        evaluation = evaluate(event(relative), careful, now=NOW)
        for plan in evaluation.plans:
            for step in plan.steps:
                if step.action.startswith(("iam.", "ec2.isolate", "s3.", "lambda.")) and not step.skipped:
                    if step.action in ("lambda.snapshot-code",):
                        continue
                    assert step.mode != "auto", (relative, plan.playbook.name, step.action)
    exempt = shipped.with_overrides(examples[1])
    assert evaluate(event(STOP_LOGGING), exempt, now=NOW).plans  # christophe is no break-glass role
    assert not exempt.by_name["gd-ec2-instance-targeted-notify"].enabled
