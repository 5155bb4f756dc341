"""``clampdown replay`` over a large CloudTrail/GuardDuty history, next to its peers, in one run.

Run: ``.venv/bin/python benchmarks/bench_replay.py`` (a few minutes; ``--events 100000`` for a quick
look). It generates ``--events`` events (default 1,000,000) from the real corpus events — CloudTrail
records as gzipped log files laid out as CloudTrail writes them to S3
(``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<time>_<id>.json.gz``)
and GuardDuty findings as ``get-findings`` exports — with fresh ids and times and resources drawn
from a skewed (Zipf) population, in a temporary directory. Then it runs, each in its own process:

* ``floor``: ``json.load`` of every gzipped file, nothing else (the cost of reading the history);
* ``replay``: ``clampdown replay DIR --format json`` on the whole history, in one process
  (``--jobs 1``) and with one worker per CPU;
* on the first ``--naive-events`` events (default 100,000; a simulate of a million events needs
  many GB): ``replay`` again and the naive peer, ``clampdown simulate --format json`` (the
  simulate path, holding every result in memory until it prints them).

It prints wall time, events/s and peak RSS (``getrusage`` of each child) side by side, with the
ratios, and exits non-zero if replay and simulate disagree on how many plans each playbook made.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chalicelib.findings import InvalidEvent, canonical_event, normalize  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "corpus"
ACCOUNT = "123456789012"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
RECORDS_PER_FILE = 500
FINDINGS_PER_EXPORT = 500
GUARDDUTY_SHARE = 0.05
START = datetime(2026, 10, 1, tzinfo=UTC)
DAYS = 30
#: Placeholders replaced per event in the template's JSON text (cheaper than copying dicts).
ID, TIME, RID, RES = "@@ID@@", "@@TIME@@", "@@RID@@", "@@RES@@"


def _valid(template: str) -> bool:
    """Only templates the normalizer accepts: the benchmark measures events, not error reporting."""
    try:
        normalize(json.loads(_fill(template, 1, START, "x")))
    except InvalidEvent:
        return False
    return True


def _set(document: dict[str, Any], path: tuple[str | int, ...], value: Any) -> bool:
    node: Any = document
    for part in path[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    if isinstance(node, dict) and path[-1] in node:
        node[path[-1]] = value
        return True
    return False


def cloudtrail_templates() -> list[str]:
    """Every real CloudTrail record in the corpus (bare, or the detail of an EventBridge event)."""
    templates = []
    for path in sorted((CORPUS / "cloudtrail").glob("*.json")):
        document = json.loads(path.read_text())
        record = document.get("detail") if "detail" in document else document
        if not isinstance(record, dict) or "eventTime" not in record:
            continue
        record = copy.deepcopy(record)
        record["eventID"], record["eventTime"] = ID, TIME
        _set(record, ("requestID",), RID)
        _set(record, ("requestParameters", "functionName"), RES)
        _set(record, ("requestParameters", "bucketName"), RES)
        templates.append(json.dumps(record, separators=(",", ":")))
    return templates


GUARDDUTY_RESOURCES = (
    ("resource", "instanceDetails", "instanceId"),
    ("resource", "accessKeyDetails", "accessKeyId"),
    ("resource", "s3BucketDetails", 0, "name"),
)


def guardduty_templates() -> list[str]:
    """Every real GuardDuty finding in the corpus, as a get-findings export holds it."""
    templates = []
    for path in sorted((CORPUS / "guardduty").glob("*.json")):
        document = json.loads(path.read_text())
        try:
            finding = copy.deepcopy(canonical_event(document)["detail"])
        except InvalidEvent:  # a partial sample the normalizer refuses is not a template
            finding = {}
        if "updatedAt" not in finding or "id" not in finding:
            continue
        finding["id"], finding["updatedAt"] = ID, TIME
        for resource in GUARDDUTY_RESOURCES:
            _set(finding, resource, RES)
        templates.append(json.dumps(finding, separators=(",", ":")))
    return templates


class Population:
    """Resource names with a Zipf-like skew: a few are hit often, most rarely."""

    def __init__(self, rng: random.Random, size: int = 5000) -> None:
        self.rng = rng
        self.weights = [1 / (rank + 1) for rank in range(size)]
        self.pool: list[int] = []

    def draw(self) -> int:
        if not self.pool:
            self.pool = self.rng.choices(range(len(self.weights)), self.weights, k=10000)
        return self.pool.pop()


def _fill(template: str, serial: int, moment: datetime, resource: str) -> str:
    return (
        template.replace(ID, f"{serial:08x}-0000-4000-8000-{serial:012x}")
        .replace(TIME, moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
        .replace(RID, f"req-{serial:x}")
        .replace(RES, resource)
    )


def _times(rng: random.Random, count: int) -> Iterator[datetime]:
    step = DAYS * 86400 / max(count, 1)
    for index in range(count):
        yield START + timedelta(seconds=index * step + rng.random() * step)


def generate(root: Path, events: int, seed: int = 7) -> tuple[int, list[tuple[Path, int]]]:
    """Write the history; returns (files, [(file, events in it)] in time order)."""
    rng = random.Random(seed)
    trail = [t for t in cloudtrail_templates() if _valid(t)]
    findings = [t for t in guardduty_templates() if _valid(t)]
    population = Population(rng)
    written: list[tuple[Path, int]] = []
    batch: list[str] = []
    gd_batch: list[str] = []

    def flush_trail(moment: datetime) -> None:
        region = REGIONS[len(written) % len(REGIONS)]
        delivered = moment + timedelta(minutes=3)
        folder = root / "AWSLogs" / ACCOUNT / "CloudTrail" / region / delivered.strftime("%Y/%m/%d")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{ACCOUNT}_CloudTrail_{region}_{delivered:%Y%m%dT%H%MZ}_{rng.getrandbits(64):016X}.json.gz"
        path = folder / name
        path.write_bytes(gzip.compress(('{"Records":[' + ",".join(batch) + "]}").encode(), compresslevel=1))
        written.append((path, len(batch)))
        batch.clear()

    def flush_guardduty() -> None:
        folder = root / "guardduty-exports"
        folder.mkdir(exist_ok=True)
        path = folder / f"get-findings-{len(written):06d}.json.gz"
        path.write_bytes(gzip.compress(('{"Findings":[' + ",".join(gd_batch) + "]}").encode(), compresslevel=1))
        written.append((path, len(gd_batch)))
        gd_batch.clear()

    moment = START
    for serial, moment in enumerate(_times(rng, events)):
        name = population.draw()
        if rng.random() < GUARDDUTY_SHARE:
            gd_batch.append(_fill(rng.choice(findings), serial, moment, f"i-{name:017x}"))
            if len(gd_batch) == FINDINGS_PER_EXPORT:
                flush_guardduty()
        else:
            batch.append(_fill(rng.choice(trail), serial, moment, f"workload-{name}"))
            if len(batch) == RECORDS_PER_FILE:
                flush_trail(moment)
    if batch:
        flush_trail(moment)
    if gd_batch:
        flush_guardduty()
    return len(written), written


FLOOR = """
import gzip, json, os, sys
count = 0
for root, dirs, files in os.walk(sys.argv[1]):
    dirs.sort()
    for name in sorted(files):
        with gzip.open(os.path.join(root, name), "rb") as handle:
            document = json.load(handle)
        count += len(document.get("Records") or document.get("Findings") or ())
print(json.dumps({"events": count}))
"""
CLI = "import sys; from clampdown.cli import main; sys.argv[0] = 'clampdown'; main()"


def run_child(args: list[str]) -> dict[str, Any]:
    """Wall time, peak RSS (the child's own rusage) and stdout of one child process."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.PIPE, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr = process.stderr.read().decode() if process.stderr else ""
        out.seek(0)
        stdout = out.read()
    # ru_maxrss is in KiB on Linux.
    return {"wall": wall, "rss_mb": usage.ru_maxrss / 1024, "code": process.returncode, "out": stdout, "err": stderr}


def row(name: str, events: int, result: dict[str, Any]) -> str:
    rate = events / result["wall"] if result["wall"] else 0
    return f"  {name:<28} {events:>10,} {result['wall']:>9.1f} {rate:>11,.0f} {result['rss_mb']:>11.0f}"


HEADER = f"  {'':<28} {'events':>10} {'wall s':>9} {'events/s':>11} {'peak RSS MB':>11}"


def plans_per_playbook_from_simulate(output: bytes) -> Counter[str]:
    counts: Counter[str] = Counter()
    for result in json.loads(output)["results"]:
        for match in result["matches"]:
            counts[match["playbook"]] += 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--naive-events", type=int, default=100_000, help="events given to the naive peer (0: skip)")
    parser.add_argument("--keep", type=Path, help="write the history here and keep it")
    args = parser.parse_args()
    playbooks = str(ROOT / "playbooks")
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="clampdown-bench-replay-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        count, files = generate(workdir, args.events)
        size = sum(path.stat().st_size for path, _ in files) / 1e6
        print(
            f"history: {args.events:,} events in {count:,} gzipped files ({size:,.0f} MB) "
            f"generated in {time.perf_counter() - started:.0f} s, under {workdir}"
        )
        python = sys.executable
        floor = run_child([python, "-c", FLOOR, str(workdir)])
        replay = [python, "-c", CLI, "replay", "--playbooks", playbooks, "--format", "json"]
        single = run_child([*replay, "--jobs", "1", str(workdir)])
        jobs = os.cpu_count() or 1
        parallel = run_child([*replay, "--jobs", str(jobs), str(workdir)])
        if floor["code"] or {single["code"], parallel["code"]} - {0}:
            print(floor["err"], single["err"], parallel["err"], file=sys.stderr)
            return 1
        summary = json.loads(single["out"])
        if json.loads(parallel["out"])["playbooks"] != summary["playbooks"]:
            print("MISMATCH between --jobs 1 and --jobs N", file=sys.stderr)
            return 1
        read = summary["counts"]["events"]
        print(f"\nwhole history ({read:,} events read by replay, {summary['counts']['errors']} errors)")
        print(HEADER)
        print(row("floor: json.load per file", json.loads(floor["out"])["events"], floor))
        print(row("clampdown replay --jobs 1", read, single))
        print(row(f"clampdown replay --jobs {jobs}", read, parallel) + "  (RSS: largest process)")
        print(f"  replay wall / floor wall: {single['wall'] / floor['wall']:.1f}x with one process")
        plans = {p["name"]: p["matches"] for p in summary["playbooks"]}
        print(f"  plans per playbook: {plans}")
        if args.naive_events <= 0:
            return 0
        subset, total = [], 0
        for path, n in files:
            if total >= args.naive_events:
                break
            subset.append(str(path))
            total += n
        small = run_child([*replay, "--jobs", "1", *subset])
        naive = run_child([python, "-c", CLI, "simulate", *subset, "--playbooks", playbooks, "--format", "json"])
        print(f"\nfirst {total:,} events ({len(subset)} files)")
        print(HEADER)
        print(row("clampdown replay --jobs 1", total, small))
        print(row("naive: simulate --format json", total, naive))
        extra_gb = (naive["rss_mb"] - small["rss_mb"]) / total * args.events / 1024
        print(
            f"  replay is {naive['wall'] / small['wall']:.1f}x faster, "
            f"simulate needs {naive['rss_mb'] / small['rss_mb']:.1f}x the memory "
            f"(~{extra_gb:,.1f} GB more at {args.events:,} events, extrapolated)"
        )
        replay_plans = Counter({p["name"]: p["matches"] for p in json.loads(small["out"])["playbooks"] if p["matches"]})
        simulate_plans = plans_per_playbook_from_simulate(naive["out"])
        if replay_plans != simulate_plans:
            print(f"MISMATCH: replay {dict(replay_plans)} != simulate {dict(simulate_plans)}", file=sys.stderr)
            return 1
        print(f"  replay and simulate agree on plans per playbook: {dict(replay_plans)}")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
