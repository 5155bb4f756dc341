"""`clampdown report` from an incident the responder really handled on moto (memory store).

The incident: a real GuardDuty TorIPCaller finding whose title and description carry HTML and
Markdown injections, one guardrail-protected step, one step that fails (AWS refuses it), one
approved (and later rolled back), one denied with a hostile reason, and a second delivery.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chalicelib.aws import AwsClients
from chalicelib.executor import StepRunner
from chalicelib.findings import Finding
from chalicelib.incidents import TABLE_DEFINITION, DynamoIncidentStore, MemoryIncidentStore
from chalicelib.intake import Intake
from chalicelib.notify import RecordingNotifier
from chalicelib.responder import Responder, approval_command
from chalicelib.wiring import guardrails_for
from clampdown.cli import cli
from clampdown.report import build_report, md, to_html, to_markdown
from tests.conftest import ACCOUNT, REGION, inject_fault
from tests.functional import responder_env as env

# Payloads that would change the page if they ever ran (tests/e2e/test_report_browser.py looks).
TITLE = (
    "API called from Tor <script>document.body.dataset.pwned='title'</script> "
    "](javascript:alert(2)) [click](javascript:alert(3))"
)
DESCRIPTION = (
    "See <img src=x onerror=\"document.body.dataset.pwned='img'\">\n# not a heading\n"
    "[ref]: javascript:alert(6)\n| cell |"
)
DENIAL = "<b>no</b> [way](javascript:alert(4))"
PLAYBOOK = """\
name: tor-user
description: Contain a user whose key is used from Tor.
match:
  source: [aws.guardduty]
  detail-type: [GuardDuty Finding]
  detail:
    type: [{prefix: "UnauthorizedAccess:IAMUser/"}]
steps:
  - action: iam.deactivate-access-key
  - action: iam.quarantine-user
    target: iam-user
    mode: approval
  - action: iam.disable-console-login
    mode: approval
  - action: tag
    target: iam-user
    on_error: continue
  - action: notify.log
    params:
      message: "{{ finding.title }}"
"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=2)
        return self.now


@pytest.fixture
def handled(boto_session: Any, tmp_path: Path) -> dict[str, Any]:
    """Run the responder for real; returns the store and the incident id."""
    iam = boto_session.client("iam")
    iam.create_user(UserName="mallory")
    iam.create_login_profile(UserName="mallory", Password="S3cret-password!")
    key = iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
    inject_fault(boto_session, "iam", "TagUser", "AccessDenied", times=5)
    settings = env.settings(guardrails={"protected_resources": [key]})
    clients = AwsClients(home_account=ACCOUNT, default_region=REGION, session_factory=lambda: boto_session)
    store = MemoryIncidentStore()
    clock = Clock()
    guardrails = guardrails_for(settings)
    responder = Responder(
        library=env.library(tmp_path, PLAYBOOK),
        store=store,
        runner=StepRunner(settings=settings, store=store, aws=clients, guardrails=guardrails, clock=clock),
        intake=Intake(ACCOUNT, settings.accounts, settings.custom_sources, guardrails),
        notifier=RecordingNotifier(),
        clock=clock,
    )
    event = env.tor_user_finding(user="mallory", key=key)
    event["detail"]["title"], event["detail"]["description"] = TITLE, DESCRIPTION
    [incident_id] = responder.handle(event).incidents
    responder.handle(env.tor_user_finding(user="mallory", key=key, count=4, event_id="second-delivery"))
    steps = {s.action: s for s in store.list_steps(incident_id)}
    quarantine, console = steps["iam.quarantine-user"], steps["iam.disable-console-login"]
    assert store.decide_approval(quarantine.approval_id or "", "approved", "U0ALICE", "2026-11-23T09:05:00Z")
    responder.handle(approval_command(incident_id, quarantine.approval_id or ""))
    assert store.decide_approval(console.approval_id or "", "denied", "U0BOB", "2026-11-23T09:06:00Z", DENIAL)
    responder.handle(approval_command(incident_id, console.approval_id or ""))
    incident = store.get_incident(incident_id)
    assert incident is not None
    record = store.get_step(incident_id, quarantine.key)
    assert record is not None
    responder.runner.rollback_step(incident, record)
    store.save_incident(incident)
    return {"store": store, "id": incident_id, "key": key, "iam": iam}


def test_document_follows_the_audit_trail(handled: dict[str, Any]) -> None:
    doc = build_report(handled["store"], handled["id"])
    incident = doc["incident"]
    assert incident["title"] == TITLE and incident["deliveries"] == 2
    assert incident["type"] == "UnauthorizedAccess:IAMUser/TorIPCaller"
    statuses = {a["action"]: a["status"] for a in doc["actions"]}
    assert statuses == {
        "iam.deactivate-access-key": "skipped",
        "iam.quarantine-user": "rolled-back",
        "iam.disable-console-login": "denied",
        "tag": "failed",
        "notify.log": "done",
    }
    quarantine = next(a for a in doc["actions"] if a["action"] == "iam.quarantine-user")
    assert quarantine["approved_by"] == "U0ALICE"
    assert quarantine["before"] is not None and quarantine["after"] is not None
    assert quarantine["before"] != quarantine["after"]
    assert [c["call"] for c in quarantine["calls"]] == ["iam:PutUserPolicy"]
    [rollback] = doc["rollbacks"]
    assert (rollback["action"], rollback["result"]["status"]) == ("iam.quarantine-user", "rolled-back")
    assert handled["iam"].list_user_policies(UserName="mallory")["PolicyNames"] == []
    approvals = {a["action"]: a for a in doc["approvals"]}
    assert (approvals["iam.quarantine-user"]["status"], approvals["iam.quarantine-user"]["decided_by"]) == (
        "approved",
        "U0ALICE",
    )
    denied = approvals["iam.disable-console-login"]
    assert (denied["status"], denied["decided_by"], denied["reason"]) == ("denied", "U0BOB", DENIAL)
    kinds = [f["kind"] for f in doc["follow_ups"]]
    assert kinds.count("failed-step") == 1 and kinds.count("guardrail-skip") == 1
    failed = next(f for f in doc["follow_ups"] if f["kind"] == "failed-step")
    assert failed["message"] == "tag on iam-user mallory (tor-user step 4) failed (AccessDenied): injected by the test"
    guarded = next(f for f in doc["follow_ups"] if f["kind"] == "guardrail-skip")
    assert handled["key"] in guarded["message"]
    # Deliveries: both shapes of the evidence that the finding came twice.
    assert [d["count"] for d in doc["deliveries"]] == [1, 4]
    times = [e["time"] for e in doc["timeline"]]
    assert times == sorted(times)
    messages = [e["message"] for e in doc["timeline"]]
    assert len(messages) == len(set(messages)), "each step change once, from the log or the step's history"
    assert sum("iam.quarantine-user on iam-user mallory" in m for m in messages) == 3  # pending, contained, rolled back
    assert any("denied by U0BOB" in e["message"] for e in doc["timeline"])
    assert doc["summary"]["contained_at"] is not None
    assert doc["summary"]["seconds_to_containment"] > 0


def test_markdown_is_readable_and_inert(handled: dict[str, Any]) -> None:
    text = to_markdown(build_report(handled["store"], handled["id"]))
    for heading in ("## Summary", "## Follow-ups", "## Timeline", "## Findings", "## Actions", "## Approvals"):
        assert heading in text
    assert "## Rollbacks" in text and "### 2. iam.quarantine-user on iam-user mallory" in text
    # Outside code blocks (where nothing is interpreted), nothing from the finding can open HTML, a
    # link, a heading or a link reference definition.
    blocks = re.findall(r"^(`{3,})json\n(.*?)\n\1$", text, re.M | re.S)
    prose = re.sub(r"^(`{3,})json\n.*?\n\1$", "", text, flags=re.M | re.S)
    assert all(fence not in body for fence, body in blocks)
    assert "<script" not in prose and "<img" not in prose and "<b>" not in prose
    assert re.search(r"(?<!\\)\]\(", prose) is None, "no unescaped ]( can close a link text"
    assert re.search(r"(?<!\\)\[(click|way|ref)", prose) is None, "no unescaped [ can open one"
    assert re.search(r"^\s*#\s*not a heading", text, re.M) is None
    assert re.search(r"^\s*\[ref\]:", text, re.M) is None
    assert "&lt;/script&gt; \\](javascript:alert(2)) \\[click\\](javascript:alert(3))" in text
    assert "U0BOB" in text and "U0ALICE" in text
    # JSON blocks hold the exact text.
    finding = next(json.loads(body) for _, body in blocks if '"resources"' in body and '"title"' in body)
    assert finding["title"] == TITLE


class DomText(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_self_contained_and_inert(handled: dict[str, Any]) -> None:
    page = to_html(build_report(handled["store"], handled["id"]))
    parser = DomText()
    parser.feed(page)
    assert "script" not in parser.tags and "img" not in parser.tags and "b" not in parser.tags
    assert not [name for name, _ in parser.attributes if name.startswith("on") or name in ("src", "href")]
    assert "link" not in parser.tags and "@import" not in page and "url(" not in page
    text = "".join(parser.text)
    assert TITLE in text and DENIAL in text, "escaped markup reads as the original text"
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert parser.tags.count("section") >= 8


def test_cli_writes_each_format_from_dynamodb(
    handled: dict[str, Any], boto_session: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command reads DynamoDB (--table, --stage): copy the memory incident into a moto table."""
    dynamodb = boto_session.client("dynamodb")
    dynamodb.create_table(TableName="incidents", **TABLE_DEFINITION)
    memory: MemoryIncidentStore = handled["store"]
    table = DynamoIncidentStore(dynamodb, "incidents")
    source = memory.get_incident(handled["id"])
    assert source is not None
    incident, _ = table.upsert_incident(Finding.from_dict(source.finding), source.first_seen)
    incident.status, incident.notes = source.status, ["check CloudTrail for other keys"]
    table.save_incident(incident)
    for record in memory.list_steps(handled["id"]):
        table.put_step(record)
    for entry in memory.timeline(handled["id"]):
        table.log(handled["id"], entry)
    for approval in memory.list_approvals(status=None):
        table.put_approval(approval)

    runner = CliRunner()
    out = tmp_path / "report.html"
    result = runner.invoke(cli, ["report", handled["id"], "--table", "incidents", "--format", "html", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "<title>Incident report: API called from Tor &lt;script&gt;" in out.read_text()

    # --stage reads the table name from the project's Chalice config (the current directory's).
    config = tmp_path / ".chalice" / "config.json"
    config.parent.mkdir()
    config.write_text(
        json.dumps(
            {
                "version": "2.0",
                "stages": {"prod": {"environment_variables": {"CLAMPDOWN_INCIDENTS_TABLE": "incidents"}}},
            }
        )
    )
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["report", handled["id"], "--stage", "prod", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["notes"] == ["check CloudTrail for other keys"]
    assert {"kind": "note", "message": "check CloudTrail for other keys", "undo": []} in doc["follow_ups"]
    result = runner.invoke(cli, ["report", handled["id"], "--stage", "dev"])
    assert result.exit_code == 2 and "no such stage" in result.output and "stages: prod" in result.output
    result = runner.invoke(cli, ["report", "inc-nope", "--stage", "prod"])
    assert result.exit_code == 1 and "Error: no incident 'inc-nope'" in result.output
    result = runner.invoke(cli, ["report", handled["id"], "--table", "t", "--stage", "prod"])
    assert result.exit_code == 2 and "not both" in result.output


def test_markdown_escaping_of_every_special_character() -> None:
    assert md("a\nb\r\n\tc") == "a b c"
    assert md("<x>&") == "&lt;x&gt;&amp;"
    assert md("[a](b) `c` *d* _e_ |f| ~g~ \\h") == "\\[a\\](b) \\`c\\` \\*d\\* \\_e\\_ \\|f\\| \\~g\\~ \\\\h"
    assert md("\x1b[31mred\x07") == "\\[31mred"
