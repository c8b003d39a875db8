"""Shared fixtures: where the real test data lives, and a real S3 server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from s3kit import Bucket, serve_bucket

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real crawl samples beside the repository (never copied into it)."""
    if not SHARED_DATA.is_dir():
        raise FileNotFoundError(f"expected the shared test data at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def s3_bucket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bucket]:
    """A bucket on moto's S3 server, with the environment sending every `s3://` URI there (`s3kit.py`).

    Set for the rest of the session once a test asks for it, so Ray and Beam workers started later inherit it.
    """
    with serve_bucket("corpusmill-test", tmp_path_factory.mktemp("s3")) as bucket:
        yield bucket
