"""`clampdown bundle | policy | rules | package` through click: outputs, files written, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from clampdown.cli import cli
from clampdown.deploy.bundle import BUNDLE_RELATIVE_PATH, bundle_bytes
from clampdown.deploy.policy import containment_permissions
from tests.deploy.helpers import pinned_values, project_copy, shipped_library


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return project_copy(tmp_path_factory.mktemp("project"))


@pytest.mark.parametrize("name", ["bundle", "policy", "rules", "package"])
def test_help_has_examples(name: str) -> None:
    code, out = run(name, "--help")
    assert code == 0 and "Examples:" in out and f"clampdown {name}" in out


def test_bundle_writes_the_project_bundle(project: Path) -> None:
    code, out = run("bundle", "--project-dir", str(project))
    assert code == 0, out
    assert (project / BUNDLE_RELATIVE_PATH).read_bytes() == bundle_bytes(shipped_library())
    assert f"{len(shipped_library())} playbooks" in out


def test_rules_json_lists_pinned_rules_for_every_enabled_playbook(project: Path) -> None:
    code, out = run("rules", "--project-dir", str(project), "--format", "json")
    assert code == 0, out
    document = json.loads(out)
    assert {p for r in document["rules"] for p in r["playbooks"]} == {p.name for p in shipped_library().enabled}
    assert all(
        pinned_values(r["pattern"], "source") and pinned_values(r["pattern"], "detail-type") for r in document["rules"]
    )
    code, text = run("rules", "--project-dir", str(project))
    enabled = len(shipped_library().enabled)
    assert code == 0 and "rule clampdown-dev-guardduty-" in text
    assert f"{len(document['rules'])} rule(s) for {enabled} enabled playbook(s)" in text


def test_policy_prints_the_member_policy_and_resolves_arns_on_request(project: Path) -> None:
    code, out = run("policy", "--project-dir", str(project), "--member")
    assert code == 0, out
    document = json.loads(out[out.index("{") :])
    allowed = [a for s in document["Statement"] if s["Effect"] == "Allow" for a in s["Action"]]
    assert sorted(allowed) == sorted(containment_permissions(shipped_library()))  # iam:PassRole in its own statement
    code, out = run(
        "policy", "--project-dir", str(project), "--stage", "prod", "--account", "111122223333", "--region", "eu-west-1"
    )
    assert code == 0 and "arn:aws:sqs:eu-west-1:111122223333:clampdown-prod-events" in out


def test_policy_write_produces_the_files_config_json_names(project: Path) -> None:
    code, out = run("policy", "--project-dir", str(project), "--stage", "prod", "--write")
    assert code == 0, out
    config = json.loads((project / ".chalice" / "config.json").read_text())["stages"]["prod"]
    named = {config["iam_policy_file"]} | {f["iam_policy_file"] for f in config["lambda_functions"].values()}
    for name in named:
        assert json.loads((project / ".chalice" / name).read_text())["Statement"]


def test_errors_are_one_line_and_exit_1(project: Path, tmp_path: Path) -> None:
    code, out = run("policy", "--project-dir", str(project), "--stage", "staging")
    assert code == 2 and "Error: --stage staging: no such stage in" in out and "(stages: dev, prod)" in out
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "loose.yaml").write_text(
        json.dumps(
            {
                "name": "loose",
                "description": "matches any detail-type",
                "match": {"detail": {"severity": [8]}},
                "steps": [{"action": "notify.log"}],
            }
        )
    )
    code, out = run("rules", "--project-dir", str(project), "--playbooks", str(folder))
    assert code == 1 and "Error: playbook loose: the pattern pins neither `source` nor `detail-type`" in out
    (project / "out-busy").mkdir(exist_ok=True)
    (project / "out-busy" / "keep.txt").write_text("x")
    code, out = run("package", "--project-dir", str(project), str(project / "out-busy"))
    assert code == 1 and "is not empty" in out
