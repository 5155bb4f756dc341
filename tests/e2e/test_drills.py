"""`clampdown drill`: every shipped scenario on the embedded AWS, scored."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from clampdown.cli import cli
from clampdown.drills import DRILLS, run_drill
from clampdown.exercise import approve_all

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


@pytest.mark.parametrize("name", list(DRILLS))
def test_every_drill_scores_full_marks_with_approvals(name: str) -> None:
    out = CliRunner().invoke(cli, ["drill", name, "--format", "json"])
    assert out.exit_code == 0, out.output
    document = json.loads(out.output)
    assert document["score"] == {"met": len(DRILLS[name].expectations), "total": len(DRILLS[name].expectations)}
    assert all(e["seconds"] is not None and e["seconds"] >= 0 for e in document["expectations"])
    assert all(e["problem"] is None for e in document["expectations"])
    assert document["timeline"][0]["what"].startswith("finding published")
    assert [t["seconds"] for t in document["timeline"]] == sorted(t["seconds"] for t in document["timeline"])
    assert document["delivery"] == {"failed": 0, "dead_letters": 0}
    assert document["reports"] == []


def test_the_lambda_drill_is_a_guardduty_lambda_protection_finding() -> None:
    """gd-lambda-compromised-function answers it: evidence first, then the function is stopped and made private."""
    result = run_drill(DRILLS["compromised-lambda-function"], PLAYBOOKS, decide=approve_all, echo=lambda _: None)
    [incident] = result.exercise.incidents
    assert incident.type == "Backdoor:Lambda/C&CActivity.B" and incident.status == "contained"
    steps = {s.action: s for s in result.exercise.steps[incident.id]}
    assert {s.playbook for s in steps.values()} >= {"gd-lambda-compromised-function"}
    assert steps["lambda.snapshot-code"].status == "done"
    # the code was copied from the package URL GetFunction gave (served on loopback) and verified
    assert steps["lambda.snapshot-code"].result["output"]["snapshot"]["code_copy"] == "verified"
    assert steps["lambda.zero-concurrency"].status == steps["lambda.remove-public-access"].status == "contained"
    assert result.points == len(result.scores)


def test_evidence_taken_after_the_change_is_scored_as_missed(tmp_path: Path) -> None:
    """The EC2 expectation checks the order from the step records, not only that snapshots exist."""
    playbook = yaml.safe_load((PLAYBOOKS / "gd-ec2-compromised-instance.yaml").read_text())
    playbook.pop("tests", None)
    steps = playbook["steps"]
    snapshot = next(s for s in steps if s["action"] == "ec2.snapshot-volumes")
    steps.remove(snapshot)
    steps.insert(steps.index(next(s for s in steps if s["action"] == "ec2.isolate-instance")) + 1, snapshot)
    (tmp_path / "isolate-first.yaml").write_text(yaml.safe_dump(playbook, sort_keys=False))

    result = run_drill(DRILLS["compromised-ec2-instance"], tmp_path, decide=approve_all, echo=lambda _: None)
    score = next(s for s in result.scores if s.action == "ec2.snapshot-volumes")
    assert score.met is False and score.at is None
    assert score.problem == "ec2.isolate-instance started before ec2.snapshot-volumes had finished"
    assert all(s.met for s in result.scores if s is not score), "the rest was achieved"


def test_denied_approvals_show_what_was_missed() -> None:
    out = CliRunner().invoke(cli, ["drill", "compromised-iam-credentials", "--approvals", "deny"])
    assert out.exit_code == 1
    assert "Score 2/4" in out.output
    assert "the user is quarantined (deny all)  MISSED (expected from iam.quarantine-user)" in out.output
    assert "approval denied in Slack by slack:U0ONCALL (drill-auto-deny)" in out.output


def test_prompted_approvals_follow_the_operator() -> None:
    # two approval requests (quarantine, console login): approve the first, deny the second
    out = CliRunner().invoke(cli, ["drill", "compromised-iam-credentials", "--approvals", "prompt"], input="y\nn\n")
    assert out.exit_code == 1
    assert "Score 3/4" in out.output
    asked = re.findall(r"Approve (.+?) \(incident inc-\w+\)\? \[Y/n\]", out.output)
    assert asked == ["iam.quarantine-user on iam-user ci-deployer", "iam.disable-console-login on iam-user ci-deployer"]


def test_a_drill_writes_its_post_incident_reports(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    out = CliRunner().invoke(cli, ["drill", "public-s3-exposure", "--format", "json", "--report-dir", str(reports)])
    assert out.exit_code == 0, out.output
    document: dict[str, Any] = json.loads(out.output)
    [incident] = document["incidents"]
    assert document["reports"] == [str(reports / f"{incident['id']}.md")]
    text = (reports / f"{incident['id']}.md").read_text()
    assert text.startswith("# Incident report: ")
    assert incident["id"] in text and "s3.lockdown-bucket" in text
    assert "slack:U0ONCALL (drill-auto-approve)" in text, "the approval given in Slack is in the report"


def test_an_unwritable_report_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = CliRunner().invoke(cli, ["drill", "public-s3-exposure", "--report-dir", str(blocker / "reports")])
    assert out.exit_code == 2, "refused before the drill runs"
    assert f"Invalid value for '--report-dir': cannot create {blocker / 'reports'}: Not a directory" in out.output
    assert "embedded AWS" not in out.output and "Traceback" not in out.output


def test_unknown_scenario_is_a_usage_error() -> None:
    out = CliRunner().invoke(cli, ["drill", "nope"])
    assert out.exit_code == 2 and "unknown scenario 'nope'" in out.output
    listed = CliRunner().invoke(cli, ["drill", "--list"])
    assert listed.exit_code == 0 and all(name in listed.output for name in DRILLS)
