"""Normalize any event (EventBridge, CloudTrail record, GuardDuty/ASFF/OCSF finding) into findings.

Public API: :func:`canonical_event`, :func:`normalize`, the model and the ARN helpers.
"""

from .arn import Arn, parse_arn, resource_from_arn
from .envelope import canonical_event
from .model import (
    RESOURCE_KINDS,
    SEVERITY_LABELS,
    SOURCES,
    Actor,
    Finding,
    InvalidEvent,
    Resource,
    severity_label,
)
from .normalize import normalize

__all__ = [
    "RESOURCE_KINDS",
    "SEVERITY_LABELS",
    "SOURCES",
    "Actor",
    "Arn",
    "Finding",
    "InvalidEvent",
    "Resource",
    "canonical_event",
    "normalize",
    "parse_arn",
    "resource_from_arn",
    "severity_label",
]
