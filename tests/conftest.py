"""Shared fixtures: the ../shared test data (skipped cleanly in a user's clone) and the
hypothesis profiles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

# 'ci' (the default): deterministic (derandomized), few examples, no deadline, so the
# suite is fast and gives the same result on every run. 'dev': more examples, random.
settings.register_profile(
    "ci", max_examples=40, derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``../shared`` folder beside the clone; skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"test data folder {SHARED} is absent (it exists only in the project's CI)")
    return SHARED
