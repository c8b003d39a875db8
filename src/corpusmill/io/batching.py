"""Column-wise batch building shared by every reader.

Readers append one document at a time to plain Python lists, one per column, and turn them into a
`pa.RecordBatch` once `batch_size` rows (or a byte budget) are reached; the byte budget keeps a batch of very
large pages from holding gigabytes in memory at once. Text and HTML may be handed over as UTF-8 bytes: a page
that arrived as valid UTF-8 then goes into Arrow without ever being turned into a Python string and back,
which is several times faster than converting freshly decoded strings.

A column is built by joining its values into one buffer and handing Arrow that buffer with the offsets
(`_utf8_array`), not with `pa.array`: for pages that is one copy of the bytes instead of a copy into a
builder that grows by reallocating, and `pa.array` imports pandas the first time it runs (about 0.3
CPU-seconds in a fresh process, as much as the WARC reader spends on 130 MB of pages). Bytes are checked to
be valid UTF-8 by the cast from binary that ends the build, unless the reader says it checked them already
(`ColumnBatcher.check_utf8`); strings encode to valid UTF-8 and are not checked again.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
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
        # Whether text and HTML handed over as bytes are checked to be valid UTF-8 when a batch is built. A
        # reader whose bytes all come out of `decoding` (checked there, or encoded from a string) turns it
        # off: checking a page twice costs as much as reading it. Strings never need it.
        self.check_utf8 = True
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
            schema.ID: _utf8_array(self._ids),
            schema.TEXT: _utf8_array(self._texts, large=True, check=self.check_utf8),
            schema.URL: _utf8_array(self._urls),
            schema.SOURCE: _utf8_array([self.source] * n),
            schema.LANG: _utf8_array(self._langs),
            schema.SOURCE_ID: _utf8_array(self._source_ids),
            schema.HTML: _utf8_array(self._htmls, large=True, check=self.check_utf8),
        }
        arrays = [columns[name] for name in schema.READER_SCHEMA.names]
        self._reset()
        return pa.RecordBatch.from_arrays(arrays, schema=schema.READER_SCHEMA)


def _utf8_array(values: list[str | bytes | None], *, large: bool = False, check: bool = True) -> pa.Array:
    """A `string` (or `large_string`) array of str or UTF-8 bytes values, None as null.

    Bytes are copied as they are, through binary: the cast checks that they are valid UTF-8 (unless `check`
    is off). Strings encode to valid UTF-8, so a column of strings alone needs no check. Values that cannot
    be joined into one buffer (lone surrogates, types other than str and bytes, data past what 32-bit
    offsets reach) go through `pa.array`, which raises for them as it always did.
    """
    binary, string = (pa.large_binary(), pa.large_string()) if large else (pa.binary(), pa.string())
    nulls = values.count(None)
    present = np.array([v is not None for v in values], dtype=np.bool_) if nulls else None
    joined = _joined_utf8([v for v in values if v is not None] if nulls else values)
    if joined is not None:
        data, pieces, has_bytes = joined
        offsets = _offsets(pieces, present, large)
        if offsets is not None and int(offsets[-1]) == len(data):
            validity = None if present is None else pa.py_buffer(np.packbits(present, bitorder="little"))
            buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(data)]
            if check and has_bytes:
                return pa.Array.from_buffers(binary, len(values), buffers, nulls).cast(string)
            return pa.Array.from_buffers(string, len(values), buffers, nulls)
    if large:
        return pa.array(values, type=binary).cast(string)
    return pa.array(values, type=string)


def _joined_utf8(values: Sequence[str | bytes]) -> tuple[bytes, Sequence[str | bytes], bool] | None:
    """The values' UTF-8 bytes in one buffer, pieces whose `len` is each value's byte length, and whether
    any value was bytes (not known to be valid UTF-8).

    All bytes and all-ASCII strings (a character a byte) are joined as they are; other strings are encoded
    one by one. None when a value is neither str nor bytes or holds a lone surrogate.
    """
    try:
        return b"".join(values), values, bool(values)  # type: ignore[arg-type]
    except TypeError:
        pass
    try:
        text = "".join(values)  # type: ignore[arg-type]
    except TypeError:
        text = None
    if text is not None and text.isascii():
        return text.encode("ascii"), values, False
    try:
        encoded = [v.encode() if isinstance(v, str) else v for v in values]
        return b"".join(encoded), encoded, text is None
    except (TypeError, UnicodeEncodeError):
        return None


def _offsets(pieces: Sequence[str | bytes], present: np.ndarray | None, large: bool) -> np.ndarray | None:
    """Arrow offsets from the byte lengths of the non-null `pieces`, where `present` (None: all) says which
    rows they are; a null row is empty. None when the data outgrows 32-bit offsets.
    """
    lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
    if present is not None:
        spread = np.zeros(len(present), dtype=np.int64)
        spread[present] = lengths
        lengths = spread
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if large:
        return offsets
    return offsets.astype(np.int32) if offsets[-1] <= np.iinfo(np.int32).max else None
