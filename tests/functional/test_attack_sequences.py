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
from chalicelib.responder import Responder
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
