"""GuardDuty GetFindings (API/CLI, PascalCase) shape → the camelCase shape EventBridge delivers.

The rule is the GuardDuty API model's own: each member's wire name is its ``locationName``, which
is the member name with a lower-case first letter except for the renames in :data:`_RENAMES`
(keyed by the enclosing wire key). Only keys change, never values. Keys of map-typed members
(``affectedResources`` → ``{"AWS::EC2::Instance": …}``, the anomaly ``profiles``/``behavior``
maps) are kept verbatim, and so is any key that is not a plain PascalCase word.
``service.additionalInfo`` is ``{"Value": "<JSON text>", "Type": "default"}`` in the API shape;
EventBridge delivers the decoded object, so the decoded keys are merged next to ``value``/``type``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .model import InvalidEvent

#: (enclosing wire key, member name) → wire name, where it is not "lower the first letter".
_RENAMES: dict[tuple[str | None, str], str] = {
    ("account", "Name"): "account",
    ("ec2Instance", "IamInstanceProfile"): "IamInstanceProfile",
    ("kubernetesApiCallAction", "SourceIps"): "sourceIPs",
    ("kubernetesWorkload", "KubernetesResourcesTypes"): "type",
    ("location", "Latitude"): "lat",
    ("location", "Longitude"): "lon",
    ("productCodes", "Code"): "productCodeId",
    ("productCodes", "ProductType"): "productCodeType",
    ("rdsLoginAttemptAction", "LoginAttributes"): "LoginAttributes",
    ("taskDetails", "TaskCreatedAt"): "createdAt",
}
#: Wire keys whose value is a map: how many levels of its keys are data, not member names.
_MAP_LEVELS = {"affectedResources": 1, "profiles": 2, "behavior": 2}
_PASCAL = re.compile(r"[A-Z][A-Za-z0-9]*")
_MAX_DEPTH = 64
_MAX_ADDITIONAL_INFO = 65536


def is_pascal_finding(finding: Mapping[str, Any]) -> bool:
    """Whether a GuardDuty finding is in the API (PascalCase) shape."""
    return any(k in finding for k in ("Id", "Type", "AccountId")) and not any(
        k in finding for k in ("id", "type", "accountId")
    )


def camelize_finding(finding: Mapping[str, Any]) -> dict[str, Any]:
    """The camelCase (EventBridge) form of a PascalCase GuardDuty finding; InvalidEvent if too deep."""
    return _convert(finding, None, 0, 0)


def lower_keys(value: Any) -> Any:
    """Lower the first letter of every PascalCase key (ASFF ``Detection.Sequence`` → GuardDuty style)."""
    return _convert(value, None, 0, 0)


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of decoded JSON, counted without recursion and stopping past ``limit``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > limit:
            break
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _wire_key(parent: str | None, key: Any) -> Any:
    if not isinstance(key, str) or not _PASCAL.fullmatch(key):
        return key
    return _RENAMES.get((parent, key), key[0].lower() + key[1:])


def _convert(value: Any, parent: str | None, verbatim_levels: int, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise InvalidEvent(f"finding: nested deeper than {_MAX_DEPTH} levels")
    if isinstance(value, list):
        return [_convert(item, parent, verbatim_levels, depth + 1) for item in value]
    if not isinstance(value, Mapping):
        return value
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if verbatim_levels:
            out[key] = _convert(item, parent, verbatim_levels - 1, depth + 1)
            continue
        wire = _wire_key(parent, key)
        if wire == "additionalInfo" and isinstance(item, Mapping):
            out[wire] = _additional_info(item, depth + 1)
        else:
            out[wire] = _convert(item, wire, _MAP_LEVELS.get(wire, 0), depth + 1)
    return out


def _additional_info(info: Mapping[str, Any], depth: int) -> dict[str, Any]:
    converted = _convert(info, "additionalInfo", 0, depth)
    raw = converted.get("value")
    if isinstance(raw, str) and len(raw) <= _MAX_ADDITIONAL_INFO:
        try:
            decoded = json.loads(raw)
        except (ValueError, RecursionError):
            decoded = None
        if isinstance(decoded, dict) and _depth(decoded, _MAX_DEPTH) <= _MAX_DEPTH:
            return {**decoded, **converted}
    return converted
