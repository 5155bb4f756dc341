"""The template syntax only reads values; anything else is an error, never code."""

from __future__ import annotations

import pytest

from chalicelib.playbooks.template import (
    TemplateError,
    UnresolvedTemplate,
    check_templates,
    contains_template,
    parse_template,
    render_value,
)

SCOPE = {
    "finding": {
        "type": "UnauthorizedAccess:IAMUser/TorIPCaller",
        "severity": 5.0,
        "actor": {"source_ip": "198.51.100.0", "user_name": "alice"},
        "resources": [{"kind": "access-key", "id": "AKIAEXAMPLE"}, {"kind": "iam-user", "name": "alice"}],
        "optional": None,
    },
    "event": {"detail-type": "GuardDuty Finding", "detail": {"service": {"count": 3}}},
    "resource": {"kind": "iam-user", "name": "alice"},
    "playbook": {"name": "demo"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ finding.actor.source_ip }}", "198.51.100.0"),
        ("{{finding.severity}}", 5.0),  # a whole-string template keeps the type
        ("{{ finding.resources[1].name }}", "alice"),
        ("{{ finding.resources[-1].kind }}", "iam-user"),
        ("{{ event['detail-type'] }}", "GuardDuty Finding"),
        ("{{ event.detail-type }}", "GuardDuty Finding"),
        ("{{ event.detail.service.count }}", 3),
        ("key of {{ resource.name }} from {{ finding.actor.source_ip }}", "key of alice from 198.51.100.0"),
        ('{{ finding.missing | default("n/a") }}', "n/a"),
        ("{{ finding.actor.user_name | upper }}", "ALICE"),
        ("{{ finding.resources | length }}", 2),
        ("severity {{ finding.severity }}", "severity 5.0"),
        ("no template here", "no template here"),
        ("{{ finding.optional }}", None),
    ],
)
def test_render(text: str, expected: object) -> None:
    assert render_value(text, SCOPE) == expected


def test_render_nested_structures() -> None:
    params = {"tags": {"ip": "{{ finding.actor.source_ip }}"}, "list": ["{{ resource.kind }}", 3]}
    assert render_value(params, SCOPE) == {"tags": {"ip": "198.51.100.0"}, "list": ["iam-user", 3]}


def test_missing_value_names_the_path() -> None:
    with pytest.raises(UnresolvedTemplate) as info:
        render_value("{{ finding.actor.access_key_id }}", SCOPE)
    assert "finding.actor.access_key_id" in str(info.value)
    with pytest.raises(UnresolvedTemplate):
        render_value("{{ finding.resources[9].name }}", SCOPE)


@pytest.mark.parametrize(
    "text",
    [
        "{{ __import__('os').system('id') }}",
        "{{ finding.__class__ }}x{{ os.environ }}",
        "{{ environ.HOME }}",
        "{{ finding.type | eval }}",
        "{{ finding.type | default(os.getcwd()) }}",
        "{{ finding.resources[0 + 1] }}",
        "{{ finding.type + 'x' }}",
        "{{ finding.type ",
        "{{ }}",
    ],
)
def test_anything_but_a_path_is_rejected(text: str) -> None:
    with pytest.raises(TemplateError):
        parse_template(text)


def test_values_from_findings_are_never_evaluated() -> None:
    """An attacker-controlled value that looks like a template stays inert text."""
    hostile = {"finding": {"title": "{{ event.secret }} <!channel>"}, "event": {"secret": "s3cr3t"}}
    assert render_value("{{ finding.title }}", hostile) == "{{ event.secret }} <!channel>"
    assert render_value("title: {{ finding.title }}", hostile) == "title: {{ event.secret }} <!channel>"


def test_check_templates_reports_paths() -> None:
    errors = check_templates({"a": ["ok", "{{ nope.x }}"], "b": "{{ finding.type | shout }}"})
    assert [path for path, _ in errors] == [("a", 1), ("b",)]
    assert "unknown root 'nope'" in errors[0][1]
    assert "unknown filter" in errors[1][1]


def test_contains_template_looks_through_nested_parameters() -> None:
    assert contains_template({"tags": {"note": ["plain", "{{ finding.type }}"]}})
    assert not contains_template({"tags": {"note": ["plain", 3, None]}, "level": "warning"})
    assert not contains_template({"text": "a { brace } is not a template"})
