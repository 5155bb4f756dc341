"""Playbook unit tests: each playbook's ``tests:`` cases go down the offline path (``evaluate``).

A case passes when the playbook acts on the event exactly when ``expect.match`` says so ("acts":
its pattern matched and its conditions and exclusions kept at least one finding), and, when
``expect.steps`` is given, the planned steps (of every finding the event holds, in order) are, one
for one:

* ``action``: the same action;
* ``target`` (when given): ``null`` for a step on the finding itself, else the target's kind, id,
  name or ARN;
* ``mode`` (when given): the effective mode (auto, approval, dry-run);
* ``skipped`` (when given): whether the step is skipped (no target, excluded, unresolved template);
* ``params`` (when given): a subset: every key given has the same resolved value; nested mappings
  are compared the same way, lists and other values exactly.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from chalicelib.findings import InvalidEvent
from chalicelib.planner import Evaluation, PlannedStep, evaluate
from chalicelib.playbooks.library import Library
from chalicelib.playbooks.model import Playbook, PlaybookTest
from clampdown.inputs import read_events
from clampdown.playbooks.loader import Issue, PlaybookValidationError, resolve_test_event_path, validate_paths

PASS, FAIL, ERROR = "pass", "fail", "error"


@dataclass
class CaseResult:
    name: str
    status: str
    problems: list[str] = field(default_factory=list)
    expected: Mapping[str, Any] = field(default_factory=dict)
    actual: Mapping[str, Any] | None = None
    #: Differences that are the stage's overrides at work, not failures (a mode a stage changed).
    notes: list[str] = field(default_factory=list)

    def diff(self) -> list[str]:
        """Expected vs actual plan (only the fields the case names), as a unified diff."""
        if self.actual is None:
            return []
        expected = json.dumps(self.expected, indent=2, sort_keys=True, default=str).splitlines()
        actual = json.dumps(self.actual, indent=2, sort_keys=True, default=str).splitlines()
        return list(difflib.unified_diff(expected, actual, "expected", "actual", lineterm=""))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "problems": list(self.problems),
            "expected": dict(self.expected),
            "actual": dict(self.actual) if self.actual is not None else None,
            "notes": list(self.notes),
        }


@dataclass
class PlaybookResult:
    name: str
    file: str
    cases: list[CaseResult] = field(default_factory=list)
    #: Why the playbook fails as a whole (strict mode: a missing positive or negative case).
    problem: str | None = None

    @property
    def positive(self) -> int:
        return sum(1 for c in self.cases if c.expected.get("match") is True)

    @property
    def negative(self) -> int:
        return sum(1 for c in self.cases if c.expected.get("match") is False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "positive": self.positive,
            "negative": self.negative,
            "problem": self.problem,
            "cases": [c.to_dict() for c in self.cases],
        }


@dataclass
class SuiteResult:
    playbooks: list[PlaybookResult]
    strict: bool = False

    def count(self, status: str) -> int:
        return sum(1 for p in self.playbooks for c in p.cases if c.status == status)

    @property
    def passed(self) -> bool:
        return not (self.count(FAIL) or self.count(ERROR) or any(p.problem for p in self.playbooks))

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON document of ``clampdown test --format json``."""
        return {
            "passed": self.passed,
            "strict": self.strict,
            "summary": {
                "playbooks": len(self.playbooks),
                "cases": sum(len(p.cases) for p in self.playbooks),
                "passed": self.count(PASS),
                "failed": self.count(FAIL),
                "errors": self.count(ERROR),
                "playbooks_failed": sum(1 for p in self.playbooks if p.problem),
            },
            "playbooks": [p.to_dict() for p in self.playbooks],
        }


def _is_test_event_issue(issue: Issue) -> bool:
    path = issue.path
    return len(path) == 3 and path[0] == "tests" and path[2] == "event"


def load_test_library(paths: Iterable[str | Path]) -> Library:
    """The library like ``load_library``, except that a test's missing event file fails that case only."""
    paths = list(paths)
    docs, issues = validate_paths(paths)
    fatal = [i for i in issues if i.level == "error" and not _is_test_event_issue(i)]
    if fatal:
        raise PlaybookValidationError(issues)
    if not docs:
        raise PlaybookValidationError(
            [Issue(", ".join(map(str, paths)) or ".", None, (), "no playbook files found (*.yaml, *.yml)")]
        )
    return Library([Playbook.from_dict(doc.data, file=doc.file) for doc in docs])


def select(library: Library, patterns: Sequence[str]) -> list[Playbook]:
    """Playbooks by name or glob (``gd-*``), in library order; ValueError names what matched nothing."""
    if not patterns:
        return list(library.playbooks)
    unknown = [p for p in patterns if not any(fnmatchcase(pb.name, p) for pb in library.playbooks)]
    if unknown:
        raise ValueError(f"no playbook named {', '.join(map(repr, unknown))} in the library")
    return [pb for pb in library.playbooks if any(fnmatchcase(pb.name, p) for p in patterns)]


def case_event(playbook: Playbook, test: PlaybookTest) -> Mapping[str, Any]:
    """The case's event: inline, or the one event in a file relative to the playbook's file."""
    if isinstance(test.event, Mapping):
        return test.event
    if not isinstance(test.event, str):
        raise ValueError("event must be a file path or an inline event")
    path = resolve_test_event_path(playbook.file, test.event)
    items = list(read_events([str(path)]))
    broken = [i.error for i in items if i.error]
    if broken:
        raise ValueError(broken[0] or "unreadable event file")
    if len(items) != 1:
        raise ValueError(f"event file {test.event!r} holds {len(items)} events; a test needs exactly one")
    event = items[0].event
    assert event is not None
    return event


def _target_label(step: PlannedStep, expected: Any) -> str | None:
    target = step.target
    if target is None:
        return None
    names = (target.kind, target.id, target.name, target.arn)
    return expected if isinstance(expected, str) and expected in names else target.kind


def _subset(expected: Any, actual: Any) -> Any:
    """``actual`` cut down to the keys ``expected`` names (recursively), for comparison and diffs."""
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return {k: _subset(v, actual[k]) for k, v in expected.items() if k in actual}
    return actual


def project(step: PlannedStep, expected: Mapping[str, Any] | None) -> dict[str, Any]:
    """The fields of a planned step that the expected step names (all comparable ones without it)."""
    keys = expected.keys() if expected is not None else ("action", "target", "mode", "skipped")
    out: dict[str, Any] = {}
    for key in keys:
        if key == "action":
            out["action"] = step.action
        elif key == "target":
            out["target"] = _target_label(step, expected.get("target") if expected else None)
        elif key == "mode":
            out["mode"] = step.mode
        elif key == "skipped":
            out["skipped"] = bool(step.skipped)
        elif key == "params":
            out["params"] = _subset(expected.get("params") if expected else {}, dict(step.params))
    return out


def _step_problems(
    number: int, expected: Mapping[str, Any], actual: dict[str, Any], step: PlannedStep, shipped_mode: str | None
) -> tuple[list[str], list[str]]:
    """(problems, notes): a mode that differs only because the stage's overrides changed the playbook's
    mode (the case expects the mode the shipped playbook plans) is a note, not a failure."""
    where = f"step {number} ({step.action})"
    problems, notes = [], []
    for key, want in expected.items():
        got = actual.get(key)
        if got == want:
            continue
        if key == "mode" and shipped_mode is not None and want == shipped_mode:
            notes.append(f"{where}: mode {got} by the stage's override (the case expects {want}, as shipped)")
            continue
        if key == "params" and isinstance(want, Mapping):
            missing = [k for k in want if k not in step.params]
            problems.append(f"{where}: no param {', '.join(missing)}" if missing else f"{where}: params differ")
        elif key == "skipped" and step.skipped:
            problems.append(f"{where}: skipped ({step.skipped}), expected to run")
        else:
            problems.append(f"{where}: {key} is {got!r}, expected {want!r}")
    return problems, notes


@dataclass(frozen=True)
class _Run:
    library: Library
    evaluation: Evaluation
    steps: list[PlannedStep]


def _plan(playbook: Playbook, event: Mapping[str, Any], now: datetime) -> _Run:
    library = Library([replace(playbook, enabled=True)])  # a disabled playbook is still tested
    evaluation = evaluate(event, library, now=now)
    return _Run(library, evaluation, [step for plan in evaluation.plans for step in plan.steps])


def run_case(
    playbook: Playbook, test: PlaybookTest, *, now: datetime | None = None, shipped: Playbook | None = None
) -> CaseResult:
    """One case. ``shipped``: the playbook before a stage's overrides changed its mode, if they did."""
    expected = dict(test.expect)
    now = now or datetime.now(UTC)
    try:
        event = case_event(playbook, test)
        run = _plan(playbook, event, now)
        shipped_steps = _plan(shipped, event, now).steps if shipped and shipped.mode != playbook.mode else []
    except (ValueError, InvalidEvent) as exc:  # InvalidEvent is a ValueError; named for the reader
        return CaseResult(test.name, ERROR, [str(exc)], expected)
    steps = run.steps
    matched = bool(run.evaluation.plans)
    actual: dict[str, Any] = {"match": matched}
    problems: list[str] = []
    notes: list[str] = []
    if matched != expected["match"]:
        problems.append(_match_problem(matched, run.evaluation, run.library, playbook.name, len(steps)))
    wanted = expected.get("steps")
    if wanted is not None:
        actual["steps"] = [project(s, wanted[i] if i < len(wanted) else None) for i, s in enumerate(steps)]
        if len(steps) != len(wanted):
            problems.append(f"{len(steps)} step(s) planned, expected {len(wanted)}")
        for number, (want, step) in enumerate(zip(wanted, steps, strict=False), start=1):
            same = shipped_steps[number - 1] if number <= len(shipped_steps) else None
            shipped_mode = same.mode if same is not None and same.key == step.key else None
            found, noted = _step_problems(number, want, actual["steps"][number - 1], step, shipped_mode)
            problems += found
            notes += noted
    return CaseResult(test.name, FAIL if problems else PASS, problems, expected, actual, notes)


def _match_problem(matched: bool, evaluation: Any, library: Library, name: str, steps: int) -> str:
    if matched:
        return f"the playbook acts on this event ({steps} step(s) planned), expected no match"
    if evaluation.rejected:
        return "the pattern matched but " + "; ".join(r.reason for r in evaluation.rejected)
    mismatch = library.patterns.explain(name, evaluation.event)
    return f"the pattern did not match: {mismatch}" if mismatch else "the pattern did not match"


def run_suite(
    library: Library, names: Sequence[str] = (), *, strict: bool = False, shipped: Library | None = None
) -> SuiteResult:
    """Every case of the selected playbooks (ValueError for a name that selects nothing).

    ``shipped``: the library before a stage's overrides; a step mode they changed is then reported as a
    note, since the cases describe the playbooks as shipped (exclusions added by a stage still fail a case).
    """
    now = datetime.now(UTC)
    results = []
    for playbook in select(library, names):
        result = PlaybookResult(playbook.name, playbook.file)
        original = shipped.by_name.get(playbook.name) if shipped is not None else None
        result.cases = [run_case(playbook, test, now=now, shipped=original) for test in playbook.tests]
        if strict and not (result.positive and result.negative):
            result.problem = (
                f"needs at least one case with match: true and one with match: false "
                f"(has {result.positive} and {result.negative})"
            )
        results.append(result)
    return SuiteResult(results, strict)
