"""Fixtures and Hypothesis profiles for the findings tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import findings_testdata
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.errors import InvalidArgument


def _register(name: str, **options: Any) -> None:
    """Register a Hypothesis profile unless another conftest already did."""
    try:
        settings.get_profile(name)
    except InvalidArgument:
        settings.register_profile(name, **options)


# ``findings`` (the default here): ~200 mutated events per fuzz test; ``fuzz``
# (HYPOTHESIS_PROFILE=fuzz): a longer run. The fuzz tests pick the profile themselves, so nothing
# is loaded globally for other test directories.
_register("findings", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_register("fuzz", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture
def load() -> Callable[[str], Any]:
    """``load("guardduty/gd_c7n_….json")`` → a fresh copy of that corpus (or ``constructed/…``) file."""
    return findings_testdata.load
