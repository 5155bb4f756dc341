"""Read events from what operators have lying around, one at a time (streaming, bounded memory).

Accepted: files and directories (recursively, as CloudTrail lays logs out in S3), ``-`` for stdin,
single JSON events, JSON arrays, JSON-lines, CloudTrail log files (``{"Records": [...]}``, also
gzipped), GuardDuty/Security Hub ``get-findings`` exports (``{"Findings": [...]}``).
Each item says where it came from (``file``, ``file:LINE`` or ``file#Records[i]``); a broken item is
reported with that location and reading goes on.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

EVENT_SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz", ".gz")
LINE_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
#: Keys of documents that hold many events.
CONTAINER_KEYS = ("Records", "Findings", "findings", "events", "Events")
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class InputItem:
    source: str
    event: dict[str, Any] | None = None
    error: str | None = None


def _is_event_file(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(suffix) for suffix in EVENT_SUFFIXES)


def iter_files(path: Path) -> Iterator[Path]:
    """A file, or every event file under a directory in a stable order (symlinked dirs not followed)."""
    if not path.is_dir():
        yield path
        return
    for root, dirs, files in os.walk(path, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            candidate = Path(root, name)
            if _is_event_file(candidate):
                yield candidate


def _open_text(path: Path) -> IO[str]:
    raw = path.open("rb")
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if head == GZIP_MAGIC:
        return io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8")
    return io.TextIOWrapper(raw, encoding="utf-8")


def _expand(document: Any, source: str) -> Iterator[InputItem]:
    if isinstance(document, list):
        for index, item in enumerate(document):
            yield from _one(item, f"{source}[{index}]")
        return
    if isinstance(document, dict):
        for key in CONTAINER_KEYS:
            items = document.get(key)
            # An EventBridge Security Hub event also has detail.findings, but never top-level
            # "findings" next to "detail-type"; only treat bare containers as containers.
            if isinstance(items, list) and "detail-type" not in document and "detail" not in document:
                for index, item in enumerate(items):
                    yield from _one(item, f"{source}#{key}[{index}]")
                return
    yield from _one(document, source)


def _one(item: Any, source: str) -> Iterator[InputItem]:
    if isinstance(item, dict):
        yield InputItem(source, event=item)
    else:
        yield InputItem(source, error=f"{source}: expected a JSON object, got {type(item).__name__}")


def _read_lines(stream: Iterable[str], label: str) -> Iterator[InputItem]:
    for number, line in enumerate(stream, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            yield InputItem(
                f"{label}:{number}", error=f"{label}:{number}: invalid JSON: {exc.msg} (column {exc.colno})"
            )
            continue
        yield from _expand(document, f"{label}:{number}")


def _read_stream(stream: IO[str], label: str, force_lines: bool) -> Iterator[InputItem]:
    if force_lines:
        yield from _read_lines(stream, label)
        return
    text = stream.read()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            yield from _read_lines(io.StringIO(text), label)
            return
        yield InputItem(label, error=f"{label}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})")
        return
    yield from _expand(document, label)


def read_events(paths: Iterable[str], stdin: IO[str] | None = None) -> Iterator[InputItem]:
    """Every event in ``paths`` in order; missing or unreadable inputs become error items."""
    for raw in paths:
        if raw == "-":
            yield from _read_stream(stdin or sys.stdin, "<stdin>", force_lines=False)
            continue
        path = Path(raw)
        if not path.exists():
            yield InputItem(raw, error=f"{raw}: no such file or directory")
            continue
        for file in iter_files(path):
            label = str(file)
            try:
                with _open_text(file) as stream:
                    force_lines = file.name.lower().endswith(LINE_SUFFIXES)
                    yield from _read_stream(stream, label, force_lines)
            except (OSError, UnicodeDecodeError, EOFError) as exc:
                yield InputItem(label, error=f"{label}: cannot read: {exc}")
