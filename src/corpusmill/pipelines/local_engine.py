"""The in-process engine: parts one after another in this process, grouping with pyarrow.

Useful for debugging a stage with a plain debugger and for small inputs where starting a cluster costs more
than the work; it shares every line of part and grouping logic with the distributed engines.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from corpusmill.core.grouping import EDGE_SCHEMA, KEY_SCHEMA, star_edges
from corpusmill.pipelines.engine import Engine, PartTask
from corpusmill.pipelines.parts import PartSpec


class LocalEngine(Engine):
    """Sequential execution in the calling process."""

    name = "local"

    def map_parts(
        self, task: PartTask, parts: Sequence[PartSpec], num_cpus: float = 1.0
    ) -> Iterator[dict[str, Any]]:
        """Run the task on each part in order."""
        try:
            for part in parts:
                yield task(part)
        finally:
            task.close()

    def group_edges(self, key_files: Sequence[str]) -> pa.Table:
        """Group all keys at once (they fit in memory at the sizes this engine is meant for)."""
        if not key_files:
            return EDGE_SCHEMA.empty_table()
        keys = pa.concat_tables([pq.read_table(path, schema=KEY_SCHEMA) for path in key_files])
        return star_edges(keys)
