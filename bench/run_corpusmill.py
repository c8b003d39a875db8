"""corpusmill on the bench pipeline: a bare stage loop, and `run_recipe` on the local, Ray or Beam engine.

The bare loop is what the engines do minus the engines: the recipe's stages are built and called directly
on Arrow batches in this process, each stage on the whole corpus before the next (map stages through
`split_drops` as the runner fuses them, the MinHash stage as keys -> star edges -> `confirm` -> connected
components -> drop, the shard writer through `write_part`, `plan_gather`, `gather` and `finalize`). Each
stage is timed alone, so the difference to an engine run is the engine's own cost: scheduling, process
start-up, serialisation, and the parquet written between steps.

Engine runs go through `run_recipe` with a progress recorder: every phase the runner announces (a step, or
the keys/grouping/apply phases of a dedup step) is timed from its announcement to the next one, and the time
before the first phase (engine start-up) and after the last part finished (engine shutdown, run manifest)
is reported separately.

Both report `setup_cpu_s`: what setting up the stages cost (`Stage.setup` measures it; see
`corpusmill.core.stage`), once per stage for the bare loop and once per stage, worker and phase for an engine
run (from its `stats.json`). It does not grow with the corpus, so the per-document engine overhead leaves it
out on both sides.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench import spec
from bench.measure import Clock, Mark
from corpusmill.core import schema
from corpusmill.core.grouping import (
    DUPLICATE_OF,
    EDGE_SCHEMA,
    ID,
    duplicate_decisions,
    star_edges,
    unique_edges,
)
from corpusmill.core.stage import SETUP_CPU_SECONDS, GroupStage, MapStage, SinkContext, SinkStage
from corpusmill.core.stats import Stats
from corpusmill.pipelines.buckets import read_bucket
from corpusmill.pipelines.engine import prepare_worker_process
from corpusmill.pipelines.graph import plan_steps
from corpusmill.pipelines.parts import rebatch, split_drops

Parts = dict[str, list[pa.RecordBatch]]
SPAN_OF_STAGE = {"heuristics": "gopher", "tokenize": "tokenize", "write_shards": "write"}


def _rows(parts: Parts) -> int:
    return sum(batch.num_rows for batches in parts.values() for batch in batches)


def _ids(parts: Parts) -> list[str]:
    return [i for batches in parts.values() for batch in batches for i in batch.column(schema.ID).to_pylist()]


def _record_ids(parts: Parts) -> dict[str, str]:
    """Document id -> WARC-Record-ID: the truth file and datatrove name records by the latter."""
    return {
        doc_id: record_id
        for batches in parts.values()
        for batch in batches
        for doc_id, record_id in zip(
            batch.column(schema.ID).to_pylist(), batch.column(schema.SOURCE_ID).to_pylist(), strict=True
        )
    }


def _map_stage(stage: MapStage, label: str, parts: Parts, keep_text: list[pa.Table] | None) -> Parts:
    out: Parts = {}
    for name, batches in parts.items():
        kept_batches = []
        for batch in batches:
            marked = stage(batch)
            if keep_text is not None:
                keep_text.append(
                    pa.table({"id": marked.column(schema.ID), "text": marked.column(schema.TEXT)})
                )
            kept, _ = split_drops(marked, label)
            if kept.num_rows:
                kept_batches.append(kept)
        out[name] = kept_batches
    return out


def _group_stage(stage: GroupStage, parts: Parts, clock: Clock) -> tuple[Parts, list[str]]:
    with clock.span("dedup_signatures"):
        keys, sides = [], []
        for batches in parts.values():
            for batch in batches:
                key_table, side = stage.keys_and_side_data(batch)
                keys.append(key_table)
                if side is not None:
                    sides.append(side)
    with clock.span("dedup_grouping"):
        edges = unique_edges(star_edges(pa.concat_tables(keys))) if keys else None
        if edges is not None and edges.num_rows:
            side = None
            if sides:
                linked = pc.unique(
                    pa.concat_arrays(
                        [edges.column(ID).combine_chunks(), edges.column(DUPLICATE_OF).combine_chunks()]
                    )
                )
                side = pa.concat_tables(sides)
                side = side.filter(pc.is_in(side.column(ID), value_set=linked))
            edges = stage.confirm(edges, side)
        removed = duplicate_decisions(edges).column(ID).to_pylist() if edges is not None else []
    with clock.span("dedup_apply"):
        dropped = set(removed)
        out: Parts = {}
        for name, batches in parts.items():
            out[name] = []
            for batch in batches:
                keep = pa.array([doc_id not in dropped for doc_id in batch.column(schema.ID).to_pylist()])
                if (kept := batch.filter(keep)).num_rows:
                    out[name].append(kept)
    return out, removed


def _sink_stage(stage: SinkStage, parts: Parts, work: Path, recipe: Any) -> dict[str, Any]:
    context = SinkContext(recipe.name, recipe.fingerprint(), recipe.seed, work / "sink-work")
    out_dir = work / "shards"
    written = [stage.write_part(iter(batches), out_dir, name, context) for name, batches in parts.items()]
    gathered = [stage.gather(task, out_dir, context) for task in stage.plan_gather(written, context)]
    return stage.finalize(written, gathered, out_dir, context)


def run_bare(
    warc_dir: Path,
    work: Path,
    clock: Clock,
    threshold: float,
    extractor: str = spec.EXTRACTORS[0],
    share: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Every stage of the bench recipe alone, on the previous stage's output, in this process.

    `share` (index, count): only every count-th WARC file from the index-th on, as an engine worker gets
    only some of the parts (`bench.engine_pairs`' split bare loop, its goal's baseline).
    """
    from corpusmill.io import read_batches

    recipe = spec.recipe(warc_dir, threshold, extractor)
    batch_size = recipe.output.batch_size
    numbered = list(enumerate(sorted(warc_dir.glob("*.warc.gz"))))
    if share is not None:
        numbered = numbered[share[0] :: share[1]]
    planned = [stage for step in plan_steps(recipe) for stage in step.stages]
    clock.mark("start")
    with clock.span("startup"):  # what every engine's workers load while the engine starts
        prepare_worker_process(dedicated=True)
    with clock.span("read"):
        parts: Parts = {
            f"part-{i:05d}": list(
                rebatch(
                    read_batches(str(path), "warc", batch_size=batch_size, stats=Stats(), name=path.name),
                    batch_size,
                )
            )
            for i, path in numbered
        }
    docs_in = _rows(parts)
    record_id = _record_ids(parts)
    input_bytes = sum(
        pc.sum(pc.binary_length(b.column(schema.HTML))).as_py() or 0 for bs in parts.values() for b in bs
    )
    extracted: list[pa.Table] = []
    entered: list[str] = []
    removed: list[str] = []
    manifest: dict[str, Any] = {}
    setup_cpu_s = 0.0
    for item in planned:
        stage = item.entry.build()
        base = item.entry.stage_class().name
        span = SPAN_OF_STAGE.get(base, base)
        if isinstance(stage, MapStage):
            with clock.span(span), clock.span(f"{span}_setup"):
                stage.setup()
            with clock.span(span):
                parts = _map_stage(stage, item.label, parts, extracted if base == "extract" else None)
        elif isinstance(stage, GroupStage):
            entered = _ids(parts)
            with clock.span("dedup_signatures"):
                stage.setup()
            parts, removed = _group_stage(stage, parts, clock)
        elif isinstance(stage, SinkStage):
            with clock.span(span):
                stage.setup()
                manifest = _sink_stage(stage, parts, work, recipe)
        setup_cpu_s += setup_seconds(stage.take_stats().to_dict())
        stage.close()
    clock.mark("end")
    texts = pa.concat_tables(extracted) if extracted else pa.table({"id": [], "text": []})
    return {
        "docs_in": docs_in,
        "input_bytes": input_bytes,
        "docs_out": _rows(parts),
        "tokens": int(manifest.get("total_tokens", 0)),
        "setup_cpu_s": setup_cpu_s,
        "entered_dedup": [record_id[i] for i in entered],
        "removed_by_dedup": [record_id[i] for i in removed],
        "extracted": [
            (record_id[i], text)
            for i, text in zip(texts.column("id").to_pylist(), texts.column("text").to_pylist(), strict=True)
        ],
    }


def setup_seconds(stage_stats: dict[str, Any]) -> float:
    """CPU seconds a stage's set-ups took, over every worker that set it up (its `setup.cpu_seconds`)."""
    moments = stage_stats.get("moments", {}).get(SETUP_CPU_SECONDS)
    return moments["count"] * moments["mean"] if moments else 0.0


def phase_span(description: str) -> str:
    """The span a runner phase counts towards: `01-extract_v1+langid_v1+heuristics_v1` -> `map`, ...; phases of
    several steps run as one engine phase (`pipelines/chain.py`) count towards their spans joined by `+`:
    `02-dedup_minhash_v1 apply, 03-tokenize_v1, 04-write_shards_v1` -> `dedup_apply+tokenize+write`."""
    spans = [_one_phase_span(one) for one in description.split(", ")]
    return "+".join(dict.fromkeys(spans))


def _one_phase_span(description: str) -> str:
    text = re.sub(r"^\d+-", "", description)
    suffix = ""
    if (
        match := re.search(r" (keys|candidates|attach|confirm|components \d+|resolve|apply|gather)$", text)
    ) is not None:
        suffix, text = match.group(1), text[: match.start()]
    names = [re.sub(r"_v\d+$", "", name) for name in text.split("+")]
    if any(name.startswith("dedup") for name in names):
        if suffix in ("candidates", "attach", "confirm", "resolve") or suffix.startswith("components"):
            return "dedup_grouping"
        return {"keys": "dedup_signatures", "apply": "dedup_apply"}.get(suffix, "dedup_other")
    if "write_shards" in names:
        return "write"
    if names == ["tokenize"]:
        return "tokenize"
    if "extract" in names:
        return "map"
    return "+".join(names)


class PhaseRecorder:
    """The runner's progress callback, turned into timed spans on a Clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.current: tuple[str, Mark] | None = None
        self.last_advance: Mark | None = None
        self.first: Mark | None = None

    def phase(self, description: str, total: int) -> None:
        """A phase begins: the previous one ends here."""
        mark = self.clock.mark(description)
        if self.current is not None:
            self.clock.add(self.current[0], self.current[1], mark)
        self.first = self.first or mark
        self.current = (phase_span(description), mark)

    def advance(self) -> None:
        """A part finished; the last one closes the last phase."""
        self.last_advance = Mark("advance", time.monotonic())  # only the latest matters; not kept

    def close(self, start: Mark, end: Mark) -> None:
        """Attribute start-up, the last phase and shutdown once the run returned."""
        if self.current is None or self.first is None:
            self.clock.add("finish", start, end)
            return
        last_end = (
            self.last_advance if self.last_advance and self.last_advance.at > self.current[1].at else end
        )
        self.clock.add(self.current[0], self.current[1], last_end)
        self.clock.add("startup", start, self.first)
        self.clock.add("finish", last_end, end)


def run_engine(
    engine: str,
    warc_dir: Path,
    work: Path,
    clock: Clock,
    threshold: float,
    cores: int,
    extractor: str = spec.EXTRACTORS[0],
) -> dict[str, Any]:
    """`run_recipe` on one engine into a fresh run directory, with every phase timed."""
    from corpusmill.pipelines.runner import run_recipe

    recipe = spec.recipe(warc_dir, threshold, extractor)
    run_dir = work / "run"
    recorder = PhaseRecorder(clock)
    start = clock.mark("start")
    run_recipe(recipe, engine=engine, output=run_dir, num_cpus=cores, progress=recorder)
    end = clock.mark("end")
    recorder.close(start, end)
    stats = json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))
    record_id = _step_ids(run_dir, "extract")
    return {
        "docs_out": int(stats["documents_out"]),
        "tokens": int(stats["tokens_written"]),
        "setup_cpu_s": sum(setup_seconds(stage) for stage in stats["stages"]),
        "entered_dedup": list(record_id.values()),
        "removed_by_dedup": [record_id[i] for i in _decisions(run_dir)],
    }


def _step_ids(run_dir: Path, first_stage: str) -> dict[str, str]:
    """Id -> WARC-Record-ID of the documents a map step (named by its first stage) kept."""
    (step,) = [p for p in (run_dir / "stages").iterdir() if first_stage in p.name]
    found: dict[str, str] = {}
    for path in sorted(step.glob("part-*.parquet")):
        table = pq.read_table(path, columns=[ID, schema.SOURCE_ID])
        found.update(
            zip(table.column(ID).to_pylist(), table.column(schema.SOURCE_ID).to_pylist(), strict=True)
        )
    return found


def _decisions(run_dir: Path) -> list[str]:
    """Ids the run's dedup step removed, from its final decisions (one bucketed file per bucket task)."""
    (summary,) = (run_dir / "stages").glob("*dedup*/duplicates.json")
    phase = json.loads(summary.read_text(encoding="utf-8"))["decisions"]
    if phase is None:
        return []
    files = sorted((summary.parent / phase).glob("*.arrow"))
    parts = pa.ipc.open_file(files[0]).num_record_batches if files else 0
    return [i for part in range(parts) for i in read_bucket(files, part, EDGE_SCHEMA).column(ID).to_pylist()]
