"""`clampdown drill`: every shipped scenario on the embedded AWS, scored."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from clampdown.cli import cli
from clampdown.drills import DRILLS


@pytest.mark.parametrize("name", list(DRILLS))
def test_every_drill_scores_full_marks_with_approvals(name: str) -> None:
    out = CliRunner().invoke(cli, ["drill", name, "--format", "json"])
    assert out.exit_code == 0, out.output
    document = json.loads(out.output)
    assert document["score"] == {"met": len(DRILLS[name].expectations), "total": len(DRILLS[name].expectations)}
    assert all(e["seconds"] is not None and e["seconds"] >= 0 for e in document["expectations"])
    assert document["timeline"][0]["what"].startswith("finding published")
    assert [t["seconds"] for t in document["timeline"]] == sorted(t["seconds"] for t in document["timeline"])


def test_denied_approvals_show_what_was_missed() -> None:
    out = CliRunner().invoke(cli, ["drill", "compromised-iam-credentials", "--approvals", "deny"])
    assert out.exit_code == 1
    assert "Score 2/4" in out.output
    assert "the user is quarantined (deny all)  MISSED (expected from iam.quarantine-user)" in out.output
    assert "approval denied by drill (auto-denied)" in out.output


def test_prompted_approvals_follow_the_operator() -> None:
    # two approval requests (quarantine, console login): approve the first, deny the second
    out = CliRunner().invoke(cli, ["drill", "compromised-iam-credentials", "--approvals", "prompt"], input="y\nn\n")
    assert out.exit_code == 1
    assert "Score 3/4" in out.output


def test_unknown_scenario_is_a_usage_error() -> None:
    out = CliRunner().invoke(cli, ["drill", "nope"])
    assert out.exit_code == 2 and "unknown scenario 'nope'" in out.output
    listed = CliRunner().invoke(cli, ["drill", "--list"])
    assert listed.exit_code == 0 and all(name in listed.output for name in DRILLS)
