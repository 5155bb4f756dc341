"""The GuardDuty API (PascalCase) → EventBridge (camelCase) conversion, checked against the API model.

The authority is the GuardDuty service model shipped with botocore: every member's wire name is
its ``locationName``. Tests only (the runtime never imports botocore).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import botocore
import pytest

from chalicelib.findings import normalize
from chalicelib.findings.camelcase import camelize_finding

MODEL = Path(botocore.__file__).parent / "data" / "guardduty" / "2017-11-28" / "service-2.json.gz"
SHAPES: dict[str, Any] = json.loads(gzip.decompress(MODEL.read_bytes()))["shapes"]
_SCALARS = {
    "string": "s",
    "integer": 1,
    "long": 2,
    "double": 1.5,
    "float": 2.5,
    "boolean": True,
    "timestamp": 1.0,
}
MAP_KEYS = ("AWS::EC2::Instance", "PascalKey")


def example(shape_name: str, path: tuple[str, ...] = ()) -> tuple[Any, Any]:
    """(API-shape value, wire-shape value) for a shape, every member filled once; recursion cut."""
    shape = SHAPES[shape_name]
    kind = shape["type"]
    if kind == "structure":
        api, wire = {}, {}
        for member, spec in shape["members"].items():
            if spec["shape"] in path:
                continue
            if shape_name == "ServiceAdditionalInfo":  # free JSON text in the API shape
                api[member], wire[spec.get("locationName", member)] = "not json", "not json"
                continue
            api[member], wire[spec.get("locationName", member)] = example(spec["shape"], (*path, shape_name))
        return api, wire
    if kind == "list":
        api, wire = example(shape["member"]["shape"], (*path, shape_name))
        return [api], [wire]
    if kind == "map":
        api, wire = example(shape["value"]["shape"], (*path, shape_name))
        return {k: api for k in MAP_KEYS}, {k: wire for k in MAP_KEYS}
    return (_SCALARS[kind],) * 2


def test_every_member_of_the_finding_model_gets_its_wire_name() -> None:
    api, wire = example("Finding")
    assert camelize_finding(api) == wire


def test_the_example_covers_the_renamed_members() -> None:
    _, wire = example("Finding")
    text = json.dumps(wire)
    for name in ('"productCodeId"', '"lat"', '"sourceIPs"', '"LoginAttributes"', '"IamInstanceProfile"'):
        assert name in text


# -- wire → API shape, to turn real camelCase corpus events into their API-shape twins --------------


def to_api(value: Any, shape_name: str) -> Any:
    shape = SHAPES[shape_name]
    if shape["type"] == "structure" and isinstance(value, dict):
        if shape_name == "ServiceAdditionalInfo":
            return {"Value": json.dumps(value, separators=(",", ":")), "Type": "default"}
        by_wire = {spec.get("locationName", m): (m, spec["shape"]) for m, spec in shape["members"].items()}
        out = {}
        for key, item in value.items():
            member, child = by_wire.get(key, (key, None))
            out[member] = to_api(item, child) if child else item
        return out
    if shape["type"] == "list" and isinstance(value, list):
        return [to_api(item, shape["member"]["shape"]) for item in value]
    if shape["type"] == "map" and isinstance(value, dict):
        return {k: to_api(v, shape["value"]["shape"]) for k, v in value.items()}
    return value


CAMEL_EVENTS = [
    "guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json",
    "guardduty/gd_sumologic-docs_Recon-EC2-PortProbeUnprotectedPort.json",
    "guardduty/gd_awssamples-autoresp_PenTest-S3-ParrotLinux.json",
    "guardduty/gd_awssamples-autoresp_Canary-EC2-Stateless-IntegTest.json",
    "guardduty/gd_panther_high_High-Sev-Finding_PrivilegeEscalation-IAMUser-AdministrativePermissions.json",
    "constructed/gd_constructed_AttackSequence-IAM-CompromisedCredentials_sequence.json",
]


@pytest.mark.parametrize("name", CAMEL_EVENTS)
def test_api_shape_twin_gives_the_same_finding(load, name) -> None:
    event = load(name)
    api_detail = to_api(event["detail"], "Finding")
    assert api_detail != event["detail"] and "Id" in api_detail
    twin = {**event, "detail": api_detail}
    assert normalize(twin)[0].to_dict() == normalize(event)[0].to_dict()
    raw = normalize(api_detail)[0].to_dict()  # the bare API-shape finding, wrapped by canonical_event
    assert raw == normalize(event)[0].to_dict()


def unknown_keys(value: Any, shape_name: str, path: str = "detail") -> list[str]:
    """Keys of ``value`` that are not wire names of ``shape_name`` (map keys are data)."""
    shape = SHAPES[shape_name]
    found: list[str] = []
    if shape["type"] == "structure" and isinstance(value, dict) and shape_name != "ServiceAdditionalInfo":
        by_wire = {spec.get("locationName", m): spec["shape"] for m, spec in shape["members"].items()}
        for key, item in value.items():
            if key not in by_wire:
                found.append(f"{path}.{key}")
            else:
                found += unknown_keys(item, by_wire[key], f"{path}.{key}")
    elif shape["type"] == "list" and isinstance(value, list):
        for item in value:
            found += unknown_keys(item, shape["member"]["shape"], f"{path}[]")
    elif shape["type"] == "map" and isinstance(value, dict):
        for item in value.values():
            found += unknown_keys(item, shape["value"]["shape"], f"{path}{{}}")
    return found


def test_constructed_attack_sequence_follows_the_model(load) -> None:
    event = load("constructed/gd_constructed_AttackSequence-IAM-CompromisedCredentials_sequence.json")
    assert unknown_keys(event["detail"], "Finding") == []
    sequence = event["detail"]["service"]["detection"]["sequence"]
    enum = set(SHAPES["FindingResourceType"]["enum"])
    assert {r["resourceType"] for r in sequence["resources"]} <= enum
    assert {s["type"] for s in sequence["signals"]} <= set(SHAPES["SignalType"]["enum"])
    assert {i["key"] for i in sequence["sequenceIndicators"]} <= set(SHAPES["IndicatorType"]["enum"])


def test_real_camel_case_events_follow_the_model_too(load) -> None:
    """The same check on a real event keeps the checker honest."""
    event = load("guardduty/gd_sumologic-docs_Recon-EC2-PortProbeUnprotectedPort.json")
    assert unknown_keys(event["detail"], "Finding") == []
    event["detail"]["resource"]["instanceDetails"]["notAField"] = 1
    assert unknown_keys(event["detail"], "Finding") == ["detail.resource.instanceDetails.notAField"]


def test_values_are_never_touched(load) -> None:
    detail = load("guardduty/gd_blu371ck_PascalCase-detail_Recon-EC2-Portscan.json")["detail"]
    detail["Title"] = "Keep: This Value"
    detail["Service"]["Action"]["AwsApiCallAction"] = {"AffectedResources": {"AWS::IAM::Role": "Arn:Upper"}}
    converted = camelize_finding(detail)
    assert converted["title"] == "Keep: This Value"
    assert converted["service"]["action"]["awsApiCallAction"] == {"affectedResources": {"AWS::IAM::Role": "Arn:Upper"}}
