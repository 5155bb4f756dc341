"""Severity labels ↔ 0-10 scores for sources that give a label or an OCSF ``severity_id``.

A label alone maps to the lowest score of its band, which is what Security Hub itself stores in
``Severity.Normalized`` when a provider sends only a label (LOW 1, MEDIUM 40, HIGH 70,
CRITICAL 90, divided by 10), so thresholds such as ``severity >= 7`` mean the same for every
source. OCSF ``severity_id``: 0 Unknown and 1 Informational → 0.0 INFORMATIONAL, 2 Low → 1.0,
3 Medium → 4.0, 4 High → 7.0, 5 Critical → 9.0, 6 Fatal → 10.0 CRITICAL; 99 Other (or a missing
id) falls back to the ``severity`` caption, else 0.0 INFORMATIONAL.
"""

from __future__ import annotations

from .model import SEVERITY_LABELS, severity_label

LABEL_FLOOR = {"INFORMATIONAL": 0.0, "LOW": 1.0, "MEDIUM": 4.0, "HIGH": 7.0, "CRITICAL": 9.0}
_OCSF = {0: 0.0, 1: 0.0, 2: 1.0, 3: 4.0, 4: 7.0, 5: 9.0, 6: 10.0}


def known_label(label: str | None) -> str | None:
    """``label`` upper-cased if it is one of :data:`SEVERITY_LABELS` (``"Fatal"`` counts as CRITICAL)."""
    if not isinstance(label, str):
        return None
    upper = label.strip().upper()
    if upper == "FATAL":
        return "CRITICAL"
    return upper if upper in SEVERITY_LABELS else None


def ocsf_severity(severity_id: float | None, caption: str | None) -> tuple[float, str]:
    """(score, label) for an OCSF ``severity_id`` and its ``severity`` caption."""
    if severity_id is not None and severity_id in _OCSF:
        score = _OCSF[int(severity_id)]
        return score, severity_label(score)
    label = known_label(caption)
    if label is not None:
        return (10.0 if caption and caption.strip().upper() == "FATAL" else LABEL_FLOOR[label]), label
    return 0.0, "INFORMATIONAL"
