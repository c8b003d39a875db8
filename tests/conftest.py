"""Shared fixtures: where the real test data lives."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real crawl samples beside the repository (never copied into it)."""
    if not SHARED_DATA.is_dir():
        raise FileNotFoundError(f"expected the shared test data at {SHARED_DATA}")
    return SHARED_DATA
