"""The intake's envelope checks: sources, detail types per AWS source, accounts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chalicelib.intake import Intake
from clampdown.playbooks.loader import load_library
from tests.conftest import corpus_event

ACCOUNT = "123456789012"


def envelope(source: str, detail_type: str) -> dict[str, Any]:
    return {"source": source, "detail-type": detail_type, "account": ACCOUNT, "detail": {}}


@pytest.mark.parametrize(
    ("source", "detail_type"),
    [
        ("aws.guardduty", "GuardDuty Finding"),
        ("aws.guardduty", "GuardDuty Malware Protection Object Scan Result"),
        ("aws.guardduty", "AWS API Call via CloudTrail"),  # e.g. DeleteDetector
        ("aws.securityhub", "Security Hub Findings - Imported"),
        ("aws.securityhub", "Security Hub Findings - Custom Action"),
        ("aws.securityhub", "Findings Imported V2"),
        ("aws.iam", "AWS API Call via CloudTrail"),
        ("aws.signin", "AWS Console Sign In via CloudTrail"),
        ("aws.s3", "AWS Service Event via CloudTrail"),
    ],
)
def test_what_aws_sources_publish_is_accepted(source: str, detail_type: str) -> None:
    assert Intake(ACCOUNT).check_envelope(envelope(source, detail_type)) is None


@pytest.mark.parametrize(
    ("source", "detail_type"),
    [
        ("aws.securityhub", "GuardDuty Finding"),
        ("aws.guardduty", "Security Hub Findings - Imported"),
        ("aws.guardduty", "GuardDuty finding"),  # detail types are case-sensitive, as EventBridge matches them
        ("aws.iam", "GuardDuty Finding"),
        ("aws.ec2", "EC2 Instance State-change Notification"),  # no playbook asks for it
    ],
)
def test_a_detail_type_the_source_does_not_publish_is_refused(source: str, detail_type: str) -> None:
    refusal = Intake(ACCOUNT).check_envelope(envelope(source, detail_type))
    assert refusal is not None and refusal.metric == "EventsRefusedDetailType"
    assert refusal.reason == f"detail-type {detail_type!r} is not an event {source!r} publishes"


def test_a_service_event_a_playbook_names_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "ec2.yaml").write_text(
        "name: ec2-launch\ndescription: x\nmatch:\n  source: [aws.ec2]\n"
        "  detail-type: [EC2 Instance State-change Notification]\nsteps:\n  - action: notify.log\n"
    )
    library = load_library([tmp_path])
    assert library.event_types() == frozenset({("aws.ec2", "EC2 Instance State-change Notification")})
    intake = Intake(ACCOUNT, declared=library.event_types())
    assert intake.check_envelope(envelope("aws.ec2", "EC2 Instance State-change Notification")) is None
    assert intake.check_envelope(envelope("aws.ec2", "EC2 Spot Instance Interruption Warning")) is not None


def test_custom_sources_keep_their_own_detail_types_and_forged_sources_are_refused() -> None:
    intake = Intake(ACCOUNT, custom_sources=("clampdown.ondemand",))
    assert intake.check_envelope(envelope("clampdown.ondemand", "Clampdown:OnDemand/Contain")) is None
    refusal = intake.check_envelope(envelope("com.attacker", "GuardDuty Finding"))
    assert refusal is not None and refusal.metric == "EventsRefusedSource"


def test_every_corpus_event_of_an_aws_source_passes() -> None:
    """The real samples (GuardDuty, Security Hub ASFF and OCSF, CloudTrail via EventBridge) are all accepted."""
    from tests.conftest import CORPUS

    checked = 0
    for path in sorted(CORPUS.glob("*/*.json")):
        event = corpus_event(str(path.relative_to(CORPUS)))
        if not str(event.get("source", "")).startswith("aws.") or "detail-type" not in event:
            continue
        event["account"] = ACCOUNT
        assert Intake(ACCOUNT).check_envelope(event) is None, path.name
        checked += 1
    assert checked > 50
