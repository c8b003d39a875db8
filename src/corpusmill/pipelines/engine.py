"""What an engine supplies: running a part task over many parts, and grouping keys.

Engines are thin adapters. They never look inside a stage: they schedule picklable part tasks (see
`parts.py`) on workers and group `(key, id)` rows so that `core.grouping.star_edges` sees whole key groups.
Everything else (what a task does, how duplicates are resolved) is shared, so every engine produces the
same output for the same recipe.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import pyarrow as pa

from corpusmill.pipelines.parts import PartSpec


class PartTask(Protocol):
    """A picklable unit of work on parts (MapTask, KeysTask, ...)."""

    def setup(self) -> None:
        """Prepare the worker once."""

    def close(self) -> None:
        """Release worker resources."""

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        """Process one part and return its JSON-able result."""


class Engine(ABC):
    """Runs part tasks and groups keys; usable as a context manager so it always shuts down."""

    name: str

    @abstractmethod
    def map_parts(
        self, task: PartTask, parts: Sequence[PartSpec], num_cpus: float = 1.0
    ) -> Iterator[dict[str, Any]]:
        """Run `task` on every part, yielding results as parts finish (in any order)."""

    @abstractmethod
    def group_edges(self, key_files: Sequence[str]) -> pa.Table:
        """Read `(key, id)` parquet files, group by key and return the star edges of all groups."""

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
