"""`clampdown demo` end to end: real findings through the Lambda SQS handler on the embedded AWS."""

from __future__ import annotations

from pathlib import Path

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
    # the approval-mode steps ran once, after the approval, and say who approved them
    approved = [s for steps in result.steps.values() for s in steps if s.approved_by]
    assert {s.action for s in approved} == {"iam.quarantine-user", "iam.disable-console-login", "s3.lockdown-bucket"}
    assert all(a.status == "approved" for a in result.approvals)
    assert result.dead_letters == 0
    assert sum(p.failed for p in result.pump) == 0


def test_demo_command_prints_the_report() -> None:
    out = CliRunner().invoke(cli, ["demo"])
    assert out.exit_code == 0, out.output
    assert "The account before → after" in out.output
    assert "access key:" in out.output and "Inactive" in out.output
    assert "0 in the dead-letter queue" in out.output
