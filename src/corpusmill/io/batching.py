"""Column-wise batch building shared by every reader.

Readers append one document at a time to plain Python lists, one per column, and turn them into a
`pa.RecordBatch` once `batch_size` rows (or a byte budget) are reached. Building Arrow arrays from lists is
the cheapest per-row path pyarrow offers, and the byte budget keeps a batch of very large pages from
holding gigabytes in memory at once. Text and HTML may be handed over as UTF-8 bytes: a page that arrived
as valid UTF-8 then goes into Arrow without ever being turned into a Python string and back, which is
several times faster than converting freshly decoded strings.
"""

from __future__ import annotations

import pyarrow as pa

from corpusmill.core import schema

DEFAULT_MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
# A batch is emitted early once its text and HTML reach this size, whatever `batch_size` says.
MAX_BATCH_BYTES = 64 * 1024 * 1024


def document_id(name: str, place: int | None = None) -> str:
    """A document's id: its file's name relative to the input root, and its place in the file.

    `place` is the 1-based line of a JSONL file, the 0-based row of a Parquet file, the byte offset of a
    WARC/WET record; a file holding one document (an HTML page) is its name alone. The same bytes give the
    same ids wherever they are mounted, and no two records of a run share one, whatever ids the input carries.
    """
    return name if place is None else f"{name}:{place}"


class ColumnBatcher:
    """Collects documents of one input file and hands out reader-schema batches of bounded size."""

    def __init__(self, source: str, batch_size: int, max_batch_bytes: int = MAX_BATCH_BYTES) -> None:
        """`source` is the file's name relative to the input root (the `source` column)."""
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size} (reading {source})")
        self.source = source
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self._reset()

    def _reset(self) -> None:
        self._ids: list[str] = []
        self._source_ids: list[str | None] = []
        self._texts: list[str | bytes | None] = []
        self._urls: list[str | None] = []
        self._langs: list[str | None] = []
        self._htmls: list[str | bytes | None] = []
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._ids)

    def add(
        self,
        doc_id: str,
        *,
        source_id: str | None = None,
        text: str | bytes | None = None,
        url: str | None = None,
        lang: str | None = None,
        html: str | bytes | None = None,
    ) -> pa.RecordBatch | None:
        """Append one document (text/html as str or valid UTF-8 bytes); returns a batch once one is full.

        `source_id` is the input's own id for the record (a WARC-Record-ID, a JSONL id field), kept as found.
        """
        self._ids.append(doc_id)
        self._source_ids.append(source_id)
        self._texts.append(text)
        self._urls.append(url)
        self._langs.append(lang)
        self._htmls.append(html)
        self._bytes += (len(text) if text else 0) + (len(html) if html else 0)
        if len(self._ids) >= self.batch_size or self._bytes >= self.max_batch_bytes:
            return self.flush()
        return None

    def flush(self) -> pa.RecordBatch | None:
        """The documents collected so far as one batch (None when there are none)."""
        if not self._ids:
            return None
        n = len(self._ids)
        columns = {
            schema.ID: pa.array(self._ids, type=pa.string()),
            schema.TEXT: _large_strings(self._texts),
            schema.URL: pa.array(self._urls, type=pa.string()),
            schema.SOURCE: pa.array([self.source] * n, type=pa.string()),
            schema.LANG: pa.array(self._langs, type=pa.string()),
            schema.SOURCE_ID: pa.array(self._source_ids, type=pa.string()),
            schema.HTML: _large_strings(self._htmls),
        }
        arrays = [columns[name] for name in schema.READER_SCHEMA.names]
        self._reset()
        return pa.RecordBatch.from_arrays(arrays, schema=schema.READER_SCHEMA)


def _large_strings(values: list[str | bytes | None]) -> pa.Array:
    # Through binary, so bytes are copied as they are; the cast checks that everything is valid UTF-8.
    return pa.array(values, type=pa.large_binary()).cast(pa.large_string())
