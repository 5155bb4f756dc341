"""`clampdown test`: a small library in a temporary project, its cases on real corpus events."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from clampdown.cli import cli
from tests.conftest import CORPUS

TOR = CORPUS / "guardduty" / "gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"
EC2 = CORPUS / "guardduty" / "gd_c7n_Backdoor-EC2-C-CActivity-B-DNS.json"

KEYS = """\
name: tor-keys
description: Deactivate keys used from Tor.
match:
  source: [aws.guardduty]
  detail:
    type: [{prefix: "UnauthorizedAccess:IAMUser/"}]
conditions:
  min_severity: 4
steps:
  - action: iam.deactivate-access-key
  - action: iam.quarantine-user
    target: iam-user
    mode: approval
  - action: notify.log
    params:
      message: "{{ finding.type }} by {{ finding.actor.user_name | default(\\"nobody\\") }}"
tests:
  - name: a key used from Tor is deactivated
    event: ../events/tor.json
    expect:
      match: true
      steps:
        - {action: iam.deactivate-access-key, target: GeneratedFindingAccessKeyId, mode: auto}
        - {action: iam.quarantine-user, target: iam-user, mode: approval, skipped: false}
        - {action: notify.log, target: null, params: {message: "UnauthorizedAccess:IAMUser/TorIPCaller by GeneratedFindingUserName"}}
  - name: an instance finding is not a key finding
    event: ../events/ec2.json
    expect: {match: false}
"""

INSTANCES = """\
name: instances
description: Isolate compromised instances.
match:
  source: [aws.guardduty]
  detail:
    resource:
      resourceType: [Instance]
steps:
  - action: ec2.isolate-instance
tests:
  - name: wrong mode and a wrong step count
    event: ../events/ec2.json
    expect:
      match: true
      steps:
        - {action: ec2.isolate-instance, mode: approval}
        - {action: notify.log}
  - name: the event file went missing
    event: ../events/gone.json
    expect: {match: false}
  - name: an inline event that is not an instance finding
    event: {"version": "0", "id": "5c8e5ae4-5c5e-4e1c-a0ab-2b1c11ec8c7a", "detail-type": "Object Created",
            "source": "aws.s3", "account": "123456789012", "time": "2026-11-23T00:00:00Z",
            "region": "us-east-1", "resources": [], "detail": {"bucket": {"name": "reports"}}}
    expect: {match: false}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "events").mkdir()
    shutil.copy(TOR, tmp_path / "events" / "tor.json")
    shutil.copy(EC2, tmp_path / "events" / "ec2.json")
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "keys.yaml").write_text(KEYS)
    (folder / "instances.yaml").write_text(INSTANCES)
    return folder


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def cases(document: dict) -> dict[str, dict]:
    return {c["name"]: c for p in document["playbooks"] for c in p["cases"]}


def test_passing_playbook(project: Path) -> None:
    code, out = run("test", "tor-keys", "--playbooks", str(project))
    assert code == 0, out
    assert out.splitlines() == [
        "PASS  tor-keys: a key used from Tor is deactivated",
        "PASS  tor-keys: an instance finding is not a key finding",
        out.splitlines()[-1],
    ]
    assert out.splitlines()[-1].startswith("2 passed, 0 failed, 0 error(s) in 2 case(s) of 1 playbook(s)")


def test_failures_errors_and_their_diff(project: Path) -> None:
    code, out = run("test", "--playbooks", str(project), "--format", "json")
    assert code == 1
    document = json.loads(out)
    assert document["passed"] is False
    assert document["summary"] == {
        "playbooks": 2,
        "cases": 5,
        "passed": 3,
        "failed": 1,
        "errors": 1,
        "playbooks_failed": 0,
    }
    by_name = cases(document)
    wrong = by_name["wrong mode and a wrong step count"]
    assert wrong["status"] == "fail"
    assert wrong["problems"] == [
        "1 step(s) planned, expected 2",
        "step 1 (ec2.isolate-instance): mode is 'auto', expected 'approval'",
    ]
    assert wrong["actual"] == {"match": True, "steps": [{"action": "ec2.isolate-instance", "mode": "auto"}]}
    missing = by_name["the event file went missing"]
    assert missing["status"] == "error"
    assert missing["problems"][0].startswith("event file '../events/gone.json' does not exist")
    assert by_name["an inline event that is not an instance finding"]["status"] == "pass"

    code, text = run("test", "instances", "--playbooks", str(project))
    assert code == 1
    assert "FAIL  instances: wrong mode and a wrong step count" in text
    assert "ERROR  instances: the event file went missing" in text
    diff = text[text.index("--- expected") :].splitlines()
    assert '-      "mode": "approval"' in [line.strip() for line in diff]
    assert '+      "mode": "auto"' in [line.strip() for line in diff]
    assert '-      "action": "notify.log"' in [line.strip() for line in diff]


def test_params_are_a_subset_and_a_wrong_value_fails(project: Path) -> None:
    keys = project / "keys.yaml"
    keys.write_text(KEYS.replace("by GeneratedFindingUserName", "by someone-else"))
    code, out = run("test", "tor-keys", "--playbooks", str(project), "--format", "json")
    assert code == 1
    case = cases(json.loads(out))["a key used from Tor is deactivated"]
    assert case["problems"] == ["step 3 (notify.log): params differ"]
    assert case["actual"]["steps"][2]["params"] == {
        "message": "UnauthorizedAccess:IAMUser/TorIPCaller by GeneratedFindingUserName"
    }


def test_conditions_decide_a_match(project: Path) -> None:
    keys = project / "keys.yaml"
    keys.write_text(KEYS.replace("min_severity: 4", "min_severity: 9"))
    code, out = run("test", "tor-keys", "--playbooks", str(project), "--format", "json")
    assert code == 1
    case = cases(json.loads(out))["a key used from Tor is deactivated"]
    assert case["problems"][0] == "the pattern matched but severity 5 is below 9"
    assert case["actual"] == {"match": False, "steps": []}


def test_a_pattern_mismatch_is_explained(project: Path) -> None:
    (project / "keys.yaml").write_text(
        KEYS.replace("../events/ec2.json", "../events/tor.json")
        .replace("an instance finding is not a key finding", "expected not to match")
        .replace(
            "../events/tor.json\n    expect:\n      match: true",
            "../events/ec2.json\n    expect:\n      match: true",
            1,
        )
    )
    code, out = run("test", "tor-keys", "--playbooks", str(project), "--format", "json")
    assert code == 1
    by_name = cases(json.loads(out))
    assert by_name["a key used from Tor is deactivated"]["problems"][0].startswith("the pattern did not match: ")
    assert "detail.type" in by_name["a key used from Tor is deactivated"]["problems"][0]
    assert by_name["expected not to match"]["problems"] == [
        "the playbook acts on this event (3 step(s) planned), expected no match"
    ]


def test_strict_needs_a_positive_and_a_negative_case(project: Path) -> None:
    only_positive = KEYS[: KEYS.index("  - name: an instance finding")]
    (project / "keys.yaml").write_text(only_positive)
    assert run("test", "tor-keys", "--playbooks", str(project))[0] == 0
    code, out = run("test", "tor-keys", "--playbooks", str(project), "--strict")
    assert code == 1
    assert "FAIL  tor-keys: needs at least one case with match: true and one with match: false (has 1 and 0)" in out
    (project / "untested.yaml").write_text(INSTANCES[: INSTANCES.index("tests:")].replace("instances", "untested"))
    code, out = run("test", "untested", "--playbooks", str(project))
    assert code == 0 and out.startswith("NO TESTS  untested")
    assert run("test", "untested", "--playbooks", str(project), "--strict")[0] == 1


def test_disabled_playbooks_are_still_tested(project: Path) -> None:
    (project / "keys.yaml").write_text(
        KEYS.replace("steps:\n  - action: iam.deact", "enabled: false\nsteps:\n  - action: iam.deact", 1)
    )
    code, out = run("test", "tor-*", "--playbooks", str(project))
    assert code == 0, out


def test_selection_and_usage_errors(project: Path) -> None:
    code, out = run("test", "nope", "--playbooks", str(project))
    assert code == 2 and "no playbook named 'nope'" in out
    (project / "broken.yaml").write_text(KEYS.replace("iam.quarantine-user", "iam.nuke").replace("tor-keys", "broken"))
    code, out = run("test", "--playbooks", str(project))
    assert code == 1 and "unknown action 'iam.nuke'" in out and "Error: the playbooks in" in out


def test_an_event_path_may_not_leave_the_project(project: Path, tmp_path: Path) -> None:
    (project / "keys.yaml").write_text(KEYS.replace("../events/tor.json", "../../../etc/passwd"))
    code, out = run("test", "tor-keys", "--playbooks", str(project), "--format", "json")
    assert code == 1
    case = cases(json.loads(out))["a key used from Tor is deactivated"]
    assert case["status"] == "error" and "leaves the project directory" in case["problems"][0]


def test_a_copied_playbook_may_read_events_anywhere_in_its_project(tmp_path: Path) -> None:
    """A playbook copied into a team folder of a repository reads the repository's events (not ``..`` out of it)."""
    repo = tmp_path / "secops"
    (repo / ".git").mkdir(parents=True)  # what marks the project: .git, pyproject.toml or .chalice
    (repo / "events").mkdir()
    shutil.copy(TOR, repo / "events" / "tor.json")
    shutil.copy(EC2, repo / "events" / "ec2.json")
    team = repo / "playbooks" / "team-a"
    team.mkdir(parents=True)
    (team / "keys.yaml").write_text(KEYS.replace("../events/", "../../events/"))
    code, out = run("test", "--playbooks", str(team), "--strict")
    assert code == 0, out

    (tmp_path / "outside.json").write_text(TOR.read_text())
    (repo / "events" / "link.json").symlink_to(tmp_path / "outside.json")  # a link inside that points out
    for reference in ("../../../outside.json", "../../events/link.json", "../../events/../../outside.json"):
        (team / "keys.yaml").write_text(KEYS.replace("../events/tor.json", reference))
        code, out = run("test", "tor-keys", "--playbooks", str(team), "--format", "json")
        case = cases(json.loads(out))["a key used from Tor is deactivated"]
        assert code == 1 and case["status"] == "error", reference
        assert f"leaves the project directory {repo.resolve()}" in case["problems"][0]

    shutil.rmtree(repo / ".git")  # without a project marker: only the playbook folder's parent
    (team / "keys.yaml").write_text(KEYS.replace("../events/", "../../events/"))
    code, out = run("test", "tor-keys", "--playbooks", str(team), "--format", "json")
    assert code == 1 and "leaves the project directory" in out


def test_a_stage_that_changes_modes_passes_with_notes_and_one_that_excludes_fails(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cases describe the playbooks as shipped: a mode a stage sets on purpose is a note; an exclusion
    that stops a response is a failure (the operator must see it before deploying)."""
    account = json.loads(TOR.read_text())["detail"]["accountId"]  # the finding's account, not the envelope's
    stages = {
        "careful": {"modes": {"tor-keys": "approval"}},
        "rehearse": {"modes": {"tor-keys": "dry-run"}},
        "excluded": {"exclude": {"accounts": [account]}},
    }
    config = {name: {"environment_variables": {"CLAMPDOWN_OVERRIDES": json.dumps(o)}} for name, o in stages.items()}
    (project.parent / ".chalice").mkdir()
    (project.parent / ".chalice" / "config.json").write_text(json.dumps({"app_name": "t", "stages": config}))
    monkeypatch.chdir(project.parent)

    code, out = run("test", "tor-keys", "--playbooks", str(project), "--stage", "careful")
    assert code == 0, out
    assert (
        "      note: step 1 (iam.deactivate-access-key): mode approval by the stage's override "
        "(the case expects auto, as shipped)"
    ) in out.splitlines()
    assert "; 1 step mode(s) as the stage's overrides set them (notes above)" in out.splitlines()[-1]
    code, out = run("test", "tor-keys", "--playbooks", str(project), "--stage", "rehearse", "--format", "json")
    assert code == 0, out
    notes = cases(json.loads(out))["a key used from Tor is deactivated"]["notes"]
    assert [n.split(": ", 1)[1].split(" by ")[0] for n in notes] == ["mode dry-run", "mode dry-run"], notes

    code, out = run("test", "tor-keys", "--playbooks", str(project), "--stage", "excluded")
    assert code == 1, out
    assert "FAIL  tor-keys: a key used from Tor is deactivated" in out
    assert "the pattern matched but " in out and account in out, out

    code, out = run("test", "instances", "--playbooks", str(project), "--stage", "careful")
    assert code == 1 and "step 1 (ec2.isolate-instance): mode is 'auto', expected 'approval'" in out, (
        "a mode the stage did not change is still checked"
    )
