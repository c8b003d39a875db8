"""Reading a part's documents: input files through their readers, or a step's intermediate parquet.

The first read of an input is also where every record that never becomes a document is accounted for. Each
input file gets a `SkipLog` that its reader fills (a bad line, a WARC request record), and a file that fails
altogether (a Parquet file without the text column, garbage where gzip should be) is caught here, one file at
a time: it is counted as `reader.corrupt_file`, written down as a file-level skip with the error's message,
and the part goes on with its other files, keeping the documents the failed file yielded before the error.
A strict run stops instead, naming the file. The part's skipped records go to `skipped/<part>.parquet`,
written atomically once the part has been read and before its task writes the marker, so a resumed run
rewrites the same file or finds it finished, never doubling or losing a row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from corpusmill.core.atomic import atomic_path
from corpusmill.core.location import open_parquet
from corpusmill.core.recipe import InputSpec
from corpusmill.core.schema import ID, URL
from corpusmill.core.skips import SkipLog, Skipped, skip_table
from corpusmill.core.stats import Stats

if TYPE_CHECKING:
    from corpusmill.pipelines.parts import PartSpec

logger = logging.getLogger(__name__)

INTERMEDIATE = "intermediate"
DOCUMENTS = "documents"  # the documents index's folder under the run's `index/`
READ_STATS = "00-read"
# The skip reason of a file that could not be read (to its end, or at all).
FILE_FAILURE = "corrupt_file"
FILE_FAILURE_COUNTER = f"reader.{FILE_FAILURE}"


class InputFileError(RuntimeError):
    """An input file could not be read in a strict run; names the file and what to do about it."""


def rebatch(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """Regroup a stream of batches (e.g. one per small file) into batches of `size` rows (the last may be short)."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        rows += batch.num_rows
        while rows >= size:
            table = pa.Table.from_batches(pending)
            yield from table.slice(0, size).combine_chunks().to_batches()
            rest = table.slice(size)
            pending = rest.combine_chunks().to_batches() if rest.num_rows else []
            rows = rest.num_rows
    if rows:
        yield from pa.Table.from_batches(pending).combine_chunks().to_batches()


@dataclass
class PartSource:
    """Reads a part as batches; the read that counts reader stats also accounts for what the input skips.

    `skipped_dir` is where that read writes the part's skipped records (None: nowhere), `documents_dir` where
    it lists the id and URL of every document it read (the documents index: a later takedown of a URL finds
    the parts that hold it there without reading the input again); `strict` makes a file that cannot be read
    stop the run instead of being skipped.
    """

    input_spec: InputSpec
    batch_size: int
    count_reader_stats: bool
    skipped_dir: Path | None = None
    strict: bool = False
    documents_dir: Path | None = None

    def batches(
        self, part: PartSpec, stats: dict[str, Stats], columns: Sequence[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Stream the part's documents in batches of the recipe's batch size (only `columns`, where cheap)."""
        if part.fmt == INTERMEDIATE:
            for uri in part.uris:
                parquet = open_parquet(uri)
                wanted = None if columns is None else [c for c in columns if c in parquet.schema_arrow.names]
                yield from parquet.iter_batches(batch_size=self.batch_size, columns=wanted)
            return
        reader_stats = Stats()
        skipped: list[Skipped] = []
        read: list[pa.Table] = []
        for batch in rebatch(self._read(part, reader_stats, skipped), self.batch_size):
            if self.count_reader_stats and self.documents_dir is not None:
                read.append(pa.table({ID: batch.column(ID), URL: batch.column(URL)}))
            yield batch
        if self.count_reader_stats:
            stats.setdefault(READ_STATS, Stats()).merge(reader_stats)
            if self.skipped_dir is not None:
                write_skipped(self.skipped_dir / f"{part.name}.parquet", skipped)
            if self.documents_dir is not None:
                write_documents(self.documents_dir / f"{part.name}.parquet", read)

    def _read(self, part: PartSpec, reader_stats: Stats, skipped: list[Skipped]) -> Iterator[pa.RecordBatch]:
        options = self._options(part.fmt)
        for uri, name in zip(part.uris, part.file_names(), strict=True):
            skips = SkipLog(name, reader_stats)
            yield from self._read_file(uri, part.fmt, skips, options)
            skipped.extend(skips.records)

    def _options(self, fmt: str) -> dict[str, Any]:
        spec = self.input_spec
        options: dict[str, Any] = {
            "max_document_bytes": spec.max_document_bytes,
            "max_replacement_share": spec.max_replacement_share,
        }
        if fmt in ("jsonl", "parquet"):
            options.update(
                text_field=spec.text_field,
                id_field=spec.id_field,
                url_field=spec.url_field,
                lang_field=spec.lang_field,
                html_field=spec.html_field,
            )
        return options

    def _read_file(
        self, uri: str, fmt: str, skips: SkipLog, options: dict[str, Any]
    ) -> Iterator[pa.RecordBatch]:
        """One file's documents; a failure while reading it ends this file only (unless the run is strict).

        Opening the reader stays outside the guard: an unknown format or option is the recipe's mistake, the
        same for every file, and must stop the run rather than skip the whole input file by file.
        """
        from corpusmill.io import read_batches

        failures = skips.stats.counters[FILE_FAILURE_COUNTER]
        batches = read_batches(
            uri, fmt, batch_size=self.batch_size, stats=skips.stats, skips=skips, name=skips.file, **options
        )
        documents = 0
        try:
            for batch in batches:
                documents += batch.num_rows
                skips.stats.incr("docs_out", batch.num_rows)
                yield batch
        except MemoryError:
            raise
        except Exception as exc:
            self._file_failed(uri, skips, exc, documents)
        if self.strict and skips.stats.counters[FILE_FAILURE_COUNTER] > failures:
            # The reader met the damage itself (a broken gzip stream) and carried on; strict runs do not.
            failed = (r.detail for r in skips.records if r.unit == "file" and r.reason == FILE_FAILURE)
            detail = next(failed, "") or "see the log above"
            raise InputFileError(_strict_message(uri, detail))

    def _file_failed(self, uri: str, skips: SkipLog, exc: Exception, documents: int) -> None:
        """Record a file that raised while being read: a file-level skip row, or the end of a strict run."""
        detail = one_line(exc).replace(uri, skips.file)  # the table names files as ids do, not by mount
        if self.strict:
            raise InputFileError(_strict_message(uri, detail)) from exc
        skips.skip_file(FILE_FAILURE, detail)
        # Later reads of the same input (a dedup step's second pass) meet the same failure: warn once.
        level = logging.WARNING if self.count_reader_stats else logging.DEBUG
        kept = f", keeping the {documents} documents read before the failure" if documents else ""
        logger.log(
            level,
            "input file %s could not be read (%s); skipped%s. It is listed in the run's skipped/; "
            "--strict stops the run on such files",
            uri,
            detail,
            kept,
        )


def one_line(exc: BaseException) -> str:
    """The exception's type and the first line of its message: enough to say why, short enough for a table."""
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__


def _strict_message(uri: str, detail: str) -> str:
    return (
        f"input file {uri} could not be read ({detail}); repair or remove it (a removed input needs "
        "--restart), or run without --strict to skip it and list it in the run's skipped/"
    )


DOCUMENTS_SCHEMA = pa.schema([pa.field(ID, pa.string()), pa.field(URL, pa.string())])


def write_documents(path: Path, tables: Sequence[pa.Table]) -> None:
    """Write the id and URL of every document a part's input held, atomically (an empty part: no rows)."""
    table = (
        pa.concat_tables([t.cast(DOCUMENTS_SCHEMA) for t in tables])
        if tables
        else DOCUMENTS_SCHEMA.empty_table()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_skipped(path: Path, records: Sequence[Skipped]) -> None:
    """Write a part's skipped records atomically; a part that skipped nothing has no file (nor an old one)."""
    if not records:
        path.unlink(missing_ok=True)
        return
    with atomic_path(path) as tmp:
        pq.write_table(skip_table(records), tmp, compression="zstd")
