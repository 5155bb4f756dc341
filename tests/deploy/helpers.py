"""Shared pieces of the deployment tests: small libraries and stages, corpus events, an IAM evaluator."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from chalicelib.playbooks.library import Library
from clampdown.deploy.stage import Stage
from clampdown.playbooks.loader import load_library
from tests.conftest import CORPUS, ROOT

SHIPPED = ROOT / "playbooks"
EVENT_FOLDERS = ("guardduty", "securityhub", "securityhub-ocsf", "cloudtrail")


def shipped_library() -> Library:
    return load_library([SHIPPED])


def copy_playbooks(root: Path) -> Path:
    """The shipped playbooks copied to ``root/playbooks``, with the test events they name (../tests/data)."""
    shutil.copytree(SHIPPED, root / "playbooks")
    shutil.copytree(ROOT / "tests" / "data", root / "tests" / "data")
    return root / "playbooks"


def project_copy(root: Path) -> Path:
    """A copy of the project as a deployer has it: the app, its config, the CLI, playbooks and tests."""
    ignore = shutil.ignore_patterns("__pycache__", "_bundle", "*.pyc", "deployments", "policy-*.json")
    for name in ("chalicelib", "clampdown", ".chalice"):
        shutil.copytree(ROOT / name, root / name, ignore=ignore)
    for name in ("app.py", "requirements.txt"):
        shutil.copyfile(ROOT / name, root / name)
    copy_playbooks(root)
    return root


def playbook(name: str, match: Mapping[str, Any], *actions: str) -> str:
    """A playbook document (YAML is a superset of JSON) with one step per action."""
    steps = [{"action": a} for a in actions or ("notify.log",)]
    return json.dumps({"name": name, "description": f"{name} (test)", "match": match, "steps": steps})


def library(tmp_path: Path, *documents: str) -> Library:
    folder = tmp_path / "playbooks"
    folder.mkdir(exist_ok=True)
    for index, text in enumerate(documents):
        (folder / f"p{index}.yaml").write_text(text)
    return load_library([folder])


def stage(name: str = "dev", **environment: str) -> Stage:
    """A stage from a config like the shipped one, with extra CLAMPDOWN_* variables."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    config["stages"].setdefault(name, json.loads(json.dumps(config["stages"]["dev"])))
    config["stages"][name]["environment_variables"].update(environment)
    return Stage(name, config, ROOT)


def corpus_events() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every real event of the corpus (EventBridge envelopes and raw records alike)."""
    for folder in EVENT_FOLDERS:
        for path in sorted((CORPUS / folder).glob("*.json")):
            yield f"{folder}/{path.name}", json.loads(path.read_text())


def pinned_values(pattern: Mapping[str, Any], key: str) -> set[str] | None:
    """The exact values every alternative of a pattern requires of ``key`` (None: some alternative
    does not pin it to exact strings)."""
    from chalicelib.patterns import compile_pattern

    values: set[str] = set()
    for alternative in compile_pattern(pattern).alternatives:
        tests = {test.path: test for test in alternative}
        test = tests.get((key,))
        if test is None or test.absent_ok or not all(isinstance(v, str) for v in test.clause):
            return None
        values.update(test.clause)
    return values


def statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(document["Statement"])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allows(document: Mapping[str, Any], action: str, resource: str) -> bool:
    """IAM's decision for one request, without conditions: an Allow matches and no Deny does."""

    def matches(statement: Mapping[str, Any]) -> bool:
        return action in as_list(statement["Action"]) and any(
            fnmatchcase(resource, pattern) for pattern in as_list(statement["Resource"])
        )

    allowed = any(matches(s) for s in statements(document) if s["Effect"] == "Allow")
    return allowed and not any(matches(s) for s in statements(document) if s["Effect"] == "Deny")
