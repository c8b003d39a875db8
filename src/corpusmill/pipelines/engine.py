"""What an engine supplies: running a part task over many work items, on its workers.

Engines are thin adapters. They never look inside a stage: they schedule picklable tasks (see `parts.py`
and `group_tasks.py`) over parts or hash buckets. Whole-dataset steps are *map -> group by key -> map* all
the same, but the grouping is a shuffle through hash-bucketed files written and read by the tasks
themselves (`buckets.py`), not an engine operator: measured on two cores, Ray Data's `groupby` cost about
24 CPU-seconds for a few thousand keys, while bucket tasks cost what reading their rows costs, and every
engine then runs the identical code, so the same recipe gives the same output everywhere.

An engine adds one field to each result, `node`: where the part task ran (a Ray node id; the host name for
the engines whose workers run on this machine), or none where it cannot know. The runner counts part tasks
per node in `stats.json`; markers never hold it.
"""

from __future__ import annotations

import gc
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from corpusmill.pipelines.parts import PartSpec

# The field of a part's result that an engine sets to the node that ran the part task.
NODE = "node"


def prepare_worker_process(dedicated: bool = False) -> None:
    """Load, once in each worker process, what the first phase of every run would otherwise load.

    The part tasks' modules (Arrow, pydantic, the recipe model; about 0.2 CPU-seconds), and pyarrow's pandas
    bridge: the first `pa.array` call of a process imports pandas where it is installed (another 0.2
    CPU-seconds, measured), only to check whether its argument is a pandas object. Engines call this while
    they start, so that a cost paid once per worker process counts as start-up, not as the first phase's work
    on its documents, and each worker pays it before its first part rather than in the middle of one.

    A `dedicated` process, one that exists only to run part tasks (a Ray or Beam worker), then freezes what
    it holds (`gc.freeze`): the modules it has loaded live as long as it does, and frozen they are no longer
    traversed by every full collection of the cyclic garbage collector, which extraction triggers often. A
    Beam worker holds about 260,000 objects after start; over the bench's extraction phase the collector
    cost each worker 0.24 CPU-seconds, and 0.08-0.11 frozen (measured). Not done in a process that also
    does other work, such as the local engine's caller: what it held when frozen would never be collected.
    """
    import pyarrow as pa

    import corpusmill.pipelines.group_step  # noqa: F401  (imports every part task's module)

    pa.array([], pa.string())
    if dedicated:
        gc.collect()
        gc.freeze()


class PartTask(Protocol):
    """A picklable unit of work on parts (MapTask, KeysTask, ...)."""

    def setup(self) -> None:
        """Prepare the worker once."""

    def close(self) -> None:
        """Release worker resources."""

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        """Process one part and return its JSON-able result."""


class Engine(ABC):
    """Runs part tasks; usable as a context manager so it always shuts down."""

    name: str

    @abstractmethod
    def map_parts(
        self, task: PartTask, parts: Sequence[PartSpec], num_cpus: float = 1.0
    ) -> Iterator[dict[str, Any]]:
        """Run `task` on every part, yielding results as parts finish (in any order)."""

    def close(self) -> None:
        """Stop whatever the engine started."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_engine(
    name: str, address: str | None = None, num_cpus: int | None = None, engine_args: Sequence[str] = ()
) -> Engine:
    """Engine by name: `ray` (the default), `beam` or `local`; engine modules load only when chosen.

    `engine_args` are passed through to the engine: Beam pipeline options such as `--runner=FlinkRunner`.
    """
    if address and name != "ray":
        raise ValueError("--address only applies to --engine ray")
    if engine_args and name != "beam":
        raise ValueError(f"engine options {list(engine_args)} only apply to --engine beam")
    if name == "ray":
        from corpusmill.pipelines.ray_engine import RayEngine

        return RayEngine(address=address, num_cpus=num_cpus)
    if name == "beam":
        from corpusmill.pipelines.beam_engine import BeamEngine

        return BeamEngine(pipeline_args=engine_args, num_cpus=num_cpus)
    if name == "local":
        from corpusmill.pipelines.local_engine import LocalEngine

        return LocalEngine()
    raise ValueError(f"unknown engine {name!r}; allowed: ray, beam, local")
