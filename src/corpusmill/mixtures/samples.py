"""A few documents behind each number of the report: per domain, per quality bucket and per drop reason.

A share, a histogram bar or a drop count says how much, never what: to judge a mixture people read examples.
This module picks them, from the files a finished run already wrote, cheaply and reproducibly:

* **cells**: one per domain of the output `documents/` (or per language where the run has no domain column),
  counting each document once (up-sampled copies, `mix_copy > 0`, are skipped); one per integer bucket of the
  quality score over the documents that reached the mix (kept, plus the rows the mix stage rejected); one per
  (drop stage, drop reason) of `rejected/`, which exists only for runs with `output.keep_rejected`.
* **which documents**: the `k` smallest `hash64(seed, id)` of each cell (a bottom-k sample). It depends on
  the seed and the ids only, so the same rows give the same samples whatever the partitioning into files, the
  order of the files or the engine that wrote them.
* **bounded**: each source (`documents/`, and each stage's `rejected/<label>-part-*` files) is scanned, in
  sorted file order, for at most `max_rows` rows, reading only the light columns the choice needs (id, group,
  score, reason). Only then are the chosen rows' text and fields read, from their row groups alone (parts are
  small: the runner cuts them at `part_bytes`). A scan that stopped early says so.
* **never fatal**: a file that cannot be read is noted by name and skipped; a report never fails for it.

Everything read here is untrusted crawl text; the caller escapes it when it renders pages.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import yaml

from corpusmill.core import schema
from corpusmill.core.hashing import encode_key
from corpusmill.core.location import RunPath, open_parquet
from corpusmill.mixtures.accounting import QUALITY_BINS, QUALITY_MAX, quality_bin
from corpusmill.mixtures.report import stage_name

logger = logging.getLogger(__name__)

PER_CELL = 5
MAX_SCAN_ROWS = 200_000  # per source: documents/, and each stage's rejected/ files
MAX_FIELD_CHARS = 2_000  # of any other string field (a URL, a drop detail)
QUALITY_BUCKETS = int(QUALITY_MAX)  # integer buckets 0-1 .. 4-5 of the 0-5 quality score
BATCH_ROWS = 65_536
SCORE_PREFIX = "score__"
MIX_COPY = "mix_copy"
TOKEN_COUNT = "token_count"
DOMAIN, DOMAIN_CONFIDENCE = "domain", "domain_confidence"
# Never shown: the text has a place of its own, and token ids or raw HTML help no reader.
HIDDEN_COLUMNS = frozenset({schema.TEXT, schema.HTML, "tokens"})
_REJECTED_PART = re.compile(r"^(?P<label>.+)-part-\d+\.parquet$")

DOMAIN_KIND, LANGUAGE_KIND, QUALITY_KIND, DROP_KIND = "domain", "language", "quality", "drop"


@dataclass(frozen=True)
class Grouping:
    """How a run's documents fall into cells: by which column, and where its mix stage left its drops."""

    kind: str  # DOMAIN_KIND or LANGUAGE_KIND
    column: str
    unlabelled: str  # what a null in the column counts as
    quality_column: str
    mix_labels: tuple[str, ...]  # stage labels whose rejected rows reached the mix
    seed: int


@dataclass(frozen=True)
class Source:
    """Files scanned together under one row budget: `documents/`, or one stage's part of `rejected/`."""

    name: str  # "documents" or "rejected/<label>"
    files: tuple[RunPath, ...]
    stage: str | None  # the stage label of a rejected source


@dataclass(frozen=True, order=True)
class Location:
    """Where a candidate row is: its file (by index into all scanned files), row group and row in it."""

    file: int
    row_group: int
    row: int


@dataclass
class Cell:
    """One cell being sampled: how many rows fell in it, and the bottom-k of their hashes so far."""

    kind: str
    key: str
    rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # finer counts: kept or dropped, copies, tokens
    sources: set[str] = field(default_factory=set)
    heap: list[tuple[int, str, Location]] = field(default_factory=list)  # (-hash, id, where): a max-heap
    ids: set[str] = field(default_factory=set)

    def offer(self, value: int, doc_id: str, where: Location, k: int) -> None:
        """Keep the row if its hash is among the k smallest seen (ids already held are not taken twice)."""
        if doc_id in self.ids:
            return
        entry = (-value, doc_id, where)
        if len(self.heap) < k:
            heapq.heappush(self.heap, entry)
        elif (value, doc_id) < (-self.heap[0][0], self.heap[0][1]):
            _, dropped, _ = heapq.heapreplace(self.heap, entry)
            self.ids.discard(dropped)
        else:
            return
        self.ids.add(doc_id)

    def chosen(self) -> list[Location]:
        """The sampled rows, smallest hash first (the order they are shown in)."""
        return [where for _, _, where in sorted(self.heap, key=lambda e: (-e[0], e[1]))]

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n


@dataclass
class Scan:
    """How far one source was read."""

    source: str
    files: int
    files_read: int = 0
    rows_read: int = 0
    complete: bool = True  # read to its end (False: the row budget ran out)
    files_damaged: int = 0

    @property
    def whole(self) -> bool:
        """Whether every row of the source was seen, so the counts of its cells are the run's."""
        return self.complete and not self.files_damaged

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "files": self.files,
            "files_read": self.files_read,
            "files_damaged": self.files_damaged,
            "rows_read": self.rows_read,
            "complete": self.complete,
        }


@dataclass
class SampleSet:
    """What sampling found: the cells, each with its chosen documents, and every chosen document in full."""

    grouping: Grouping
    cells: list[Cell]
    documents: dict[Location, dict[str, Any]]  # the chosen rows' fields, text included (capped)
    scans: list[Scan]
    damaged: list[dict[str, str]]  # files that could not be read: {"file", "error"}
    has_rejected: bool
    per_cell: int
    max_rows: int


# --- what a run holds --------------------------------------------------------------------------------------


def _recipe(run_dir: RunPath) -> dict[str, Any]:
    try:
        recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8"))
    except (FileNotFoundError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    return recipe if isinstance(recipe, dict) else {}


def _parquet_files(directory: RunPath) -> list[RunPath]:
    if not directory.is_dir():
        return []
    return sorted(directory.glob("*.parquet"), key=lambda p: p.name)


def sources_of(run_dir: RunPath) -> tuple[Source | None, list[Source]]:
    """The run's `documents/` and its `rejected/` files grouped by stage label, each in sorted file order."""
    documents = _parquet_files(run_dir / "documents")
    by_label: dict[str, list[RunPath]] = {}
    for path in _parquet_files(run_dir / "rejected"):
        found = _REJECTED_PART.match(path.name)
        by_label.setdefault(found["label"] if found else path.name, []).append(path)
    kept = Source("documents", tuple(documents), None) if documents else None
    rejected = [Source(f"rejected/{label}", tuple(files), label) for label, files in sorted(by_label.items())]
    return kept, rejected


def grouping_of(run_dir: RunPath, stats: dict[str, Any], columns: Iterable[str]) -> Grouping:
    """Cells follow the run's mix stage where it has one (its domain column and unlabelled name, so a domain's
    samples are the mixture's domain), else a `domain` column, else the language."""
    recipe = _recipe(run_dir)
    mix = next(
        (
            s
            for s in recipe.get("stages") or []
            if isinstance(s, dict) and stage_name(str(s.get("stage", ""))) == "mix"
        ),
        {},
    )
    names = set(columns)
    if mix and str(mix.get("domain_column") or DOMAIN) in names:
        column, kind = str(mix.get("domain_column") or DOMAIN), DOMAIN_KIND
        unlabelled = str(mix.get("unlabelled_domain") or "other")
    elif DOMAIN in names:
        column, kind, unlabelled = DOMAIN, DOMAIN_KIND, "unlabelled"
    else:
        column, kind, unlabelled = schema.LANG, LANGUAGE_KIND, "unknown"
    plans = stats.get("plans", {})
    seed = recipe.get("seed", 0)
    return Grouping(
        kind=kind,
        column=column,
        unlabelled=unlabelled,
        quality_column=str(mix.get("quality_column") or f"{SCORE_PREFIX}quality"),
        mix_labels=tuple(sorted(label for label, plan in plans.items() if "mixture" in plan)),
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else 0,
    )


def _first_columns(source: Source | None) -> list[str]:
    """The column names of the first readable file of `documents/` (what decides the grouping)."""
    for path in source.files if source else ():
        try:
            return list(open_parquet(path).schema_arrow.names)
        except Exception:  # a damaged file is noted when it is scanned
            continue
    return []


# --- choosing ----------------------------------------------------------------------------------------------


def quality_bucket(score: float) -> int:
    """The integer bucket (0-1 .. 4-5) of a quality score: the report's 0.25 bins taken four at a time, so a
    bucket's documents are exactly those of its bins in the mixture's histograms."""
    return quality_bin(score) * QUALITY_BUCKETS // QUALITY_BINS


class _Sampler:
    """Feeds the scanned rows of each source into their cells."""

    def __init__(self, grouping: Grouping, per_cell: int, max_rows: int) -> None:
        self.grouping, self.per_cell, self.max_rows = grouping, per_cell, max_rows
        self.hash = id_hasher(grouping.seed)
        self.cells: dict[tuple[str, str], Cell] = {}
        self.files: list[RunPath] = []
        self.file_names: list[str] = []
        self.scans: list[Scan] = []
        self.damaged: list[dict[str, str]] = []

    def cell(self, kind: str, key: str, source: str) -> Cell:
        found = self.cells.get((kind, key))
        if found is None:
            found = self.cells[(kind, key)] = Cell(kind, key)
        found.sources.add(source)
        return found

    def scan(self, source: Source) -> None:
        """Read `source`'s light columns, file by file, until its row budget is spent."""
        scan = Scan(source.name, len(source.files))
        self.scans.append(scan)
        for path in source.files:
            if scan.rows_read >= self.max_rows:
                scan.complete = False
                break
            index = len(self.files)
            self.files.append(path)
            self.file_names.append(_relative(path))
            try:
                light = self._read_light(path, source, self.max_rows - scan.rows_read)
            except Exception as exc:  # any damage: the file is named and skipped, the report goes on
                self._damaged(index, exc)
                scan.files_damaged += 1
                continue
            scan.files_read += 1
            scan.rows_read += light.num_rows
            scan.complete = scan.complete and light.whole
            self._take(source, index, light)

    def _read_light(self, path: RunPath, source: Source, budget: int) -> _Light:
        """The light columns of up to `budget` rows of one file, all read before any is used (a file that fails
        half way adds nothing)."""
        handle = open_parquet(path)
        names = set(handle.schema_arrow.names)
        if schema.ID not in names:
            raise ValueError(f"no `{schema.ID}` column")
        g = self.grouping
        wanted = [schema.ID, g.quality_column]
        wanted += (
            [g.column, MIX_COPY, TOKEN_COUNT]
            if source.stage is None
            else [schema.DROP_STAGE, schema.DROP_REASON]
        )
        columns = [c for c in dict.fromkeys(wanted) if c in names]
        batches: list[pa.RecordBatch] = []
        groups: list[np.ndarray] = []
        rows: list[np.ndarray] = []
        read = 0
        for group in range(handle.metadata.num_row_groups):
            offset = 0
            for batch in handle.iter_batches(batch_size=BATCH_ROWS, row_groups=[group], columns=columns):
                take = min(batch.num_rows, budget - read)
                batches.append(batch.slice(0, take))
                groups.append(np.full(take, group, dtype=np.int64))
                rows.append(np.arange(offset, offset + take, dtype=np.int64))
                offset += batch.num_rows
                read += take
                if read >= budget:
                    break
            if read >= budget:
                break
        table = (
            pa.Table.from_batches(batches) if batches else handle.schema_arrow.empty_table().select(columns)
        )
        return _Light(
            table,
            np.concatenate(groups) if groups else np.zeros(0, np.int64),
            np.concatenate(rows) if rows else np.zeros(0, np.int64),
            whole=read == handle.metadata.num_rows,
        )

    def _take(self, source: Source, index: int, light: _Light) -> None:
        """Count one file's rows into their cells and offer each cell its rows of smallest hash."""
        g = self.grouping
        ids = [str(v) for v in light.table.column(schema.ID).to_pylist()]
        hashes = np.fromiter(map(self.hash, ids), dtype=np.uint64, count=len(ids))
        scores = _numbers(light.table, g.quality_column, np.nan)
        offer = partial(self._offer, ids=ids, hashes=hashes, index=index, light=light)
        if source.stage is None:
            original = _numbers(light.table, MIX_COPY, 0) <= 0  # copies the mix made count as copies only
            tokens = (
                _numbers(light.table, TOKEN_COUNT, 0) if TOKEN_COUNT in light.table.column_names else None
            )
            values = _strings(light.table, g.column)
            for key, rows in _groups(_group_key(v, g.unlabelled) for v in values).items():
                cell = self.cell(g.kind, key, source.name)
                kept = rows[original[rows]]
                if len(kept) < len(rows):
                    cell.count("copies", len(rows) - len(kept))
                cell.rows += len(kept)
                if tokens is not None:
                    cell.count("tokens", int(tokens[kept].sum()))
                offer(cell, kept)
            self._buckets(source, scores, original, "kept", offer)
            return
        stages = _strings(light.table, schema.DROP_STAGE)
        reasons = _strings(light.table, schema.DROP_REASON)
        keys = (
            drop_key(str(s or source.stage), str(r or "unknown"))
            for s, r in zip(stages, reasons, strict=True)
        )
        for key, rows in _groups(keys).items():
            cell = self.cell(DROP_KIND, key, source.name)
            cell.rows += len(rows)
            offer(cell, rows)
        if source.stage in g.mix_labels:
            self._buckets(source, scores, np.ones(len(ids), dtype=bool), "dropped", offer)

    def _buckets(
        self,
        source: Source,
        scores: np.ndarray,
        rows: np.ndarray,
        fate: str,
        offer: Callable[[Cell, np.ndarray], None],
    ) -> None:
        """Count and offer the scored rows among `rows` (a mask) to their quality buckets."""
        scored = rows & np.isfinite(scores)
        buckets = quality_buckets(scores)
        for bucket in np.unique(buckets[scored]):
            cell = self.cell(QUALITY_KIND, str(int(bucket)), source.name)
            chosen = np.flatnonzero(scored & (buckets == bucket))
            cell.rows += len(chosen)
            cell.count(fate, len(chosen))
            offer(cell, chosen)

    def _offer(
        self, cell: Cell, rows: np.ndarray, *, ids: list[str], hashes: np.ndarray, index: int, light: _Light
    ) -> None:
        """Offer a cell the `per_cell` rows of smallest hash among `rows` (the others could never be chosen)."""
        k = self.per_cell
        if k <= 0 or not len(rows):
            return
        if len(rows) > k:
            rows = rows[np.argpartition(hashes[rows], k - 1)[:k]]
        for row in rows.tolist():
            where = Location(index, int(light.row_groups[row]), int(light.rows[row]))
            cell.offer(int(hashes[row]), ids[row], where, k)

    def _damaged(self, index: int, exc: Exception) -> None:
        name = self.file_names[index]
        logger.warning("report samples: skipped %s, which could not be read: %s", name, exc)
        self.damaged.append({"file": name, "error": f"{type(exc).__name__}: {exc}"[:MAX_FIELD_CHARS]})

    def fetch(self) -> dict[Location, dict[str, Any]]:
        """The chosen rows' fields and text, reading only the row groups that hold them."""
        wanted: dict[int, dict[int, set[int]]] = {}
        for cell in self.cells.values():
            for where in cell.chosen():
                wanted.setdefault(where.file, {}).setdefault(where.row_group, set()).add(where.row)
        found: dict[Location, dict[str, Any]] = {}
        failed: set[int] = set()
        for index, groups in sorted(wanted.items()):
            try:
                found.update(_read_rows(self.files[index], index, groups))
            except Exception as exc:
                self._damaged(index, exc)
                failed.add(index)
        for cell in self.cells.values():  # a row whose file failed now is no sample
            if failed:
                cell.heap = [e for e in cell.heap if e[2].file not in failed]
                heapq.heapify(cell.heap)
        return found


@dataclass(frozen=True)
class _Light:
    """The light columns of the rows read from one file, and where each row is (row group, row in it)."""

    table: pa.Table
    row_groups: np.ndarray
    rows: np.ndarray
    whole: bool  # the file was read to its end

    @property
    def num_rows(self) -> int:
        return self.table.num_rows


def _numbers(table: pa.Table, name: str, missing: float) -> np.ndarray:
    """A numeric column as floats, nulls (and a column that is absent or not numeric) as `missing`."""
    if name in table.column_names:
        column = table.column(name)
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            return column.cast(pa.float64()).fill_null(missing).to_numpy()
    return np.full(table.num_rows, missing, dtype=np.float64)


def _strings(table: pa.Table, name: str) -> list[Any]:
    return table.column(name).to_pylist() if name in table.column_names else [None] * table.num_rows


def _groups(keys: Iterable[str]) -> dict[str, np.ndarray]:
    """The row numbers of each key, in row order."""
    rows: dict[str, list[int]] = {}
    for row, key in enumerate(keys):
        rows.setdefault(key, []).append(row)
    return {key: np.asarray(found, dtype=np.int64) for key, found in rows.items()}


def quality_buckets(scores: np.ndarray) -> np.ndarray:
    """`quality_bucket` of many scores at once (the same float arithmetic as `quality_bin`); NaN gives 0."""
    bins = np.clip(np.floor(np.nan_to_num(scores) / QUALITY_MAX * QUALITY_BINS), 0, QUALITY_BINS - 1)
    return bins.astype(np.int64) * QUALITY_BUCKETS // QUALITY_BINS


def id_hasher(seed: int) -> Callable[[str], int]:
    """`hash64(seed, doc_id)` for many ids: the seed's part of the key is encoded once (`encode_key` of several
    parts is the concatenation of theirs), which makes a scan at its row bound several times faster."""
    prefix = encode_key(seed) + b"s"
    blake2b = hashlib.blake2b

    def hashed(doc_id: str) -> int:
        data = doc_id.encode("utf-8")
        key = prefix + len(data).to_bytes(8, "little") + data
        return int.from_bytes(blake2b(key, digest_size=8).digest(), "big")

    return hashed


def drop_key(stage: str, reason: str) -> str:
    """A drop cell's key: stage labels hold no `/`, so `stage/reason` splits back unambiguously."""
    return f"{stage}/{reason}"


def _group_key(value: Any, unlabelled: str) -> str:
    return unlabelled if value is None else str(value)


def _relative(path: RunPath) -> str:
    """A file's name relative to its run (`documents/part-00001.parquet`), the same wherever the run is."""
    return f"{path.parent.name}/{path.name}"


def _readable(type_: pa.DataType) -> bool:
    return (
        pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
        or pa.types.is_integer(type_)
        or pa.types.is_floating(type_)
        or pa.types.is_boolean(type_)
    )


def _read_rows(path: RunPath, index: int, groups: dict[int, set[int]]) -> dict[Location, dict[str, Any]]:
    handle = open_parquet(path)
    columns = [
        f.name
        for f in handle.schema_arrow
        if (f.name not in HIDDEN_COLUMNS and _readable(f.type)) or f.name == schema.TEXT
    ]
    out: dict[Location, dict[str, Any]] = {}
    for group, rows in sorted(groups.items()):
        ordered = sorted(rows)
        table = handle.read_row_group(group, columns=columns).take(pa.array(ordered, pa.int64()))
        for row, record in zip(ordered, table.to_pylist(), strict=True):
            out[Location(index, group, row)] = record
    return out


def sample_run(
    run_dir: RunPath,
    stats: dict[str, Any],
    *,
    per_cell: int = PER_CELL,
    max_rows: int = MAX_SCAN_ROWS,
) -> SampleSet:
    """Pick up to `per_cell` documents of every cell of a finished run, reading at most `max_rows` rows of
    each source, and read the chosen ones in full."""
    kept, rejected = sources_of(run_dir)
    grouping = grouping_of(run_dir, stats, _first_columns(kept))
    sampler = _Sampler(grouping, per_cell, max_rows)
    for source in [kept, *rejected]:
        if source is not None:
            sampler.scan(source)
    documents = sampler.fetch()
    return SampleSet(
        grouping=grouping,
        cells=list(sampler.cells.values()),
        documents=documents,
        scans=sampler.scans,
        damaged=sampler.damaged,
        has_rejected=bool(rejected),
        per_cell=per_cell,
        max_rows=max_rows,
    )


def split_drop_key(key: str) -> tuple[str, str]:
    """(stage, reason) from a drop cell's key."""
    stage, _, reason = key.partition("/")
    return stage, reason
