"""Fixtures for the annotate tests: real page texts and tiny run directories built from them."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusmill.core import schema

ANNOTATE_PAGES = 24


@pytest.fixture(scope="session")
def annotate_pages(shared_data: Path) -> list[tuple[str, str]]:
    """(id, text) of the first non-empty WCXB dev pages: real web text with real lengths."""
    pages: list[tuple[str, str]] = []
    for path in sorted((shared_data / "wcxb-dev" / "ground-truth").glob("*.json")):
        content = json.loads(path.read_text(encoding="utf-8"))["ground_truth"].get("main_content")
        if content and content.strip():
            pages.append((f"wcxb-{path.stem}", content))
        if len(pages) == ANNOTATE_PAGES:
            break
    assert len(pages) == ANNOTATE_PAGES
    return pages


def write_run(run_dir: Path, pages: Sequence[tuple[str, str]], files: int = 1, reverse: bool = False) -> Path:
    """A finished-run directory holding `pages` as documents/*.parquet, dealt round-robin over `files` files."""
    documents = run_dir / "documents"
    documents.mkdir(parents=True)
    (run_dir / "recipe.yaml").write_text("name: annotate-test\n", encoding="utf-8")
    items = list(reversed(pages)) if reverse else list(pages)
    for index in range(files):
        rows = [
            {
                "id": doc_id,
                "text": text,
                "url": f"https://example.test/{doc_id}",
                "source": "wcxb",
                "lang": "en",
            }
            for doc_id, text in items[index::files]
        ]
        table = pa.Table.from_batches([schema.reader_batch(rows)])
        pq.write_table(table, documents / f"part-{index:05d}.parquet", row_group_size=3)
    return run_dir


RunMaker = Callable[..., Path]


@pytest.fixture
def annotate_run_dir(tmp_path: Path, annotate_pages: list[tuple[str, str]]) -> RunMaker:
    """Build run directories: `make(pages=None, files=1, reverse=False, name="run")` (None: all real pages)."""

    def make(
        pages: Sequence[tuple[str, str]] | None = None,
        files: int = 1,
        reverse: bool = False,
        name: str = "run",
    ) -> Path:
        return write_run(
            tmp_path / name, annotate_pages if pages is None else pages, files=files, reverse=reverse
        )

    return make
