"""The annotation cache: append-only Parquet files under `<run_dir>/annotations/`.

LLM answers are the expensive part of the classifier pipeline, so they are never rewritten: each annotate call
(and each chunk of a long call) adds one new file, written atomically, so an interrupted call loses at most the
chunk in flight and a reader never sees a torn file. File names start with a nanosecond timestamp, so sorting
them by name gives the order they were written in.

Reading resolves the history per key (document id, prompt version, model): a final answer (`ok` or
`unparseable`) beats any transport `error`, and among answers of the same kind the latest wins. Errors are
therefore retried by the next call while final answers are kept.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpusmill.classifiers.annotations import ANNOTATION_SCHEMA, KEY_COLUMNS, STATUS_ERROR, STATUSES
from corpusmill.core.atomic import atomic_path

logger = logging.getLogger(__name__)

ANNOTATIONS_DIR = "annotations"


def annotations_dir(run_dir: str | Path) -> Path:
    """Where a run's annotation files live."""
    return Path(run_dir) / ANNOTATIONS_DIR


def _resolve(directory: str | Path) -> Path:
    directory = Path(directory)
    nested = directory / ANNOTATIONS_DIR
    return nested if nested.is_dir() else directory


def annotation_files(directory: str | Path) -> list[Path]:
    """The annotation files of a run directory (or of its annotations/ directory), oldest first."""
    folder = _resolve(directory)
    return sorted(folder.glob("*.parquet")) if folder.is_dir() else []


def _conform(table: pa.Table, path: Path) -> pa.Table:
    """Cast a file's table to the current schema; columns added since it was written become nulls."""
    columns = []
    for field in ANNOTATION_SCHEMA:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        elif field.nullable:
            columns.append(pa.nulls(table.num_rows, field.type))
        else:
            raise ValueError(
                f"annotation file {path} lacks the required column {field.name!r}; it is not ours"
            )
    extra = set(table.column_names) - set(ANNOTATION_SCHEMA.names)
    if extra:
        logger.debug("ignoring columns %s of %s (not in the annotation schema)", sorted(extra), path)
    return pa.Table.from_arrays(columns, schema=ANNOTATION_SCHEMA)


def read_all_annotations(directory: str | Path) -> pa.Table:
    """Every stored answer, oldest first, including superseded ones (for audits)."""
    tables = [_conform(pq.read_table(path), path) for path in annotation_files(directory)]
    if not tables:
        return ANNOTATION_SCHEMA.empty_table()
    return pa.concat_tables(tables)


def load_annotations(directory: str | Path) -> pa.Table:
    """One answer per (id, prompt version, model): the latest final answer, else the latest error."""
    history = read_all_annotations(directory)
    keys = zip(*(history.column(name).to_pylist() for name in KEY_COLUMNS), strict=True)
    statuses = history.column("status").to_pylist()
    final: dict[tuple[str, ...], int] = {}
    failed: dict[tuple[str, ...], int] = {}
    for row, (key, status) in enumerate(zip(keys, statuses, strict=True)):
        if status not in STATUSES:
            raise ValueError(
                f"annotation for {key} has unknown status {status!r}; expected one of {STATUSES}"
            )
        (failed if status == STATUS_ERROR else final)[key] = row
    winners = sorted({**failed, **final}.values())
    return history.take(pa.array(winners, type=pa.int64()))


def missing_ids(annotations: pa.Table, ids: Iterable[str], prompt_version: str, model: str) -> list[str]:
    """The ids (in the given order) without a final answer for this prompt version and model."""
    answered = pc.and_(
        pc.and_(
            pc.equal(annotations.column("prompt_version"), prompt_version),
            pc.equal(annotations.column("model"), model),
        ),
        pc.not_equal(annotations.column("status"), STATUS_ERROR),
    )
    done = set(annotations.filter(answered).column("id").to_pylist())
    return [doc_id for doc_id in ids if doc_id not in done]


def write_annotations(run_dir: str | Path, table: pa.Table) -> Path:
    """Append one new annotation file to a run (atomically); returns its path."""
    table = _conform(table, Path("<new annotations>"))
    folder = annotations_dir(run_dir)
    path = folder / f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    logger.debug("wrote %d annotations to %s", table.num_rows, path)
    return path
