"""Fuzzing the playbook loader and the template resolver.

- Loader: random YAML documents, random YAML-ish text, and mutations of the shipped playbooks (at the
  text level and at the document level). The only failure is ``PlaybookValidationError`` whose issues
  name the file (and the line, unless the problem is the whole file); a library that loads also
  survives its bundle round trip and plans real events raising nothing but ``InvalidEvent``.
- Templates: random template text and random scopes. Parsing raises only ``TemplateError``;
  rendering a parsed template raises only ``UnresolvedTemplate``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.findings import InvalidEvent
from chalicelib.planner import evaluate
from chalicelib.playbooks.library import Library
from chalicelib.playbooks.template import (
    ROOTS,
    TemplateError,
    UnresolvedTemplate,
    check_templates,
    parse_template,
    render_value,
)
from clampdown.playbooks.loader import PlaybookValidationError, load_library
from tests.reliability.conftest import PROFILE
from tests.reliability.harness import PLAYBOOKS
from tests.reliability.strategies import HOSTILE_TEXT, deep, json_values, load, mutate, paths

SHIPPED = sorted(PLAYBOOKS.glob("*.yaml"))
#: Problems of a whole file, which have no line.
FILE_LEVEL = ("file is larger than", "not UTF-8", "cannot read", "invalid YAML: nested too deeply")
EVENTS = [
    "corpus/guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json",
    "corpus/guardduty/gd_c7n_Backdoor-EC2-C-CActivity-B-DNS.json",
    "corpus/cloudtrail/ct_raw_stratus_aws.persistence.lambda-backdoor-function_AddPermission20150331v2.json",
    "corpus/securityhub-ocsf/sh2_sumologic-docs_2004_GuardDuty-Stealth-IAMUser-CloudTrailLoggingDisabled.json",
]


def check_loads(text: str, tmp: Path) -> None:
    """``text`` as a playbook file: a library, or a validation error that says where."""
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "fuzzed.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        library = load_library([path])
    except PlaybookValidationError as error:
        errors = [i for i in error.issues if i.level == "error"]
        assert errors, error
        for issue in errors:
            assert issue.file == str(path), issue
            assert str(issue).startswith(f"{path}:" if issue.line else f"{path}: "), str(issue)
            if issue.line is None:
                assert issue.message.startswith(FILE_LEVEL), str(issue)
            else:
                assert 1 <= issue.line <= len(text.splitlines()) + 2, str(issue)  # YAML breaks lines on \r too
        return
    check_usable(library)


def check_usable(library: Library) -> None:
    """A library that validated is bundled and run like the deployed one."""
    bundled = Library.from_bundle(json.loads(json.dumps(library.to_bundle())))
    for name in EVENTS:
        with contextlib.suppress(InvalidEvent):  # an event the playbooks cannot read is a clear error
            evaluate(load(name), bundled)


YAML_TOKENS = [
    "\n", "  ", "- ", ": ", "name", "description", "match", "steps", "action", "params", "mode", "target",
    "on_error", "conditions", "exclude", "tests", "source", "detail-type", "detail", "{", "}", "[", "]", ",",
    "&a ", "*a", "!!python/object:os.system", "!!binary ", "<<: ", "|", ">", "'", '"', "#", "%YAML 1.1\n",
    "---\n", "...\n", "? ", "~", "null", "yes", "0x1F", "1e9", ".inf", "2001-12-14", "iam.quarantine-user",
    "notify.log", "{{ finding.type }}", "{{", "}}", "\t", "\x00", "\ufeff", "é",
]  # fmt: skip
yaml_text = st.lists(st.sampled_from(YAML_TOKENS) | st.text(max_size=4), max_size=60).map("".join)


@st.composite
def shipped_text_mutation(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(SHIPPED)).read_text().splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["delete", "duplicate", "indent", "dedent", "insert", "truncate", "swap"]))
        if how == "delete":
            del lines[i]
        elif how == "duplicate":
            lines.insert(i, lines[i])
        elif how == "indent":
            lines[i] = "  " + lines[i]
        elif how == "dedent":
            lines[i] = lines[i][2:]
        elif how == "insert":
            position = draw(st.integers(0, len(lines[i])))
            lines[i] = (
                lines[i][:position] + draw(st.sampled_from(YAML_TOKENS) | st.text(max_size=6)) + lines[i][position:]
            )
        elif how == "truncate":
            lines = lines[:i]
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines)


PLAYBOOK_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from([h for h in HOSTILE_TEXT if "\ud800" not in h]),
    st.sampled_from(
        ["{{ finding.type | lower(1) }}", "{{ event.detail | json }}", "{{ finding.x | default(", "dry-run"]
    ),
    st.sampled_from([[], {}, [None], {"": None}, [1, "two", {}]]).map(copy.deepcopy),
    st.integers(min_value=1, max_value=60).map(deep),  # the loader refuses more than 40 levels
    json_values,
)


@st.composite
def shipped_document_mutation(draw: st.DrawFn) -> str:
    document = yaml.safe_load(draw(st.sampled_from(SHIPPED)).read_text())
    for _ in range(draw(st.integers(1, 3))):
        candidates = paths(document)
        path = draw(st.sampled_from(candidates))
        action = draw(st.sampled_from(["delete", "replace", "replace"]))
        value = draw(PLAYBOOK_VALUES)
        document = mutate(document, path, action, value)
    style = draw(st.sampled_from([False, True, None]))
    return yaml.safe_dump(document, default_flow_style=style, allow_unicode=draw(st.booleans()), sort_keys=False)


@PROFILE
@given(text=yaml_text)
def test_fuzz_random_yaml_text(text: str, tmp_path_factory: Any) -> None:
    check_loads(text, tmp_path_factory.mktemp("p"))


@PROFILE
@given(value=json_values)
def test_fuzz_random_yaml_documents(value: Any, tmp_path_factory: Any) -> None:
    check_loads(yaml.safe_dump(value, allow_unicode=True), tmp_path_factory.mktemp("p"))


@PROFILE
@given(text=shipped_text_mutation())
def test_fuzz_text_mutations_of_the_shipped_playbooks(text: str, tmp_path_factory: Any) -> None:
    check_loads(text, tmp_path_factory.mktemp("p"))


@PROFILE
@given(text=shipped_document_mutation())
def test_fuzz_document_mutations_of_the_shipped_playbooks(text: str, tmp_path_factory: Any) -> None:
    check_loads(text, tmp_path_factory.mktemp("p"))


# -- templates ------------------------------------------------------------------------------------
TEMPLATE_TOKENS = [
    "{{", "}}", " ", "|", "(", ")", "[", "]", ".", "'", '"', "\\", ",", "-", "_", "0", "1", "-1", "99999999999999999999",
    *sorted(ROOTS), "type", "actor", "resources", "detail", "name", "default", "lower", "upper", "join", "first",
    "length", "json", '("n/a")', "(1)", "(1, 2)", '(", ")', "([[[[", "(" + "[" * 5000 + ")", "(1e999)", "(NaN)",
    "{", "}", "\n", "é", "\x00",
]  # fmt: skip
template_text = st.lists(st.sampled_from(TEMPLATE_TOKENS) | st.text(max_size=3), max_size=25).map("".join)
scopes = st.fixed_dictionaries(
    {root: json_values for root in sorted(ROOTS - {"finding"})},
    optional={
        "finding": json_values
        | st.fixed_dictionaries({"type": st.text(max_size=5), "resources": st.lists(json_values, max_size=3)})
    },
)


KEYS = ["type", "a", "detail-type", "resources", "x y"]
scope_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=20,
)
FILTER_TEXT = [
    "lower", "upper", "json", "first", "length", "join", 'join(", ")', "join(1)", "default", 'default("n/a")',
    "default(null)", "default([1, 2])", "lower(1)", "json(1)", "first(1, 2)", "join(1, 2)", 'default("a", "b")',
    "length()", "default(" + "[" * 3000 + ")", "default(1e999)", "nope", "default(x)",
]  # fmt: skip


@st.composite
def structured_templates(draw: st.DrawFn) -> str:
    """Well-formed expressions over paths that often exist in ``resolvable_scopes``."""
    steps = draw(
        st.lists(
            st.sampled_from(KEYS).map(lambda k: f".{k}" if k.isidentifier() else f"['{k}']")
            | st.integers(-3, 3).map(lambda i: f"[{i}]"),
            max_size=3,
        )
    )
    filters = draw(st.lists(st.sampled_from(FILTER_TEXT), max_size=3))
    body = draw(st.sampled_from(sorted(ROOTS))) + "".join(steps) + "".join(f" | {f}" for f in filters)
    return draw(st.sampled_from(["{{ %s }}", "text {{ %s }} text", "{{%s}}{{ finding }}"])) % body


resolvable_scopes = st.fixed_dictionaries(
    {root: st.dictionaries(st.sampled_from(KEYS), scope_values) for root in ROOTS}
)


@PROFILE
@given(text=structured_templates(), scope=resolvable_scopes)
def test_fuzz_structured_templates_parse_and_render_or_say_why(text: str, scope: dict[str, Any]) -> None:
    try:
        template = parse_template(text)
    except TemplateError as error:
        assert str(error)
        return
    try:
        template.render(scope)
    except UnresolvedTemplate as missing:
        assert str(missing)


@PROFILE
@given(text=template_text, scope=scopes)
def test_fuzz_templates_parse_and_render_or_say_why(text: str, scope: dict[str, Any]) -> None:
    assert isinstance(check_templates({"a": [text]}), list)
    try:
        template = parse_template(text)
    except TemplateError as error:
        assert str(error)
        return
    try:
        template.render(scope)
    except UnresolvedTemplate as missing:
        assert str(missing)


@PROFILE
@given(params=json_values, scope=scopes, seed=st.integers(0, 2**32))
def test_fuzz_templates_inside_parameters(params: Any, scope: dict[str, Any], seed: int) -> None:
    """Templates sprinkled into a parameter structure: validated structures always render or say why."""
    rng = random.Random(seed)

    def sprinkle(value: Any) -> Any:
        if isinstance(value, str) or value is None:
            return rng.choice(["{{ finding.type }}", "x {{ event.detail | json }} y", "{{ resource | length }}", value])
        if isinstance(value, dict):
            return {k: sprinkle(v) for k, v in value.items()}
        if isinstance(value, list):
            return [sprinkle(v) for v in value]
        return value

    params = sprinkle(params)
    if check_templates(params):
        return  # a validation error, reported with its path
    try:
        render_value(params, scope)
    except UnresolvedTemplate as missing:
        assert str(missing)
