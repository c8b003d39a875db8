"""Column-wise batch building shared by every reader.

Readers append one document at a time to plain Python lists, one per column, and turn them into a
`pa.RecordBatch` once `batch_size` rows (or a byte budget) are reached. Building Arrow arrays from lists is
the cheapest per-row path pyarrow offers, and the byte budget keeps a batch of very large pages from
holding gigabytes in memory at once. Text and HTML may be handed over as UTF-8 bytes: a page that arrived
as valid UTF-8 then goes into Arrow without ever being turned into a Python string and back, which is
several times faster than converting freshly decoded strings.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

from corpusmill.core import schema

DEFAULT_MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
# A batch is emitted early once its text and HTML reach this size, whatever `batch_size` says.
MAX_BATCH_BYTES = 64 * 1024 * 1024


def derived_id(source: str, position: int) -> str:
    """A stable id for a document that has none: the same file and position always give the same id."""
    digest = hashlib.sha1(f"{source}\n{position}".encode(), usedforsecurity=False).hexdigest()
    return f"sha1:{digest}"


def source_id(source: str) -> str:
    """A stable id for a file that holds exactly one document."""
    return "sha1:" + hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


class ColumnBatcher:
    """Collects documents of one input file and hands out reader-schema batches of bounded size."""

    def __init__(self, source: str, batch_size: int, max_batch_bytes: int = MAX_BATCH_BYTES) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size} (reading {source})")
        self.source = source
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self._reset()

    def _reset(self) -> None:
        self._ids: list[str] = []
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
        text: str | bytes | None = None,
        url: str | None = None,
        lang: str | None = None,
        html: str | bytes | None = None,
    ) -> pa.RecordBatch | None:
        """Append one document (text/html as str or valid UTF-8 bytes); returns a batch once one is full."""
        self._ids.append(doc_id)
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
            schema.HTML: _large_strings(self._htmls),
        }
        arrays = [columns[name] for name in schema.READER_SCHEMA.names]
        self._reset()
        return pa.RecordBatch.from_arrays(arrays, schema=schema.READER_SCHEMA)


def _large_strings(values: list[str | bytes | None]) -> pa.Array:
    # Through binary, so bytes are copied as they are; the cast checks that everything is valid UTF-8.
    return pa.array(values, type=pa.large_binary()).cast(pa.large_string())
