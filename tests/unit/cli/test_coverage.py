"""The coverage report: `clampdown playbooks [--coverage]`, `clampdown/coverage.py`, `docs/playbooks.md`."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from chalicelib.playbooks.library import Library
from clampdown import coverage as cov
from clampdown.cli import cli
from clampdown.data.finding_types import DATA_FILE, guardduty_finding_types
from clampdown.playbooks.loader import load_library
from tests.conftest import ROOT

PLAYBOOKS = ROOT / "playbooks"
DOC = ROOT / "docs" / "playbooks.md"


@pytest.fixture(scope="module")
def shipped() -> Library:
    return load_library([PLAYBOOKS])


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


# -- the generated page -------------------------------------------------------------------------------
def test_docs_playbooks_md_is_what_the_generator_writes(shipped: Library) -> None:
    """Regenerating gives the same bytes: run `python -m clampdown.coverage` after changing a playbook."""
    assert DOC.read_bytes() == cov.render_markdown(cov.coverage(shipped)).encode("utf-8")
    assert cov.main(["--check"]) == 0


def test_the_command_prints_the_same_page(shipped: Library) -> None:
    code, out = run("playbooks", "--coverage", "--format", "md", "--playbooks", str(PLAYBOOKS))
    assert code == 0
    assert out == DOC.read_text(encoding="utf-8")


def summary_numbers(markdown: str) -> dict[str, int]:
    found = {}
    for level in cov.LEVELS:
        pattern = rf"^  - {re.escape(cov.LEVEL_WORDS[level])}: (\d+)( \((\d+) of them only at some severities or resource roles\))?$"
        match = re.search(pattern, markdown, re.MULTILINE)
        assert match, level
        found[level] = int(match.group(1))
    return found


def test_the_numbers_are_computed_from_the_playbooks(shipped: Library) -> None:
    page = summary_numbers(DOC.read_text(encoding="utf-8"))
    report = cov.coverage(shipped)
    assert page == report.counts()
    assert sum(page.values()) == len(guardduty_finding_types().active)
    # Recount by hand from the per-type table the page also prints: each row's words name its best response.
    table = DOC.read_text(encoding="utf-8").split("## GuardDuty finding types\n", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `([^`]+)` \| ([^|]+) \|", table, re.MULTILINE))
    assert list(rows) == [t.name for t in report.active]
    for t in report.active:
        assert rows[t.name] == t.response
        assert (cov.LEVEL_WORDS[t.level] in rows[t.name]) or (cov.LEVEL_SHORT[t.level] in rows[t.name]), t.name
    for level in cov.LEVELS:
        assert sum(1 for t in report.active if t.level == level) == page[level]
    # Turn containment off and the numbers move: Lambda types fall back to the default notification.
    lambda_types = [t for t in report.active if t.page == "lambda"]
    assert lambda_types and all(t.level == "auto" for t in lambda_types)
    without = cov.coverage(shipped.with_overrides({"disable": ["gd-lambda-compromised-function"]}))
    assert without.counts()["auto"] == page["auto"] - len(lambda_types)
    assert without.counts()["notify"] == page["notify"] + len(lambda_types)
    # A library that only announces contains nothing.
    notify_only = cov.coverage(Library([shipped.by_name["gd-default-notify"]]))
    assert notify_only.counts() == {"auto": 0, "approval": 0, "dry-run": 0, "notify": len(report.active), "none": 0}
    assert len(notify_only.uncontained()) == len(report.active)
    # And a mode override shows too.
    approval = cov.coverage(shipped.with_overrides({"modes": {"gd-lambda-compromised-function": "approval"}}))
    assert approval.counts()["approval"] == page["approval"] + len(lambda_types)


def test_coverage_follows_resource_roles_and_conditions(shipped: Library) -> None:
    types = {t.name: t for t in cov.coverage(shipped).types}
    ssh = types["UnauthorizedAccess:EC2/SSHBruteForce"]
    assert ssh.level == "approval"
    covers = {c.playbook: c for c in ssh.covers}
    assert covers["gd-ec2-instance-attacking-others"].when[0] == "resource role ACTOR"
    assert covers["gd-ec2-instance-targeted-notify"].when == ["resource role TARGET"]
    assert covers["gd-default-notify"].when == ["severity ≥ 4"]
    assert "gd-ec2-compromised-instance" not in covers
    assert types["Backdoor:EC2/C&CActivity.B"].level == "auto"
    assert types["Policy:IAMUser/RootCredentialUsage"].level == "approval"
    assert types["CredentialAccess:Kubernetes/TorIPCaller"].level == "notify"
    # the renamed family: the old name and both new names are contained alike
    for name in ("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration",
                 "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
                 "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS"):  # fmt: skip
        assert types[name].level == "auto", name


def test_a_response_is_credited_only_at_the_severities_and_roles_it_covers(shipped: Library) -> None:
    """The page says "announced at HIGH+ only" when nothing happens below 7, and splits by resource role."""
    default = shipped.by_name["gd-default-notify"]
    high_only = dataclasses.replace(
        default, name="high-only", match={**default.match, "detail": {"severity": [{"numeric": [">=", 7]}]}}
    )
    types = {t.name: t for t in cov.coverage(Library([high_only])).active}
    recon = types["Recon:IAMUser/MaliciousIPCaller"]
    assert recon.level == "notify" and recon.partial
    assert recon.levels("ACTOR") == ("none", "none", "notify", "notify")
    assert recon.response == "announced at HIGH+ only"
    # conditions count like pattern clauses: the shipped default announces from MEDIUM up
    assert {t.response for t in cov.coverage(Library([default])).active} == {"announced at MEDIUM+ only"}
    full = {t.name: t for t in cov.coverage(shipped).active}
    assert full["UnauthorizedAccess:EC2/SSHBruteForce"].response == (
        "ACTOR: contained after approval at MEDIUM+ only; TARGET: announced only"
    )
    assert full["Policy:S3/BucketAnonymousAccessGranted"].response == "contained automatically"  # every severity
    assert full["UnauthorizedAccess:EC2/TorClient"].levels("TARGET") == ("none", "approval", "approval", "approval")
    doc = json.loads(cov.render_json(cov.coverage(shipped)))
    [ssh] = [t for t in doc["guardduty_types"] if t["type"] == "UnauthorizedAccess:EC2/SSHBruteForce"]
    assert ssh["by_severity"]["TARGET"] == {"LOW": "notify", "MEDIUM": "notify", "HIGH": "notify", "CRITICAL": "notify"}


def test_alternatives_are_shown_as_alternatives(shipped: Library) -> None:
    """An $or reads as "(A) or (B)", never as one list of conditions that must all hold."""
    words = {p.name: cov.summarize(p).matches for p in shipped.playbooks}
    assert words["gd-ec2-instance-attacking-others"] == (
        "GuardDuty findings: resource type Instance; (type (UnauthorizedAccess:EC2/TorClient* or "
        "UnauthorizedAccess:EC2/TorRelay* or Recon:EC2/Portscan* or Behavior:EC2/* or DefenseEvasion:EC2/*)) or "
        "(type (UnauthorizedAccess:EC2/SSHBruteForce* or UnauthorizedAccess:EC2/RDPBruteForce* or "
        "UnauthorizedAccess:EC2/MaliciousIPCaller*) and resource role ACTOR); severity ≥ 4"
    )
    assert words["ct-iam-admin-granted"].startswith(
        "CloudTrail: successful calls only; (API call (iam:AttachUserPolicy or iam:AttachRolePolicy or "
        "iam:AttachGroupPolicy) and requestParameters.policyArn (*:policy/AdministratorAccess or "
        "*:policy/IAMFullAccess)) or (API call (iam:PutUserPolicy or"
    )
    # a nested $or keeps its brackets, and port ranges are read as ranges
    assert (
        "(requestParameters.cidrIp */0 and [(requestParameters.ipProtocol -1) or "
        "(requestParameters.fromPort..toPort includes 22, 445, 1433, 1521, 3306, 3389, 5432, 5900, 6379, 9200, 27017)])"
    ) in words["ct-security-group-open-admin-port"]
    assert (
        "(API call s3:DeleteBucketPublicAccessBlock) or (API call s3:PutBucketPublicAccessBlock and ["
        in (words["ct-s3-bucket-made-public"])
    )


def test_cloudtrail_api_calls_are_listed(shipped: Library) -> None:
    calls = dict(cov.coverage(shipped).api_calls())
    for call, playbook in [
        ("cloudtrail:StopLogging", "ct-logging-tampering"),
        ("cloudtrail:DeleteTrail", "ct-logging-tampering"),
        ("ec2:DeleteFlowLogs", "ct-logging-tampering"),
        ("guardduty:DeleteDetector", "ct-logging-tampering"),
        ("signin:ConsoleLogin", "ct-root-activity"),
        ("signin:ConsoleLogin", "ct-console-login-without-mfa"),
        ("signin:PasswordUpdated", "ct-root-activity"),
        ("iam:*", "ct-root-activity"),  # any call by root
        ("iam:CreateAccessKey", "ct-iam-access-key-created"),
        ("iam:AttachUserPolicy", "ct-iam-admin-granted"),
        ("iam:CreateLoginProfile", "ct-iam-console-password-set"),
        ("iam:UpdateAssumeRolePolicy", "ct-iam-role-trust-changed"),
        ("s3:PutBucketPolicy", "ct-s3-bucket-made-public"),
        ("s3:DeleteBucketPublicAccessBlock", "ct-s3-bucket-made-public"),
        ("lambda:AddPermission*", "ct-lambda-public-exposure"),
        ("lambda:CreateFunctionUrlConfig*", "ct-lambda-public-url"),
        ("lambda:UpdateFunctionConfiguration*", "ct-lambda-layer-added"),
        ("ec2:AuthorizeSecurityGroupIngress", "ct-security-group-open-admin-port"),
        ("ec2:ModifySnapshotAttribute", "ct-snapshot-or-image-shared"),
        ("ec2:ModifyImageAttribute", "ct-snapshot-or-image-shared"),
        ("rds:ModifyDBSnapshotAttribute", "ct-snapshot-or-image-shared"),
        ("sts:GetFederationToken", "ct-persistent-credential-paths"),
        ("rolesanywhere:CreateTrustAnchor", "ct-persistent-credential-paths"),
    ]:
        assert playbook in calls[call], call


# -- the command ----------------------------------------------------------------------------------------
def test_playbooks_lists_the_library(shipped: Library, tmp_path: Path) -> None:
    code, out = run("playbooks", "--playbooks", str(PLAYBOOKS))
    assert code == 0
    for playbook in shipped.playbooks:
        assert f"{playbook.name}  [{playbook.mode}, enabled]" in out
    assert "matches: GuardDuty findings: type Backdoor:EC2/* or" in out
    assert "steps:   ec2.snapshot-volumes (auto), ec2.capture-forensics (auto), ec2.isolate-instance (auto)" in out
    assert f"{len(shipped)} playbook(s), {len(shipped.enabled)} enabled" in out
    # a disabled playbook says so
    copy = tmp_path / "playbooks"
    shutil.copytree(PLAYBOOKS, copy)
    shutil.copytree(ROOT / "tests" / "data", tmp_path / "tests" / "data")
    target = copy / "gd-default-notify.yaml"
    target.write_text(target.read_text().replace("mode: auto\n", "enabled: false\nmode: auto\n", 1))
    code, out = run("playbooks", "--playbooks", str(copy))
    assert code == 0 and "gd-default-notify  [auto, disabled]" in out


def test_json_outputs(shipped: Library) -> None:
    code, out = run("playbooks", "--format", "json", "--playbooks", str(PLAYBOOKS))
    assert code == 0
    listed = json.loads(out)
    assert [p["name"] for p in listed["playbooks"]] == [p.name for p in shipped.playbooks]
    assert {p["kind"] for p in listed["playbooks"]} == {"guardduty", "cloudtrail", "securityhub"}
    code, out = run("playbooks", "--coverage", "--format", "json", "--playbooks", str(PLAYBOOKS))
    assert code == 0
    document = json.loads(out)
    gd = document["summary"]["guardduty_types"]
    assert gd["known_active"] == sum(gd[level.replace("-", "_")] for level in cov.LEVELS)
    assert len(document["guardduty_types"]) == gd["known_active"]
    assert document["guardduty_types_without_containment"] == [
        t["type"] for t in document["guardduty_types"] if t["response"] in ("notify", "none", "dry-run")
    ]
    assert document["finding_types_source"]["url"].startswith("https://docs.aws.amazon.com/guardduty/")


def test_invalid_playbooks_are_reported(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\n")
    code, out = run("playbooks", "--playbooks", str(tmp_path))
    assert code == 1 and "Error" in out


# -- the known finding types ------------------------------------------------------------------------------
def test_the_known_finding_types_say_where_they_come_from() -> None:
    document = json.loads(DATA_FILE.read_text())
    source = document["source"]
    assert source["url"] == "https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_finding-types-active.html"
    assert date.fromisoformat(source["taken"])
    known = guardduty_finding_types()
    names = [t.name for t in known.all]
    assert len(names) == len(set(names)), "a type is listed twice (or both active and retired)"
    assert len(known.active) >= 190 and len(known.retired) >= 15
    for t in known.all:
        assert re.fullmatch(r"[A-Za-z]+:[A-Za-z0-9]+/[A-Za-z0-9.&!_-]+", t.name), t.name
    for t in known.active:
        assert t.page in known.pages, t
    renamed = {t.name: t.renamed_to for t in known.retired if t.renamed_to}
    assert renamed["UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration"] == (
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS",
    )
    assert set(renamed["UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration"]) <= set(known.names())
    # the types every corpus GuardDuty finding carries are known
    corpus_types = set()
    for path in (ROOT / "tests" / "data" / "corpus" / "guardduty").glob("*.json"):
        detail = json.loads(path.read_text()).get("detail") or json.loads(path.read_text())
        corpus_types.add(detail.get("type") or detail.get("Type"))
    unknown = {t for t in corpus_types if t and t not in names} - {"Canary:EC2/Stateless.IntegTest"}
    assert unknown == set()
