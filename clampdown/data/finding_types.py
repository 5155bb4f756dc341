"""The known GuardDuty finding types (``guardduty_finding_types.json``), for coverage reports.

The list is taken from the GuardDuty User Guide's finding-types pages; the file says where from and
when (``source``). Active types are what GuardDuty generates today; retired ones are kept because
old findings, replays and Security Hub copies still carry them, and a rename (the
``InstanceCredentialExfiltration`` family) is what makes exact-match patterns silently stop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).with_name("guardduty_finding_types.json")


@dataclass(frozen=True)
class FindingType:
    name: str
    #: The user guide page the type is documented on (``ec2``, ``iam``, ``runtime``...); "" when retired.
    page: str = ""
    retired: bool = False
    #: For a renamed type, the names it has now.
    renamed_to: tuple[str, ...] = ()

    @property
    def threat_purpose(self) -> str:
        """``Backdoor`` of ``Backdoor:EC2/C&CActivity.B``."""
        return self.name.split(":", 1)[0]

    @property
    def resource_type(self) -> str:
        """``EC2`` of ``Backdoor:EC2/C&CActivity.B``."""
        return self.name.split(":", 1)[-1].split("/", 1)[0]


@dataclass(frozen=True)
class FindingTypes:
    source: dict[str, Any]
    pages: dict[str, str]
    active: tuple[FindingType, ...]
    retired: tuple[FindingType, ...]

    @property
    def all(self) -> tuple[FindingType, ...]:
        return self.active + self.retired

    def names(self, *, include_retired: bool = False) -> list[str]:
        return [t.name for t in (self.all if include_retired else self.active)]


def parse(document: dict[str, Any]) -> FindingTypes:
    active = tuple(FindingType(item["type"], item.get("page", "")) for item in document["active"])
    retired = tuple(
        FindingType(item["type"], retired=True, renamed_to=tuple(item.get("renamed_to", ())))
        for item in document["retired"]
    )
    return FindingTypes(dict(document["source"]), dict(document.get("pages", {})), active, retired)


@cache
def guardduty_finding_types(path: Path = DATA_FILE) -> FindingTypes:
    """The shipped list (cached)."""
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return parse(loaded)
