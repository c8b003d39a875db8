"""The in-process engine: parts (and buckets) one after another in this process.

Useful for debugging a stage with a plain debugger and for small inputs where starting a cluster costs more
than the work; it shares every line of task logic with the distributed engines. Every part runs on this
machine, so each result's node is its host name.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from typing import Any

from corpusmill.pipelines.engine import NODE, Engine, PartTask, prepare_worker_process
from corpusmill.pipelines.parts import PartSpec


class LocalEngine(Engine):
    """Sequential execution in the calling process."""

    name = "local"

    def __init__(self) -> None:
        # This process is the engine's one worker: it loads what every part task needs as the others do.
        prepare_worker_process()

    def map_parts(
        self, task: PartTask, parts: Sequence[PartSpec], num_cpus: float = 1.0
    ) -> Iterator[dict[str, Any]]:
        """Run the task on each part in order."""
        node = socket.gethostname()
        try:
            for part in parts:
                yield {**task(part), NODE: node}
        finally:
            task.close()
