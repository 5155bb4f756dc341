"""The responder as a target: forged and foreign events, its own API calls, hostile finding text in logs
and in the CLI, path traversal in file inputs, YAML bombs, and findings that point containment at the
responder itself or at protected resources.

Everything goes through the real entry points: the Lambda SQS handler on the sandbox deployment, the
``clampdown`` CLI through click's runner, and the playbook loader on real files.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chalicelib.actions.base import iam_action
from clampdown import sandbox as sb
from clampdown import scenarios
from clampdown.cli import cli
from clampdown.deploy.policy import member_policy, render_literal
from tests.conftest import member_client
from tests.deploy.helpers import allows, shipped_library
from tests.deploy.helpers import stage as deploy_stage
from tests.reliability.conftest import SleepLog
from tests.reliability.harness import PLAYBOOKS, Deployment, deployment
from tests.reliability.strategies import HOSTILE_TEXT

TOR_USER, ROLE_SESSION, INSTANCE, BUCKET, LAMBDA = scenarios.DEMO
MEMBER = "111111111111"
STRANGER = "999999999999"
OWN_ROLE = "clampdown-sandbox-respond-role"  # under clampdown-*: the responder's own role in the home account
OWN_FUNCTION = "clampdown-sandbox-respond"  # AWS_LAMBDA_FUNCTION_NAME of the sandbox stage
CUSTOM_PLAYBOOK = """\
name: edr-alerts
description: Alerts from our EDR's custom bus source.
match:
  source: [com.example.edr]
mode: auto
steps:
  - action: notify.log
"""


def emitted_metrics(output: str) -> dict[str, float]:
    """Metric values in the CloudWatch EMF documents Powertools printed."""
    totals: dict[str, float] = {}
    for line in output.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(
                    value if isinstance(value, list) else [value]
                )
    return totals


def retarget(event: dict[str, Any], account: str) -> dict[str, Any]:
    event = copy.deepcopy(event)
    event["account"] = account
    detail = event["detail"]
    for key in ("accountId", "recipientAccountId"):
        if key in detail:
            detail[key] = account
    return event


# -- forged and foreign events ----------------------------------------------------------------------
def shipped_playbooks(folder: Path) -> Path:
    """The shipped playbooks in another folder (their tests, with paths relative to playbooks/, left out)."""
    folder.mkdir(parents=True, exist_ok=True)
    for playbook in PLAYBOOKS.glob("*.yaml"):
        (folder / playbook.name).write_text(playbook.read_text().split("\ntests:")[0] + "\n")
    return folder


def test_only_configured_accounts_and_sources_are_accepted_and_refusals_are_counted(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    shipped_playbooks(tmp_path)
    (tmp_path / "edr.yaml").write_text(CUSTOM_PLAYBOOK)
    environ = {
        "CLAMPDOWN_ACCOUNTS": MEMBER,
        "CLAMPDOWN_CUSTOM_SOURCES": "com.example.edr",
        "POWERTOOLS_METRICS_DISABLED": "false",
    }
    with deployment(tmp_path, environ=environ) as stage:
        tor = TOR_USER.build(stage.box.env)
        forged_source = {**tor, "source": "com.attacker"}
        lookalike = {**tor, "source": "com.example.edr.evil"}
        case = {**tor, "source": "Com.Example.Edr"}
        no_account = {k: v for k, v in tor.items() if k != "account"}
        foreign = retarget(tor, STRANGER)
        aggregated = copy.deepcopy(
            scenarios.corpus_event("securityhub/sh_awsdocs-guardduty_UnauthorizedAccess-EC2-SSHBruteForce.json")
        )
        aggregated["account"] = sb.ACCOUNT  # delivered in the home account, about a finding of a stranger's
        aggregated["detail"]["findings"][0]["AwsAccountId"] = STRANGER
        custom = {"version": "0", "id": "e1", "source": "com.example.edr", "detail-type": "EDR Alert",
                  "account": sb.ACCOUNT, "region": sb.REGION, "time": "2026-01-01T00:00:00Z", "resources": [],
                  "detail": {"host": "web-1", "verdict": "malicious"}}  # fmt: skip
        stage.send(foreign, forged_source, lookalike, case, no_account, aggregated, custom)
        stats = stage.drain()

        assert (stats.failed, stats.acknowledged) == (0, 7), "refusals are handled, never retried"
        assert stage.calls.aws_writes() == [], "no refused event acted"
        assert key_state(stage) == "Active"
        [incident] = stage.store().list_incidents()
        assert incident.type == "EDR Alert", "the configured custom source was accepted"
        metrics = emitted_metrics(capfd.readouterr().out)
        assert metrics.get("EventsRefusedSource") == 3
        assert metrics.get("EventsRefusedAccount") == 3, metrics


def key_state(stage: Deployment) -> str:
    iam = stage.client("iam")
    return str(iam.list_access_keys(UserName=stage.box.env.user_name)["AccessKeyMetadata"][0]["Status"])


# -- the self-loop guard ----------------------------------------------------------------------------
def lambda_backdoor_by(stage: Deployment, account: str, role: str, session: str) -> dict[str, Any]:
    """The Stratus AddPermission(Principal *) event, made by an assumed role."""
    event = retarget(LAMBDA.build(stage.box.env), account)
    detail = event["detail"]
    detail["userIdentity"] = {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{account}:role/{role}", "userName": role}
        },
    }
    return event


def test_the_responders_own_api_calls_are_never_acted_on(capfd: pytest.CaptureFixture[str]) -> None:
    environ = {"CLAMPDOWN_ACCOUNTS": MEMBER, "POWERTOOLS_METRICS_DISABLED": "false"}
    with deployment(environ=environ) as stage:
        before = stage.state()["function_policy"]
        own = lambda_backdoor_by(stage, sb.ACCOUNT, OWN_ROLE, OWN_FUNCTION)
        member_role = lambda_backdoor_by(stage, MEMBER, "ClampdownMemberResponder", "clampdown-inc-0123")
        stage.send(own, member_role)
        stats = stage.drain()

        assert (stats.failed, stats.acknowledged) == (0, 2)
        assert stage.calls.aws_writes() == [] and stage.state()["function_policy"] == before
        assert stage.store().list_incidents() == []
        assert emitted_metrics(capfd.readouterr().out).get("EventsSelfCaused") == 2


def test_a_role_named_like_the_responders_in_a_member_account_is_not_the_responder(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """An attacker who names a role ``clampdown-...`` in a member account gets no free pass: its API calls
    are acted on (the self-loop guard knows the responder's roles live in the home account)."""
    environ = {"CLAMPDOWN_ACCOUNTS": MEMBER, "POWERTOOLS_METRICS_DISABLED": "false"}
    with deployment(environ=environ) as stage:
        stage.send(lambda_backdoor_by(stage, MEMBER, "clampdown-backdoor", "attacker"))
        stats = stage.drain()

        assert stats.failed == 0
        assert "EventsSelfCaused" not in emitted_metrics(capfd.readouterr().out)
        [incident] = stage.store().list_incidents()
        assert incident.account == MEMBER


# -- hostile text in logs ---------------------------------------------------------------------------
#: Terminal escapes that are not colours (a colour sequence would be indistinguishable from the CLI's own),
#: a forged JSON log line after a newline, and Unicode line breaks and bidi overrides.
MARKER = '\x1b[2J\x1b]0;PWNED\x07\x9b1;1H\n{"level":"ERROR","message":"forged"}\u2028\x85\u202e'
KEEP = {"type", "resourceType", "accountId", "region", "id", "schemaVersion", "partition", "accessKeyId", "userType"}


def poisoned(value: Any, key: str = "") -> Any:
    """Every attacker-reachable string replaced by hostile text (ids and types kept so the playbook matches)."""
    if isinstance(value, dict):
        return {k: poisoned(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [poisoned(v, key) for v in value]
    if isinstance(value, str) and key not in KEEP:
        return MARKER + value
    return value


def assert_inert(line: str) -> None:
    assert line.isascii() and all(" " <= ch <= "~" for ch in line), repr(line[:200])


def test_hostile_finding_text_cannot_forge_log_lines() -> None:
    """The function's JSON log lines, as the Lambda runtime would ship them to CloudWatch Logs."""
    import io

    from chalicelib import handlers

    logger, written = handlers.logger(), io.StringIO()
    handler = logger.registered_handler  # Powertools' handler and formatter, writing here instead of stdout
    # (not setStream: it flushes the old stream, which an earlier test's capture may have closed)
    stream, level = handler.stream, logger.log_level
    handler.stream = written
    logger.setLevel("INFO")
    try:
        with deployment() as stage:
            tor = TOR_USER.build(stage.box.env)
            event = {**tor, "detail": poisoned(tor["detail"])}
            refused = {**tor, "source": MARKER, "account": MARKER}
            broken = {**tor, "detail": {**poisoned(tor["detail"]), "severity": MARKER}}
            stage.send(event, refused, broken)
            stats = stage.drain()
            assert stats.delivered >= 3
    finally:
        handler.stream = stream
        logger.setLevel(level)

    lines = [line for line in written.getvalue().split("\n") if line]
    logged = []
    for line in lines:
        assert_inert(line)
        document = json.loads(line)  # every line is one whole JSON document
        assert isinstance(document, dict)
        logged.append(line)
    assert any("PWNED" in line for line in logged), "the hostile text was logged (escaped)"
    assert any(json.loads(line).get("message") == "event refused" for line in logged)


def test_the_deployed_module_writes_only_json_log_lines() -> None:
    """What the Lambda runtime ships from stdout, after ``import app`` as the runtime does it: Chalice
    names its own logger after the app ("clampdown", the Powertools service too) and by default adds a
    plain-text handler that would print a finding's newlines raw, i.e. forged lines."""
    script = (
        "import logging, app\n"
        "from chalicelib import handlers\n"
        'forged = chr(10).join([\'title\', \'{"level":"INFO","message":"all clear"}\']) + chr(0x2028)\n'
        "handlers.logger().warning(forged)\n"
        "handlers.logger().error({'finding': 'a' + chr(13) + 'b' + chr(27) + '[2Jc'})\n"
        "print(len(logging.getLogger('clampdown').handlers))\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    *lines, handler_count = result.stdout.splitlines()
    assert handler_count == "1", result.stdout
    assert len(lines) == 2, result.stdout
    for line in lines:
        assert_inert(line)
        assert isinstance(json.loads(line), dict)
    assert result.stderr == ""


# -- hostile text in the CLI ------------------------------------------------------------------------
DANGEROUS = {
    ch
    for ch in map(chr, range(0x110000))
    if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs") and not ch.isprintable()
}


def assert_terminal_safe(text: str) -> None:
    """Nothing but the CLI's own colours (SGR sequences) and newlines may reach a terminal."""
    bad = sorted({f"U+{ord(ch):04X}" for ch in re.sub(r"\x1b\[[0-9;]*m", "", text) if ch in DANGEROUS})
    assert not bad, f"control characters reach the terminal: {bad}"


CLI_PLAYBOOK = """\
name: tor-user-text
description: For the CLI's text output.
match:
  source: [aws.guardduty]
  detail-type: [GuardDuty Finding]
conditions:
  regions: ["eu-south-2"]
steps:
  - action: notify.log
    params:
      message: "{{ finding.title }} by {{ finding.actor.user_name }}"
"""


@pytest.mark.parametrize("explain", [False, True])
def test_simulate_text_output_strips_control_characters(tmp_path: Path, explain: bool) -> None:
    tor = TOR_USER.build(sb.Environment(access_key_id="AKIAEXAMPLEEXAMPLE01"))
    events = tmp_path / "events"
    events.mkdir()
    (events / "\x1b[2Jfinding\u202e.json").write_text(json.dumps({**tor, "detail": poisoned(tor["detail"])}))
    (events / "lines\x9b2J.jsonl").write_text(json.dumps(tor) + "\n" + MARKER.replace("\n", " ") + "\n")
    playbooks = shipped_playbooks(tmp_path / "playbooks")
    (playbooks / "text.yaml").write_text(CLI_PLAYBOOK)

    args = ["simulate", str(events), "--playbooks", str(playbooks), *(["--explain"] if explain else [])]
    result = CliRunner().invoke(cli, args, color=True)  # as on a terminal: click strips nothing
    assert result.exit_code == 1, result.output  # the line that is not JSON
    assert "PWNED" in result.output and "matched but" in result.output, "the text is shown, made inert"
    assert_terminal_safe(result.output)


# -- path traversal in file inputs -------------------------------------------------------------------
TRAVERSAL_PLAYBOOK = """\
name: traversal
description: A test whose event lies outside the project.
match:
  source: [aws.guardduty]
steps:
  - action: notify.log
tests:
  - name: reads a file it should not
    event: {path}
    expect:
      match: true
"""


@pytest.mark.parametrize(
    "reference", ["../../secret.json", "/etc/passwd", "link.json", "../playbooks/../../secret.json"]
)
def test_playbook_test_events_stay_inside_the_project(tmp_path: Path, reference: str) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps(TOR_USER.build(sb.Environment())))
    project = tmp_path / "project"
    (project / "playbooks").mkdir(parents=True)
    (project / "playbooks" / "link.json").symlink_to(secret)
    playbook = project / "playbooks" / "traversal.yaml"
    playbook.write_text(TRAVERSAL_PLAYBOOK.format(path=json.dumps(reference)))

    validate = CliRunner().invoke(cli, ["validate", str(project / "playbooks")])
    assert validate.exit_code == 1
    assert f"{playbook}:" in validate.output and "tests[0].event" in validate.output, validate.output
    test = CliRunner().invoke(cli, ["test", "--playbooks", str(project / "playbooks")])
    assert test.exit_code == 1, test.output
    assert "GuardDuty" not in test.output and "passwd" not in test.output.replace(reference, "")


def test_simulate_reads_only_what_it_was_named(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text(json.dumps({**TOR_USER.build(sb.Environment()), "id": "SECRET"}))
    named = tmp_path / "named"
    named.mkdir()
    (named / "mine.json").write_text(json.dumps({**TOR_USER.build(sb.Environment()), "id": "MINE"}))
    (named / "escape.json").symlink_to(outside / "secret.json")
    (named / "dir").symlink_to(outside, target_is_directory=True)

    result = CliRunner().invoke(cli, ["simulate", str(named), "--playbooks", str(PLAYBOOKS), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [r["event"] for r in json.loads(result.output)["results"]] == [str(named / "mine.json")]
    assert "SECRET" not in result.output


# -- YAML bombs and huge playbooks ------------------------------------------------------------------
BILLION_LAUGHS = """\
name: lol
description: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: [*d,*d,*d,*d,*d,*d,*d,*d,*d]
"""


def validate(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["validate", str(path)])
    return result.exit_code, result.output


def test_a_yaml_bomb_is_refused_at_its_first_alias(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BILLION_LAUGHS)
    code, out = validate(bomb)
    assert code == 1 and f"{bomb}:3: invalid YAML: anchors and aliases are not allowed" in out, out


def test_a_huge_playbook_file_is_refused_without_being_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as sparse:
        sparse.truncate(8 << 30)  # 8 GiB of nothing: reading it would exhaust memory long before the end
    code, out = validate(huge)
    assert code == 1 and f"{huge}: file is larger than 1024 KiB" in out, out


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a: " + "[" * 200_000 + "]" * 200_000, "nested"),
        (
            "a:\n" + "".join(f"{'  ' * (i + 1)}k{i}:\n" for i in range(60)) + "  " * 61 + "v: 1\n",
            "nested deeper than 40",
        ),
        ("steps:\n" + "  - action: notify.log\n" * 30_000, "steps"),
        ("name: x\n" * 2, "duplicate key"),
        ("!!python/object/apply:os.system ['true']\n", "unsupported tag"),
    ],
    ids=["deep-flow", "deep-block", "many-steps", "duplicate-keys", "python-tag"],
)
def test_hostile_playbook_shapes_are_refused_with_a_clear_error(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    code, out = validate(path)
    assert code == 1 and str(path) in out and reason in out, out


# -- containment aimed at the responder or at protected resources -------------------------------------
TRUST_LAMBDA = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
)  # fmt: skip


def test_findings_aimed_at_the_responder_itself_are_refused_at_run_time(backoff: SleepLog) -> None:
    """The shipped playbooks validate; the findings name the responder's role, its member role and its
    function (as a finding about the responder would). Guardrails refuse each step; nothing changes."""
    with deployment() as stage:
        iam, awslambda = stage.client("iam"), stage.client("lambda")
        own_role = iam.create_role(RoleName=OWN_ROLE, AssumeRolePolicyDocument=TRUST_LAMBDA)["Role"]["Arn"]
        iam.create_role(RoleName="ClampdownMemberResponder", AssumeRolePolicyDocument=TRUST_LAMBDA)
        function_arn = awslambda.create_function(
            FunctionName=OWN_FUNCTION, Runtime="python3.12", Role=own_role, Handler="app.respond",
            Code={"ZipFile": sb._tiny_zip()},
        )["FunctionArn"]  # fmt: skip
        awslambda.add_permission(
            FunctionName=OWN_FUNCTION, StatementId="open", Action="lambda:InvokeFunction", Principal="*"
        )
        before = stage.state()
        before_function = awslambda.get_policy(FunctionName=OWN_FUNCTION)["Policy"]

        env = stage.box.env
        for role in (OWN_ROLE, "ClampdownMemberResponder"):
            stage.send(ROLE_SESSION.build(sb.Environment(**{**env.__dict__, "role_name": role})))
        stage.send(LAMBDA.build(sb.Environment(**{**env.__dict__, "function_arn": function_arn})))
        stats = stage.drain()

        assert stats.failed == 0
        assert stage.state() == before and awslambda.get_policy(FunctionName=OWN_FUNCTION)["Policy"] == before_function
        reasons = {
            s.reason
            for incident in stage.store().list_incidents()
            for s in stage.store().list_steps(incident.id)
            if s.action in ("iam.revoke-role-sessions", "lambda.remove-public-access")
        }
        assert reasons == {"protected: it is the responder's own role", "protected: it is the responder's own function"}


def test_protected_resources_are_refused_at_run_time(backoff: SleepLog) -> None:
    guardrails = {"protected_resources": ["arn:aws:s3:::customer-exports-*"], "protected_accounts": []}
    with deployment(environ={"CLAMPDOWN_GUARDRAILS": json.dumps(guardrails)}) as stage:
        event = INSTANCE.build(stage.box.env)
        event["detail"]["resource"]["instanceDetails"]["tags"] = [{"key": "clampdown:protected", "value": "true"}]
        before = stage.state()
        stage.send(event, BUCKET.build(stage.box.env))
        stats = stage.drain()

        assert stats.failed == 0
        after = stage.state()
        assert (
            after["instance_groups"] == before["instance_groups"] and after["bucket_policy"] == before["bucket_policy"]
        )
        assert after["public_access_block"] == before["public_access_block"]
        refused = {
            s.action: s.reason
            for incident in stage.store().list_incidents()
            for s in stage.store().list_steps(incident.id)
            if s.status == "skipped" and (s.reason or "").startswith("protected:")
        }
        assert refused["ec2.isolate-instance"] == "protected: it is tagged clampdown:protected=true"
        assert (
            refused["s3.block-public-access"]
            == "protected: it matches protected resource arn:aws:s3:::customer-exports-*"
        )


def test_an_attacker_role_named_like_the_responders_in_a_member_account_is_contained(backoff: SleepLog) -> None:
    """Protection of the responder's roles is scoped to its home account: an attacker's ``clampdown-persist``
    role in a member account is contained like any other. moto does not evaluate IAM policies, so what
    real IAM would decide is checked on the generated member-role policy: it must allow every call made."""
    with deployment(environ={"CLAMPDOWN_ACCOUNTS": MEMBER}) as stage:
        member_iam = member_client(stage.box.session, MEMBER)
        member_iam.create_role(RoleName="clampdown-persist", AssumeRolePolicyDocument=TRUST_LAMBDA)
        event = retarget(ROLE_SESSION.build(sb.Environment(role_name="clampdown-persist")), MEMBER)
        stage.send(event)
        stats = stage.drain()

        assert stats.failed == 0
        [incident] = stage.store().list_incidents()
        [revoke] = [s for s in stage.store().list_steps(incident.id) if s.action == "iam.revoke-role-sessions"]
        assert revoke.status == "contained", revoke.reason
        assert member_iam.list_role_policies(RoleName="clampdown-persist")["PolicyNames"] == [
            "clampdown-revoke-older-sessions"
        ]
        policy = render_literal(
            member_policy(deploy_stage(sb.STAGE), shipped_library()), account=MEMBER, home_account=sb.ACCOUNT
        )
        made = [c for c in stage.calls.calls if c.service == "iam" and c.writes]
        assert made and all(
            allows(policy, iam_action("iam", c.operation), f"arn:aws:iam::{MEMBER}:role/{c.params['RoleName']}")
            for c in made
        ), [c.operation for c in made]


def test_hostile_text_constants_cover_the_dangerous_classes() -> None:
    """The strategies' hostile strings include each class this suite defends against."""
    joined = "".join(HOSTILE_TEXT)
    for needle in ("\n", "\x1b", "\x9b", "\u202e", "\u2028", "\x85", "\ud800", "\x00"):
        assert needle in joined
    assert os.sep in joined


def test_the_responders_identities_are_recognised_in_its_home_account_only() -> None:
    """By ARN or by name and account; an unknown account is treated as the responder's (protect when in doubt)."""
    from chalicelib.findings.model import Actor, Resource
    from chalicelib.settings import Settings
    from chalicelib.wiring import guardrails_for

    os.environ["AWS_LAMBDA_FUNCTION_NAME"], saved = OWN_FUNCTION, os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    try:
        guard = guardrails_for(Settings(), sb.ACCOUNT)
    finally:
        os.environ.pop("AWS_LAMBDA_FUNCTION_NAME") if saved is None else os.environ.update(
            AWS_LAMBDA_FUNCTION_NAME=saved
        )
    role = "it is the responder's own role"
    function = "it is the responder's own function"
    cases = [
        (Resource(kind="iam-role", name=OWN_ROLE, account=sb.ACCOUNT), role),
        (Resource(kind="iam-role", name=OWN_ROLE), role),
        (Resource(kind="iam-role", arn=f"arn:aws:iam::{sb.ACCOUNT}:role/{OWN_ROLE}"), role),
        (Resource(kind="iam-role", name=OWN_ROLE, account=MEMBER), None),
        (Resource(kind="iam-role", arn=f"arn:aws:iam::{MEMBER}:role/{OWN_ROLE}"), None),
        (Resource(kind="iam-role", name="ClampdownMemberResponder", account=MEMBER), role),
        (Resource(kind="lambda-function", name=OWN_FUNCTION, account=sb.ACCOUNT), function),
        (Resource(kind="lambda-function", name=OWN_FUNCTION, account=MEMBER), None),
        (Resource(kind="lambda-function", arn=f"arn:aws:lambda:eu-west-1:{MEMBER}:function:{OWN_FUNCTION}"), None),
    ]
    for resource, expected in cases:
        assert guard.protection(resource) == expected, resource
    assert guard.is_own_actor(Actor(session_issuer_arn=f"arn:aws:iam::{sb.ACCOUNT}:role/{OWN_ROLE}"))
    assert guard.is_own_actor(Actor(principal_arn=f"arn:aws:sts::{MEMBER}:assumed-role/ClampdownMemberResponder/x"))
    assert not guard.is_own_actor(Actor(session_issuer_arn=f"arn:aws:iam::{MEMBER}:role/{OWN_ROLE}"))
