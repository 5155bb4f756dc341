"""`clampdown replay`: real corpus records in CloudTrail's S3 layout, locally and on moto's S3."""

from __future__ import annotations

import copy
import gzip
import json
import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from clampdown.cli import cli
from clampdown.cli.commands.simulate import simulate_events
from clampdown.playbooks.loader import load_library
from clampdown.replay import TimeWindow, TopK, parse_time_bound, replay
from tests.conftest import ACCOUNT, CORPUS, ROOT, corpus_event

PLAYBOOKS = ROOT / "playbooks"
BACKDOOR = "cloudtrail/ct_raw_stratus_aws.persistence.lambda-backdoor-function_AddPermission20150331v2.json"
OTHERS = (
    "cloudtrail/ct_raw_stratus_aws.defense-evasion.cloudtrail-stop_StopLogging.json",
    "cloudtrail/ct_raw_panther_CreateAccessKey_Root-Access-Key-Created.json",
    "cloudtrail/ct_raw_stratus_aws.persistence.lambda-overwrite-code_UpdateFunctionCode20150331v2.json",
)
TOR = "guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"
EC2 = "guardduty/gd_c7n_Backdoor-EC2-C-CActivity-B-DNS.json"
NOW = datetime(2026, 11, 24, tzinfo=UTC)


def record(relative: str, time: str, serial: int, function: str | None = None) -> dict[str, Any]:
    """A real corpus record at another time, with its own id (and, for AddPermission, function)."""
    item = copy.deepcopy(corpus_event(relative))
    item["eventTime"] = time
    item["eventID"] = f"00000000-0000-4000-8000-{serial:012d}"
    if function:
        item["requestParameters"]["functionName"] = function
    return item


def write_log(root: Path, region: str, delivered: str, records: list[dict[str, Any]]) -> Path:
    """A CloudTrail log file where CloudTrail puts it: AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/."""
    moment = datetime.strptime(delivered, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
    folder = root / "AWSLogs" / ACCOUNT / "CloudTrail" / region / moment.strftime("%Y/%m/%d")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ACCOUNT}_CloudTrail_{region}_{moment:%Y%m%dT%H%MZ}_AbCdEf0123456789.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    return path


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """Three days of CloudTrail in two regions; a backdoor on the 2nd and 3rd day; noise around it."""
    root = tmp_path / "logs"
    serial = iter(range(1000))
    for region in ("us-east-1", "eu-west-1"):
        write_log(
            root,
            region,
            "2026-11-20T10:05",
            [record(name, f"2026-11-20T10:0{i}:00Z", next(serial)) for i, name in enumerate(OTHERS)]
            + [record(BACKDOOR, "2026-11-20T10:04:00Z", next(serial), "old-func")],
        )
        write_log(
            root,
            region,
            "2026-11-22T00:02",
            # Written just before midnight, delivered after it: the file is in the next day's folder.
            [record(BACKDOOR, "2026-11-21T23:59:30Z", next(serial), "payments")]
            + [record(name, "2026-11-22T00:01:00Z", next(serial)) for name in OTHERS],
        )
        write_log(
            root,
            region,
            "2026-11-23T09:30",
            [record(BACKDOOR, f"2026-11-23T09:2{i}:00Z", next(serial), "payments") for i in range(3)]
            + [record(BACKDOOR, "2026-11-23T09:29:00Z", next(serial), "reports")],
        )
    digest = root / "AWSLogs" / ACCOUNT / "CloudTrail-Digest" / "us-east-1" / "2026" / "11" / "23"
    digest.mkdir(parents=True)
    (digest / f"{ACCOUNT}_CloudTrail-Digest_us-east-1_trail_us-east-1_20261123T093000Z.json.gz").write_bytes(
        gzip.compress(b'{"digestStartTime": "2026-11-23T08:30:00Z", "logFiles": []}')
    )
    return root


@pytest.fixture(scope="module")
def library() -> Any:
    return load_library([PLAYBOOKS])


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    return result.exit_code, result.output


def simulated(paths: list[str], library: Any) -> tuple[Counter[str], Counter[str], int]:
    """Plans per playbook, non-skipped steps per action and findings, as ``simulate`` sees them."""
    plans: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    findings = 0
    for result in simulate_events(tuple(paths), library, explain=False):
        findings += len(result["findings"])
        for match in result["matches"]:
            plans[match["playbook"]] += 1
            actions.update(s["action"] for s in match["steps"] if not s.get("skipped"))
    return plans, actions, findings


def test_replay_counts_what_simulate_plans(history: Path, library: Any) -> None:
    inputs = [str(history), str(CORPUS / TOR), str(CORPUS / EC2)]
    summary = replay(inputs, library, now=NOW, jobs=1).to_dict()
    plans, actions, findings = simulated(inputs, library)
    assert {p["name"]: p["matches"] for p in summary["playbooks"] if p["matches"]} == dict(plans)
    assert {a["action"]: a["would_run"] for a in summary["actions"] if a["would_run"]} == dict(actions)
    assert summary["counts"]["findings"] == findings
    assert summary["counts"]["events"] == 2 * (4 + 4 + 4) + 2
    assert summary["counts"]["files"] == 6 + 2, "the CloudTrail-Digest file is not an event file"
    assert summary["counts"]["errors"] == 0
    [top, second, *_] = summary["top_resources"]["items"]
    # 4 AddPermission records per folder region x 2, each planning one lambda.remove-public-access.
    assert (top["kind"], top["name"], top["actions"]) == ("lambda-function", "payments", 8)
    assert top["region"] == "ca-centralnorth-1r", "the region the record names, not the folder's"
    assert second["actions"] <= top["actions"]
    assert summary["top_resources"]["exact"] is True


def test_window_skips_folders_and_files_by_delivery_date(history: Path, library: Any) -> None:
    # Anything read from before --since would be counted (or fail, for this broken file).
    old = history / "AWSLogs" / ACCOUNT / "CloudTrail" / "us-east-1" / "2026" / "11" / "19"
    old.mkdir(parents=True)
    (old / "broken.json.gz").write_bytes(b"\x1f\x8bnot gzip at all")
    window = TimeWindow(parse_time_bound("2026-11-21T12:00:00Z", NOW), parse_time_bound("2026-11-23", NOW))
    summary = replay([str(history)], library, window=window, now=NOW, jobs=1)
    doc = summary.to_dict()
    assert doc["counts"]["errors"] == 0
    # The 20th and 19th are before --since: not read. The 23rd is read (within the slack after --until).
    assert doc["counts"]["files"] == 4
    assert doc["counts"]["evaluated"] == 2 * 4, "the records of the 21st-22nd"
    assert doc["counts"]["outside_window"] == 2 * 4, "the 23rd's records, read and left out"
    assert doc["time_range"] == {"first": "2026-11-21T23:59:30Z", "last": "2026-11-22T00:01:00Z"}
    assert doc["window"] == {"since": "2026-11-21T12:00:00Z", "until": "2026-11-23T00:00:00Z"}
    assert {p["name"]: p["matches"] for p in doc["playbooks"]}["ct-lambda-public-exposure"] == 2


def test_until_skips_what_was_delivered_long_after(history: Path, library: Any) -> None:
    summary = replay([str(history)], library, window=TimeWindow(until=datetime(2026, 11, 21, tzinfo=UTC)), jobs=1)
    # The 22nd's files were delivered after --until + 24 h: not read. The 20th's are.
    assert (summary.files, summary.evaluated, summary.outside_window) == (2, 8, 0)


def test_workers_give_the_same_summary(history: Path, library: Any) -> None:
    inputs = [str(history), str(CORPUS / "guardduty")]
    alone = replay(inputs, library, now=NOW, jobs=1).to_dict()
    shared = replay(inputs, library, now=NOW, jobs=2).to_dict()
    for doc in (alone, shared):
        doc.pop("elapsed_seconds"), doc.pop("events_per_second")
    assert shared == alone
    assert alone["counts"]["errors"] == 1, "the published partial GuardDuty sample"


def test_errors_name_file_and_line_and_are_bounded(tmp_path: Path, library: Any) -> None:
    lines = [json.dumps(corpus_event(TOR))] + ["not json", '{"no": "event"}'] * 15
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    summary = replay([str(tmp_path), str(tmp_path / "missing")], library, now=NOW, max_errors=5, jobs=1).to_dict()
    errors = summary["errors"]
    assert (errors["total"], len(errors["listed"]), errors["not_listed"]) == (31, 5, 26)
    first, second = errors["listed"][:2]
    assert first["location"] == f"{tmp_path / 'events.jsonl'}:2"
    assert "invalid JSON" in first["message"]
    assert second["location"].endswith("events.jsonl:3") and second["message"].startswith("invalid event:")
    assert summary["counts"]["matched_events"] == 1


def test_s3_prefix_on_moto(history: Path, library: Any, boto_session: Any) -> None:
    s3 = boto_session.client("s3")
    s3.create_bucket(Bucket="trail-logs")
    for path in sorted(history.rglob("*.gz")):
        s3.put_object(Bucket="trail-logs", Key=f"org/{path.relative_to(history).as_posix()}", Body=path.read_bytes())
    s3.put_object(
        Bucket="trail-logs", Key=f"org/AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/11/01/x.json.gz", Body=b"?"
    )
    window = TimeWindow(since=datetime(2026, 11, 21, tzinfo=UTC))
    remote = replay(["s3://trail-logs/org/"], library, window=window, now=NOW, jobs=1).to_dict()
    local = replay([str(history)], library, window=window, now=NOW, jobs=1).to_dict()
    for doc in (remote, local):
        doc.pop("elapsed_seconds"), doc.pop("events_per_second")
    assert remote == local
    assert remote["counts"]["files"] == 4 and remote["counts"]["errors"] == 0

    missing = replay(["s3://no-such-bucket/x/", "s3://trail-logs/nothing-here/"], library, jobs=1).to_dict()
    messages = [e["message"] for e in missing["errors"]["listed"]]
    assert "NoSuchBucket" in messages[0]
    assert messages[1] == "s3://trail-logs/nothing-here/: no objects under this prefix"


def test_cli_text_summary_is_clean_and_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(record(BACKDOOR, "2026-11-23T09:00:00Z", 1, "payments")))
    code, out = run("replay", str(tmp_path), "--playbooks", str(PLAYBOOKS))
    assert code == 0, out
    for heading in ("Replay summary", "Matches per playbook", "Actions that would have run", "Top resources"):
        assert heading in out
    assert "lambda.remove-public-access  (auto 1)" in out
    assert "lambda-function payments  [880896431042/ca-centralnorth-1r]" in out

    # File names (S3 keys) and event text reach the terminal only without control characters.
    hostile = tmp_path / "evil\x1b[2J\x1b]0;pwned\x07.jsonl"
    hostile.write_text('{"detail-type": "x\\u001b[31m", "source": "aws.guardduty", "detail": {}}\n')
    code, out = run("replay", str(hostile), "--playbooks", str(PLAYBOOKS))
    assert code == 1
    assert "\x1b" not in out and "\x07" not in out
    assert "evil [2J ]0;pwned .jsonl:1" in out

    hostile.unlink()
    (tmp_path / "b.jsonl").write_text("{broken\n")
    code, out = run("replay", str(tmp_path), "--playbooks", str(PLAYBOOKS), "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert list(doc) == [
        "format",
        "window",
        "counts",
        "time_range",
        "playbooks",
        "actions",
        "top_resources",
        "errors",
        "elapsed_seconds",
        "events_per_second",
    ]
    assert doc["errors"]["listed"][0]["location"] == f"{tmp_path / 'b.jsonl'}:1"


def test_cli_usage_errors() -> None:
    code, out = run("replay", "x", "--since", "last tuesday")
    assert code == 2 and "is not a time" in out
    code, out = run("replay", "x", "--since", "2026-11-02", "--until", "2026-11-01")
    assert code == 2 and "must be before --until" in out
    assert run("replay")[0] == 2


def test_time_bounds() -> None:
    assert parse_time_bound("7d", NOW) == datetime(2026, 11, 17, tzinfo=UTC)
    assert parse_time_bound("90m", NOW) == datetime(2026, 11, 23, 22, 30, tzinfo=UTC)
    assert parse_time_bound("2026-11-01T12:00:00+02:00", NOW) == datetime(2026, 11, 1, 10, tzinfo=UTC)
    assert parse_time_bound("2026-11-01", NOW) == datetime(2026, 11, 1, tzinfo=UTC)


def test_symlinked_file_outside_the_named_directory_is_not_read(tmp_path: Path, library: Any) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(corpus_event(TOR)))
    named = tmp_path / "named"
    named.mkdir()
    (named / "link.json").symlink_to(outside)
    (named / "inside.json").write_text(json.dumps(corpus_event(EC2)))
    (named / "alias.json").symlink_to(named / "inside.json")
    summary = replay([str(named)], library, jobs=1)
    assert summary.events == 2 and summary.files == 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=3000), st.integers(5, 50))
def test_top_k_bounds(stream: list[int], capacity: int) -> None:
    """Space-Saving: counts never under-estimate, over-estimate at most by the recorded error, and
    every key seen more than N/capacity times is kept; memory stays within the capacity."""
    top = TopK(capacity)
    for value in stream:
        top.add(str(value))
    truth = Counter(str(v) for v in stream)
    assert len(top.counts) <= capacity
    for key, count, error in top.top(capacity):
        assert count - error <= truth[key] <= count
    for key, true_count in truth.items():
        if true_count > len(stream) / capacity:
            assert key in top.counts
    assert top.exact == (len(truth) <= capacity)


def test_top_k_is_exact_and_ordered_with_few_keys() -> None:
    rng = random.Random(3)
    keys = [f"k{rng.randrange(20)}" for _ in range(2000)]
    top = TopK(100)
    for key in keys:
        top.add(key)
    expected = sorted(Counter(keys).items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    assert [(k, c) for k, c, _ in top.top(5)] == expected


def test_an_unreadable_event_is_an_error_with_a_window_too(tmp_path: Path) -> None:
    """A published sample cut short (no source, detail-type or time) is an error, not "without a time"."""
    partial = CORPUS / "guardduty" / "gd_awssamples-wafacl_PARTIAL_UnauthorizedAccess-EC2-SSHBruteForce.json"
    (tmp_path / partial.name).write_text(partial.read_text())
    for window in ([], ["--since", "2020-01-01"]):
        code, out = run("replay", str(tmp_path), "--playbooks", str(PLAYBOOKS), "--format", "json", *window)
        assert code == 1, out
        doc = json.loads(out)
        [error] = doc["errors"]["listed"]
        assert error["location"].endswith(partial.name), error
        assert error["message"] == "invalid event: EventBridge event: source, detail-type missing or invalid"
        assert doc["counts"]["without_time"] == 0
