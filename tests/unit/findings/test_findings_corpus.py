"""Every event in the corpus normalizes into well-formed findings (or the documented InvalidEvent)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from findings_testdata import CONSTRUCTED, CORPUS, corpus_files

from chalicelib.findings import (
    RESOURCE_KINDS,
    SEVERITY_LABELS,
    SOURCES,
    InvalidEvent,
    canonical_event,
    normalize,
    severity_label,
)

FILES = corpus_files()
#: The one corpus file that is not a valid event: only ``region`` and ``detail`` were published.
PARTIAL = "gd_awssamples-wafacl_PARTIAL_UnauthorizedAccess-EC2-SSHBruteForce.json"
ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z")
#: Trimmed OCSF captures that carry no time at all (PROVENANCE: PARTIAL-RAW).
NO_TIME = {
    "sh2_asr_2002_PARTIAL-RAW_Inspector-EC2-CVE-2022-3235.json",
    "sh2_asr_2004_PARTIAL-RAW_GuardDuty-IAMUser-AccessKey.json",
}


def test_the_corpus_is_all_there() -> None:
    assert len(FILES) == 30 + 97 + 23 + 7


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_corpus_event_normalizes(path: Path) -> None:
    event = json.loads(path.read_text())
    if path.name == PARTIAL:
        with pytest.raises(InvalidEvent, match=r"source, detail-type missing"):
            normalize(event)
        return
    findings = normalize(event)
    assert findings
    detail = canonical_event(event)["detail"]
    if "findings" in detail:
        assert len(findings) == len(detail["findings"])
    else:
        assert len(findings) == 1
    for finding in findings:
        assert finding.source in SOURCES
        assert finding.id and finding.type and finding.title
        assert finding.account and finding.region
        assert 0.0 <= finding.severity <= 10.0
        assert finding.severity_label in SEVERITY_LABELS
        if finding.source in ("guardduty", "cloudtrail"):
            assert finding.severity_label == severity_label(finding.severity)
        if path.name in NO_TIME:
            assert finding.time == ""
        else:
            assert ISO.fullmatch(finding.time), finding.time
        assert finding.origin_id
        for res in finding.resources:
            assert res.kind in RESOURCE_KINDS
            assert res.id or res.name or res.arn
        assert len({r.key for r in finding.resources}) == len(finding.resources)
        json.dumps(finding.to_dict())  # everything a finding holds is plain JSON


@pytest.mark.parametrize("path", [*FILES, *sorted(CONSTRUCTED.glob("*.json"))], ids=lambda p: p.name)
def test_canonical_event_is_idempotent(path: Path) -> None:
    event = json.loads(path.read_text())
    if path.name == PARTIAL:
        return
    once = canonical_event(event)
    assert canonical_event(once) == once
    assert {"source", "detail-type", "detail"} <= set(once)


def test_partial_event_says_what_is_missing() -> None:
    event = json.loads((CORPUS / "guardduty" / PARTIAL).read_text())
    with pytest.raises(InvalidEvent) as caught:
        normalize(event)
    assert str(caught.value) == "EventBridge event: source, detail-type missing or invalid"
