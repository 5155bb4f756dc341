"""Loading the shared corpus: recorded pattern cases and real events."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
PATTERN_FILES = (
    "localstack_aws_validated.jsonl",
    "localstack_aws_validated_invalid_patterns.jsonl",
    "moto_test_event_pattern.jsonl",
    "special_raw_text.jsonl",
)


@dataclass(frozen=True)
class Case:
    file: str
    name: str
    pattern: Any  # a dict, or raw JSON text for special_raw_text.jsonl
    event: Any  # None for invalid-pattern cases
    expected: bool | None  # None: AWS rejects the pattern
    error: str | None  # AWS's reason for rejecting it

    @property
    def id(self) -> str:
        return f"{self.file.removesuffix('.jsonl')}:{self.name}"


@cache
def cases(file: str) -> tuple[Case, ...]:
    out = []
    for line in (CORPUS / "patterns" / file).read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        event = json.loads(raw["event_text"]) if "event_text" in raw else raw.get("event")
        message = raw.get("error_message")
        out.append(
            Case(
                file=file,
                name=raw["case"],
                pattern=raw["pattern_text"] if "pattern_text" in raw else raw["pattern"],
                event=event,
                expected=raw["match"],
                error=message.split("Reason: ", 1)[1] if message else None,
            )
        )
    return tuple(out)


def all_cases() -> list[Case]:
    return [case for file in PATTERN_FILES for case in cases(file)]


def event(relative: str) -> dict[str, Any]:
    """A real event from the corpus, e.g. ``guardduty/gd_c7n_Backdoor-EC2-C-CActivity-B-DNS.json``."""
    return json.loads((CORPUS / relative).read_text(encoding="utf-8"))


def events(directory: str) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted((CORPUS / directory).glob("*.json"))}


def _valid_patterns() -> dict[str, Any]:
    return {case.id: case.pattern for case in all_cases() if case.expected is not None}


#: Every valid pattern of the corpus files, by case id.
VALID_CORPUS_PATTERNS = _valid_patterns()


@cache
def corpus_events() -> dict[str, dict[str, Any]]:
    """All real events of the corpus (GuardDuty, CloudTrail, Security Hub, OCSF), by file name."""
    out: dict[str, dict[str, Any]] = {}
    for directory in ("guardduty", "cloudtrail", "securityhub", "securityhub-ocsf"):
        out.update(events(directory))
    return out
