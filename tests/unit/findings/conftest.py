"""Fixtures and Hypothesis profiles for the findings tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import findings_testdata
import pytest


@pytest.fixture
def load() -> Callable[[str], Any]:
    """``load("guardduty/gd_c7n_….json")`` → a fresh copy of that corpus (or ``constructed/…``) file."""
    return findings_testdata.load
