"""Shared fixtures: paths to the small real data copies in tests/fixtures/."""
from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def mirage_v1() -> Path:
    return FIXTURES / "mirage" / "mirage_v1_pilot.csv"


@pytest.fixture
def mirage_legacy() -> Path:
    return FIXTURES / "mirage" / "mirage_legacy_pilot.csv"
