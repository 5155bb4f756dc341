"""Load and validate playbook files: every problem is reported with file, line and document path.

This is the build-time/CLI path (it imports PyYAML and jsonschema). The deployed function reads
the bundle that ``clampdown bundle`` writes from a library that passed these checks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import chalicelib.playbooks
from chalicelib.playbooks.library import Library
from chalicelib.playbooks.model import FINDING_TARGET, Playbook, resource_index
from chalicelib.playbooks.template import check_templates, has_template
from clampdown.playbooks.yaml_source import (
    DocPath,
    SourceDocument,
    SourceError,
    format_location,
    load_yaml_file,
)

#: The schema ships inside the deployment package too (``chalicelib/playbooks/schema.json``).
SCHEMA_PATH = Path(chalicelib.playbooks.__file__).with_name("schema.json")
PLAYBOOK_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Issue:
    """One validation problem; ``level`` is "error" or "warning"."""

    file: str
    line: int | None
    path: DocPath
    message: str
    level: str = "error"

    def __str__(self) -> str:
        prefix = "" if self.level == "error" else f"{self.level}: "
        return f"{format_location(self.file, self.line, self.path)}{prefix}{self.message}"


class PlaybookValidationError(ValueError):
    """A library with errors; ``issues`` holds every one of them (warnings too)."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        errors = [i for i in self.issues if i.level == "error"]
        super().__init__(f"{len(errors)} error(s) in playbooks:\n" + "\n".join(str(i) for i in errors))


@cache
def playbook_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return loaded


@cache
def _validator_class() -> Any:
    from jsonschema import Draft202012Validator  # imported lazily: ~160 ms, never on the Lambda path

    return Draft202012Validator


def _schema_errors(
    schema: Mapping[str, Any], instance: Any, *, templates: bool = False
) -> Iterator[tuple[DocPath, str]]:
    """(path, message) of each schema violation, with the most specific cause for oneOf/anyOf.

    With ``templates`` (step parameters, the only place they are allowed), a templated value is not
    an error: it is checked when it is resolved, at plan time.
    """
    from jsonschema.exceptions import best_match

    validator = _validator_class()(schema)
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        if error.context:
            error = best_match(error.context) or error
        path: DocPath = tuple(error.absolute_path)
        if templates and has_template(error.instance):
            continue
        if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            allowed = set(error.schema.get("properties", {}))
            for key in error.instance:
                if key not in allowed:
                    hint = f" (allowed: {', '.join(sorted(allowed))})" if allowed else ""
                    yield (*path, key), f"unknown key {key!r}{hint}"
            continue
        yield path, error.message


def find_playbook_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories into their playbook files (sorted, not recursing into ``tests/``)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in PLAYBOOK_SUFFIXES and p.is_file()))
        else:
            files.append(path)
    return files


class _DocumentChecker:
    """The JSON Schema and the semantic checks beyond it, for one document.

    Every independent problem is reported in one run: a schema error only stops the semantic checks
    of the part it is about (a step without ``action`` is not checked further, its neighbours are).
    """

    def __init__(self, doc: SourceDocument) -> None:
        self.doc = doc
        self.issues: list[Issue] = []
        self._schema_failed: list[DocPath] = []

    def add(self, path: DocPath, message: str, level: str = "error") -> None:
        self.issues.append(Issue(self.doc.file, self.doc.line_of(path), path, message, level))

    def _clean(self, path: DocPath) -> bool:
        """No schema error lies at, inside or around ``path`` (errors on the document itself aside)."""
        return not any(
            failed and (failed[: len(path)] == path or path[: len(failed)] == failed) for failed in self._schema_failed
        )

    def check(self) -> None:
        data = self.doc.data
        for path, message in _schema_errors(playbook_schema(), data):
            self.add(path, message)
            self._schema_failed.append(path)
        if not isinstance(data, Mapping):
            return
        match = data.get("match")
        if isinstance(match, Mapping) and match and self._clean(("match",)):
            self._check_pattern(match)
        conditions = data.get("conditions")
        if isinstance(conditions, Mapping) and self._clean(("conditions",)):
            low, high = conditions.get("min_severity"), conditions.get("max_severity")
            if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
                self.add(("conditions", "max_severity"), f"max_severity {high} is below min_severity {low}")
        steps = data.get("steps")
        for index, step in enumerate(steps if isinstance(steps, list) else ()):
            if isinstance(step, Mapping) and self._clean(("steps", index, "action")):
                self._check_step(("steps", index), step)
        tests = data.get("tests")
        for index, test in enumerate(tests if isinstance(tests, list) else ()):
            if isinstance(test, Mapping) and self._clean(("tests", index, "event")):
                self._check_test(("tests", index), test)

    def _check_pattern(self, pattern: Mapping[str, Any]) -> None:
        from chalicelib.patterns import InvalidPattern, compile_pattern

        try:
            compile_pattern(pattern)
        except InvalidPattern as exc:
            self.add(("match", *exc.path), f"invalid event pattern: {exc.reason}")
            return
        from clampdown.playbooks.type_check import guardduty_type_warnings

        for path, message in guardduty_type_warnings(pattern):
            self.add(("match", *path), message, level="warning")

    def _check_step(self, path: DocPath, step: Mapping[str, Any]) -> None:
        from chalicelib.actions import REGISTRY

        action = REGISTRY.get(step["action"])
        if action is None:
            self.add((*path, "action"), f"unknown action {step['action']!r} (known: {', '.join(sorted(REGISTRY))})")
            return
        params = step.get("params") or {}
        if isinstance(params, Mapping) and self._clean((*path, "params")):
            for sub, message in _schema_errors(action.schema, params, templates=True):
                self.add((*path, "params", *sub), message)
            for sub, message in check_templates(params):
                self.add((*path, "params", *sub), message)
        if self._clean((*path, "target")):
            self._check_target((*path, "target"), action, step.get("target"))

    def _check_target(self, path: DocPath, action: Any, target: Any) -> None:
        if isinstance(target, str) and resource_index(target) is not None:
            if not action.resource_kinds:
                self.add(path, f"{action.name} acts on the finding only, not on one of its resources")
            return  # which kind resources[N] is depends on the finding: checked when the step is planned
        kinds = [target] if isinstance(target, str) else list(target or ())
        if kinds == [FINDING_TARGET]:
            if action.resource_kinds:
                self.add(
                    path, f"{action.name} acts on resources ({', '.join(action.resource_kinds)}), not on the finding"
                )
        else:
            for kind in kinds:
                if kind not in action.resource_kinds:
                    can = ", ".join(action.resource_kinds) or "the finding only"
                    self.add(path, f"{action.name} cannot act on {kind} (it acts on {can})")

    def _check_test(self, path: DocPath, test: Mapping[str, Any]) -> None:
        event = test["event"]
        if isinstance(event, str):
            try:
                resolve_test_event_path(self.doc.file, event)
            except ValueError as exc:
                self.add((*path, "event"), str(exc))


#: What marks the root of the project a playbook lives in (a repository, a Python project, a Chalice app).
PROJECT_MARKERS = (".git", "pyproject.toml", ".chalice")


def event_roots(playbook_file: str) -> list[Path]:
    """Where a playbook's test events may be: under its folder's parent (``playbooks/`` next to
    ``tests/``), and anywhere in the project that contains it (the nearest folder at or above the
    playbook's with ``.git``, ``pyproject.toml`` or ``.chalice``)."""
    base = Path(playbook_file).resolve().parent
    roots = [base.parent]
    project = next((d for d in (base, *base.parents) if any((d / m).exists() for m in PROJECT_MARKERS)), None)
    if project is not None and not project.is_relative_to(base.parent):
        roots.append(project)
    return roots


def resolve_test_event_path(playbook_file: str, reference: str) -> Path:
    """A test's event file: relative to the playbook file, and inside one of :func:`event_roots`.

    The path is resolved (``..`` and symlinks followed) before it is checked, so neither leads out.
    """
    base = Path(playbook_file).resolve().parent
    roots = event_roots(playbook_file)
    candidate = Path(reference)
    if candidate.is_absolute():
        raise ValueError(f"event path {reference!r} must be relative to the playbook file")
    resolved = (base / candidate).resolve()
    if not any(resolved.is_relative_to(root) for root in roots):
        raise ValueError(
            f"event path {reference!r} leaves the project directory {roots[-1]} "
            f"(test events must be under {' or '.join(map(str, roots))})"
        )
    if not resolved.is_file():
        raise ValueError(f"event file {reference!r} does not exist (looked for {resolved})")
    return resolved


def validate_documents(docs: Sequence[SourceDocument]) -> list[Issue]:
    issues: list[Issue] = []
    seen: dict[str, str] = {}
    for doc in docs:
        checker = _DocumentChecker(doc)
        checker.check()
        issues.extend(checker.issues)
        name = doc.data.get("name") if isinstance(doc.data, Mapping) else None
        if isinstance(name, str):
            if name in seen:
                issues.append(
                    Issue(
                        doc.file,
                        doc.line_of(("name",)),
                        ("name",),
                        f"playbook name {name!r} is also used by {seen[name]}",
                    )
                )
            seen.setdefault(name, doc.file)
    return issues


def load_documents(paths: Iterable[str | Path]) -> tuple[list[SourceDocument], list[Issue]]:
    docs: list[SourceDocument] = []
    issues: list[Issue] = []
    files = find_playbook_files(paths)
    for file in files:
        try:
            docs.append(load_yaml_file(file))
        except SourceError as exc:
            issues.append(Issue(exc.file, exc.line, exc.path, exc.reason))
    return docs, issues


def validate_paths(paths: Iterable[str | Path]) -> tuple[list[SourceDocument], list[Issue]]:
    """Load and check every playbook under ``paths``; returns the documents and all issues."""
    docs, issues = load_documents(paths)
    issues.extend(validate_documents(docs))
    issues.sort(key=lambda i: (i.file, i.line or 0))
    return docs, issues


def load_library(paths: Iterable[str | Path]) -> Library:
    """A validated library; raises :class:`PlaybookValidationError` listing every error."""
    paths = list(paths)
    docs, issues = validate_paths(paths)
    if any(i.level == "error" for i in issues):
        raise PlaybookValidationError(issues)
    if not docs:
        raise PlaybookValidationError(
            [Issue(", ".join(map(str, paths)) or ".", None, (), "no playbook files found (*.yaml, *.yml)")]
        )
    library = Library([Playbook.from_dict(doc.data, file=doc.file) for doc in docs])
    library.warnings = [i for i in issues if i.level != "error"]
    return library
