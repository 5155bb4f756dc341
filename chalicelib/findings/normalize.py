"""``normalize``: any incoming event → typed findings, dispatched by ``source``/``detail-type``.

``Finding.origin_id`` names the underlying detection whatever shape delivered it, so one
GuardDuty detection keys one incident:

=================================  ========================================================
shape                              origin_id
=================================  ========================================================
GuardDuty (EventBridge / API)      ``detail.id`` (the 32-hex finding id)
Security Hub ASFF, GuardDuty       last segment of ``Id`` (the GuardDuty finding ARN)
Security Hub OCSF, GuardDuty       ``finding_info.uid_alt``, else the last segment of
                                   ``finding_info.uid`` (the GuardDuty finding ARN)
any other ASFF / OCSF finding      the finding id (``Id`` / ``finding_info.uid``)
CloudTrail                         ``eventID`` (else a key built from the record's fields)
other EventBridge events           the event ``id``
=================================  ========================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .cloudtrail import normalize_cloudtrail
from .envelope import (
    ASFF_DETAIL_TYPE,
    CLOUDTRAIL_DETAIL_TYPES,
    GUARDDUTY_DETAIL_TYPE,
    OCSF_DETAIL_TYPE,
    canonical_event,
)
from .fields import ident
from .generic import normalize_generic
from .guardduty import normalize_guardduty
from .model import Finding, InvalidEvent
from .ocsf import normalize_ocsf
from .securityhub import normalize_securityhub

_Normalizer = Callable[[Mapping[str, Any]], list[Finding]]

#: (source, detail-type) → normalizer, for the finding services.
_BY_SOURCE: dict[tuple[str, str], _Normalizer] = {
    ("aws.guardduty", GUARDDUTY_DETAIL_TYPE): normalize_guardduty,
    ("aws.securityhub", ASFF_DETAIL_TYPE): normalize_securityhub,
    ("aws.securityhub", "Security Hub Findings - Custom Action"): normalize_securityhub,
    ("aws.securityhub", OCSF_DETAIL_TYPE): normalize_ocsf,
}
#: Every CloudTrail detail-type, from any source (the EventBridge guide's list spells sign-in "Signin").
_CLOUDTRAIL = {*CLOUDTRAIL_DETAIL_TYPES.values(), "AWS Console Signin via CloudTrail"}


def normalize(event: Mapping[str, Any]) -> list[Finding]:
    """The findings in ``event`` (any shape :func:`canonical_event` accepts).

    Raises :class:`InvalidEvent` naming what is missing or wrong; never another exception type
    for bad input.
    """
    canonical = canonical_event(event)
    source, detail_type = ident(canonical, "source"), ident(canonical, "detail-type")
    if source is None or detail_type is None:
        missing = [name for name, value in (("source", source), ("detail-type", detail_type)) if value is None]
        raise InvalidEvent(f"EventBridge event: {', '.join(missing)} missing or invalid")
    normalizer = _BY_SOURCE.get((source, detail_type))
    if normalizer is None:
        normalizer = normalize_cloudtrail if detail_type in _CLOUDTRAIL else normalize_generic
    return normalizer(canonical)
