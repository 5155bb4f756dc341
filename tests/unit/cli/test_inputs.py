"""Reading events from files, directories, stdin, JSON-lines and CloudTrail logs."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

from clampdown.inputs import read_events
from tests.conftest import CORPUS


def test_single_event_file() -> None:
    path = CORPUS / "guardduty" / "gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"
    items = list(read_events([str(path)]))
    assert len(items) == 1 and items[0].source == str(path) and items[0].event is not None
    assert items[0].event["detail"]["type"] == "UnauthorizedAccess:IAMUser/TorIPCaller"


def test_cloudtrail_log_file_gzipped_in_s3_layout(tmp_path: Path) -> None:
    records = [
        json.loads((CORPUS / "cloudtrail" / name).read_text())
        for name in (
            "ct_raw_stratus_aws.defense-evasion.cloudtrail-stop_StopLogging.json",
            "ct_raw_panther_CreateAccessKey_Root-Access-Key-Created.json",
        )
    ]
    folder = tmp_path / "AWSLogs" / "123456789012" / "CloudTrail" / "us-east-1" / "2026" / "11" / "23"
    folder.mkdir(parents=True)
    (folder / "123456789012_CloudTrail_us-east-1_20261123T0000Z_abc.json.gz").write_bytes(
        gzip.compress(json.dumps({"Records": records}).encode())
    )
    (folder / "notes.txt").write_text("not an event file")
    items = list(read_events([str(tmp_path)]))
    assert [i.event["eventName"] for i in items if i.event] == ["StopLogging", "CreateAccessKey"]
    assert items[1].source.endswith(".json.gz#Records[1]")


def test_json_lines_with_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"a": 1}\n\nnot json\n[1]\n{"b": 2}\n')
    items = list(read_events([str(path)]))
    assert [(i.source.rsplit(":", 1)[1], i.event, bool(i.error)) for i in items] == [
        ("1", {"a": 1}, False),
        ("3", None, True),
        ("4[0]", None, True),
        ("5", {"b": 2}, False),
    ]
    assert "events.jsonl:3: invalid JSON" in (items[1].error or "")


def test_concatenated_json_without_jsonl_suffix(tmp_path: Path) -> None:
    path = tmp_path / "dump.json"
    path.write_text('{"a": 1}\n{"a": 2}\n')
    assert [i.event for i in read_events([str(path)])] == [{"a": 1}, {"a": 2}]


def test_get_findings_export_and_stdin() -> None:
    finding = json.loads(
        (CORPUS / "guardduty" / "gd_awscli_RAW-API-PascalCase_Recon-IAMUser-UserPermissions.json").read_text()
    )
    stdin = io.StringIO(json.dumps({"Findings": [finding, finding]}))
    items = list(read_events(["-"], stdin=stdin))
    assert [i.source for i in items] == ["<stdin>#Findings[0]", "<stdin>#Findings[1]"]


def test_gzipped_stdin_is_recognised_by_its_magic_number() -> None:
    records = [
        json.loads((CORPUS / "cloudtrail" / "ct_raw_panther_StopLogging_CloudTrail-Was-Stopped.json").read_text())
    ]
    raw = io.BytesIO(gzip.compress(json.dumps({"Records": records}).encode()))
    stdin = io.TextIOWrapper(raw, encoding="utf-8")  # what `cat trail.json.gz | clampdown ... -` gives
    items = list(read_events(["-"], stdin=stdin))
    assert [(i.source, i.event["eventName"] if i.event else i.error) for i in items] == [
        ("<stdin>#Records[0]", "StopLogging")
    ]
    assert not raw.closed, "stdin is read, never closed"
    plain = io.TextIOWrapper(io.BytesIO(b'{"a": 1}\n{"a": 2}\n'), encoding="utf-8")
    assert [i.event for i in read_events(["-"], stdin=plain)] == [{"a": 1}, {"a": 2}]


def test_missing_path_and_broken_json(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": ')
    items = list(read_events([str(tmp_path / "nope.json"), str(broken)]))
    assert "no such file" in (items[0].error or "")
    assert items[1].error is not None and "invalid JSON" in items[1].error


def test_symlinked_directories_are_not_followed(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "e.json").write_text('{"x": 1}')
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a")
    assert [i.event for i in read_events([str(tmp_path)])] == [{"x": 1}]
