"""GuardDuty attack sequences: every actor and resource is a target, each gets its own step (approval
by default), and as the sequence grows only new targets get new steps.

The event is ``tests/data/constructed/gd_constructed_AttackSequence-IAM-CompromisedCredentials_sequence.json``
(no public full sample exists; built to the GuardDuty API's ``Sequence`` shape, see its README row).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from chalicelib.executor import StepRunner
from chalicelib.incidents import MemoryIncidentStore
from chalicelib.intake import Intake
from chalicelib.responder import TRUNCATION_NOTE, Responder
from chalicelib.settings import Settings
from tests.functional import responder_env as env

EVENT = (
    Path(__file__).resolve().parents[1]
    / "data/constructed/gd_constructed_AttackSequence-IAM-CompromisedCredentials_sequence.json"
)
ACCOUNT = "111122223333"
PLAYBOOK = """\
name: gd-attack-sequence-iam
description: Contain every principal and key an IAM attack sequence names, with a human in the loop.
match:
  source: [aws.guardduty]
  detail-type: [GuardDuty Finding]
  detail:
    type: [{prefix: "AttackSequence:IAM/"}]
mode: approval
steps:
  - action: iam.revoke-role-sessions
  - action: iam.deactivate-access-key
  - action: iam.quarantine-user
    target: iam-user
  - action: s3.block-public-access
"""


def sequence_event() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(EVENT.read_text())
    return loaded


def offline_responder(tmp_path: Path) -> Responder:
    store = MemoryIncidentStore()
    settings = Settings(accounts=(ACCOUNT,))
    return Responder(
        library=env.library(tmp_path, PLAYBOOK),
        store=store,
        runner=StepRunner(settings=settings, store=store, aws=None),
        intake=Intake(home_account=ACCOUNT),
    )


def targets(steps: list[Any]) -> list[tuple[str, str]]:
    return sorted((s.action, (s.target or {}).get("name") or (s.target or {}).get("id")) for s in steps if s.target)


def test_every_target_gets_its_own_step_waiting_for_approval(tmp_path: Path) -> None:
    clampdown = offline_responder(tmp_path)
    report = clampdown.handle(sequence_event())
    assert targets(report.steps) == [
        ("iam.deactivate-access-key", "AKIAI44QH8DHBEXAMPLE"),
        ("iam.deactivate-access-key", "ASIAIOSFODNN7EXAMPLE"),
        ("iam.quarantine-user", "john_doe"),
        ("iam.revoke-role-sessions", "ops-admin"),
        ("s3.block-public-access", "finance-exports-prod"),
    ]
    statuses = {(s.action, (s.target or {}).get("id")): s.status for s in report.steps}
    # the temporary key cannot be deactivated: its role's sessions are revoked instead
    assert statuses[("iam.deactivate-access-key", "ASIAIOSFODNN7EXAMPLE")] == "skipped"
    assert {s.status for s in report.steps if s.status != "skipped"} == {"pending-approval"}
    assert len(clampdown.store.list_approvals()) == 4


def test_a_growing_sequence_only_adds_steps_for_new_targets(tmp_path: Path) -> None:
    clampdown = offline_responder(tmp_path)
    first = sequence_event()
    clampdown.handle(first)
    approvals_before = {a.id for a in clampdown.store.list_approvals()}
    grown = copy.deepcopy(first)
    sequence = grown["detail"]["service"]["detection"]["sequence"]
    sequence["resources"].append(
        {
            "uid": "arn:aws:s3:::finance-archive",
            "name": "finance-archive",
            "accountId": ACCOUNT,
            "resourceType": "S3_BUCKET",
            "region": "us-east-1",
            "service": "S3",
            "cloudPartition": "aws",
        }
    )
    grown["detail"]["service"]["count"] = 2
    grown["id"] = "a-later-event"
    report = clampdown.handle(grown)
    [incident] = clampdown.store.list_incidents()
    assert incident.deliveries == 2
    steps = clampdown.store.list_steps(incident.id)
    assert ("s3.block-public-access", "finance-archive") in targets(steps)
    new_approvals = {a.id for a in clampdown.store.list_approvals()} - approvals_before
    assert len(new_approvals) == 1, "only the new bucket needed a new decision"
    assert len([s for s in report.steps if s.status == "pending-approval"]) == 5


def with_actors(event: dict[str, Any], count: int) -> dict[str, Any]:
    """The sequence with ``count`` more IAM users among its actors (GuardDuty ``Actor`` shape)."""
    grown = copy.deepcopy(event)
    actors = grown["detail"]["service"]["detection"]["sequence"]["actors"]
    for index in range(count):
        actors.append(
            {
                "id": f"actor-iamuser-intruder-{index}",
                "user": {
                    "name": f"intruder-{index}",
                    "uid": f"AIDA3UBBJ2K3TVEXAMP{index:02d}",
                    "type": "IAMUser",
                    "credentialUid": f"AKIAI44QH8DHBEXAMP{index:02d}",
                    "account": {"uid": ACCOUNT},
                },
                "session": {"mfaStatus": "DISABLED"},
            }
        )
    return grown


def asff_copy(native: dict[str, Any]) -> dict[str, Any]:
    """The Security Hub (ASFF) copy of a native attack sequence, as Security Hub CSPM imports it: ``Id`` is
    the GuardDuty finding ARN, and ``Detection.Sequence.Actors`` keeps at most the first 10 actors."""
    detail = native["detail"]
    actors = detail["service"]["detection"]["sequence"]["actors"]
    finding = {
        "SchemaVersion": "2018-10-08",
        "Id": detail["arn"],
        "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty",
        "GeneratorId": detail["arn"].split("/finding/")[0],
        "AwsAccountId": ACCOUNT,
        "Types": ["TTPs/Initial Access/AttackSequence:IAM-CompromisedCredentials"],
        "CreatedAt": detail["createdAt"],
        "UpdatedAt": detail["updatedAt"],
        "Severity": {"Product": 9, "Label": "CRITICAL", "Normalized": 90},
        "Title": detail["title"],
        "Description": detail["description"],
        "ProductFields": {"aws/securityhub/ProductName": "GuardDuty", "aws/securityhub/CompanyName": "Amazon"},
        "Resources": [{"Type": "Other", "Id": detail["arn"], "Partition": "aws", "Region": "us-east-1"}],
        "Detection": {
            "Sequence": {
                "Uid": detail["service"]["detection"]["sequence"]["uid"],
                "Actors": [
                    {
                        "Id": actor["id"],
                        "User": {
                            "Name": actor["user"]["name"],
                            "Uid": actor["user"]["uid"],
                            "Type": actor["user"]["type"],
                            "CredentialUid": actor["user"]["credentialUid"],
                            "Account": {"Uid": actor["user"]["account"]["uid"]},
                        },
                    }
                    for actor in actors[:10]
                ],
            }
        },
        "Workflow": {"Status": "NEW"},
        "RecordState": "ACTIVE",
    }
    return {
        "version": "0",
        "id": "6f2c1d0e-3b4a-4c5d-8e9f-0a1b2c3d4e5f",
        "detail-type": "Security Hub Findings - Imported",
        "source": "aws.securityhub",
        "account": ACCOUNT,
        "time": "2025-02-25T20:41:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:securityhub:us-east-1::product/aws/guardduty/{detail['arn']}"],
        "detail": {"findings": [finding]},
    }


def test_a_truncated_security_hub_copy_is_noted_on_the_incident(tmp_path: Path) -> None:
    """No playbook here plans for the ASFF copy: its delivery and the truncation are recorded all the same."""
    clampdown = offline_responder(tmp_path)
    native = with_actors(sequence_event(), 10)
    clampdown.handle(native)
    [incident] = clampdown.store.list_incidents()
    assert incident.notes == []
    report = clampdown.handle(asff_copy(native))
    assert (report.incidents, report.steps) == ([incident.id], [])
    [incident] = clampdown.store.list_incidents()
    assert incident.notes == [TRUNCATION_NOTE]
    assert (incident.deliveries, sorted(incident.sources)) == (2, ["guardduty", "securityhub"])
    clampdown.handle(asff_copy(native))
    assert clampdown.store.list_incidents()[0].notes == [TRUNCATION_NOTE], "noted once"
