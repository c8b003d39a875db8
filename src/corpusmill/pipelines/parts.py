"""Work on one part: the unit every engine schedules.

A part is one input file, and later the parquet file that a step wrote for it. Tasks here are plain,
picklable callables: an engine ships one to its workers, calls `setup()` once per worker (stages load their
models there) and then calls it on parts. Each task writes its outputs atomically and finishes with a
`<part>.done.json` marker holding the part's stats; a task that finds its marker returns it without redoing
anything, which is all that resuming a run takes (the result it returns says `resumed`, which the marker
itself never holds). A marker records the identity of the input files its part was made from (names, sizes,
content versions), and is reused only for a part with the same identity: a marker is never taken for other
files. Reading a part's documents (and accounting for the input it skips) is `part_source`'s; its names are
importable from here as well.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.core import schema
from corpusmill.core.atomic import write_json
from corpusmill.core.stage import MapStage, PlanStage, SinkContext, SinkStage, Stage
from corpusmill.core.stats import Stats
from corpusmill.pipelines.borrow import Borrower, derived_identity
from corpusmill.pipelines.graph import PlannedStage
from corpusmill.pipelines.part_source import INTERMEDIATE as INTERMEDIATE
from corpusmill.pipelines.part_source import READ_STATS as READ_STATS
from corpusmill.pipelines.part_source import PartSource as PartSource
from corpusmill.pipelines.part_source import rebatch as rebatch
from corpusmill.pipelines.part_writer import PartWriter
from corpusmill.pipelines.takedown import TAKEDOWN_LABEL, Takedown

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartSpec:
    """Where one part's documents come from: input files (read with one reader format) or an intermediate file.

    `names` are the input files' names relative to the input root (one per uri; ids are built from them), and
    `identity` is a digest of the input files the part stems from (names, sizes, versions): intermediate parts
    carry their input part's identity, so every step's marker is tied to the same input bytes.
    """

    name: str
    uris: tuple[str, ...]
    fmt: str
    names: tuple[str, ...] = ()
    identity: str = ""

    def to_json(self) -> str:
        """Serialise for engines that move rows of strings."""
        return json.dumps(
            {
                "name": self.name,
                "uris": list(self.uris),
                "fmt": self.fmt,
                "names": list(self.names),
                "identity": self.identity,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> PartSpec:
        """Inverse of `to_json`."""
        data = json.loads(text)
        return cls(
            data["name"],
            tuple(data["uris"]),
            data["fmt"],
            tuple(data.get("names", ())),
            data.get("identity", ""),
        )

    def file_names(self) -> tuple[str, ...]:
        """The name of each uri: the given names, or the uris themselves for parts built without them."""
        return self.names if len(self.names) == len(self.uris) else self.uris


def _counting(batches: Iterator[pa.RecordBatch], stats: Stats) -> Iterator[pa.RecordBatch]:
    """Pass batches through, counting them as both in and out (sinks keep every document)."""
    for batch in batches:
        stats.incr("docs_in", batch.num_rows)
        stats.incr("docs_out", batch.num_rows)
        yield batch


# Set in the result of a task that found its part finished by an earlier run (never written into a marker).
RESUMED = "resumed"


def not_computed(result: dict[str, Any]) -> bool:
    """Whether a part's result was found finished (by a resumed run) or taken over from a base run rather
    than computed by this invocation: what `nodes` in stats.json counts as reused, and timings.json too."""
    return bool(result.get(RESUMED) or result.get("borrowed"))


def _marker(directory: Path, part: PartSpec) -> Path:
    return directory / f"{part.name}.done.json"


class PartNotFinished(RuntimeError):
    """A part's marker was expected (its task ran elsewhere) but is not there."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker
        super().__init__(f"{marker} is missing")


_MARKERS_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("markers_only", default=False)


@contextmanager
def markers_only() -> Iterator[None]:
    """Within it, a part task only reads its finished marker, and raises `PartNotFinished` when there is none.

    Engines whose workers run the tasks elsewhere read the results back this way: a missing marker means the
    driver cannot see what the workers wrote, and computing the part again on the driver would hide it.
    """
    token = _MARKERS_ONLY.set(True)
    try:
        yield
    finally:
        _MARKERS_ONLY.reset(token)


def reading_back() -> bool:
    """Whether part tasks only read finished markers now (`markers_only`): the results then say nothing of the
    work, such as how long it took."""
    return _MARKERS_ONLY.get()


def output_part(result: dict[str, Any]) -> PartSpec | None:
    """The part the next step reads after a part's result: its output file, tied to its output identity; None
    when the part kept no document (the next steps then have nothing of it)."""
    if not result["output"]:
        return None
    identity = result.get("output_identity", result.get("identity", ""))
    return PartSpec(result["part"], (result["output"],), INTERMEDIATE, identity=identity)


def _finished(directory: Path, part: PartSpec, identity: str | None = None) -> dict[str, Any] | None:
    """The part's marker, if one was written for this part made from the same input (`identity`, by default
    the part's own: a task whose output depends on more, such as a dedup step's decisions, passes its own).

    Returned as the part's result, marked `resumed`; read back by an engine (`markers_only`), it is the
    result of the task the engine just ran, and is returned as written.
    """
    marker = _marker(directory, part)
    reading_back = _MARKERS_ONLY.get()
    if not marker.exists():
        if reading_back:
            raise PartNotFinished(marker)
        return None
    done = json.loads(marker.read_text(encoding="utf-8"))
    if done.get("identity", "") != (part.identity if identity is None else identity):
        logger.warning(
            "%s was written for other input files than %s now holds; redoing the part", marker, part.name
        )
        return None
    return done if reading_back else {**done, RESUMED: True}


def _finish(
    directory: Path,
    part: PartSpec,
    output: Path | None,
    rows: int,
    stats: dict[str, Stats],
    identity: str | None = None,
    output_identity: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Write the part's marker: its identity (what it was made from), its output's identity (what the next
    step's marker is tied to), the output file, rows and stats."""
    identity = part.identity if identity is None else identity
    result = {
        "part": part.name,
        "identity": identity,
        "output_identity": identity if output_identity is None else output_identity,
        "output": str(output) if output is not None else None,
        "rows": rows,
        "stats": {label: s.to_dict() for label, s in sorted(stats.items())},
        **extra,
    }
    write_json(_marker(directory, part), result)
    return result


def split_drops(batch: pa.RecordBatch, stage_label: str) -> tuple[pa.RecordBatch, pa.RecordBatch | None]:
    """Separate kept rows from rows a stage marked; kept rows lose the drop columns, rejected gain the stage."""
    if schema.DROP_REASON not in batch.schema.names:
        return batch, None
    dropped_mask = pc.is_valid(batch.column(schema.DROP_REASON))
    rejected = batch.filter(dropped_mask)
    kept = schema.drop_columns(
        batch.filter(pc.invert(dropped_mask)), [schema.DROP_REASON, schema.DROP_DETAIL]
    )
    if rejected.num_rows == 0:
        return kept, None
    rejected = schema.set_column(rejected, schema.REJECTED_STAGE_FIELD, [stage_label] * rejected.num_rows)
    return kept, rejected


def _count(stats: Stats, batch_in: int, kept: pa.RecordBatch, rejected: pa.RecordBatch | None) -> None:
    stats.incr("docs_in", batch_in)
    stats.incr("docs_out", kept.num_rows)
    if rejected is not None:
        for reason, n in zip(*_value_counts(rejected.column(schema.DROP_REASON)), strict=True):
            stats.incr(f"dropped.{reason}", n)


def _value_counts(column: pa.Array) -> tuple[list[str], list[int]]:
    counts = pc.value_counts(column)
    return counts.field("values").to_pylist(), counts.field("counts").to_pylist()


@dataclass
class _RejectedWriters:
    """One rejected-documents file per stage per part, opened only when a stage rejects something."""

    directory: Path
    part: str
    enabled: bool
    writers: dict[str, PartWriter] = field(default_factory=dict)

    def write(self, label: str, batch: pa.RecordBatch | None) -> None:
        if not self.enabled or batch is None:
            return
        if label not in self.writers:
            self.writers[label] = PartWriter(self.directory / f"{label}-{self.part}.parquet")
        self.writers[label].write(batch)

    def close(self) -> list[str]:
        return [str(w.path) for w in self.writers.values() if w.close() > 0]

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()


Transform = Callable[[pa.RecordBatch], pa.RecordBatch]


def _filter_part(
    part: PartSpec,
    source: PartSource,
    transforms: Sequence[tuple[str, Transform]],
    out_dir: Path,
    rejected_dir: Path,
    keep_rejected: bool,
    stats: dict[str, Stats],
    stat_sources: Sequence[tuple[str, Any]] = (),
    identity: str | None = None,
    output_identity: Callable[[], str] | None = None,
) -> dict[str, Any]:
    """Stream a part through transforms that mark drops; write kept and rejected rows; finish with the marker.

    Map stages among the transforms hand over their own stats; `stat_sources` names other objects with a
    `take_stats()` (a plan stage applying its plan) whose stats belong to a label. `identity` is what the
    marker is tied to (default: the part's), `output_identity()` what the output's is, once the part is done.
    """
    kept_writer = PartWriter(out_dir / f"{part.name}.parquet")
    rejected = _RejectedWriters(rejected_dir, part.name, keep_rejected)
    try:
        for batch in source.batches(part, stats):
            for label, transform in transforms:
                rows_in = batch.num_rows
                batch, dropped = split_drops(transform(batch), label)
                _count(stats[label], rows_in, batch, dropped)
                rejected.write(label, dropped)
                if batch.num_rows == 0:
                    break
            kept_writer.write(batch)
        rows = kept_writer.close()
        rejected_files = rejected.close()
    finally:
        kept_writer.abort()
        rejected.abort()
    for label, transform in [*transforms, *stat_sources]:
        if hasattr(transform, "take_stats"):
            stats[label].merge(transform.take_stats())
    output = kept_writer.path if rows else None
    produced = output_identity() if output_identity is not None else None
    return _finish(out_dir, part, output, rows, stats, identity, produced, rejected=rejected_files)


def borrow_filtered(
    borrower: Borrower | None,
    part: PartSpec,
    out_dir: Path,
    rejected_dir: Path,
    identity: str,
    extra_dirs: Sequence[Path | None] = (),
) -> dict[str, Any] | None:
    """Take a filtered part (its kept and rejected files, and the files the first read writes into
    `extra_dirs`: skipped input, the documents index) over from the base run, or None when it cannot be."""
    if borrower is None or borrower.base_name(part.name) is None:
        return None
    base_name = borrower.base_name(part.name)

    def files(done: dict[str, Any]) -> list[tuple[Path, str]]:
        listed = [(rejected_dir, Path(path).name) for path in done.get("rejected", [])]
        if done.get("output"):
            listed.append((out_dir, f"{base_name}.parquet"))
        return listed + borrower.read_files(part.name, extra_dirs)

    def rewrite(done: dict[str, Any], linked: dict[str, str]) -> dict[str, Any]:
        rejected = [linked[str(rejected_dir / Path(path).name)] for path in done.get("rejected", [])]
        output = linked[str(out_dir / f"{base_name}.parquet")] if done.get("output") else None
        return {**done, "output": output, "rejected": rejected}

    return borrower.take(out_dir, part.name, identity, files, rewrite)


@dataclass
class MapTask:
    """Apply fused map stages to a part, writing kept and rejected documents.

    The first step of a run with a takedown list drops the removed documents before its first stage; its
    output identity then names the documents it removed, so later steps never take a base part over that
    still holds them. A part of unchanged input is taken over from the base run (`borrower`) instead.
    """

    stages: tuple[PlannedStage, ...]
    source: PartSource
    out_dir: Path
    rejected_dir: Path
    keep_rejected: bool
    borrower: Borrower | None = None
    takedown: Takedown | None = None
    _built: list[tuple[str, MapStage]] = field(default_factory=list, init=False, repr=False)

    def setup(self) -> None:
        """Build and set up every stage once per worker."""
        if not self._built:
            for planned in self.stages:
                stage = planned.entry.build()
                assert isinstance(stage, MapStage)
                stage.setup()
                self._built.append((planned.label, stage))

    def close(self) -> None:
        """Release what the stages hold (subprocesses, models)."""
        for _, stage in self._built:
            stage.close()
        self._built.clear()

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        """Process one part, or return its marker if a previous run finished it."""
        done = _finished(self.out_dir, part) or borrow_filtered(
            self.borrower,
            part,
            self.out_dir,
            self.rejected_dir,
            part.identity,
            (self.source.skipped_dir, self.source.documents_dir),
        )
        if done is not None:
            return done
        self.setup()
        transforms: list[tuple[str, Any]] = list(self._built)
        removed: list[str] = []
        if self.takedown:
            takedown = self.takedown

            def remove(batch: pa.RecordBatch) -> pa.RecordBatch:
                marked = takedown.mark(batch)
                if schema.DROP_REASON in marked.schema.names:
                    hit = pc.is_valid(marked.column(schema.DROP_REASON))
                    removed.extend(marked.column(schema.ID).filter(hit).to_pylist())
                return marked

            transforms.insert(0, (TAKEDOWN_LABEL, remove))
        stats: dict[str, Stats] = {label: Stats() for label, _ in transforms}

        def output_identity() -> str:
            if not removed:
                # A part without takedowns counts none: its stats are then the same whether or not the run
                # had a list, as a part taken over from a base run without one has none.
                stats.pop(TAKEDOWN_LABEL, None)
            return derived_identity(part.identity, *sorted(removed))

        return _filter_part(
            part,
            self.source,
            transforms,
            self.out_dir,
            self.rejected_dir,
            self.keep_rejected,
            stats,
            output_identity=output_identity,
        )


@dataclass
class _OneStageTask:
    """A task around one planned stage, built and set up once per worker and released by `close()`."""

    stage: PlannedStage
    _built: Any = field(default=None, init=False, repr=False)
    _kind: ClassVar[type[Stage]] = Stage

    def setup(self) -> None:
        """Build and set up the stage once per worker (models load here)."""
        if self._built is None:
            stage = self.stage.entry.build()
            assert isinstance(stage, self._kind), f"{self.stage.entry.stage} is not a {self._kind.__name__}"
            stage.setup()
            self._built = stage

    def close(self) -> None:
        """Release what the stage holds."""
        if self._built is not None:
            self._built.close()
        self._built = None


@dataclass
class AccountTask(_OneStageTask):
    """One accounting round of a plan stage over a part: a JSON-able summary, merged on the driver."""

    _kind: ClassVar[type[Stage]] = PlanStage

    source: PartSource
    marker_dir: Path
    plan: dict[str, Any] | None

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        """Summarise the part, or return its marker."""
        done = _finished(self.marker_dir, part)
        if done is not None:
            return done
        self.setup()
        assert self._built is not None
        summary: dict[str, Any] | None = None
        columns = self._built.account_columns
        for batch in self.source.batches(part, {}, columns):
            result = self._built.account(batch, self.plan)
            summary = result if summary is None else self._built.merge(summary, result)
        self._built.take_stats()  # accounting rounds count nothing the apply phase will not count again
        return _finish(self.marker_dir, part, None, 0, {}, account=summary)


@dataclass
class ApplyPlanTask(_OneStageTask):
    """Apply a plan stage's final plan to a part, writing kept (possibly repeated) and rejected documents."""

    _kind: ClassVar[type[Stage]] = PlanStage

    plan: dict[str, Any]
    source: PartSource
    out_dir: Path
    rejected_dir: Path
    keep_rejected: bool
    borrower: Borrower | None = None

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        """Write the part under the plan, or return its marker (the part's output depends on the plan too)."""
        plan_digest = hashlib.sha256(json.dumps(self.plan, sort_keys=True).encode("utf-8")).hexdigest()
        identity = derived_identity(part.identity, plan_digest)
        done = _finished(self.out_dir, part, identity) or borrow_filtered(
            self.borrower, part, self.out_dir, self.rejected_dir, identity
        )
        if done is not None:
            return done
        self.setup()
        stage = self._built
        assert stage is not None
        label = self.stage.label
        stats: dict[str, Stats] = {label: Stats()}
        return _filter_part(
            part,
            self.source,
            [(label, lambda batch: stage.apply(batch, self.plan))],
            self.out_dir,
            self.rejected_dir,
            self.keep_rejected,
            stats,
            stat_sources=[(label, stage)],
            identity=identity,
        )


@dataclass
class SinkTask(_OneStageTask):
    """Hand a part's documents to a sink stage (e.g. the shard writer)."""

    _kind: ClassVar[type[Stage]] = SinkStage

    source: PartSource
    sink_dir: Path
    marker_dir: Path
    context: SinkContext

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        """Write the part through the sink, or return its marker."""
        done = _finished(self.marker_dir, part)
        if done is not None:
            return done
        self.setup()
        assert self._built is not None
        stats: dict[str, Stats] = {}
        counted = Stats()
        written = self._built.write_part(
            _counting(self.source.batches(part, stats), counted), self.sink_dir, part.name, self.context
        )
        stats[self.stage.label] = counted.merge(self._built.take_stats())
        return _finish(self.marker_dir, part, None, 0, stats, written=written)


GATHER = "gather"


@dataclass
class GatherTask(_OneStageTask):
    """Run a sink's second-phase tasks (planned on the driver from every part's result), one per "part" name."""

    _kind: ClassVar[type[Stage]] = SinkStage

    plans: dict[str, dict[str, Any]]
    sink_dir: Path
    marker_dir: Path
    context: SinkContext

    def parts(self) -> list[PartSpec]:
        """The work items an engine maps this task over: one per planned task, named by it."""
        return [PartSpec(name, (), GATHER) for name in sorted(self.plans)]

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        """Run the planned task named by the part, or return its marker."""
        done = _finished(self.marker_dir, part)
        if done is not None:
            return done
        self.setup()
        assert self._built is not None
        written = self._built.gather(self.plans[part.name], self.sink_dir, self.context)
        stats = {self.stage.label: self._built.take_stats()}
        return _finish(self.marker_dir, part, None, 0, stats, written=written)
