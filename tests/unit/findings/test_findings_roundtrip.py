"""A finding stored on an incident can be rebuilt exactly (approved steps act on the stored finding)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.findings import Finding, InvalidEvent, normalize
from tests.unit.findings.findings_testdata import corpus_files


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_to_dict_from_dict_roundtrip(path: Path) -> None:
    try:
        findings = normalize(json.loads(path.read_text()))
    except InvalidEvent:
        pytest.skip("the published partial event does not normalize")
    for finding in findings:
        rebuilt = Finding.from_dict(finding.to_dict())
        assert rebuilt.to_dict() == finding.to_dict()
        assert rebuilt.resources == finding.resources
        assert rebuilt.actor == finding.actor
