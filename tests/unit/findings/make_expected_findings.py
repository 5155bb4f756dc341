"""Write ``expected_findings.json``: what every corpus event normalizes to, for review and for the tests.

Run once after a deliberate change to normalization, then review the diff event by event against the
raw JSON before committing it (the table is the reviewed truth, not a snapshot to refresh blindly)::

    .venv/bin/python tests/unit/findings/make_expected_findings.py

Notes written by a reviewer (``"note"`` next to an event's findings) are kept.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from findings_testdata import CORPUS, corpus_files  # noqa: E402

from chalicelib.findings import Finding, InvalidEvent, normalize  # noqa: E402

TABLE = HERE / "expected_findings.json"
RESOURCE_FIELDS = ("kind", "id", "name", "arn")
ACTOR_FIELDS = ("principal_arn", "user_name", "access_key_id", "source_ip")


def summary(finding: Finding) -> dict[str, Any]:
    """The reviewed facts of a finding: where it is, what it is, what it names and who did it."""
    return {
        "source": finding.source,
        "type": finding.type,
        "severity_label": finding.severity_label,
        "account": finding.account,
        "region": finding.region,
        "resources": [
            {k: getattr(r, k) for k in RESOURCE_FIELDS if getattr(r, k) is not None} for r in finding.resources
        ],
        "actor": {k: getattr(finding.actor, k) for k in ACTOR_FIELDS if getattr(finding.actor, k) is not None},
    }


def expected(path: Path) -> dict[str, Any]:
    try:
        findings = normalize(json.loads(path.read_text(encoding="utf-8")))
    except InvalidEvent as exc:
        return {"error": str(exc)}
    return {"findings": [summary(f) for f in findings]}


def main() -> None:
    old = json.loads(TABLE.read_text(encoding="utf-8")) if TABLE.exists() else {}
    table = {}
    for path in corpus_files():
        name = path.relative_to(CORPUS).as_posix()
        entry = expected(path)
        if "note" in old.get(name, {}):
            entry["note"] = old[name]["note"]
        table[name] = entry
    TABLE.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {TABLE} ({len(table)} events)")


if __name__ == "__main__":
    main()
