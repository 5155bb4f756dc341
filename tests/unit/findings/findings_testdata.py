"""Where the findings tests' data lives (plain values, needed at collection time for parametrize)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "data"
CORPUS = DATA / "corpus"
CONSTRUCTED = DATA / "constructed"
EVENT_DIRS = ("guardduty", "cloudtrail", "securityhub", "securityhub-ocsf")


def corpus_files() -> list[Path]:
    """Every event file in the four event directories of the corpus."""
    return sorted(p for d in EVENT_DIRS for p in (CORPUS / d).glob("*.json"))


@cache
def _read(name: str) -> Any:
    path = DATA / name if name.startswith("constructed/") else CORPUS / name
    return json.loads(path.read_text())


def load(name: str) -> Any:
    """A fresh copy of ``<dir>/<file>`` from the corpus, or ``constructed/<file>``."""
    return copy.deepcopy(_read(name))
