"""Replay history through the playbooks, offline: what would they have done?

Every event goes down the same offline path as ``clampdown simulate`` (:func:`chalicelib.planner.evaluate`),
so the plans are the same; only the output differs. Replay streams: it keeps counters, the first
errors and a bounded top-k of resources, never the events or the plans, so memory does not grow with
the length of the history.

Time windows: ``since`` is inclusive, ``until`` exclusive, both to the second, on the event's own
time (EventBridge ``time``, CloudTrail ``eventTime``, a finding's ``UpdatedAt``). Whole CloudTrail
folders and log files (``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<..._YYYYMMDDTHHmmZ_...>``)
are skipped by their date where that is safe: CloudTrail names them by *delivery* time, and a file
holds records written at any point before its delivery, so one delivered before ``since`` can be
skipped exactly; on the ``until`` side, files delivered more than :data:`UNTIL_SLACK` after it are
assumed to hold nothing earlier.
"""

from __future__ import annotations

import heapq
import itertools
import multiprocessing
import os
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.findings import InvalidEvent, Resource, canonical_event, normalize
from chalicelib.findings.fields import iso_time
from chalicelib.planner import Evaluation, evaluate
from chalicelib.playbooks.library import Library
from chalicelib.playbooks.model import Playbook
from clampdown.inputs import Source, iter_sources, read_source

FORMAT = 1
#: Files delivered this long after ``until`` are not read (CloudTrail delivers within minutes).
UNTIL_SLACK = timedelta(hours=24)
#: Folders of CloudTrail integrity digests: they hold no events.
NOT_EVENTS = frozenset({"CloudTrail-Digest"})
_LOG_FOLDERS = frozenset({"CloudTrail", "CloudTrail-Insight"})
_LOG_FILE = re.compile(r"^\d{12}_CloudTrail(?:-Insight)?_[a-z0-9-]+_(\d{8}T\d{4}Z)_[A-Za-z0-9]+\.json(?:\.gz)?$")
_RELATIVE = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_TIME_KEY = 19  # "YYYY-MM-DDTHH:MM:SS"


def parse_time_bound(text: str, now: datetime) -> datetime:
    """``2026-11-01``, ``2026-11-01T12:00:00Z`` (any ISO-8601 offset; none means UTC) or ``7d``/``12h``/``30m`` ago."""
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use ISO-8601 (2026-11-01, 2026-11-01T12:00:00Z) or 7d / 12h / 30m ago"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _key(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def event_time_key(event: Mapping[str, Any]) -> str | None:
    """The event's time as ``YYYY-MM-DDTHH:MM:SS`` (UTC), which sorts as text; None when it has none."""
    value = event.get("time")
    if isinstance(value, str) and len(value) >= 20 and value[10] == "T" and value.endswith("Z"):
        return value[:_TIME_KEY]  # the common case, without parsing
    stamp = iso_time(value)
    return stamp[:_TIME_KEY] if stamp else None


def _date_span(parts: Sequence[str]) -> tuple[datetime, datetime] | None:
    """When the CloudTrail files under (or at) this path were delivered, as [start, end)."""
    match = _LOG_FILE.match(parts[-1]) if parts else None
    if match:
        start = datetime.strptime(match.group(1), "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
        return start, start + timedelta(minutes=1)
    folder = max((i for i, part in enumerate(parts) if part in _LOG_FOLDERS), default=None)
    if folder is None:
        return None
    numbers: list[int] = []
    for part, width in zip(parts[folder + 2 : folder + 5], (4, 2, 2), strict=False):
        if len(part) != width or not part.isdigit():
            break
        numbers.append(int(part))
    try:
        if len(numbers) == 3:
            start = datetime(numbers[0], numbers[1], numbers[2], tzinfo=UTC)
            return start, start + timedelta(days=1)
        if len(numbers) == 2:
            year, month = numbers
            start = datetime(year, month, 1, tzinfo=UTC)
            return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        if len(numbers) == 1:
            return datetime(numbers[0], 1, 1, tzinfo=UTC), datetime(numbers[0] + 1, 1, 1, tzinfo=UTC)
    except ValueError:  # 2026/13/40 is not a date folder
        return None
    return None


@dataclass(frozen=True)
class TimeWindow:
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.since and self.until and self.since >= self.until:
            raise ValueError(f"--since ({self.since:%Y-%m-%dT%H:%M:%SZ}) must be before --until")

    @property
    def since_key(self) -> str | None:
        return _key(self.since) if self.since else None

    @property
    def until_key(self) -> str | None:
        return _key(self.until) if self.until else None

    def skip_path(self, parts: Sequence[str]) -> bool:
        """True for a folder or file that holds no events, or only events outside the window."""
        if any(part in NOT_EVENTS for part in parts):
            return True
        if self.since is None and self.until is None:
            return False
        span = _date_span(parts)
        if span is None:
            return False
        start, end = span
        return bool((self.since and end <= self.since) or (self.until and start > self.until + UNTIL_SLACK))

    def to_dict(self) -> dict[str, str | None]:
        return {
            "since": f"{self.since_key}Z" if self.since_key else None,
            "until": f"{self.until_key}Z" if self.until_key else None,
        }


class TopK:
    """The most frequent keys of a stream in bounded memory (Space-Saving, Metwally et al. 2005).

    Exact while there are at most ``capacity`` distinct keys; beyond that, a key's count may be
    over-estimated by at most its ``error``, and any key with more than N/capacity occurrences is kept.
    """

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self.counts: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.labels: dict[str, Any] = {}
        self._heap: list[tuple[int, str]] = []  # (count, key), with stale entries skipped lazily
        self.evicted = 0

    def add(self, key: str, label: Any = None, n: int = 1) -> None:
        counts = self.counts
        if key in counts:
            counts[key] += n
        elif len(counts) < self.capacity:
            counts[key] = n
            self.errors[key] = 0
            self.labels[key] = label
        else:
            while True:
                count, smallest = heapq.heappop(self._heap)
                if counts.get(smallest) == count:
                    break
            del counts[smallest], self.errors[smallest], self.labels[smallest]
            self.evicted += 1
            counts[key] = count + n
            self.errors[key] = count
            self.labels[key] = label
        heapq.heappush(self._heap, (counts[key], key))
        if len(self._heap) > 4 * self.capacity:
            self._heap = [(c, k) for k, c in counts.items()]
            heapq.heapify(self._heap)

    @property
    def exact(self) -> bool:
        return self.evicted == 0

    def merge(self, other: TopK) -> None:
        for key, count in other.counts.items():
            self.add(key, other.labels[key], count)
        self.evicted += other.evicted

    def top(self, n: int) -> list[tuple[str, int, int]]:
        """(key, count, error), most frequent first, ties by key."""
        ranked = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))[:n]
        return [(key, count, self.errors[key]) for key, count in ranked]


@dataclass
class ReplaySummary:
    """Counters only: the size of this object does not depend on the number of events."""

    window: TimeWindow = field(default_factory=TimeWindow)
    max_errors: int = 20
    top_n: int = 10
    files: int = 0
    events: int = 0
    outside_window: int = 0
    without_time: int = 0
    evaluated: int = 0
    findings: int = 0
    matched_events: int = 0
    plans: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    actions: dict[str, Counter[str]] = field(default_factory=dict)
    resources: TopK = field(default_factory=TopK)
    errors: list[tuple[str, str]] = field(default_factory=list)
    error_count: int = 0
    first_time: str | None = None
    last_time: str | None = None
    elapsed: float = 0.0
    playbook_names: tuple[str, ...] = ()

    def error(self, location: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < self.max_errors:
            self.errors.append((location, message))

    def count(self, evaluation: Evaluation, moment: str | None) -> None:
        self.evaluated += 1
        self.findings += len(evaluation.findings)
        if moment is not None:
            if self.first_time is None or moment < self.first_time:
                self.first_time = moment
            if self.last_time is None or moment > self.last_time:
                self.last_time = moment
        for rejection in evaluation.rejected:
            self.rejected[rejection.playbook] += 1
        if not evaluation.plans:
            return
        self.matched_events += 1
        for plan in evaluation.plans:
            self.plans[plan.playbook.name] += 1
            for step in plan.steps:
                stats = self.actions.get(step.action)
                if stats is None:
                    stats = self.actions[step.action] = Counter()
                if step.skipped:
                    stats["skipped"] += 1
                    continue
                stats[step.mode] += 1
                if step.target is not None:
                    self.resources.add(step.target.key, step.target)

    def merge(self, part: ReplaySummary) -> None:
        """Add the counts of a summary of other sources (read by a worker process)."""
        for name in ("files", "events", "outside_window", "without_time", "evaluated", "findings", "matched_events"):
            setattr(self, name, getattr(self, name) + getattr(part, name))
        self.plans.update(part.plans)
        self.rejected.update(part.rejected)
        for action, stats in part.actions.items():
            self.actions.setdefault(action, Counter()).update(stats)
        self.resources.merge(part.resources)
        for location, message in part.errors:
            self.error(location, message)
        self.error_count += part.error_count - len(part.errors)
        for moment in (part.first_time, part.last_time):
            if moment is not None:
                self.first_time = min(self.first_time or moment, moment)
                self.last_time = max(self.last_time or moment, moment)

    @property
    def rate(self) -> float:
        return self.events / self.elapsed if self.elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON document of ``clampdown replay --format json``."""
        names = sorted(set(self.playbook_names) | set(self.plans) | set(self.rejected))
        return {
            "format": FORMAT,
            "window": self.window.to_dict(),
            "counts": {
                "files": self.files,
                "events": self.events,
                "outside_window": self.outside_window,
                "without_time": self.without_time,
                "evaluated": self.evaluated,
                "findings": self.findings,
                "matched_events": self.matched_events,
                "plans": sum(self.plans.values()),
                "errors": self.error_count,
            },
            "time_range": {
                "first": f"{self.first_time}Z" if self.first_time else None,
                "last": f"{self.last_time}Z" if self.last_time else None,
            },
            "playbooks": [
                {"name": name, "matches": self.plans[name], "rejected": self.rejected[name]}
                for name in sorted(names, key=lambda n: (-self.plans[n], n))
            ],
            "actions": [
                {
                    "action": name,
                    "would_run": sum(v for k, v in stats.items() if k != "skipped"),
                    "by_mode": {mode: stats[mode] for mode in ("auto", "approval", "dry-run") if stats[mode]},
                    "skipped": stats["skipped"],
                }
                for name, stats in sorted(self.actions.items())
            ],
            "top_resources": {
                "exact": self.resources.exact,
                "items": [
                    {"resource": key, **_resource(self.resources.labels[key]), "actions": count, "error": error}
                    for key, count, error in self.resources.top(self.top_n)
                ],
            },
            "errors": {
                "total": self.error_count,
                "listed": [{"location": where, "message": message} for where, message in self.errors],
                "not_listed": self.error_count - len(self.errors),
            },
            "elapsed_seconds": round(self.elapsed, 3),
            "events_per_second": round(self.rate, 1),
        }


def _resource(target: Resource | None) -> dict[str, Any]:
    """Who the resource is (not its tags and details: a summary, not an inventory)."""
    if target is None:
        return {}
    return {k: v for k, v in target.to_dict().items() if k in ("kind", "id", "arn", "name", "account", "region")}


Progress = Callable[[ReplaySummary], None]
#: Sources handed to worker processes ahead of the one being merged (bounds memory, keeps order).
WINDOW_PER_JOB = 4


def replay_source(
    source: Source, library: Library, summary: ReplaySummary, now: datetime, progress: Any = None
) -> None:
    """Count what every event of one source would do into ``summary`` (the per-event path)."""
    since, until = summary.window.since_key, summary.window.until_key
    filtered = since is not None or until is not None
    summary.files += source.error is None
    for item in read_source(source):
        if item.event is None:
            summary.error(item.source, item.error or "cannot read")
            continue
        summary.events += 1
        if progress is not None and summary.events % 5000 == 0:
            progress(summary)
        try:
            event = canonical_event(item.event)
            moment = event_time_key(event)
            if filtered:
                if moment is None:
                    normalize(event)  # an event that cannot be read is an error in a window too
                    summary.without_time += 1
                    continue
                if (since is not None and moment < since) or (until is not None and moment >= until):
                    summary.outside_window += 1
                    continue
            summary.count(evaluate(event, library, now=now), moment)
        except InvalidEvent as exc:
            summary.error(item.source, f"invalid event: {exc}")
        except Exception as exc:  # noqa: BLE001 - one odd record must not end a replay of a year of logs
            summary.error(item.source, f"cannot evaluate: {type(exc).__name__}: {exc}")


_worker: dict[str, Any] = {}


def _start_worker(playbooks: tuple[Playbook, ...], template: ReplaySummary, now: datetime) -> None:
    # The playbooks are plain data; the pattern index is compiled here rather than unpickled, so a
    # worker never depends on the parent's in-memory form of it.
    _worker.update(library=Library(playbooks), template=template, now=now)


def _replay_in_worker(source: Source) -> ReplaySummary:
    template: ReplaySummary = _worker["template"]
    part = ReplaySummary(
        template.window, template.max_errors, template.top_n, resources=TopK(template.resources.capacity)
    )
    replay_source(source, _worker["library"], part, _worker["now"])
    return part


def default_jobs() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def replay(
    paths: Iterable[str],
    library: Library,
    *,
    window: TimeWindow | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    jobs: int = 1,
    max_errors: int = 20,
    top: int = 10,
    capacity: int = 1000,
) -> ReplaySummary:
    """Run every event under ``paths`` through the offline path and count what would have happened.

    With ``jobs`` > 1 and more than one file, files are read by that many worker processes (the
    per-event path is CPU-bound); results are merged in input order, so the output does not depend
    on ``jobs``. ``progress`` is called with the running summary as it grows.
    """
    window = window or TimeWindow()
    now = now or datetime.now(UTC)
    summary = ReplaySummary(
        window, max_errors, top, resources=TopK(capacity), playbook_names=tuple(p.name for p in library.enabled)
    )
    started = time.perf_counter()

    def report(current: ReplaySummary) -> None:
        summary.elapsed = time.perf_counter() - started
        if progress is not None:
            progress(summary)

    sources = iter_sources(paths, skip=window.skip_path)
    head = list(itertools.islice(sources, 2))
    sources = itertools.chain(head, sources)
    if jobs <= 1 or len(head) < 2:
        for source in sources:
            replay_source(source, library, summary, now, report)
            report(summary)
    else:
        _replay_parallel(sources, library, summary, now, jobs, report)
    summary.elapsed = time.perf_counter() - started
    return summary


def _replay_parallel(
    sources: Iterator[Source], library: Library, summary: ReplaySummary, now: datetime, jobs: int, report: Progress
) -> None:
    context = multiprocessing.get_context("spawn")  # no fork: the parent may hold boto3 clients and threads
    with ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_start_worker, initargs=(library.playbooks, summary, now)
    ) as pool:
        pending: deque[Future[ReplaySummary] | Source] = deque()
        for source in sources:
            # stdin and sources that failed to list are handled here, in order.
            pending.append(
                source if source.error or source.label == "<stdin>" else pool.submit(_replay_in_worker, source)
            )
            while len(pending) > jobs * WINDOW_PER_JOB or (pending and not isinstance(pending[0], Future)):
                _merge_next(pending, library, summary, now, report)
        while pending:
            _merge_next(pending, library, summary, now, report)


def _merge_next(
    pending: deque[Future[ReplaySummary] | Source],
    library: Library,
    summary: ReplaySummary,
    now: datetime,
    report: Progress,
) -> None:
    item = pending.popleft()
    if isinstance(item, Future):
        summary.merge(item.result())
    else:
        replay_source(item, library, summary, now)
    report(summary)
