"""`clampdown validate` warns about GuardDuty types a pattern names but GuardDuty no longer generates."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from clampdown.cli import cli
from clampdown.playbooks.type_check import guardduty_type_warnings

RENAMED = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration"


def gd(*types: object) -> dict[str, object]:
    return {"source": ["aws.guardduty"], "detail": {"type": list(types)}}


def test_a_renamed_type_is_named_with_its_new_names() -> None:
    [(path, message)] = guardduty_type_warnings(gd(RENAMED))
    assert path == ("detail", "type", 0)
    assert f"GuardDuty retired {RENAMED!r} to {RENAMED}.OutsideAWS, {RENAMED}.InsideAWS" in message


def test_unknown_exact_prefix_and_wildcard() -> None:
    warnings = guardduty_type_warnings(
        gd(
            "Backdoor:EC2/C&CActivity.B",
            "Backdoor:EC2/NoSuchThing",
            {"prefix": "Nonsense:"},
            {"prefix": "Trojan:EC2/"},
            {"wildcard": "*:Lambda/*"},
            {"wildcard": "*:Mainframe/*"},
        )
    )
    assert [path[-1] for path, _ in warnings] == [1, 2, 5]
    assert "'Backdoor:EC2/NoSuchThing' is not a known GuardDuty finding type" in warnings[0][1]


def test_or_branches_are_checked_and_other_sources_are_not() -> None:
    pattern = {
        "source": ["aws.guardduty"],
        "$or": [{"detail": {"type": ["Made:Up/Type"]}}, {"detail": {"severity": [8]}}],
    }
    assert [path for path, _ in guardduty_type_warnings(pattern)] == [("$or", 0, "detail", "type", 0)]
    assert guardduty_type_warnings({"source": ["aws.securityhub"], "detail": {"type": ["Made:Up/Type"]}}) == []


def test_validate_prints_the_warning_with_file_and_line_and_still_passes(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        f"name: old-type\ndescription: d\nmatch:\n  source: [aws.guardduty]\n  detail:\n    type: [{RENAMED}]\n"
        "steps:\n  - action: notify.log\n"
    )
    out = CliRunner().invoke(cli, ["validate", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert f"p.yaml:6: match.detail.type[0]: warning: GuardDuty retired {RENAMED!r}" in out.output


def test_the_shipped_library_names_only_known_types() -> None:
    out = CliRunner().invoke(cli, ["validate", str(Path(__file__).resolve().parents[3] / "playbooks")])
    assert out.exit_code == 0 and "warning" not in out.output


def test_every_spelling_and_operator_naming_a_retired_type_is_caught() -> None:
    """Dotted keys, ignore-case, anything-but, prefixes that only retired types start with."""
    dotted = {"source": ["aws.guardduty"], "detail.type": [RENAMED]}
    assert [path for path, _ in guardduty_type_warnings(dotted)] == [("detail.type", 0)]
    [(_, message)] = guardduty_type_warnings(gd({"equals-ignore-case": RENAMED.lower()}))
    assert "matches only retired types" in message and f"{RENAMED}.OutsideAWS" in message
    [(_, message)] = guardduty_type_warnings(gd({"anything-but": [RENAMED]}))
    assert "excludes only retired types" in message and "not excluded" in message
    [(_, message)] = guardduty_type_warnings(gd({"prefix": "Recon:IAMUser/UserPerm"}))
    assert "matches only retired types (Recon:IAMUser/UserPermissions)" in message
    assert guardduty_type_warnings(gd({"prefix": "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration"})) == []
    assert guardduty_type_warnings(gd({"anything-but": {"prefix": "Recon:"}})) == []


def test_wildcards_have_eventbridge_semantics_not_fnmatch() -> None:
    """Only ``*`` is special: ``?`` and ``[`` are literal characters, so these name no type."""
    assert guardduty_type_warnings(gd({"wildcard": "Recon:EC2/Portscan"}, {"wildcard": "Recon:EC2/Port*"})) == []
    warnings = guardduty_type_warnings(gd({"wildcard": "Recon:EC2/Portsca?"}, {"wildcard": "Recon:EC2/[P]ortscan"}))
    assert [path[-1] for path, _ in warnings] == [0, 1]


def test_security_hub_ocsf_types_are_checked_when_they_look_like_guardduty_types() -> None:
    ocsf = {
        "source": ["aws.securityhub"],
        "detail-type": ["Findings Imported V2"],
        "detail": {"findings": {"finding_info": {"types": ["Threats", RENAMED, "Made:Up/Type"]}}},
    }
    warnings = guardduty_type_warnings(ocsf)
    assert [path for path, _ in warnings] == [
        ("detail", "findings", "finding_info", "types", 1),
        ("detail", "findings", "finding_info", "types", 2),
    ]


def test_runtime_privilege_escalation_types_are_current() -> None:
    """The GuardDuty-to-ASFF table links them to the retired page, but the Runtime Monitoring finding-types
    page lists them and the corpus holds a real capture of one from November 2025."""
    runtime = [
        "PrivilegeEscalation:Runtime/ContainerMountsHostDirectory",
        "PrivilegeEscalation:Runtime/CGroupsReleaseAgentModified",
        "PrivilegeEscalation:Runtime/DockerSocketAccessed",
        "PrivilegeEscalation:Runtime/RuncContainerEscape",
        "PrivilegeEscalation:Runtime/UserfaultfdUsage",
    ]
    assert guardduty_type_warnings(gd(*runtime)) == []
