"""The evidence store's one key scheme and the references records keep."""

from __future__ import annotations

import json

from chalicelib.evidence import MemoryEvidenceStore, evidence_key, is_ref, load, offload, safe_part


def test_keys_are_safe_whatever_the_parts() -> None:
    key = evidence_key("inc-1", "s3.lockdown-bucket", "s3-bucket:1::a/../b", "../..", "x?y=1&z")
    assert key == "incidents/inc-1/s3.lockdown-bucket/s3-bucket:1::a_.._b/.._../x_y_1_z"
    assert all(part not in ("", ".", "..") for part in key.split("/"))
    assert safe_part("..") == "_" and safe_part("") == "_" and len(safe_part("x" * 500)) == 200


def test_offload_is_content_addressed_and_loads_back() -> None:
    store = MemoryEvidenceStore()
    first = offload(store, "incidents/i/a/t/apply-before", {"policy": "one"})
    second = offload(store, "incidents/i/a/t/apply-before", {"policy": "two"})
    again = offload(store, "incidents/i/a/t/apply-before", {"policy": "one"})
    assert first == again and first["evidence_key"] != second["evidence_key"], "a later write never replaces"
    assert is_ref(first) and not is_ref({"evidence_key": "x", "policy": 1}) and not is_ref({"bytes": 3})
    assert load(store, first) == {"policy": "one"} and load(store, {"policy": "inline"}) == {"policy": "inline"}
    assert json.loads(store.get(second["evidence_key"])) == {"policy": "two"}
    assert store.find(first["evidence_key"].removeprefix("memory://")) == first["evidence_key"]
    assert store.find("incidents/none") is None
