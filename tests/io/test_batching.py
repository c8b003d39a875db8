"""Batch building: columns joined into one buffer give exactly what pyarrow's own conversion gives."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pytest

from corpusmill.core import schema
from corpusmill.core.stats import Stats
from corpusmill.io.batching import ColumnBatcher, _utf8_array
from corpusmill.io.warc import read_warc

COLUMNS = {
    "bytes": [b"<p>caf\xc3\xa9</p>", b"", b"<html>plain</html>"],
    "ascii str": ["file.warc.gz:0", "", "file.warc.gz:1234"],
    "other str": ["naïve café", "漢字 \U0001f600", "plain"],
    "bytes and str": [b"<p>bytes</p>", "caf\u00e9", b"\xe6\xbc\xa2"],
    "nulls": [None, b"<p>a</p>", None, None, b"<p>b</p>", None, None, None, None],
    "str and nulls": ["https://a.example/é", None, "https://a.example/1"],
    "only nulls": [None, None],
}


def pyarrow_built(values: list[str | bytes | None], large: bool) -> pa.Array:
    """The column as `pa.array` builds it (what batching did before it joined columns itself)."""
    if large:
        return pa.array(values, type=pa.large_binary()).cast(pa.large_string())
    return pa.array(values, type=pa.string())


@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("column", COLUMNS)
def test_a_joined_column_equals_the_one_pyarrow_builds(column: str, large: bool) -> None:
    values = COLUMNS[column]
    expected = pyarrow_built(values, large)
    for check in (True, False):
        built = _utf8_array(values, large=large, check=check)
        built.validate(full=True)
        assert built.type == expected.type and built.null_count == expected.null_count
        assert built.equals(expected)


@pytest.mark.parametrize("large", [False, True])
def test_values_that_cannot_be_joined_fail_as_pyarrow_fails(large: bool) -> None:
    for values, error in (
        (["a\ud800"], UnicodeEncodeError),  # a lone surrogate has no UTF-8
        ([b"\xff\xfe"], pa.ArrowInvalid),  # bytes that are not UTF-8
        (["text", 7], pa.ArrowTypeError),
    ):
        with pytest.raises(error):
            pyarrow_built(values, large)
        with pytest.raises(error):
            _utf8_array(values, large=large)


def test_a_batch_is_built_without_pyarrow_converting_python_lists(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pa.array imports pandas the first time it runs: a reader that never calls it never pays for that.
    plain = tmp_path / "dolma.warc"
    plain.write_bytes(gzip.decompress((shared_data / "warc" / "dolma-sample-0000.warc.gz").read_bytes()))
    expected = [b for b in read_warc(str(plain), batch_size=7, stats=Stats())]

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pa.array called while building a batch")

    monkeypatch.setattr(pa, "array", refuse)
    batches = [b for b in read_warc(str(plain), batch_size=7, stats=Stats())]
    assert len(batches) == len(expected) > 1
    for batch, before in zip(batches, expected, strict=True):
        batch.validate(full=True)
        assert batch.equals(before)


def test_unchecked_bytes_give_the_same_batch() -> None:
    docs = [("a:0", b"<p>caf\xc3\xa9</p>"), ("a:1", None), ("a:2", b"<html></html>")]
    batches = []
    for check in (True, False):
        batcher = ColumnBatcher("a", batch_size=10)
        batcher.check_utf8 = check
        for doc_id, html in docs:
            batcher.add(doc_id, html=html, url=f"https://a.example/{doc_id}")
        batch = batcher.flush()
        assert batch is not None and batch.schema == schema.READER_SCHEMA
        batches.append(batch)
    assert batches[0].equals(batches[1])
    assert batches[0].column(schema.HTML).to_pylist() == ["<p>café</p>", None, "<html></html>"]
