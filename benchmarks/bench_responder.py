"""Responder benchmarks, side by side with their peers in one run.

1. Cold start, best of N fresh interpreters: ``import app`` (what Lambda does before the first event) next
   to a bare ``import boto3`` (target: at most 1.3x); then the first event: ``import app`` and one event
   through the handler path (the next section's), and ``import app`` plus building the deployed responder
   (boto3 session, DynamoDB/SSM clients, Powertools idempotency: what the first SQS batch pays).
2. Per-event cost of the handler path, no AWS: ``handlers.parse_body`` of the SQS body then
   ``Responder.handle`` (intake, normalize, match, plan every step's API calls, open the incident, run
   the step policy and record every step) with an in-memory incident store and the kill switch on, so
   every containment step is planned and recorded but nothing is applied; next to ``json.loads`` of the
   same event text, over the real corpus events. The offline planner alone (what ``simulate`` runs) is
   shown for reference. A botocore hook proves that no AWS call was attempted.
3. Load (the 10,000-finding burst and the 100,000 soak through the SQS handler on moto, duplicates
   delivered concurrently and poison mixed in): ``benchmarks/bench_load.py``.

Nothing is written into the repository: the playbook bundle goes to a temporary directory.

Usage: .venv/bin/python benchmarks/bench_responder.py [--quick] [--repeat 7]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ACCOUNT, REGION = "123456789012", "us-east-1"
CORPUS_FOLDERS = ("guardduty", "cloudtrail", "securityhub", "securityhub-ocsf")


def offline_responder(library: Any) -> Any:
    """The responder of section 2: every playbook in dry-run (each step planned and recorded, nothing
    applied), an in-memory incident store, and no AWS clients at all (steps are planned offline)."""
    from chalicelib.executor import StepRunner
    from chalicelib.incidents import MemoryIncidentStore
    from chalicelib.intake import Intake
    from chalicelib.responder import Responder
    from chalicelib.settings import Settings

    settings = Settings(accounts=("*",))
    store = MemoryIncidentStore()
    runner = StepRunner(settings=settings, store=store, aws=None)
    intake = Intake(ACCOUNT, settings.accounts, (), runner.guardrails)
    dry_run = library.with_overrides({"modes": {p.name: "dry-run" for p in library.playbooks}})
    return Responder(library=dry_run, store=store, runner=runner, intake=intake)


def best_ms(setup: str, statement: str, repeat: int, env: dict[str, str]) -> float:
    """Best of ``repeat`` fresh interpreters: milliseconds ``statement`` takes after ``setup``."""
    code = f"{setup}\nimport time\nt = time.perf_counter()\n{statement}\nprint((time.perf_counter() - t) * 1000)"
    times = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=env
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return min(times)


def cold_start(repeat: int, bundle: Path, event_text: str) -> None:
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "CLAMPDOWN_INCIDENTS_TABLE": "clampdown-bench-incidents",
        "CLAMPDOWN_IDEMPOTENCY_TABLE": "clampdown-bench-idempotency",
        "CLAMPDOWN_HOME_ACCOUNT": ACCOUNT,
        "CLAMPDOWN_BUNDLE": str(bundle),
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    env.pop("CLAMPDOWN_TRACING", None)
    boto3_ms = best_ms("", "import boto3", repeat, env)
    app_ms = best_ms("", "import app", repeat, env)
    first_event = (
        "import app\n"
        "from chalicelib import handlers, wiring\n"
        "responder = offline_responder(wiring.load_bundled_library())\n"
        f"responder.handle(handlers.parse_body({event_text!r}))"
    )
    # The benchmark module itself imports only the standard library: chalicelib is imported in the timed part.
    setup = "import sys\nsys.path.insert(0, 'benchmarks')\nfrom bench_responder import offline_responder"
    first_event_ms = best_ms(setup, first_event, repeat, env)
    deployed = "import app\nfrom chalicelib import handlers, wiring\nwiring.responder(handlers.PowertoolsTelemetry())"
    deployed_ms = best_ms("", deployed, repeat, env)
    print(f"\n1. Cold start (best of {repeat} fresh interpreters)")
    print(f"   {'import boto3 (peer)':<58}{boto3_ms:8.1f} ms")
    print(f"   {'import app':<58}{app_ms:8.1f} ms   ratio {app_ms / boto3_ms:.2f}x (target <= 1.3x)")
    print(f"   {'import app + first event (handler path, no AWS)':<58}{first_event_ms:8.1f} ms")
    print(f"   {'import app + the deployed responder (clients, idempotency)':<58}{deployed_ms:8.1f} ms")


def corpus_texts() -> list[str]:
    """The real corpus events as the queue receives them: EventBridge events (raw CloudTrail records and
    findings wrapped as EventBridge delivers them), as JSON text."""
    from chalicelib.findings.envelope import canonical_event

    texts = []
    for folder in CORPUS_FOLDERS:
        for path in sorted((ROOT / "tests/data/corpus" / folder).glob("*.json")):
            texts.append(json.dumps(canonical_event(json.loads(path.read_text()))))
    return texts


def best_of(repeat: int, run: Callable[[], Any]) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        runs.append(time.perf_counter() - started)
    return min(runs)


def per_event(repeat: int, library: Any) -> None:
    from botocore import handlers as botocore_handlers

    from chalicelib.findings import InvalidEvent
    from chalicelib.handlers import parse_body
    from chalicelib.planner import evaluate

    texts = corpus_texts()
    outcome: dict[str, int] = {}
    attempted: list[str] = []

    def refuse_aws(model: Any, **_: Any) -> None:
        attempted.append(f"{model.service_model.service_name}:{model.name}")
        raise RuntimeError("the per-event benchmark must not call AWS")

    def handle_all() -> None:
        responder = offline_responder(library)  # a fresh store: every event opens its incident
        steps = refused = invalid = 0
        for text in texts:
            try:
                report = responder.handle(parse_body(text))
            except (InvalidEvent, ValueError):
                invalid += 1
                continue
            steps += sum(s.status == "dry-run" for s in report.steps)
            refused += report.refused is not None
        outcome.update(steps=steps, refused=refused, invalid=invalid)

    def plan_all() -> None:
        for text in texts:
            with contextlib.suppress(InvalidEvent):
                evaluate(json.loads(text), library)

    def parse_all() -> None:
        for text in texts:
            json.loads(text)

    hook = ("before-call", refuse_aws)
    botocore_handlers.BUILTIN_HANDLERS.append(hook)
    try:
        handle_all()  # warm: imports, compiled patterns
        handler_s = best_of(repeat, handle_all)
    finally:
        botocore_handlers.BUILTIN_HANDLERS.remove(hook)
    plan_s, parse_s = best_of(repeat, plan_all), best_of(repeat, parse_all)
    n = len(texts)
    print(
        f"\n2. Per-event cost over {n} real corpus events ({len(library.enabled)} playbooks; "
        f"{outcome['steps']} steps planned and recorded in dry-run, {outcome['refused']} events refused by intake, "
        f"{outcome['invalid']} invalid; AWS calls attempted: {len(attempted)})"
    )
    print(f"   {'json.loads of the event text (peer)':<58}{parse_s / n * 1e6:8.1f} µs/event")
    ours = "handler path: parse_body + Responder.handle (no AWS)"
    print(f"   {ours:<58}{handler_s / n * 1e6:8.1f} µs/event   ratio {handler_s / parse_s:.0f}x")
    offline = "planner alone: normalize + match + plan (simulate's path)"
    print(f"   {offline:<58}{plan_s / n * 1e6:8.1f} µs/event   ratio {plan_s / parse_s:.0f}x")
    if attempted:
        raise SystemExit(f"the handler path called AWS: {attempted[:5]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7, help="best of this many runs")
    parser.add_argument("--quick", action="store_true", help="best of 2")
    args = parser.parse_args()
    repeat = 2 if args.quick else args.repeat
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    logging.getLogger("clampdown").setLevel(logging.CRITICAL)  # notify.log steps' lines are not the figure
    from chalicelib.playbooks.library import Library
    from clampdown.playbooks.loader import load_library

    with tempfile.TemporaryDirectory(prefix="clampdown-bench-") as tmp:
        library = load_library([ROOT / "playbooks"])
        bundle = Path(tmp) / "playbooks.json"
        bundle.write_text(json.dumps(library.to_bundle(), sort_keys=True))
        deployed = Library.from_bundle(json.loads(bundle.read_text()))  # what the function reads
        tor = (ROOT / "tests/data/corpus/guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json").read_text()
        cold_start(repeat, bundle, tor)
        per_event(repeat, deployed)
    print("\n3. Load (burst of 10,000 and soak of 100,000 on moto): .venv/bin/python benchmarks/bench_load.py")


if __name__ == "__main__":
    main()
