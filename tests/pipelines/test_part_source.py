"""Reading a part: file-level failures end one file only, skip logs reach the reader, rows land in one table."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusmill import io
from corpusmill.core.recipe import InputSpec
from corpusmill.core.skips import SKIP_SCHEMA, SkipLog
from corpusmill.core.stats import Stats
from corpusmill.io.batching import ColumnBatcher, document_id
from corpusmill.pipelines.part_source import InputFileError, PartSource
from corpusmill.pipelines.parts import PartSpec

# What each fake file holds: (documents, then what goes wrong: None, an exception, or a skipped line).
FILES: dict[str, tuple[int, BaseException | str | None]] = {}


def _read_made_up(
    uri: str, *, batch_size: int, name: str | None = None, skips: SkipLog | None = None, **_: object
) -> Iterator[pa.RecordBatch]:
    """A reader of made-up files: `FILES[uri]` documents in batches of one, then its trouble."""
    documents, trouble = FILES[uri]
    for line in range(1, documents + 1):
        batcher = ColumnBatcher(name or uri, batch_size)
        batcher.add(document_id(name or uri, line), text=f"document {line} of {uri}")
        batch = batcher.flush()
        assert batch is not None
        yield batch
    if isinstance(trouble, BaseException):
        raise trouble
    if isinstance(trouble, str) and skips is not None:
        skips.skip(trouble, "line", documents + 1, nbytes=12, detail="made up")


def _fake_reader() -> Callable[..., Iterator[pa.RecordBatch]]:
    """The made-up reader behind the real JSONL reader's signature, so it takes whatever options that does."""
    params = [p for p in inspect.signature(io.read_jsonl).parameters.values() if p.name != "skips"]
    params.append(inspect.Parameter("skips", inspect.Parameter.KEYWORD_ONLY, default=None))

    def reader(uri: str, **options: Any) -> Iterator[pa.RecordBatch]:
        return _read_made_up(uri, **options)

    reader.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return reader


@pytest.fixture
def fake_jsonl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(io.FORMATS, "jsonl", _fake_reader())
    FILES.clear()


def _part(*uris: str) -> PartSpec:
    return PartSpec("part-00000", uris, "jsonl", tuple(uris), "identity")


def _source(tmp_path: Path, strict: bool = False) -> PartSource:
    spec = InputSpec(paths=["unused"])
    return PartSource(spec, 2, count_reader_stats=True, skipped_dir=tmp_path / "skipped", strict=strict)


def test_a_file_that_fails_midway_keeps_what_it_yielded_and_the_part_goes_on(
    tmp_path: Path, fake_jsonl: None
) -> None:
    FILES.update({"a.jsonl": (3, ValueError("no column 'text'\nsecond line")), "b.jsonl": (2, "bad_json")})
    stats: dict[str, Stats] = {}
    batches = list(_source(tmp_path).batches(_part("a.jsonl", "b.jsonl"), stats))
    ids = [i for batch in batches for i in batch.column("id").to_pylist()]
    assert ids == ["a.jsonl:1", "a.jsonl:2", "a.jsonl:3", "b.jsonl:1", "b.jsonl:2"]
    assert [batch.num_rows for batch in batches] == [2, 2, 1]  # rebatched across the failure
    counters = stats["00-read"].counters
    assert (
        counters["docs_out"] == 5
        and counters["reader.corrupt_file"] == 1
        and counters["reader.bad_json"] == 1
    )
    assert counters["skipped_bytes.bad_json"] == 12
    table = pq.read_table(tmp_path / "skipped" / "part-00000.parquet")
    assert table.schema == SKIP_SCHEMA
    assert table.to_pylist() == [
        {
            "file": "a.jsonl",
            "unit": "file",
            "position": None,
            "reason": "corrupt_file",
            "bytes": None,
            "detail": "ValueError: no column 'text'",
        },
        {
            "file": "b.jsonl",
            "unit": "line",
            "position": 3,
            "reason": "bad_json",
            "bytes": 12,
            "detail": "made up",
        },
    ]


def test_a_part_that_skipped_nothing_writes_no_table_and_drops_a_stale_one(
    tmp_path: Path, fake_jsonl: None
) -> None:
    FILES.update({"a.jsonl": (2, None)})
    stale = tmp_path / "skipped" / "part-00000.parquet"
    stale.parent.mkdir()
    stale.write_bytes(b"from a part made of other files")
    assert len(list(_source(tmp_path).batches(_part("a.jsonl"), {}))) == 1
    assert not stale.exists()


def test_later_reads_of_the_input_count_and_write_nothing(tmp_path: Path, fake_jsonl: None) -> None:
    FILES.update({"a.jsonl": (1, OSError("gone"))})
    source = PartSource(InputSpec(paths=["unused"]), 2, count_reader_stats=False, skipped_dir=None)
    stats: dict[str, Stats] = {}
    assert sum(b.num_rows for b in source.batches(_part("a.jsonl"), stats)) == 1
    assert stats == {} and not (tmp_path / "skipped").exists()


def test_strict_reads_raise_naming_the_file(tmp_path: Path, fake_jsonl: None) -> None:
    FILES.update({"a.jsonl": (1, None), "b.jsonl": (0, ValueError("broken footer"))})
    with pytest.raises(InputFileError, match=r"b\.jsonl could not be read \(ValueError: broken footer\)"):
        list(_source(tmp_path, strict=True).batches(_part("a.jsonl", "b.jsonl"), {}))


def test_running_out_of_memory_is_not_a_bad_file(tmp_path: Path, fake_jsonl: None) -> None:
    FILES.update({"a.jsonl": (1, MemoryError())})
    with pytest.raises(MemoryError):
        list(_source(tmp_path).batches(_part("a.jsonl"), {}))
