"""Fuzzing ``clampdown.inputs.read_events`` (what ``simulate`` and ``replay`` read): random bytes, gzip
garbage, truncated and corrupted gzip, JSON-lines with broken lines, deep and huge documents.

Reading never raises: every item is an event or an error naming the file it came from, and an error
never hides the items that could be read before it.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clampdown.inputs import read_events
from tests.reliability.conftest import PROFILE
from tests.reliability.strategies import json_values

SUFFIXES = [".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".gz"]


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


@st.composite
def file_contents(draw: st.DrawFn) -> bytes:
    text = draw(
        st.one_of(
            json_values.map(json.dumps),
            st.lists(json_values.map(json.dumps) | st.text(max_size=20), max_size=6).map("\n".join),
            st.just(json.dumps({"Records": [{"eventVersion": "1.08"}, 1, None]})),
            st.integers(1000, 100_000).map(lambda n: "[" * n + "]" * n),
            st.just("9" * 5000),
            json_values.map(lambda v: json.dumps({"title": "\ud800 lone", "nested": [{"\udc00": v}]})),
            st.just('{"a": 1}\n' + "[" * 50_000 + "\n" + '{"b": 2}'),
            st.text(max_size=200),
        )
    )
    data = text.encode("utf-8", "surrogatepass")
    how = draw(st.sampled_from(["plain", "gzip", "truncated-gzip", "corrupt-gzip", "magic-only", "bytes", "double"]))
    if how == "gzip":
        return _gzip(data)
    if how == "truncated-gzip":
        packed = _gzip(data)
        return packed[: draw(st.integers(0, max(0, len(packed) - 1)))]
    if how == "corrupt-gzip":
        packed = bytearray(_gzip(data))
        for _ in range(draw(st.integers(1, 5))):
            packed[draw(st.integers(0, len(packed) - 1))] = draw(st.integers(0, 255))
        return bytes(packed)
    if how == "magic-only":
        return b"\x1f\x8b" + draw(st.binary(max_size=50))
    if how == "bytes":
        return draw(st.binary(max_size=300))
    if how == "double":
        return _gzip(_gzip(data))
    return data


def check(path: Path, items: list[Any]) -> None:
    for item in items:
        assert item.source.startswith(str(path)), item.source
        assert (item.event is None) != (item.error is None), item
        if item.event is not None:
            assert isinstance(item.event, dict)
            json.dumps(item.event, ensure_ascii=False).encode("utf-8")  # printable: no lone surrogate survives
        else:
            assert item.error and item.error.startswith(str(path)), item.error


@PROFILE
@given(content=file_contents(), suffix=st.sampled_from(SUFFIXES))
def test_fuzz_read_events_never_raises(content: bytes, suffix: str, tmp_path_factory: Any) -> None:
    path = tmp_path_factory.mktemp("in") / f"events{suffix}"
    path.write_bytes(content)
    check(path, list(read_events([str(path)])))


def test_a_broken_line_does_not_hide_the_others(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"a": 1}\n' + "[" * 100_000 + "\n" + "9" * 5000 + '\n{"b": 2}\n')
    items = list(read_events([str(path)]))
    assert [i.event for i in items if i.event] == [{"a": 1}, {"b": 2}]
    assert [i.source for i in items if i.error] == [f"{path}:2", f"{path}:3"]


def test_deep_and_huge_documents_are_errors_not_crashes(tmp_path: Path) -> None:
    cases = {"deep.json": "[" * 100_000 + "]" * 100_000, "digits.json": "9" * 5000, "deep.json.gz": None}
    for name, text in cases.items():
        path = tmp_path / name
        if text is None:
            path.write_bytes(_gzip(("{" + '"a":{' * 50_000 + "}" * 50_001).encode()))
        else:
            path.write_text(text)
        [item] = list(read_events([str(path)]))
        assert item.event is None and item.error and item.error.startswith(str(path)), item


@pytest.mark.parametrize("output", ["text", "json"])
def test_simulate_survives_a_lone_surrogate(tmp_path: Path, output: str) -> None:
    """Found by fuzzing: ``clampdown simulate --format json`` died (UnicodeEncodeError) on a finding with
    ``"\\ud800"`` in its title; it now shows U+FFFD."""
    from click.testing import CliRunner

    from clampdown.cli import cli
    from tests.conftest import CORPUS

    event = json.loads((CORPUS / "guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json").read_text())
    event["detail"]["title"] = "before \ud800 after"
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    result = CliRunner().invoke(cli, ["simulate", "--format", output, str(path)])
    assert result.exit_code == 0, result.output
    assert "before \ufffd after" in result.output or "before   after" in result.output
