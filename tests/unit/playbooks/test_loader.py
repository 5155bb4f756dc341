"""`clampdown validate` semantics: every error names file, line and the path inside the document."""

from __future__ import annotations

from pathlib import Path

import pytest

from clampdown.playbooks.loader import PlaybookValidationError, load_library, validate_paths

VALID = """\
name: demo
description: Log GuardDuty findings.
match:
  source: [aws.guardduty]
steps:
  - action: notify.log
    params:
      message: "{{ finding.title }}"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def issues_for(tmp_path: Path, text: str) -> list[str]:
    write(tmp_path, "p.yaml", text)
    _, issues = validate_paths([tmp_path])
    return [str(i).replace(str(tmp_path) + "/", "") for i in issues]


def test_valid_playbook_loads(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", VALID)
    library = load_library([tmp_path])
    assert [p.name for p in library.playbooks] == ["demo"]
    assert library.playbooks[0].steps[0].action == "notify.log"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # unknown action, pointing at the step's action line
        (("action: notify.log", "action: iam.explode"), "p.yaml:6: steps[0].action: unknown action 'iam.explode'"),
        # bad parameter type
        (
            ('message: "{{ finding.title }}"', "message: 42"),
            "p.yaml:8: steps[0].params.message: 42 is not of type 'string'",
        ),
        # unknown parameter
        (('message: "{{ finding.title }}"', "mesage: hi"), "p.yaml:8: steps[0].params.mesage: unknown key 'mesage'"),
        # bad template
        (
            ("{{ finding.title }}", "{{ os.environ }}"),
            "p.yaml:8: steps[0].params.message: {{ os.environ }}: unknown root 'os'",
        ),
        # typo in a top-level key
        (("description:", "descripton:"), "p.yaml:2: descripton: unknown key 'descripton'"),
        # invalid event pattern, with the path inside the pattern
        (("source: [aws.guardduty]", "source: []"), "p.yaml:4: match.source: invalid event pattern"),
        (("source: [aws.guardduty]", "source: [{prefx: aws.}]"), "p.yaml:4: match.source: invalid event pattern"),
        # bad mode
        (("steps:", "mode: yolo\nsteps:"), "p.yaml:5: mode: 'yolo' is not one of ['auto', 'approval', 'dry-run']"),
        # bad name
        (("name: demo", "name: Demo Playbook"), "p.yaml:1: name: 'Demo Playbook' does not match"),
        # a target the action cannot act on
        (
            ("    params:", "    target: ec2-instance\n    params:"),
            "p.yaml:7: steps[0].target: notify.log cannot act on ec2-instance",
        ),
    ],
)
def test_errors_name_file_line_and_path(tmp_path: Path, edit: tuple[str, str], expected: str) -> None:
    old, new = edit
    assert old in VALID
    found = issues_for(tmp_path, VALID.replace(old, new, 1))
    assert any(issue.startswith(expected) for issue in found), found


def test_missing_required_key(tmp_path: Path) -> None:
    found = issues_for(tmp_path, VALID.replace("description: Log GuardDuty findings.\n", ""))
    assert found == ["p.yaml:1: 'description' is a required property"]


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", VALID)
    write(tmp_path, "b.yaml", VALID)
    _, issues = validate_paths([tmp_path])
    assert len(issues) == 1
    assert issues[0].file.endswith("b.yaml") and issues[0].line == 1
    assert "also used by" in issues[0].message


def test_load_library_raises_with_every_error(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", VALID.replace("notify.log", "nope.nope"))
    write(tmp_path, "b.yaml", "name: [\n")
    with pytest.raises(PlaybookValidationError) as info:
        load_library([tmp_path])
    messages = [str(i) for i in info.value.issues]
    assert len(messages) == 2
    assert "unknown action 'nope.nope'" in messages[0]
    assert "invalid YAML" in messages[1]


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PlaybookValidationError, match="no playbook files found"):
        load_library([tmp_path])


def test_severity_bounds(tmp_path: Path) -> None:
    text = VALID.replace("steps:", "conditions:\n  min_severity: 7\n  max_severity: 4\nsteps:")
    found = issues_for(tmp_path, text)
    assert found == ["p.yaml:7: conditions.max_severity: max_severity 4 is below min_severity 7"]


def test_test_event_paths_cannot_escape_the_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "playbooks").mkdir(parents=True)
    text = VALID + "tests:\n  - name: t\n    event: ../../../etc/passwd\n    expect: {match: true}\n"
    (project / "playbooks" / "p.yaml").write_text(text)
    _, issues = validate_paths([project / "playbooks"])
    assert len(issues) == 1 and "leaves the project directory" in issues[0].message
    assert issues[0].path == ("tests", 0, "event")


def test_shipped_library_is_valid() -> None:
    library = load_library([Path(__file__).resolve().parents[3] / "playbooks"])
    assert len(library) >= 1


BROKEN_EVERYWHERE = """\
name: demo
description: Several independent mistakes, schema and semantic.
colour: red
mode: yolo
match:
  source: [aws.guardduty]
  detail:
    severity: [{numeric: [">", "high"]}]
steps:
  - target: iam-user
  - action: iam.explode
  - action: notify.log
    params:
      message: 42
  - action: iam.deactivate-access-key
    target: ec2-instance
    on_error: maybe
"""


def test_one_schema_error_does_not_hide_the_others(tmp_path: Path) -> None:
    found = issues_for(tmp_path, BROKEN_EVERYWHERE)
    assert found == [
        "p.yaml:3: colour: unknown key 'colour' (allowed: approvers, conditions, description, enabled, exclude, "
        "match, mode, name, steps, tests, threat)",
        "p.yaml:4: mode: 'yolo' is not one of ['auto', 'approval', 'dry-run']",
        "p.yaml:8: match.detail.severity: invalid event pattern: Value of > must be numeric",
        "p.yaml:10: steps[0]: 'action' is a required property",
        "p.yaml:11: steps[1].action: unknown action 'iam.explode' (known: " + found[4].split("(known: ", 1)[1],
        "p.yaml:14: steps[2].params.message: 42 is not of type 'string'",
        "p.yaml:16: steps[3].target: iam.deactivate-access-key cannot act on ec2-instance (it acts on access-key)",
        "p.yaml:17: steps[3].on_error: 'maybe' is not one of ['stop', 'continue']",
    ]


def test_a_part_that_fails_the_schema_gets_no_semantic_duplicate(tmp_path: Path) -> None:
    text = VALID.replace("  - action: notify.log\n", "  - action: notify.log\n    target: [iam-user, iam-user]\n")
    found = issues_for(tmp_path, text)
    assert len(found) == 1 and found[0].startswith("p.yaml:7: steps[0].target: "), found


def test_pattern_error_inside_or_points_at_the_alternative(tmp_path: Path) -> None:
    text = VALID.replace(
        "  source: [aws.guardduty]\n",
        "  source: [aws.guardduty]\n"
        "  $or:\n"
        "    - detail:\n"
        "        type: [x]\n"
        "    - detail:\n"
        "        severity:\n"
        "          - numeric: ['>', 1, '>', 2]\n",
    )
    found = issues_for(tmp_path, text)
    assert found == ["p.yaml:9: match.$or[1].detail.severity: invalid event pattern: Bad numeric range operator: >"]
