"""Skipped input: what a reader passed over before a document existed, one row per record or file.

A counter says how much was lost; it cannot say what. Every record a reader does not turn into a document (a
line of invalid JSON, a WARC request record, a record cut short, an unreadable file) is written down here with
its file, its place in the file, the reason and its size, so a run can answer "what did we lose and why" for
every record: it ends in `documents/`, in `rejected/` with a reason, or in `skipped/` (this table).

Readers get a `SkipLog` for the file they read and call `skip()`; it counts `reader.<reason>` in the reader's
`Stats` as well, and `skipped.<reason>` / `skipped_bytes.<reason>` for the row itself, so counters and rows
never disagree and summaries tell skips from the reader's other counters without reading the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

from corpusmill.core.stats import Stats

# Counters of skipped rows (and their bytes) per reason, beside the reader's own `reader.<reason>`.
SKIPPED_COUNTER = "skipped."
SKIPPED_BYTES_COUNTER = "skipped_bytes."

# Where in its file a skipped record was: a line (1-based), a row (0-based), a byte offset, or the whole file.
Unit = Literal["line", "row", "byte", "file"]

FILE = "file"
UNIT = "unit"
POSITION = "position"
REASON = "reason"
BYTES = "bytes"
DETAIL = "detail"

SKIP_SCHEMA = pa.schema(
    [
        pa.field(FILE, pa.string(), nullable=False),
        pa.field(UNIT, pa.string(), nullable=False),
        pa.field(POSITION, pa.int64()),
        pa.field(REASON, pa.string(), nullable=False),
        pa.field(BYTES, pa.int64()),
        pa.field(DETAIL, pa.string()),
    ]
)


@dataclass(frozen=True)
class Skipped:
    """One skipped record (or file): where it was, why, and how big it was when known."""

    file: str
    unit: Unit
    position: int | None
    reason: str
    bytes: int | None = None
    detail: str = ""


@dataclass
class SkipLog:
    """The skipped records of one input file, counted into `stats` as `reader.<reason>` as they are added.

    `file` is the file's name relative to the input root (the same name document ids start with).
    """

    file: str
    stats: Stats = field(default_factory=Stats)
    records: list[Skipped] = field(default_factory=list)

    def skip(
        self,
        reason: str,
        unit: Unit,
        position: int | None,
        *,
        nbytes: int | None = None,
        detail: str = "",
        count: bool = True,
    ) -> None:
        """Record one skipped record (and count it, unless the caller counts it itself)."""
        self.records.append(Skipped(self.file, unit, position, reason, nbytes, detail))
        self.stats.incr(SKIPPED_COUNTER + reason)
        if nbytes:
            self.stats.incr(SKIPPED_BYTES_COUNTER + reason, nbytes)
        if count:
            self.stats.incr(f"reader.{reason}")

    def skip_file(self, reason: str, detail: str, *, nbytes: int | None = None) -> None:
        """Record that a whole file (or what was left of it) could not be read."""
        self.skip(reason, "file", None, nbytes=nbytes, detail=detail)

    def __len__(self) -> int:
        return len(self.records)


def skip_table(records: Iterable[Skipped]) -> pa.Table:
    """The records as a table in `SKIP_SCHEMA`, in the order they were skipped."""
    rows = list(records)
    return pa.table(
        {
            FILE: [r.file for r in rows],
            UNIT: [r.unit for r in rows],
            POSITION: [r.position for r in rows],
            REASON: [r.reason for r in rows],
            BYTES: [r.bytes for r in rows],
            DETAIL: [r.detail or None for r in rows],
        },
        schema=SKIP_SCHEMA,
    )
