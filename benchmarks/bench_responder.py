"""Responder benchmarks, side by side with their peers in one run.

1. Cold start: importing ``app`` (what Lambda does before the first event) vs a bare ``import boto3``,
   best of N fresh interpreters; and the first event's set-up (responder + clients) for context.
2. Per-event cost of the offline path (normalize + match + plan every step's API calls, no AWS)
   vs ``json.loads`` of the same event's text, over the real corpus events.
3. (``--burst N``) a burst of findings through the Lambda SQS handler on moto: ``benchmarks/bench_load.py``
   (a 10,000 burst and a 100,000 soak, duplicates and poison mixed in) is where the load figures live.

Usage: .venv/bin/python benchmarks/bench_responder.py [--repeat 7] [--burst 10000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def best_import_ms(statement: str, repeat: int) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print((time.perf_counter() - t) * 1000)"
    times = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return min(times)


def cold_start(repeat: int) -> None:
    boto3_ms = best_import_ms("import boto3", repeat)
    app_ms = best_import_ms("import app", repeat)
    setup = (
        "import os; os.environ.update(CLAMPDOWN_INCIDENTS_TABLE='t', AWS_DEFAULT_REGION='us-east-1', "
        "CLAMPDOWN_HOME_ACCOUNT='123456789012', CLAMPDOWN_BUNDLE='benchmarks/.bundle.json'); "
        "import app; from chalicelib import wiring, handlers; wiring.responder(handlers.PowertoolsTelemetry())"
    )
    from clampdown.sandbox import write_bundle

    bundle = write_bundle(ROOT / "playbooks", ROOT / "benchmarks")
    bundle.rename(ROOT / "benchmarks" / ".bundle.json")
    try:
        first_event_ms = best_import_ms(setup, repeat)
    finally:
        (ROOT / "benchmarks" / ".bundle.json").unlink(missing_ok=True)
    print("\n1. Cold start (best of", repeat, "fresh interpreters)")
    print(f"   {'import boto3 (peer)':<44}{boto3_ms:8.1f} ms")
    print(f"   {'import app':<44}{app_ms:8.1f} ms   ratio {app_ms / boto3_ms:.2f}x (target <= 1.3x)")
    first = "import app + build the responder"
    print(f"   {first:<44}{first_event_ms:8.1f} ms   (boto3, Powertools, clients: first event)")


def corpus_texts() -> list[str]:
    texts = []
    for folder in ("guardduty", "cloudtrail", "securityhub", "securityhub-ocsf"):
        texts.extend(p.read_text() for p in sorted((ROOT / "tests/data/corpus" / folder).glob("*.json")))
    return texts


def per_event(repeat: int) -> None:
    from chalicelib.findings import InvalidEvent
    from chalicelib.planner import evaluate
    from clampdown.playbooks.loader import load_library

    library = load_library([ROOT / "playbooks"])
    texts = corpus_texts()
    events = [json.loads(t) for t in texts]

    def plan_all() -> int:
        planned = 0
        for event in events:
            with contextlib.suppress(InvalidEvent):
                planned += sum(len(p.steps) for p in evaluate(event, library).plans)
        return planned

    def parse_all() -> None:
        for text in texts:
            json.loads(text)

    def best(fn: Any) -> float:
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - started)
        return min(runs)

    steps = plan_all()
    plan_s, parse_s = best(plan_all), best(parse_all)
    n = len(events)
    print(f"\n2. Per-event cost over {n} real corpus events ({len(library.enabled)} playbooks, {steps} planned steps)")
    print(f"   {'json.loads of the event text (peer)':<44}{parse_s / n * 1e6:8.1f} µs/event")
    ours = "normalize + match + plan (no AWS)"
    print(f"   {ours:<44}{plan_s / n * 1e6:8.1f} µs/event   ratio {plan_s / parse_s:.1f}x")


def burst(total: int, distinct: int, poison_every: int) -> None:
    """The burst of ``benchmarks/bench_load.py`` (duplicates and losses counted on the responder's own session)."""
    import bench_load

    result = bench_load.run("3. Burst", total, distinct, poison_every)
    bench_load.report(result)
    if not result.ok:
        raise SystemExit("burst: duplicates, losses or unaccounted poison messages")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--burst", type=int, default=0, help="messages in a burst (bench_load.py runs the load)")
    parser.add_argument("--users", type=int, default=500, help="distinct findings in the burst")
    parser.add_argument("--poison-every", type=int, default=100)
    args = parser.parse_args()
    cold_start(args.repeat)
    per_event(args.repeat)
    if args.burst:
        burst(args.burst, args.users, args.poison_every)


if __name__ == "__main__":
    main()
