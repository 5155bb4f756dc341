"""Every command behaves the same way: help with examples, --format, one --stage lookup, exit 2 for usage."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from clampdown.cli import ClampdownGroup, cli
from clampdown.cli.common import stage_environment
from clampdown.deploy.stage import CHECKOUT

ROOT = Path(__file__).resolve().parents[3]


def commands(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*prefix, name))


ALL = list(commands())


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("path", [p for p, _ in ALL], ids=" ".join)
def test_every_command_explains_itself_with_examples(path: tuple[str, ...]) -> None:
    code, out = run(*path, "--help")
    assert code == 0, out
    assert re.search(r"Examples?:", out), f"clampdown {' '.join(path)} --help has no example"
    assert f"clampdown {' '.join(path)}" in out or f"clampdown {path[0]}" in out


@pytest.mark.parametrize("path", [p for p, c in ALL if not isinstance(c, click.Group)], ids=" ".join)
def test_machine_output_is_always_format_json(path: tuple[str, ...]) -> None:
    command = dict(ALL)[path]
    visible = {opt for p in command.params if not getattr(p, "hidden", False) for opt in p.opts}
    assert "--json" not in visible, "use --format json"
    fmt = next((p for p in command.params if "--format" in p.opts), None)
    if fmt is not None:
        assert isinstance(fmt.type, click.Choice) and "json" in fmt.type.choices


def test_the_validate_example_names_a_real_playbook() -> None:
    _, out = run("validate", "--help")
    named = re.findall(r"(?<![\w/-])playbooks/[\w.-]+\.yaml", out)
    assert named and all((ROOT / n).is_file() for n in named), named


STAGE_COMMANDS = [
    ("approvals", "list"),
    ("approve", "APPROVAL"),
    ("deny", "APPROVAL", "--reason", "r"),
    ("incidents", "list"),
    ("incidents", "show", "inc-x"),
    ("report", "inc-x"),
    ("rollback", "inc-x"),
    ("rules",),
    ("policy",),
    ("simulate", str(ROOT / "tests/data/corpus/guardduty/gd_c7n_Backdoor-EC2-C-CActivity-B-DNS.json")),
    ("replay", str(ROOT / "tests/data/corpus/guardduty/gd_c7n_Backdoor-EC2-C-CActivity-B-DNS.json")),
    ("test",),
    ("playbooks", "--coverage"),
    ("doctor", "--region", "us-east-1"),
    ("package", "out-never-written"),  # refused before any build step
]


@pytest.mark.parametrize("args", STAGE_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_an_unknown_stage_is_a_usage_error_with_one_message(args: tuple[str, ...]) -> None:
    code, out = run(*args, "--stage", "nope")
    config = CHECKOUT / ".chalice" / "config.json"
    assert code == 2, out
    assert f"Error: --stage nope: no such stage in {config} (stages: dev, prod)" in out


def test_stage_lookup_is_the_nearest_config_else_the_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkout = json.loads((CHECKOUT / ".chalice" / "config.json").read_text())
    monkeypatch.chdir(tmp_path)  # no config here or above: the checkout's
    table = checkout["stages"]["dev"]["environment_variables"]["CLAMPDOWN_INCIDENTS_TABLE"]
    assert stage_environment("dev")["CLAMPDOWN_INCIDENTS_TABLE"] == table

    project = tmp_path / "ops"
    (project / ".chalice").mkdir(parents=True)
    config = {"stages": {"dev": {"environment_variables": {"CLAMPDOWN_INCIDENTS_TABLE": "mine"}}}}
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    (project / "sub").mkdir()
    monkeypatch.chdir(project / "sub")  # a config above the current directory wins
    assert stage_environment("dev")["CLAMPDOWN_INCIDENTS_TABLE"] == "mine"
    code, out = run("approvals", "list", "--stage", "prod")
    assert code == 2 and f"no such stage in {project.resolve() / '.chalice' / 'config.json'} (stages: dev)" in out


TOR = ROOT / "tests/data/corpus/guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"
EC2 = ROOT / "tests/data/corpus/guardduty/gd_c7n_Backdoor-EC2-C-CActivity-B-DNS.json"


@pytest.fixture
def tuned_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A project whose ``tuned`` stage disables, re-modes and excludes, as README's "Tuning" shows."""
    overrides = {
        "disable": ["gd-ec2-compromised-instance"],
        "modes": {"gd-iam-compromised-credentials": "approval"},
        "exclude": {"accounts": ["123456789012"]},
    }
    env = {"CLAMPDOWN_INCIDENTS_TABLE": "t", "CLAMPDOWN_OVERRIDES": json.dumps(overrides)}
    (tmp_path / ".chalice").mkdir()
    config = {"stages": {"tuned": {"environment_variables": env}, "typo": {"environment_variables": {
        "CLAMPDOWN_OVERRIDES": json.dumps({"disable": ["gd-nope"]})}}}}  # fmt: skip
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(config))
    monkeypatch.chdir(tmp_path)
    return "tuned"


def test_simulate_and_replay_apply_the_stage_overrides(tuned_stage: str) -> None:
    code, out = run("simulate", str(TOR), str(EC2), "--format", "json")
    assert code == 0
    untuned = [[m["playbook"] for m in r["matches"]] for r in json.loads(out)["results"]]
    assert untuned == [
        ["gd-default-notify", "gd-iam-compromised-credentials"],
        ["gd-default-notify", "gd-ec2-compromised-instance"],
    ]

    code, out = run("simulate", str(TOR), str(EC2), "--format", "json", "--stage", tuned_stage)
    assert code == 0, out
    tor, ec2 = json.loads(out)["results"]
    [plan] = [m for m in tor["matches"] if m["playbook"] == "gd-iam-compromised-credentials"]
    assert {s["action"]: s["mode"] for s in plan["steps"]}["iam.deactivate-access-key"] == "approval"
    assert [m["playbook"] for m in ec2["matches"]] == ["gd-default-notify"], "containment disabled by the stage"

    code, out = run("replay", str(TOR), str(EC2), "--format", "json", "--jobs", "1", "--stage", tuned_stage)
    assert code == 0, out
    doc = json.loads(out)
    assert "gd-ec2-compromised-instance" not in {p["name"] for p in doc["playbooks"]}
    deactivate = next(a for a in doc["actions"] if a["action"] == "iam.deactivate-access-key")
    assert deactivate["by_mode"] == {"approval": 1}


def test_test_and_coverage_apply_the_stage_overrides(tuned_stage: str) -> None:
    assert run("test", "gd-iam-compromised-credentials")[0] == 0
    code, out = run("test", "gd-iam-compromised-credentials", "--stage", tuned_stage)
    assert code == 0, "a mode the stage sets on purpose is not a failure of the shipped cases"
    assert "mode approval by the stage's override (the case expects auto, as shipped)" in out, (
        "the stage's mode was applied: the key waits for approval"
    )

    code, out = run("playbooks", "--coverage", "--format", "json", "--stage", tuned_stage)
    assert code == 0, out
    doc = json.loads(out)
    enabled = {p["name"]: p["enabled"] for p in doc["playbooks"]}
    assert enabled["gd-ec2-compromised-instance"] is False and enabled["gd-iam-compromised-credentials"] is True
    creds = next(p for p in doc["playbooks"] if p["name"] == "gd-iam-compromised-credentials")
    assert creds["mode"] == "approval" and creds["containment"] == "approval"


def test_overrides_naming_an_unknown_playbook_are_an_error(tuned_stage: str) -> None:
    code, out = run("simulate", str(TOR), "--stage", "typo")
    assert code == 1 and "--stage typo: CLAMPDOWN_OVERRIDES: override names unknown playbook 'gd-nope'" in out


def test_a_reader_that_stops_early_ends_the_command_quietly() -> None:
    """``clampdown simulate DIR | head -1``: no error line, no traceback once the pipe is closed."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "clampdown", "simulate", str(ROOT / "tests/data/corpus/cloudtrail")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # as `head -1` does
    errors = process.stderr.read().decode()
    code = process.wait(timeout=60)
    assert first.strip(), "the command printed before the reader left"
    assert "Error" not in errors and "Traceback" not in errors, errors
    assert code == 1, "click's exit status for a closed output pipe"


def test_an_unexpected_error_is_one_line_that_says_where_to_put_debug() -> None:
    group = ClampdownGroup("clampdown-under-test")

    @group.command("broken")
    def broken() -> None:
        raise RuntimeError("boom")

    out = CliRunner().invoke(group, ["broken"], obj={})
    assert out.exit_code == 1
    assert out.output == "Error: RuntimeError: boom (run clampdown --debug broken … for the traceback)\n"
    with pytest.raises(RuntimeError):
        CliRunner().invoke(group, ["broken"], obj={"debug": True}, catch_exceptions=False)
