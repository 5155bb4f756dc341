"""`clampdown incidents` and `clampdown rollback` against a stage on the moto server (real HTTP)."""

from __future__ import annotations

import json
import re
from typing import Any

from click.testing import CliRunner

from clampdown import scenarios
from clampdown.cli import cli
from tests.e2e.conftest import STAGE
from tests.e2e.test_lambda_handler import invoke, key_status


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_list_show_and_roll_back_an_incident(stage: dict[str, Any]) -> None:
    assert invoke([scenarios.DEMO[0].build(stage["env"])]) == {"batchItemFailures": []}
    assert key_status(stage) == "Inactive"

    code, out = run("incidents", "list", "--stage", STAGE, "--format", "json")
    assert code == 0, out
    [incident] = json.loads(out)["incidents"]
    assert incident["type"] == "UnauthorizedAccess:IAMUser/TorIPCaller"

    code, out = run("incidents", "show", incident["id"], "--stage", STAGE)
    assert code == 0, out
    assert "iam.deactivate-access-key → access-key" in out and ": contained" in out
    assert "iam.quarantine-user" in out and "pending-approval" in out
    contained = re.split(r"\n  \d+\. ", out[out.index("iam.deactivate-access-key → access-key") :])[0]
    plan, before, after = (contained.index(f"\n      {part}:\n") for part in ("plan", "before", "after"))
    assert 'iam:UpdateAccessKey(UserName="ci-deployer"' in contained[plan:before], contained
    assert '\n        status: "Active"' in contained[before:after], "the state before the step, readable"
    assert '\n        status: "Inactive"' in contained[after:]

    code, out = run("rollback", incident["id"], "--stage", STAGE, "--dry-run")
    assert code == 0, out
    assert "iam:UpdateAccessKey(" in out and "Status=Active" in out
    assert key_status(stage) == "Inactive", "a dry run changes nothing"

    code, out = run("rollback", incident["id"], "--stage", STAGE, "--format", "json")
    assert code == 0, out
    assert [s["result"]["status"] for s in json.loads(out)["steps"]] == ["rolled-back"]
    assert key_status(stage) == "Active"

    code, out = run("incidents", "show", "inc-unknown", "--stage", STAGE)
    assert code == 1 and "Error: no incident 'inc-unknown'" in out
