"""The Apache Beam engine: parts as elements of a PCollection, processed by a DoFn that holds the stages.

Runner: Beam's in-process DirectRunner (FnApiRunner, one SDK worker process per CPU) unless the pipeline
options name another (`--runner=FlinkRunner --flink_master=...`, `--runner=SparkRunner`,
`--runner=DataflowRunner --project=... --region=... --temp_location=gs://...`). The runner is always named
explicitly: left unset, Beam would pick a runner that downloads its Prism binary at start.

Part tasks write their outputs and `.done.json` markers themselves, so after a pipeline finishes the engine
reads each part's result back from its marker (a part task given a finished part returns the marker). Grouping
for deduplication is a `GroupByKey` over `(key, id)` pairs; each group becomes star edges through the same
`core.grouping.star_edges` the other engines use, so the output is identical.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from corpusmill.core.grouping import DUPLICATE_OF, EDGE_SCHEMA, ID, KEY, KEY_SCHEMA, star_edges
from corpusmill.pipelines.engine import Engine, PartTask
from corpusmill.pipelines.parts import PartSpec

logger = logging.getLogger(__name__)


def _part_do_fn(task: PartTask) -> Any:
    import apache_beam as beam

    class PartDoFn(beam.DoFn):
        """Sets the task up once per DoFn instance (Beam may call `setup` again: the task's setup is idempotent)."""

        def setup(self) -> None:
            task.setup()

        def process(self, element: str) -> Iterator[str]:
            result = task(PartSpec.from_json(element))
            yield result["part"]

        def teardown(self) -> None:
            task.close()

    return PartDoFn()


def _read_keys(path: str) -> Iterator[tuple[bytes, str]]:
    table = pq.read_table(path, schema=KEY_SCHEMA)
    yield from zip(table.column(KEY).to_pylist(), table.column(ID).to_pylist(), strict=True)


def _edges_of_group(element: tuple[bytes, Iterable[str]]) -> Iterator[str]:
    key, ids = element
    ids = list(ids)
    group = pa.table({KEY: [key] * len(ids), ID: ids}, schema=KEY_SCHEMA)
    edges = star_edges(group)
    for doc_id, original in zip(
        edges.column(ID).to_pylist(), edges.column(DUPLICATE_OF).to_pylist(), strict=True
    ):
        yield json.dumps([doc_id, original])


def _group_keys_to_edges() -> Any:
    import apache_beam as beam

    class GroupKeysToEdges(beam.PTransform):
        """Key files in, star edges out: read `(key, id)` rows, GroupByKey, link each group to its smallest id."""

        def expand(self, key_files: Any) -> Any:
            return (
                key_files
                | "ReadKeys" >> beam.FlatMap(_read_keys)
                | "GroupByKey" >> beam.GroupByKey()
                | "StarEdges" >> beam.FlatMap(_edges_of_group)
            )

    return GroupKeysToEdges()


class BeamEngine(Engine):
    """Apache Beam execution, in process by default or on any runner named in the pipeline options."""

    name = "beam"

    def __init__(self, pipeline_args: Sequence[str] = (), num_cpus: int | None = None) -> None:
        args = list(pipeline_args)
        if not any(arg.startswith("--runner") for arg in args):
            workers = num_cpus or os.cpu_count() or 1
            args += ["--runner=DirectRunner", f"--direct_num_workers={workers}"]
            args += [
                "--direct_running_mode=multi_processing" if workers > 1 else "--direct_running_mode=in_memory"
            ]
        self._args = args
        # Beam's INFO and WARNING lines repeat what the progress bars and summary say.
        logging.getLogger("apache_beam").setLevel(logging.ERROR)

    def _pipeline(self) -> Any:
        import apache_beam as beam
        from apache_beam.options.pipeline_options import PipelineOptions

        return beam.Pipeline(options=PipelineOptions(self._args))

    def map_parts(
        self, task: PartTask, parts: Sequence[PartSpec], num_cpus: float = 1.0
    ) -> Iterator[dict[str, Any]]:
        """One pipeline per phase: Create(parts) | Reshuffle | ParDo(part task); results come from the markers."""
        import apache_beam as beam

        if not parts:
            return
        with self._pipeline() as pipeline:
            _ = (
                pipeline
                | "Parts" >> beam.Create([part.to_json() for part in parts], reshuffle=True)
                | "Process" >> beam.ParDo(_part_do_fn(task))
            )
        try:
            for part in parts:
                yield task(part)
        finally:
            task.close()

    def group_edges(self, key_files: Sequence[str]) -> pa.Table:
        """Read `(key, id)` rows, GroupByKey, star edges per group; edges come back through text files."""
        import apache_beam as beam

        if not key_files:
            return EDGE_SCHEMA.empty_table()
        with tempfile.TemporaryDirectory(prefix="corpusmill-edges-") as out_dir:
            with self._pipeline() as pipeline:
                _ = (
                    pipeline
                    | "KeyFiles" >> beam.Create(list(key_files), reshuffle=True)
                    | "GroupKeysToEdges" >> _group_keys_to_edges()
                    | "Write"
                    >> beam.io.WriteToText(os.path.join(out_dir, "edges"), file_name_suffix=".jsonl")
                )
            pairs = []
            for path in sorted(glob.glob(os.path.join(out_dir, "edges*.jsonl"))):
                with open(path, encoding="utf-8") as handle:
                    pairs.extend(json.loads(line) for line in handle if line.strip())
        return pa.table({ID: [a for a, _ in pairs], DUPLICATE_OF: [b for _, b in pairs]}, schema=EDGE_SCHEMA)
