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
