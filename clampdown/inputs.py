"""Read events from what operators have lying around, one at a time (streaming, bounded memory).

Accepted: files and directories (recursively, as CloudTrail lays logs out in S3), ``-`` for stdin
(gzipped or not: gzip is recognised by its magic number, on any input),
``s3://bucket/prefix`` (every object under it, streamed), single JSON events, JSON arrays,
JSON-lines, CloudTrail log files (``{"Records": [...]}``, also gzipped), GuardDuty/Security Hub
``get-findings`` exports (``{"Findings": [...]}``).
Each item says where it came from (``file``, ``file:LINE`` or ``file#Records[i]``); a broken item is
reported with that location and reading goes on.

Reading is in two steps so that callers can work per file (progress, skipping by date):
:func:`iter_sources` lists the files/objects, :func:`read_source` reads the events of one.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import json
import os
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

EVENT_SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz", ".gz")
LINE_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
#: Keys of documents that hold many events.
CONTAINER_KEYS = ("Records", "Findings", "findings", "events", "Events")
GZIP_MAGIC = b"\x1f\x8b"
S3_SCHEME = "s3://"

#: ``skip(parts)`` is True for a directory, S3 prefix or file (its path components) not worth reading.
SkipPath = Callable[[Sequence[str]], bool]


@dataclass(frozen=True)
class InputItem:
    source: str
    event: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Source:
    """One file, S3 object or stream of events; ``open`` gives its text (gunzipped when needed)."""

    label: str
    open: Callable[[], contextlib.AbstractContextManager[IO[str]]] | None = None
    error: str | None = None

    @property
    def force_lines(self) -> bool:
        return self.label.lower().endswith(LINE_SUFFIXES)


def _is_event_file(path: Path | str) -> bool:
    name = (path.name if isinstance(path, Path) else path).lower()
    return any(name.endswith(suffix) for suffix in EVENT_SUFFIXES)


def iter_files(path: Path, skip: SkipPath | None = None) -> Iterator[Path]:
    """A file, or every event file under a directory in a stable order.

    Symlinked directories are not followed (no loops), and a symlinked file that points outside
    the directory the user named is not read.
    """
    if not path.is_dir():
        yield path
        return
    root = path.resolve()
    for parent, dirs, files in os.walk(path, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not (skip and skip(Path(parent, d).parts)))
        for name in sorted(files):
            candidate = Path(parent, name)
            if not _is_event_file(candidate) or (skip and skip(candidate.parts)):
                continue
            if candidate.is_symlink() and not candidate.resolve().is_relative_to(root):
                continue
            yield candidate


def _text(raw: Any) -> io.TextIOWrapper:
    """Text of a binary stream, gunzipped when it starts with the gzip magic number."""
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if head == GZIP_MAGIC:
        return io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8")
    return io.TextIOWrapper(raw, encoding="utf-8")


@contextlib.contextmanager
def _stdin_text(stream: IO[Any]) -> Iterator[IO[str]]:
    """stdin as text, gunzipped when it starts with the gzip magic number; read, never closed.

    A text stream without a binary ``buffer`` (``io.StringIO``) is used as it is. Otherwise its bytes
    are read, so that ``cat trail.json.gz | clampdown simulate -`` works like a ``.json.gz`` file; the
    wrappers are detached afterwards, which leaves stdin itself open.
    """
    raw = getattr(stream, "buffer", None)
    if raw is None:
        yield stream
        return
    peekable = raw if hasattr(raw, "peek") else io.BufferedReader(raw)
    text = _text(peekable)
    try:
        yield text
    finally:
        if text.buffer is peekable:
            text.detach()
        else:
            text.close()  # the GzipFile; it does not close the stream it was given
        if peekable is not raw:
            peekable.detach()


def _open_text(path: Path) -> IO[str]:
    return _text(path.open("rb"))


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


def _loads(text: str) -> Any:
    """``json.loads``, failing only with ``ValueError`` (also for nesting deeper than the stack allows);
    lone surrogates (``"\\ud800"``) become U+FFFD, as in the Lambda handler (no output could print them)."""
    from chalicelib.findings.surrogates import may_hold_surrogates, replace_surrogates

    try:
        document = json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    return replace_surrogates(document) if may_hold_surrogates(text) else document


def _read_lines(stream: Iterable[str], label: str) -> Iterator[InputItem]:
    for number, line in enumerate(stream, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            document = _loads(text)
        except json.JSONDecodeError as exc:
            yield InputItem(
                f"{label}:{number}", error=f"{label}:{number}: invalid JSON: {exc.msg} (column {exc.colno})"
            )
            continue
        except ValueError as exc:  # too deep, too many digits
            yield InputItem(f"{label}:{number}", error=f"{label}:{number}: invalid JSON: {exc}")
            continue
        yield from _expand(document, f"{label}:{number}")


def _read_stream(stream: IO[str], label: str, force_lines: bool) -> Iterator[InputItem]:
    if force_lines:
        yield from _read_lines(stream, label)
        return
    text = stream.read()
    try:
        document = _loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            yield from _read_lines(io.StringIO(text), label)
            return
        yield InputItem(label, error=f"{label}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})")
        return
    except ValueError as exc:  # too deep, too many digits
        yield InputItem(label, error=f"{label}: invalid JSON: {exc}")
        return
    yield from _expand(document, label)


# -- S3 --------------------------------------------------------------------------------------------
def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → (bucket, prefix); ValueError when there is no bucket."""
    bucket, _, prefix = url[len(S3_SCHEME) :].partition("/")
    if not bucket:
        raise ValueError(f"{url}: no bucket name (expected s3://BUCKET/PREFIX)")
    return bucket, prefix


class _S3Body(io.RawIOBase):
    """A botocore ``StreamingBody`` as a raw stream (so it can be buffered, peeked and gunzipped)."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        from botocore.exceptions import BotoCoreError

        try:
            data = self._body.read(len(buffer))
        except BotoCoreError as exc:
            raise OSError(str(exc)) from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


@functools.cache
def _s3_client(pid: int) -> Any:
    """One S3 client per process (``pid`` keys the cache, so a forked child never reuses its parent's)."""
    import boto3

    return boto3.client("s3")


def _open_s3(bucket: str, key: str, client: Any = None) -> IO[str]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        body = (client or _s3_client(os.getpid())).get_object(Bucket=bucket, Key=key)["Body"]
    except (BotoCoreError, ClientError) as exc:
        raise OSError(str(exc)) from exc
    return _text(io.BufferedReader(_S3Body(body), 1 << 16))


def iter_s3_sources(url: str, skip: SkipPath | None = None, client: Any = None) -> Iterator[Source]:
    """Every event object under an S3 prefix, in key order, listed level by level.

    Listing one "directory" at a time (``Delimiter='/'``) lets ``skip`` leave out whole prefixes,
    e.g. the CloudTrail date folders outside a time window, without listing what is inside. Without
    ``client``, each process makes its own, so sources can be read in worker processes.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        bucket, prefix = parse_s3_url(url)
        paginator = (client or _s3_client(os.getpid())).get_paginator("list_objects_v2")
        pending = [prefix]
        found = False
        while pending:
            current = pending.pop()
            prefixes: list[str] = []
            for page in paginator.paginate(Bucket=bucket, Prefix=current, Delimiter="/"):
                for item in page.get("Contents", ()):
                    key = item["Key"]
                    found = True
                    if _is_event_file(key.rsplit("/", 1)[-1]) and not (skip and skip(key.split("/"))):
                        opener = functools.partial(_open_s3, bucket, key, client)
                        yield Source(f"{S3_SCHEME}{bucket}/{key}", open=opener)
                for common in page.get("CommonPrefixes", ()):
                    found = True
                    sub = common["Prefix"]
                    if not (skip and skip(sub.rstrip("/").split("/"))):
                        prefixes.append(sub)
            pending.extend(reversed(prefixes))  # depth first, in key order
        if not found:
            yield Source(url, error=f"{url}: no objects under this prefix")
    except (BotoCoreError, ClientError, ValueError) as exc:
        yield Source(url, error=f"{url}: cannot list: {exc}")


# -- sources and events ------------------------------------------------------------------------------
def iter_sources(
    paths: Iterable[str], stdin: IO[str] | None = None, *, skip: SkipPath | None = None
) -> Iterator[Source]:
    """Every file, S3 object or stream named by ``paths``, in order; missing ones become error sources."""
    for raw in paths:
        if raw == "-":
            yield Source("<stdin>", open=functools.partial(_stdin_text, stdin or sys.stdin))
            continue
        if raw.startswith(S3_SCHEME):
            yield from iter_s3_sources(raw, skip)
            continue
        path = Path(raw)
        if not path.exists():
            yield Source(raw, error=f"{raw}: no such file or directory")
            continue
        for file in iter_files(path, skip):
            yield Source(str(file), open=functools.partial(_open_text, file))


def read_source(source: Source) -> Iterator[InputItem]:
    """The events of one source; a source that cannot be read becomes one error item."""
    if source.error or source.open is None:
        yield InputItem(source.label, error=source.error or f"{source.label}: cannot read")
        return
    label = source.label
    force_lines = label != "<stdin>" and source.force_lines
    try:
        with source.open() as stream:
            yield from _read_stream(stream, label, force_lines)
    except (OSError, UnicodeDecodeError, EOFError, zlib.error) as exc:
        yield InputItem(label, error=f"{label}: cannot read: {exc}")


def read_events(
    paths: Iterable[str], stdin: IO[str] | None = None, *, skip: SkipPath | None = None
) -> Iterator[InputItem]:
    """Every event in ``paths`` in order; missing or unreadable inputs become error items."""
    for source in iter_sources(paths, stdin, skip=skip):
        yield from read_source(source)
