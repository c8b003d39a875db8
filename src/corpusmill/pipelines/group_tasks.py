"""The tasks of a group step (deduplication), each over parts or over hash buckets, never on the driver.

A group stage only says which keys each document has (and, to verify candidates, a per-document side record
such as a sketch). Turning keys into decisions is a chain of bucketed phases (see `buckets.py`):

1. `KeysTask`, per part: the part's keys bucketed by key; its side records and its members (`id` -> part
   index) bucketed by id.
2. `CandidatesTask`, per key bucket: documents sharing a key become star edges to the group's smallest id.
   Without side data those edges are final; with it they go on, bucketed by their first id.
3. `AttachTask`, per id bucket: each candidate pair gets the side record of its first document and moves on,
   bucketed by its second.
4. `ConfirmTask`, per id bucket: with both side records at hand the stage keeps the pairs that really are
   duplicates.
5. `StarTask`, per id bucket, alternately large-star and small-star (`core.components`) until no bucket
   changes anything; the last small-star step's decisions, bucketed by part, are final.
6. `ApplyDuplicatesTask`, per part: reads its own bucket of the decisions and drops what they name.

Each task holds one part's or one bucket's rows, so memory per worker is bounded by the bucket size, which
the driver sets from the number of parts; the driver itself holds file names and counts only.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.core import schema
from corpusmill.core.atomic import write_json
from corpusmill.core.components import ADJACENCY_SCHEMA, NODE, adjacency, large_star, small_star
from corpusmill.core.grouping import DUPLICATE_OF, EDGE_SCHEMA, ID, KEY, KEY_SCHEMA, star_edges, unique_edges
from corpusmill.core.location import copy_file, run_path
from corpusmill.core.stage import GroupStage, Stage
from corpusmill.core.stats import Stats
from corpusmill.pipelines.borrow import Borrower, derived_identity
from corpusmill.pipelines.buckets import (
    PARQUET,
    bucket_count,
    bucket_files,
    bucket_of,
    read_all,
    read_bucket,
    write_buckets,
)
from corpusmill.pipelines.parts import (
    PartSource,
    PartSpec,
    _filter_part,
    _finish,
    _finished,
    _OneStageTask,
    borrow_filtered,
)

BUCKET = "bucket"
PART = "part"
# A member's part is its name, not its position: an index taken over by a later run stays right when parts
# are numbered differently there.
MEMBER_SCHEMA = pa.schema([pa.field(ID, pa.string()), pa.field(PART, pa.string())])
SIDE_PREFIX = "side__"


@dataclass(frozen=True)
class BucketLayout:
    """Where the phases of one group step write, and into how many buckets.

    The keys phase writes the step's dedup index under `index_dir` (Parquet, one row group per bucket): it
    outlives the run, and a run built on this one takes the keys of unchanged parts from it.
    """

    step_dir: Path
    buckets: int
    part_names: tuple[str, ...]
    index_dir: Path | None = None

    def directory(self, phase: str) -> Path:
        """A phase's directory: its bucketed files and its tasks' markers."""
        if phase in INDEX_PHASES and self.index_dir is not None:
            return self.index_dir / phase.rsplit("/", 1)[-1]
        return self.step_dir / phase

    def suffix(self, phase: str) -> str:
        """The index phases write Parquet, the hand-over phases Arrow IPC."""
        return PARQUET if phase in INDEX_PHASES and self.index_dir is not None else ".arrow"

    def file(self, phase: str, name: str) -> Path:
        """The file one task of a phase writes."""
        return self.directory(phase) / f"{name}{self.suffix(phase)}"

    def bucket_names(self) -> list[str]:
        """`bucket-00000` ...: the names bucket tasks run under."""
        return [f"bucket-{b:05d}" for b in range(self.buckets)]

    def bucket_parts(self) -> list[PartSpec]:
        """The work items an engine maps a bucket task over."""
        return [PartSpec(name, (), BUCKET) for name in self.bucket_names()]

    def files(self, phase: str, by_part: bool = False) -> list[Path]:
        """The files a phase wrote: one per part (keys phases) or per bucket."""
        names = list(self.part_names) if by_part else self.bucket_names()
        return bucket_files(self.directory(phase), names, self.suffix(phase))

    def side_files(self, side_parts: Sequence[str]) -> list[Path]:
        """The side files: only parts that read any document wrote one (an empty input file writes none)."""
        return bucket_files(self.directory(SIDE), side_parts, self.suffix(SIDE))


KEYS, SIDE, MEMBERS, CANDIDATES, ATTACHED = "keys", "keys/side", "keys/members", "candidates", "attached"
INDEX_PHASES = (KEYS, SIDE, MEMBERS)


def cc_phase(step: int) -> str:
    """Directory of the adjacency rows after `step` star steps (0: the confirmed edges)."""
    return f"components-{step:02d}"


def decisions_phase(step: int) -> str:
    """Directory of the decisions written by star step `step` (a small-star step)."""
    return f"decisions-{step:02d}"


def _bucket_index(part: PartSpec) -> int:
    return int(part.name.rsplit("-", 1)[1])


def _write_by(path: Path, table: pa.Table, column: str, count: int) -> None:
    write_buckets(path, table, bucket_of(table.column(column), count), count)


@dataclass
class KeysTask(_OneStageTask):
    """Per part: keys bucketed by key; side records and members bucketed by document id."""

    _kind: ClassVar[type[Stage]] = GroupStage

    source: PartSource
    layout: BucketLayout
    borrower: Borrower | None = None

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        """Write the part's three bucketed files, or return its marker (or the base run's, for its index)."""
        keys_dir = self.layout.directory(KEYS)
        done = _finished(keys_dir, part) or self._borrow(part)
        if done is not None:
            return done
        self.setup()
        assert self._built is not None
        stats: dict[str, Stats] = {}
        keys, sides, ids = [], [], []
        for batch in self.source.batches(part, stats):
            batch_keys, side = self._built.keys_and_side_data(batch)
            keys.append(batch_keys.select([KEY, ID]).cast(KEY_SCHEMA))
            ids.append(batch.column(schema.ID).cast(pa.string()))
            if side is not None:
                sides.append(_with_string_ids(side))
        count = self.layout.buckets
        key_table = pa.concat_tables(keys) if keys else KEY_SCHEMA.empty_table()
        _write_by(self.layout.file(KEYS, part.name), key_table, KEY, count)
        if sides:
            _write_by(self.layout.file(SIDE, part.name), pa.concat_tables(sides), ID, count)
        all_ids = pa.chunked_array(ids, pa.string()) if ids else pa.chunked_array([], pa.string())
        members = pa.table(
            {ID: all_ids, PART: pa.array([part.name] * len(all_ids), pa.string())}, schema=MEMBER_SCHEMA
        )
        _write_by(self.layout.file(MEMBERS, part.name), members, ID, count)
        stats[self.stage.label] = self._built.take_stats()
        return _finish(keys_dir, part, None, key_table.num_rows, stats, side=bool(sides))

    def _borrow(self, part: PartSpec) -> dict[str, Any] | None:
        """The base run's index files of an unchanged part, linked, or re-bucketed when this run has another
        bucket count (its parts are more); the members' part is renamed to this run's."""
        borrower = self.borrower
        if borrower is None or borrower.base_name(part.name) is None:
            return None
        keys_dir = self.layout.directory(KEYS)
        base = borrower.marker(keys_dir, part.name, part.identity)
        if base is None:
            return None
        base_name = borrower.base_name(part.name)
        phases = [KEYS, MEMBERS] + ([SIDE] if base.get("side") else [])
        sources = {
            phase: borrower.base_of(self.layout.directory(phase)) / f"{base_name}{PARQUET}"
            for phase in phases
        }
        if not all(path.exists() for path in sources.values()):
            return None
        renamed = base_name != part.name
        for phase, source in sources.items():
            target = self.layout.file(phase, part.name)
            if bucket_count(source) == self.layout.buckets and not (renamed and phase == MEMBERS):
                copy_file(source, target)
                continue
            table = read_all(source)
            if phase == MEMBERS:
                table = table.set_column(1, PART, pa.array([part.name] * table.num_rows, pa.string()))
            _write_by(target, table, KEY if phase == KEYS else ID, self.layout.buckets)
        for folder, name in borrower.read_files(
            part.name, (self.source.skipped_dir, self.source.documents_dir)
        ):
            copy_file(borrower.base_of(folder) / name, run_path(folder) / f"{part.name}{PARQUET}")
        done = {**base, "part": part.name, "borrowed": True}
        write_json(keys_dir / f"{part.name}.done.json", done)
        return done


def _digest(duplicate_of: dict[str, str]) -> str:
    """A digest of a part's decisions ("" when it has none, so its identity stays its input's)."""
    if not duplicate_of:
        return ""
    data = json.dumps(sorted(duplicate_of.items()), separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def _with_string_ids(table: pa.Table) -> pa.Table:
    position = table.schema.get_field_index(ID)
    return table.set_column(position, ID, table.column(ID).cast(pa.string()))


@dataclass
class _BucketTask:
    """A task over the buckets of a group step; subclasses read the previous phase and write their own."""

    layout: BucketLayout

    def setup(self) -> None:
        """Nothing to load: bucket tasks only move and join rows."""

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class CandidatesTask(_BucketTask):
    """Per key bucket: star edges of every key group, sent on to verification or straight to components."""

    verify: bool = True

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        """Write the bucket's candidate edges, or return its marker."""
        out_dir = self.layout.directory(CANDIDATES if self.verify else cc_phase(0))
        done = _finished(out_dir, part)
        if done is not None:
            return done
        keys = read_bucket(self.layout.files(KEYS, by_part=True), _bucket_index(part), KEY_SCHEMA)
        edges = unique_edges(star_edges(keys))
        out = out_dir / f"{part.name}.arrow"
        if self.verify:
            _write_by(out, edges, ID, self.layout.buckets)
        else:
            _write_by(out, adjacency(edges), NODE, self.layout.buckets)
        return _finish(out_dir, part, None, edges.num_rows, {})


@dataclass
class AttachTask(_BucketTask):
    """Per id bucket: give each candidate pair its first document's side record, then send it to the second's."""

    side_parts: tuple[str, ...] = ()

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        """Write the bucket's pairs with their side records, or return its marker."""
        out_dir = self.layout.directory(ATTACHED)
        done = _finished(out_dir, part)
        if done is not None:
            return done
        bucket = _bucket_index(part)
        edges = unique_edges(read_bucket(self.layout.files(CANDIDATES), bucket, EDGE_SCHEMA))
        side = read_bucket(self.layout.side_files(self.side_parts), bucket)
        rows = _rows_of(edges.column(ID), side)
        attached = edges
        for name in side.column_names:
            if name != ID:
                attached = attached.append_column(SIDE_PREFIX + name, side.column(name).take(rows))
        _write_by(out_dir / f"{part.name}.arrow", attached, DUPLICATE_OF, self.layout.buckets)
        return _finish(out_dir, part, None, attached.num_rows, {})


def _rows_of(ids: pa.ChunkedArray | pa.Array, side: pa.Table) -> pa.Array:
    """Positions in `side` of `ids`; a document in a pair without a side record is an error naming it."""
    found = pc.index_in(ids, value_set=side.column(ID))
    if found.null_count:
        missing = pc.filter(ids, pc.is_null(found))[0].as_py()
        raise KeyError(f"deduplication: document {missing!r} of a candidate pair has no side record")
    return found


@dataclass
class ConfirmTask(_OneStageTask):
    """Per id bucket: the stage verifies each pair with both side records; confirmed edges go to components."""

    _kind: ClassVar[type[Stage]] = GroupStage

    layout: BucketLayout
    side_parts: tuple[str, ...]

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        """Write the bucket's confirmed edges as adjacency rows, or return its marker."""
        out_dir = self.layout.directory(cc_phase(0))
        done = _finished(out_dir, part)
        if done is not None:
            return done
        self.setup()
        assert self._built is not None
        bucket = _bucket_index(part)
        attached = read_bucket(self.layout.files(ATTACHED), bucket)
        side = read_bucket(self.layout.side_files(self.side_parts), bucket)
        edges = attached.select([ID, DUPLICATE_OF]).cast(EDGE_SCHEMA)
        firsts = pa.table(
            {
                name: attached.column(SIDE_PREFIX + name) if name != ID else attached.column(ID)
                for name in side.column_names
            }
        ).cast(side.schema)
        seconds = side.filter(pc.is_in(side.column(ID), value_set=pc.unique(edges.column(DUPLICATE_OF))))
        confirmed = (
            self._built.confirm(edges, pa.concat_tables([firsts, seconds])) if edges.num_rows else edges
        )
        _write_by(out_dir / f"{part.name}.arrow", adjacency(confirmed), NODE, self.layout.buckets)
        stats = {self.stage.label: self._built.take_stats()}
        return _finish(out_dir, part, None, confirmed.num_rows, stats)


@dataclass
class StarTask(_BucketTask):
    """Per id bucket: one large-star or small-star step over the bucket's nodes (`core.components`)."""

    step: int = 1

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        """Write the bucket's next adjacency rows (and, for small-star, its decisions by part), or the marker."""
        out_dir = self.layout.directory(cc_phase(self.step))
        done = _finished(out_dir, part)
        if done is not None:
            return done
        bucket = _bucket_index(part)
        rows = read_bucket(self.layout.files(cc_phase(self.step - 1)), bucket, ADJACENCY_SCHEMA)
        small = self.step % 2 == 0
        result = small_star(rows) if small else large_star(rows)
        _write_by(out_dir / f"{part.name}.arrow", adjacency(result.edges), NODE, self.layout.buckets)
        if small:
            members = read_bucket(self.layout.files(MEMBERS, by_part=True), bucket, MEMBER_SCHEMA)
            decisions = result.decisions
            owner = pc.take(members.column(PART), _rows_of(decisions.column(ID), members))
            position = {name: index for index, name in enumerate(self.layout.part_names)}
            write_buckets(
                self.layout.directory(decisions_phase(self.step)) / f"{part.name}.arrow",
                decisions,
                np.array([position[name] for name in owner.to_pylist()], np.int64),
                len(self.layout.part_names),
            )
        return _finish(out_dir, part, None, result.edges.num_rows, {}, changed=result.changed)


@dataclass
class ApplyDuplicatesTask:
    """Per part: drop every document that the final decisions name as a duplicate."""

    stage_label: str
    drop_reason: str
    layout: BucketLayout
    decisions: str | None  # the decisions phase, or None when no document has a duplicate
    source: PartSource
    out_dir: Path
    rejected_dir: Path
    keep_rejected: bool
    borrower: Borrower | None = None

    def setup(self) -> None:
        """Nothing per worker: each part reads only its own bucket of the decisions."""

    def close(self) -> None:
        """Nothing to release."""

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        """Write the part without its duplicates, or return its marker.

        The part's output depends on its decisions as well as its input, so both make its identity: a base
        part whose duplicates are the same is taken over, one whose duplicates changed is written again.
        """
        duplicate_of: dict[str, str] = {}
        if self.decisions is not None:
            index = self.layout.part_names.index(part.name)
            table = read_bucket(self.layout.files(self.decisions), index, EDGE_SCHEMA)
            duplicate_of = dict(
                zip(table.column(ID).to_pylist(), table.column(DUPLICATE_OF).to_pylist(), strict=True)
            )
        identity = derived_identity(part.identity, _digest(duplicate_of))
        done = _finished(self.out_dir, part, identity) or borrow_filtered(
            self.borrower, part, self.out_dir, self.rejected_dir, identity
        )
        if done is not None:
            return done
        transforms = [(self.stage_label, functools.partial(self._mark_duplicates, duplicate_of))]
        stats: dict[str, Stats] = {self.stage_label: Stats()}
        return _filter_part(
            part,
            self.source,
            transforms,
            self.out_dir,
            self.rejected_dir,
            self.keep_rejected,
            stats,
            identity=identity,
        )

    def _mark_duplicates(self, duplicate_of: dict[str, str], batch: pa.RecordBatch) -> pa.RecordBatch:
        originals = [duplicate_of.get(doc_id) for doc_id in batch.column(schema.ID).to_pylist()]
        reasons = [self.drop_reason if original else None for original in originals]
        details = [f"duplicate of {original}" if original else None for original in originals]
        return schema.mark_drops(batch, reasons, details)
