"""`clampdown demo` end to end: real findings through the Lambda SQS handler on the embedded AWS, alerts
and approval requests to the local Slack stand-in, approvals clicked in Slack through the app's route."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from clampdown import demo, scenarios
from clampdown.cli import cli

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


def test_demo_contains_every_scenario() -> None:
    result = demo.run(PLAYBOOKS, echo=lambda _: None)
    assert set(result.by_scenario) == {s.title for s in scenarios.DEMO}
    assert all(result.by_scenario.values()), "every scenario opened an incident"
    statuses = {i.type: i.status for i in result.incidents}
    assert set(statuses.values()) == {"contained"}, statuses
    before, after = result.observed["before"], result.observed["after"]
    assert before["access key"].endswith("Active") and after["access key"].endswith("Inactive")
    assert "clampdown-quarantine" in after["user inline policies"]
    assert "clampdown-revoke-older-sessions" in after["role inline policies"]
    assert after["instance security groups"] != before["instance security groups"]
    assert all(g.startswith("clampdown-isolation") for g in after["instance security groups"])
    assert after["bucket public access block"] == "all four blocked"
    assert before["function public statements"] == ["public-invoke"] and after["function public statements"] == []
    # the approval-mode steps ran once, after the on-call engineer clicked Approve in Slack (the
    # decision went through the app's /slack/interactions route: it records the Slack user)
    approved = [s for steps in result.steps.values() for s in steps if s.approved_by]
    assert {s.action for s in approved} >= {"iam.quarantine-user", "iam.disable-console-login", "s3.lockdown-bucket"}
    assert all(s.status in ("contained", "already-contained") for s in approved)
    assert {a.status for a in result.approvals} == {"approved"} and len(result.approvals) == len(approved)
    assert {a.decided_by for a in result.approvals} == {"slack:U0ONCALL (oncall)"}
    assert result.dead_letters == 0
    assert sum(p.failed for p in result.pump) == 0
    # every incident has its Slack message, updated to its final state; the approval requests lost
    # their buttons and say who approved and what happened
    assert set(result.slack) == {i.id for i in result.incidents}
    for thread in result.slack.values():
        fields = next(b for b in thread.message["blocks"] if b.get("fields"))
        assert fields["fields"][0]["text"] == "*Status*\n✅ contained"
    requests = [m for t in result.slack.values() for m in t.approvals]
    assert len(requests) == len(approved)
    for request in requests:
        assert not any(b["type"] == "actions" for b in request["blocks"]), "no buttons left"
        assert request["blocks"][-1]["text"]["text"].startswith("✅ *Approved* by <@U0ONCALL> — ")
        assert request["blocks"][-1]["text"]["text"].endswith(("— contained", "— already-contained"))


def test_time_to_containment_counts_the_approval_wait_apart() -> None:
    from datetime import UTC, datetime

    from chalicelib.incidents import Approval, StepRecord

    def at(seconds: float) -> str:
        return datetime.fromtimestamp(1_800_000_000 + seconds, UTC).isoformat().replace("+00:00", "Z")

    def step(action: str, contained: float | None, approval: str | None = None) -> StepRecord:
        history = [{"time": at(0.1), "status": "pending-approval"}] if approval else []
        if contained is not None:
            history.append({"time": at(contained), "status": "contained"})
        return StepRecord(
            "inc-1", action, "p", 0, action, "contained" if contained is not None else "skipped", "auto",
            approval_id=approval, approved_by="slack:U0ONCALL (oncall)" if approval else None, history=history,
        )  # fmt: skip

    steps = [step("key", 0.4), step("quarantine", 6.5, "a1"), step("skipped", None)]
    approvals = [Approval("a1", "inc-1", "quarantine", "approved", at(0.1), 0, decided_at=at(6.0))]
    timing = demo.containment(steps, approvals, 1_800_000_000)
    assert timing == demo.Containment(first=pytest.approx(0.4), with_approvals=pytest.approx(6.5), approved_at=pytest.approx(6.0))  # fmt: skip
    assert demo.containment(steps[2:], [], 1_800_000_000) == demo.Containment(None, None, None)


def test_demo_command_prints_the_report(tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["demo", "--report-dir", str(tmp_path / "reports"), "--report-format", "html"])
    assert out.exit_code == 0, out.output
    text = out.output
    assert "The account before → after" in text
    assert "access key:" in text and "Inactive" in text
    assert "   user console login: enabled → disabled\n" in text
    assert "0 in the dead-letter queue" in text
    # findings, the playbooks that matched them, and what each action changed, field by field
    assert re.search(r"playbooks matched: (\S+, )*gd-iam-compromised-credentials(, \S+)*\n", text)
    assert re.search(r"playbooks matched: (\S+, )*gd-ec2-compromised-instance(, \S+)*\n", text)
    assert "       status: Active → Inactive\n" in text
    assert "       policy: + Deny ClampdownDenyAll (*) (new policy)\n" in text
    assert "       policy: - Allow PublicRead (s3:GetObject, for *) (policy deleted)\n" in text
    assert "       public_statements: - Allow public-invoke (lambda:InvokeFunction, for *)\n" in text
    assert re.search(r"network_interfaces\[eni-\w+\]\.groups: - sg-\w+, \+ sg-\w+\n", text)
    # the tags a step set, once: not the whole tag set it keeps for its rollback
    assert len(re.findall(r"\n {7}tags\.clampdown:incident: none → inc-\w+\n", text)) == 1
    assert "all.clampdown:incident" not in text
    # steps that do not apply are one line; a real skip stays visible with its reason
    assert "(1 step(s) did not apply: the finding names no iam-role)" in text
    assert "iam.revoke-role-sessions → the finding: skipped" not in text
    assert "- iam.deactivate-access-key → access-key ASIAEXAMPLESESSION01: skipped" in text
    assert "temporary credentials (ASIA…) cannot be deactivated" in text
    # time to containment: the first action, and the approved steps with the approval wait
    assert len(re.findall(r"time to containment: first action \d+\.\d\d s after the finding was published", text)) == 5
    assert len(re.findall(r"; approved steps \d+\.\d\d s \(approved in Slack at \+\d+\.\d\d s\)", text)) >= 2
    # the Slack messages, as Slack would show them
    assert "The Slack messages (#security-alerts" in text
    assert (
        "┃ Status: ✅ contained · Severity: MEDIUM (5) · Finding type: UnauthorizedAccess:IAMUser/TorIPCaller" in text
    )
    assert "┃ ✅ 3. iam.quarantine-user on ci-deployer — contained · approved by @U0ONCALL" in text
    assert "┃ Playbook gd-iam-compromised-credentials\n" in text, "steps under their playbook's name"
    assert "approval request: ⏳ Approval needed · iam.quarantine-user on ci-deployer\n     → ✅ Approved by @U0ONCALL — contained" in text  # fmt: skip
    assert len(re.findall(r"incident inc-\w+: 1 message, updated in place; \d+ thread reply", text)) == 5
    assert re.search(r"\n   \d+ approval\(s\) given by clicking Approve in Slack: ", text)
    # one report per incident, where the output says
    reports = sorted((tmp_path / "reports").iterdir())
    assert len(reports) == 5 and all(p.suffix == ".html" for p in reports)
    for report in reports:
        assert str(report) in text
        page = report.read_text()
        assert page.startswith("<!DOCTYPE html>") and report.stem in page


def test_invalid_playbooks_are_reported_as_validate_reports_them(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "name: Bad Name\ndescription: x\nmatch:\n  source: [aws.guardduty]\nsteps:\n  - action: iam.nope\n"
    )
    for command in (["demo"], ["drill", "compromised-iam-credentials"]):
        out = CliRunner().invoke(cli, [*command, "--playbooks", str(tmp_path)])
        assert out.exit_code == 1, out.output
        assert f"{tmp_path / 'bad.yaml'}:1: name: 'Bad Name' does not match" in out.output
        assert f"the playbooks in {tmp_path} are not valid (run: clampdown validate {tmp_path})" in out.output
        assert "PlaybookValidationError" not in out.output and "Traceback" not in out.output
