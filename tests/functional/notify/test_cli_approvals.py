"""``clampdown approvals list`` / ``approve`` / ``deny``: deciding without Slack, on moto."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from clampdown.cli import cli
from tests.functional.notify.stage import Stage


@pytest.fixture
def env(stage: Stage, monkeypatch: pytest.MonkeyPatch) -> Stage:
    for name, value in stage.environ().items():
        monkeypatch.setenv(name, value)
    return stage


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def pending(stage: Stage) -> tuple[Any, Any]:
    responder = stage.responder()
    step = responder.handle(stage.finding()).steps[0]
    return responder, step


def test_list_shows_pending_requests(env: Stage) -> None:
    _responder, step = pending(env)
    code, out = run("approvals", "list")
    assert code == 0
    assert out.startswith(f"{step.approval_id}  pending  {step.incident_id}  iam.deactivate-access-key on {env.key}")
    code, out = run("approvals", "list", "--format", "json")
    [row] = json.loads(out)["approvals"]
    assert (row["id"], row["status"], row["step_status"]) == (step.approval_id, "pending", "pending-approval")
    assert run("approvals", "list", "--status", "approved") == (0, "no approved approvals\n")


def test_approve_records_the_cli_user_and_queues_the_command(env: Stage) -> None:
    responder, step = pending(env)
    code, out = run("approve", step.approval_id)
    assert code == 0, out
    by = f"cli:{getpass.getuser()} (arn:aws:sts::123456789012:user/moto)"
    assert out.splitlines() == [f"{step.approval_id} approved by {by}", f"queued for the responder ({env.queue_url})"]
    assert env.key_status() == "Active"
    for message in env.drain():
        responder.handle(message)
    assert env.key_status() == "Inactive"
    assert responder.store.get_step(step.incident_id, step.key).approved_by == by
    # the Slack message is updated by the responder as for a click
    assert any("approved by" in str(u.params["blocks"]) for u in env.slack.calls("chat.update"))

    code, out = run("approve", step.approval_id)
    assert code == 1 and f"Error: {step.approval_id} was already approved by {by}" in out


def test_approve_run_now_carries_out_the_step_here(env: Stage) -> None:
    _responder, step = pending(env)
    code, out = run("approve", step.approval_id, "--run-now")
    assert code == 0, out
    assert "step 1 iam.deactivate-access-key: contained" in out.splitlines()
    assert env.key_status() == "Inactive" and env.drain() == []


def test_deny_needs_a_reason_and_closes_the_step(env: Stage) -> None:
    responder, step = pending(env)
    code, out = run("deny", step.approval_id)
    assert code == 2 and "Missing option '--reason'" in out
    code, out = run("deny", step.approval_id, "--reason", "pentest in progress", "--run-now")
    assert code == 0, out
    done = responder.store.get_step(step.incident_id, step.key)
    assert done.status == "denied" and done.reason.endswith(": pentest in progress")
    assert env.key_status() == "Active"


def test_unknown_ids_and_missing_tables_are_clear_errors(env: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = run("approve", "no-such-approval-id")
    assert code == 1 and "Error: no approval 'no-such-approval-id' in clampdown-incidents" in out
    monkeypatch.delenv("CLAMPDOWN_INCIDENTS_TABLE")
    code, out = run("approvals", "list")
    assert code == 1 and "no incidents table: give --table, --stage or set CLAMPDOWN_INCIDENTS_TABLE" in out


def test_stage_settings_come_from_the_chalice_config(
    stage: Stage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _responder, step = pending(stage)
    project = tmp_path / "project"
    (project / ".chalice").mkdir(parents=True)
    config = {
        "version": "2.0",
        "app_name": "clampdown",
        "stages": {
            "ops": {
                "environment_variables": {
                    "CLAMPDOWN_INCIDENTS_TABLE": "clampdown-incidents",
                    "CLAMPDOWN_QUEUE_URL": stage.queue_url,
                }
            }
        },
    }
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    monkeypatch.chdir(project)
    for name in ("CLAMPDOWN_INCIDENTS_TABLE", "CLAMPDOWN_QUEUE_URL"):
        monkeypatch.delenv(name, raising=False)
    code, out = run("deny", step.approval_id, "--reason", "false positive", "--stage", "ops")
    assert code == 0, out
    assert [m["approval_id"] for m in stage.drain()] == [step.approval_id]
    assert run("approvals", "list", "--stage", "nope")[1].endswith(
        f"Error: --stage nope: no such stage in {project.resolve() / '.chalice' / 'config.json'} (stages: ops)\n"
    )
