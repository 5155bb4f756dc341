"""The `clampdown validate` and `simulate` commands, through click's runner (real files, real output)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from clampdown.cli import cli
from tests.conftest import CORPUS

PLAYBOOK = """\
name: tor-users
description: Log users calling AWS from Tor.
match:
  source: [aws.guardduty]
  detail:
    type: [{prefix: "UnauthorizedAccess:IAMUser/"}]
steps:
  - action: iam.deactivate-access-key
"""
TOR = CORPUS / "guardduty" / "gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"
EC2 = CORPUS / "guardduty" / "gd_c7n_Backdoor-EC2-C-CActivity-B-DNS.json"


@pytest.fixture
def playbooks(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "tor.yaml").write_text(PLAYBOOK)
    return folder


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    return result.exit_code, result.output


def test_simulate_json_shape(playbooks: Path) -> None:
    code, out = run("simulate", str(TOR), str(EC2), "--playbooks", str(playbooks), "--format", "json")
    assert code == 0, out
    results = json.loads(out)["results"]
    assert [r["event"] for r in results] == [str(TOR), str(EC2)]
    first = results[0]
    assert first["findings"][0]["type"] == "UnauthorizedAccess:IAMUser/TorIPCaller"
    [match] = first["matches"]
    assert match["playbook"] == "tor-users" and match["mode"] == "auto"
    [step] = match["steps"]
    assert step["action"] == "iam.deactivate-access-key"
    assert step["target"]["id"] == "GeneratedFindingAccessKeyId"
    assert step["calls"] == [
        {
            "call": "iam:UpdateAccessKey",
            "params": {
                "UserName": "GeneratedFindingUserName",
                "AccessKeyId": "GeneratedFindingAccessKeyId",
                "Status": "Inactive",
            },
            "purpose": "deactivate the key",
        }
    ]
    assert results[1]["matches"] == []


def test_simulate_explain_names_the_failing_field(playbooks: Path) -> None:
    code, out = run("simulate", str(EC2), "--playbooks", str(playbooks), "--format", "json", "--explain")
    assert code == 0
    [miss] = json.loads(out)["results"][0]["not_matched"]
    assert miss["playbook"] == "tor-users"
    assert miss["path"] == "detail.type"
    assert miss["clause"] == [{"prefix": "UnauthorizedAccess:IAMUser/"}]
    assert "Backdoor:EC2/C&CActivity.B!DNS" in miss["reason"]


def test_simulate_text_output_and_stdin(playbooks: Path) -> None:
    code, out = run("simulate", "-", "--playbooks", str(playbooks), stdin=TOR.read_text())
    assert code == 0
    assert "== <stdin>" in out
    assert "playbook tor-users" in out
    assert "iam:UpdateAccessKey(UserName=" in out


def test_simulate_and_replay_read_gzipped_stdin(playbooks: Path) -> None:
    compressed = gzip.compress(TOR.read_bytes())
    result = CliRunner().invoke(
        cli, ["simulate", "-", "--playbooks", str(playbooks), "--format", "json"], input=compressed
    )
    assert result.exit_code == 0, result.output
    [only] = json.loads(result.output)["results"]
    assert only["event"] == "<stdin>" and only["matches"][0]["playbook"] == "tor-users"
    args = ["replay", "-", "--playbooks", str(playbooks), "--format", "json", "--jobs", "1"]
    result = CliRunner().invoke(cli, args, input=compressed)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["playbooks"] == [{"name": "tor-users", "matches": 1, "rejected": 0}]


def test_simulate_reports_bad_events_and_exits_1(playbooks: Path, tmp_path: Path) -> None:
    partial = CORPUS / "guardduty" / "gd_awssamples-wafacl_PARTIAL_UnauthorizedAccess-EC2-SSHBruteForce.json"
    code, out = run("simulate", str(partial), str(TOR), "--playbooks", str(playbooks), "--format", "json")
    assert code == 1
    results = json.loads(out)["results"]
    assert results[0]["error"].startswith("invalid event:") and "source" in results[0]["error"]
    assert results[1]["matches"], "one bad event does not stop the others"
    code, out = run("simulate", str(partial), str(TOR), "--playbooks", str(playbooks))
    assert code == 1
    assert out.endswith(
        "2 event(s) read: 1 finding(s); 1 event(s) matched a playbook; 1 could not be read (marked 'error:' above)\n"
    ), "the text output ends with a summary that says an event was not read"


def test_simulate_with_broken_playbooks_exits_1(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(PLAYBOOK.replace("iam.deactivate-access-key", "iam.nuke"))
    code, out = run("simulate", str(TOR), "--playbooks", str(tmp_path))
    assert code == 1
    assert "bad.yaml:8: steps[0].action: unknown action 'iam.nuke'" in out
    assert "Error: the playbooks in" in out


def test_validate_exit_codes(playbooks: Path, tmp_path: Path) -> None:
    assert run("validate", str(playbooks)) == (0, "1 playbook(s) valid\n")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.yaml").write_text(PLAYBOOK.replace("steps:", "stepz:"))
    code, out = run("validate", str(broken), "--format", "json")
    assert code == 1
    document = json.loads(out)
    assert document["valid"] is False
    assert {(i["line"], tuple(i["path"])) for i in document["issues"]} >= {(7, ("stepz",))}
    assert run("validate", str(tmp_path / "missing"))[0] == 1


def test_usage_errors_exit_2() -> None:
    assert run("simulate")[0] == 2
    assert run("simulate", "--format", "yaml", "x")[0] == 2


def test_simulate_every_corpus_event_with_the_shipped_library() -> None:
    """The shipped library reads every corpus event; only the published partial event is refused."""
    dirs = [str(CORPUS / d) for d in ("guardduty", "cloudtrail", "securityhub", "securityhub-ocsf")]
    code, out = run("simulate", *dirs, "--format", "json")
    results = json.loads(out)["results"]
    errors = [r["event"] for r in results if "error" in r]
    assert [Path(e).name for e in errors] == ["gd_awssamples-wafacl_PARTIAL_UnauthorizedAccess-EC2-SSHBruteForce.json"]
    assert code == 1
    assert len(results) == 157


def test_actions_lists_the_registry_with_parameters_and_permissions() -> None:
    from chalicelib.actions import REGISTRY

    code, out = run("actions", "--format", "json")
    assert code == 0, out
    listed = {a["name"]: a for a in json.loads(out)["actions"]}
    assert set(listed) == set(REGISTRY)
    for name, action in REGISTRY.items():
        assert listed[name]["permissions"] == list(action.permissions)
        assert listed[name]["resource_kinds"] == list(action.resource_kinds)
    isolate = listed["ec2.isolate-instance"]
    asg = isolate["params"]["asg"]
    assert (asg["enum"], asg["default"], asg["required"]) == (["standby", "detach", "leave"], "standby", False)
    assert "Standby" in asg["description"]
    assert "ec2:ModifyNetworkInterfaceAttribute" in isolate["permissions"] and isolate["reversible"] is True
    code, out = run("actions", "iam.deactivate-access-key")
    assert code == 0 and out.splitlines()[0].startswith("iam.deactivate-access-key  [changes AWS; reversible")
    assert "    acts on:     access-key\n" in out and out.endswith("1 action(s)\n")
    code, out = run("actions", "iam.delete-everything")
    assert code == 2 and "unknown action(s): iam.delete-everything" in out
