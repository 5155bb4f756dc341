"""The plan-time check of rendered step parameters agrees with jsonschema on every action's schema."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from chalicelib.actions import REGISTRY
from chalicelib.playbooks.params import param_problem, unsupported_keywords

#: Values of every JSON type and edge, tried at the top level and for every declared parameter.
SAMPLES: list[Any] = [
    None,
    True,
    0,
    -1,
    1.5,
    300,
    "",
    "x",
    "now",
    "NEW",
    "warning",
    "a" * 5000,
    "arn:aws:sns:us-east-1:123456789012:alerts",
    "#alerts",
    "aws:reserved",
    [],
    ["a"],
    [1, 2],
    ["arn:aws:iam::123456789012:role/BreakGlass"],
    {},
    {"k": "v"},
    {"aws:k": "v"},
    {f"k{i}": "v" for i in range(60)},
]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_action_schema_is_within_the_supported_subset(name: str) -> None:
    assert unsupported_keywords(REGISTRY[name].schema) == set()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_agrees_with_jsonschema(name: str) -> None:
    schema = REGISTRY[name].schema
    validator = Draft202012Validator(schema)
    candidates: list[Any] = list(SAMPLES)
    for prop in schema.get("properties", {}):
        candidates += [{prop: value} for value in SAMPLES]
        candidates += [{prop: value, "unknown": 1} for value in SAMPLES[:3]]
    for params in candidates:
        expected_valid = validator.is_valid(params)
        problem = param_problem(schema, params)
        assert (problem is None) == expected_valid, (params, problem)


def test_problems_name_the_parameter() -> None:
    schema = REGISTRY["tag"].schema
    assert param_problem(schema, {"tags": {"aws:owner": "x"}}) == (
        "params.tags.aws:owner: the name 'aws:owner' is not allowed ('aws:owner' does not match "
        "^(?![Aa][Ww][Ss]:)[\\w .:/=+\\-@]{1,128}$)"
    )
    assert param_problem(schema, {"tags": {"note": "a" * 2000}}) == (
        "params.tags.note: the value is longer than 1024 characters (2000)"
    )
    assert param_problem(REGISTRY["notify.log"].schema, {"colour": "red"}) == (
        "params.colour: unknown parameter (allowed: level, message)"
    )


def test_the_check_imports_no_jsonschema() -> None:
    """It runs in the Lambda: jsonschema would cost ~160 ms of cold start."""
    code = (
        "import sys; import chalicelib.planner, chalicelib.playbooks.params; "
        "print('jsonschema' in sys.modules, 'yaml' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
